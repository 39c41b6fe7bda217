"""``dredge query top | timeseries | cross-az``: one :class:`~dredge.query.spec.QuerySpec`,
run on the DuckDB store (``--db``, opened read-only), Druid SQL (``--backend druid``), the
Iceberg ledger (``--backend iceberg``: the table of ``--config``'s ``[sink.iceberg]``) or a
running server (``--server``), printed as a table, CSV or JSON lines (``--format``; see
:mod:`dredge.query.render`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dredge.commands.druid import add_druid_args
from dredge.commands.options import positive, price
from dredge.commands.serve import add_server_args
from dredge.commands.stores import existing_store
from dredge.errors import ConfigError


def add_parser(sub: Any) -> None:
    q = sub.add_parser("query", help="top talkers, time series, cross-AZ/region traffic and cost")
    q.add_argument("kind", choices=["top", "timeseries", "cross-az"],
                   help="top: the biggest groups; timeseries: totals per time bucket; "
                   "cross-az: app pairs whose traffic crosses AZs/regions, with cost")
    q.add_argument("--db", default="dredge.duckdb", help="DuckDB store, opened read-only "
                   "(default: %(default)s)")
    q.add_argument("--by", help="comma-separated dimensions (default: src_app,dst_app; "
                   "timeseries: none)")
    q.add_argument("--where", action="append", default=[], help="dim=value, dim=a|b, "
                   "dim!=value (repeatable; default: no filter)")
    q.add_argument("--from", dest="start", help="start time, inclusive (2026-11-25T10:00Z or "
                   "epoch s; default: the first stored)")
    q.add_argument("--to", dest="end", help="end time, exclusive (default: the last stored)")
    q.add_argument("--metric", default="bytes", choices=["bytes", "packets", "flows"],
                   help="what to rank and sum (default: %(default)s)")
    q.add_argument("--limit", type=positive, default=20, help="groups shown (default: %(default)s)")
    q.add_argument("--interval", default="5m", help="timeseries bucket: 60, 30s, 5m, 1h, 1d "
                   "(default: %(default)s)")
    q.add_argument("--az-price", type=price, default=0.01,
                   help="USD per GB across AZs (default: %(default)s)")
    q.add_argument("--region-price", type=price, default=0.02,
                   help="USD per GB across regions (default: %(default)s)")
    q.add_argument("--internet-price", type=price, default=0.09,
                   help="USD per GB out to the internet (default: %(default)s; 0 leaves it out)")
    q.add_argument("--nat-price", type=price, default=0.045,
                   help="USD per GB processed by a NAT gateway (default: %(default)s; 0 leaves "
                   "it out)")
    q.add_argument("--format", dest="output", choices=["table", "csv", "json"], default=None,
                   help="table (default: protocols by name, times in UTC with Z, bytes shortened), "
                        "csv (RFC 4180, whole numbers) or json (JSON lines, typed values)")
    q.add_argument("--json", action="store_true", help="JSON lines (the same as --format json)")
    q.add_argument("--backend", choices=["duckdb", "druid", "iceberg"], default="duckdb",
                   help="where to query: the DuckDB store (--db), Druid SQL (--druid-*) or the "
                   "Iceberg ledger ([sink.iceberg] of --config) (default: %(default)s)")
    add_druid_args(q)
    add_server_args(q)
    q.set_defaults(func=cmd_query)


def _dimensions(text: str) -> tuple[str, ...]:
    by = tuple(b.strip() for b in text.split(",") if b.strip())
    for d in by:
        if by.count(d) > 1:
            raise ConfigError("by", f"{d} is listed twice")
    return by


def cmd_query(args: argparse.Namespace) -> int:
    from dredge.query import render
    from dredge.query.spec import Filter, QuerySpec, parse_duration, parse_time

    default_by = {"top": "src_app,dst_app", "timeseries": "", "cross-az": "src_app,dst_app"}[args.kind]
    by = _dimensions(args.by if args.by is not None else default_by)
    if not by and args.kind != "timeseries":
        raise ConfigError("by", f"{args.kind} needs at least one dimension (e.g. src_app)")
    spec = QuerySpec(
        kind=args.kind, by=by, filters=tuple(Filter.parse(w) for w in args.where),
        start=parse_time(args.start, "--from") if args.start else None,
        end=parse_time(args.end, "--to") if args.end else None,
        metric=args.metric, limit=args.limit, interval_s=parse_duration(args.interval, "--interval"),
        az_price=args.az_price, region_price=args.region_price,
        internet_price=args.internet_price, nat_price=args.nat_price,
    )
    if args.server:
        from urllib.parse import urlsplit

        from dredge.serve.client import query_server

        try:
            url = urlsplit(args.server)
            url.port  # noqa: B018 (parses the port: a bad one raises)
        except ValueError as exc:
            raise ConfigError("--server", f"not a URL: {args.server!r} ({exc})") from None
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError("--server", f"an http:// or https:// URL, not {args.server!r}")

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
        existing_store(args.db)
        from dredge.query.store import query_file

        table = query_file(args.db, *spec.sql())
    if args.json and args.output not in (None, "json"):
        raise ConfigError("format", f"--json and --format {args.output} ask for two formats")
    output = "json" if args.json else args.output or "table"
    if output == "json":
        sys.stdout.buffer.write(render.json_lines(table))
    elif output == "csv":
        sys.stdout.buffer.write(render.csv_text(table).encode())  # CRLF as written
    else:
        print(render.table_text(table))
    return 0
