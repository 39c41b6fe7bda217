"""``dredge iceberg maintain``: housekeeping of the ledger table, and the table of ``--config``
for the other commands that read it (``druid reconcile``, ``query --backend iceberg``).

The table is the ``[sink.iceberg]`` section of the daemon's TOML file (``--config``; the
``DREDGE_SINK__ICEBERG__*`` variables apply). Commands that read it never create it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

import orjson

from dredge.errors import ConfigError

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from dredge.sinks.iceberg.config import IcebergConfig


def iceberg_config(path: str | None) -> IcebergConfig:
    """``[sink.iceberg]`` of the TOML file ``path``."""
    if not path:
        raise ConfigError("config", "the Iceberg table comes from [sink.iceberg] of --config FILE")
    from dredge.config import load_config

    config = load_config(path, os.environ).sink.iceberg
    if config is None:
        raise ConfigError("sink.iceberg", f"{path} has no [sink.iceberg] section")
    return config


def open_ledger(path: str | None) -> Table:
    """The ledger table of ``--config`` (it must exist)."""
    from dredge.sinks.iceberg.table import open_table

    return open_table(iceberg_config(path), create=False)


def _print(obj: object) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj) + b"\n")


def cmd_maintain(args: argparse.Namespace) -> int:
    from dredge.sinks.iceberg.housekeeping import HousekeepingConfig, maintain
    from dredge.times import parse_duration

    given: dict[str, Any] = {
        "compact": not args.no_compact, "expire": not args.no_expire,
        "orphans": not args.no_orphans, "dry_run": args.dry_run,
        "min_files": args.min_files, "keep_snapshots": args.keep_snapshots,
        "max_attempts": args.max_attempts}
    for key, text in (("compact_after_s", args.compact_after), ("expire_after_s", args.expire_after),
                      ("orphan_age_s", args.orphan_age)):
        given[key] = float(parse_duration(text)) if text else None
    config = HousekeepingConfig(**{k: v for k, v in given.items() if v is not None})
    config.validate()
    report = maintain(open_ledger(args.config), config)
    if args.json:
        _print(report.as_dict())
    else:
        for line in report.lines():
            print(line)
    return 0


def add_parser(sub: Any) -> None:
    i = sub.add_parser("iceberg", help="the Iceberg ledger table: housekeeping")
    isub = i.add_subparsers(dest="iceberg_command", required=True)
    m = isub.add_parser("maintain", help="compact small files per hour, expire old snapshots, "
                        "delete orphan files (each step can be left out)")
    m.add_argument("--config", required=True, metavar="FILE",
                   help="the daemon's TOML file: the table from its [sink.iceberg]")
    m.add_argument("--no-compact", action="store_true", help="leave small files alone")
    m.add_argument("--no-expire", action="store_true", help="keep every snapshot")
    m.add_argument("--no-orphans", action="store_true", help="do not look for orphan files")
    m.add_argument("--min-files", type=int, help="compact an hour with at least this many data "
                   "files (default 8)")
    m.add_argument("--compact-after", help="compact an hour this long after it ended (default "
                   "1h: workers no longer append to it; s m h d)")
    m.add_argument("--keep-snapshots", type=int, help="the newest snapshots always kept (default 20)")
    m.add_argument("--expire-after", help="expire snapshots older than this (default 1d; s m h d)")
    m.add_argument("--orphan-age", help="delete unreferenced files only older than this (default "
                   "3d: a commit in flight has written files it does not reference yet)")
    m.add_argument("--max-attempts", type=int, help="compaction commits refused by a concurrent "
                   "commit: read again and retry this many times (default 5)")
    m.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")
    m.add_argument("--json", action="store_true", help="the report as one JSON object")
    m.set_defaults(func=cmd_maintain)
