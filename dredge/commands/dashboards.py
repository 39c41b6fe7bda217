"""``dredge dashboards export``: write the Superset asset bundle for Dredge's Druid data.

The database URI comes from the Druid settings every Druid command takes (``--config``'s
``[sink.druid]``, ``--druid-*`` options, ``DREDGE_DRUID_*``): URL, TLS and user; the password
is never written. ``--duckdb PATH`` (default: ``[sink.duckdb] path`` of ``--config``) adds
the embedded store as a read-only DuckDB database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dredge.commands.druid import add_druid_args, druid_config
from dredge.settings import check_output_file


def cmd_export(args: argparse.Namespace) -> int:
    from dredge.dashboards.bundle import BundleOptions, write

    duckdb_path = args.duckdb
    if duckdb_path is None and args.druid_config_file and not args.no_duckdb:
        from dredge.config import load_config

        duckdb_path = load_config(args.druid_config_file).sink.duckdb.path
    options = BundleOptions(druid=druid_config(args),
                            duckdb_path="" if args.no_duckdb else (duckdb_path or ""),
                            ask_password=args.ask_password, assets=args.assets)
    out = Path(args.out)
    check_output_file("--out", out)
    files = write(options, out)
    counts = {kind: sum(1 for p in files if f"/{kind}/" in p)
              for kind in ("databases", "datasets", "charts", "dashboards")}
    sys.stdout.write(f"wrote {out}: " + ", ".join(f"{n} {k}" for k, n in counts.items())
                     + "\n")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("dashboards", help="Apache Superset dashboards for the Druid data")
    dsub = d.add_subparsers(dest="dashboards_command", required=True)
    e = dsub.add_parser("export", help="write a Superset asset bundle (ZIP) to import with "
                        "`superset import-dashboards -p FILE` or Superset's UI")
    e.add_argument("--out", default="dredge-superset.zip",
                   help="the ZIP to write (default: %(default)s)")
    e.add_argument("--duckdb", metavar="PATH", help="also add this DuckDB store as a "
                   "read-only database (default: [sink.duckdb] path of --config, if given)")
    e.add_argument("--no-duckdb", action="store_true",
                   help="no DuckDB database entry (default: one, see --duckdb)")
    e.add_argument("--ask-password", action="store_true",
                   help="with a Druid user: write Superset's password mask, so its import "
                   "dialog asks for the password (its CLI import then refuses the bundle) "
                   "(default: no mask)")
    e.add_argument("--assets", action="store_true",
                   help="an assets bundle for POST /api/v1/assets/import/, which overwrites "
                   "every object (default: a dashboard bundle, whose import keeps existing "
                   "charts and datasets)")
    add_druid_args(e)
    e.set_defaults(func=cmd_export)
