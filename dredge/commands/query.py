"""``dredge query top | timeseries | cross-az``: one :class:`~dredge.query.spec.QuerySpec`,
run on the DuckDB store (``--db``, opened read-only), Druid SQL (``--backend druid``), the
Iceberg ledger (``--backend iceberg``: the table of ``--config``'s ``[sink.iceberg]``) or a
running server (``--server``), printed as a table or JSON lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dredge.commands.druid import add_druid_args
from dredge.commands.serve import add_server_args
from dredge.errors import ConfigError


def add_parser(sub: Any) -> None:
    q = sub.add_parser("query", help="top talkers, time series, cross-AZ/region traffic and cost")
    q.add_argument("kind", choices=["top", "timeseries", "cross-az"])
    q.add_argument("--db", default="dredge.duckdb")
    q.add_argument("--by", help="comma-separated dimensions (default: src_app,dst_app)")
    q.add_argument("--where", action="append", default=[], help="dim=value, dim=a|b, dim!=value (repeatable)")
    q.add_argument("--from", dest="start", help="start time, inclusive (2026-11-25T10:00Z or epoch s)")
    q.add_argument("--to", dest="end", help="end time, exclusive")
    q.add_argument("--metric", default="bytes", choices=["bytes", "packets", "flows"])
    q.add_argument("--limit", type=int, default=20)
    q.add_argument("--interval", default="5m", help="timeseries bucket (default: 5m)")
    q.add_argument("--az-price", type=float, default=0.01, help="USD per GB across AZs (default: 0.01)")
    q.add_argument("--region-price", type=float, default=0.02, help="USD per GB across regions (default: 0.02)")
    q.add_argument("--internet-price", type=float, default=0.09,
                   help="USD per GB out to the internet (default: 0.09; 0 leaves it out)")
    q.add_argument("--nat-price", type=float, default=0.045,
                   help="USD per GB processed by a NAT gateway (default: 0.045; 0 leaves it out)")
    q.add_argument("--json", action="store_true", help="JSON lines")
    q.add_argument("--backend", choices=["duckdb", "druid", "iceberg"], default="duckdb",
                   help="where to query: the DuckDB store (--db), Druid SQL (--druid-*) or the "
                   "Iceberg ledger ([sink.iceberg] of --config)")
    add_druid_args(q)
    add_server_args(q)
    q.set_defaults(func=cmd_query)


def cmd_query(args: argparse.Namespace) -> int:
    from dredge.query import render
    from dredge.query.spec import Filter, QuerySpec, parse_duration, parse_time

    default_by = {"top": "src_app,dst_app", "timeseries": "", "cross-az": "src_app,dst_app"}[args.kind]
    by = tuple(b.strip() for b in (args.by if args.by is not None else default_by).split(",") if b.strip())
    spec = QuerySpec(
        kind=args.kind, by=by, filters=tuple(Filter.parse(w) for w in args.where),
        start=parse_time(args.start) if args.start else None,
        end=parse_time(args.end) if args.end else None,
        metric=args.metric, limit=args.limit, interval_s=parse_duration(args.interval),
        az_price=args.az_price, region_price=args.region_price,
        internet_price=args.internet_price, nat_price=args.nat_price,
    )
    if args.server:
        from dredge.serve.client import query_server

        table = query_server(args.server, spec, args.server_token)
    elif args.backend == "druid":
        from dredge.commands.druid import druid_config
        from dredge.query.druid import run

        table = run(spec, druid_config(args))
    elif args.backend == "iceberg":
        from dredge.commands.iceberg import open_ledger
        from dredge.query import iceberg

        table = iceberg.run(spec, open_ledger(args.druid_config_file))
    else:
        if not Path(args.db).exists():
            raise ConfigError("db", f"no database at {args.db} (run `dredge replay` first)")
        from dredge.query.store import query_file

        table = query_file(args.db, *spec.sql())
    if args.json:
        sys.stdout.buffer.write(render.json_lines(table))
    else:
        print(render.table_text(table))
    return 0
