"""The command line: ``dredge run | replay | query | parse | generate | index | druid``.

Bad input never ends in a traceback: a DredgeError prints one clear line and exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from dredge import __version__
from dredge.app import add_run_command
from dredge.dashboards.command import add_dashboards_command
from dredge.druid_cli import add_druid_args, add_druid_command
from dredge.errors import ConfigError, DredgeError
from dredge.index.commands import add_index_args, add_index_command, load_snapshot
from dredge.telemetry.logging import configure, get_logger

log = get_logger("dredge.cli")


def cmd_replay(args: argparse.Namespace) -> int:
    from dredge.replay import Progress, ReplayConfig, replay
    from dredge.sinks.deadletter import DeadLetters
    from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

    config = ReplayConfig(window_s=args.window, workers=args.workers, format=args.format or "",
                          commit_files=args.commit_files)
    config.validate()
    config.default_format()  # a bad --format fails before any work
    snap = load_snapshot(args)
    dl_path = Path(args.dead_letter) if args.dead_letter else Path(args.db).with_suffix(".deadletter.jsonl")
    dead = DeadLetters(dl_path)
    druid: dict[str, Any] | None = None
    try:
        with DuckDBSink(DuckDBConfig(path=args.db)) as sink:
            bar = None if args.no_progress else (lambda n: Progress(n))
            if args.sink == "druid":
                from dredge.druid_cli import replay_into_druid

                summary, druid = replay_into_druid(
                    args, sink, lambda target: replay(args.paths, snap, target, dead, config, bar))
            else:
                summary = replay(args.paths, snap, sink, dead, config, bar)
    finally:
        dead.close()
    out = summary.as_dict()
    out["dead_letter_file"] = str(dl_path) if dead.count else None
    if druid is not None:
        out["druid"] = druid
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        lookups = summary.lookups or 1
        print(f"files        {summary.files} ({summary.stored} stored, {summary.already} already ingested, "
              f"{summary.failed} failed, {summary.truncated} truncated)")
        print(f"records      {summary.counts.records:,} ({summary.counts.data:,} flows, "
              f"{summary.counts.nodata:,} NODATA, {summary.counts.skipdata:,} SKIPDATA)")
        print(f"malformed    {summary.counts.malformed:,}"
              + (f" -> {dl_path}" if dead.count else ""))
        print(f"unknown IPs  {summary.unknown / lookups:.1%} private unowned, "
              f"{summary.internet / lookups:.1%} internet")
        print(f"rows stored  {summary.rows:,}")
        print(f"speed        {summary.flows_per_s:,.0f} flows/s ({summary.seconds:.2f} s)")
        for w in summary.warnings:
            print(f"warning      {w}")
        for f in summary.failures:
            print(f"failed       {f}")
        if druid is not None:
            from dredge.druid_cli import druid_replay_lines

            print("\n".join(druid_replay_lines(druid)))
    return 1 if summary.failed or (druid is not None and druid.get("error")) else 0


def cmd_query(args: argparse.Namespace) -> int:
    from dredge.query import render
    from dredge.query.spec import Filter, QuerySpec, parse_duration, parse_time
    from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

    default_by = {"top": "src_app,dst_app", "timeseries": "", "cross-az": "src_app,dst_app"}[args.kind]
    by = tuple(b.strip() for b in (args.by if args.by is not None else default_by).split(",") if b.strip())
    spec = QuerySpec(
        kind=args.kind, by=by, filters=tuple(Filter.parse(w) for w in args.where),
        start=parse_time(args.start) if args.start else None,
        end=parse_time(args.end) if args.end else None,
        metric=args.metric, limit=args.limit, interval_s=parse_duration(args.interval),
        az_price=args.az_price, region_price=args.region_price,
    )
    if args.backend == "druid":
        from dredge.druid_cli import druid_config
        from dredge.query.druid import run

        table = run(spec, druid_config(args))
    else:
        if not Path(args.db).exists():
            raise ConfigError("db", f"no database at {args.db} (run `dredge replay` first)")
        sql, params = spec.sql()
        with DuckDBSink(DuckDBConfig(path=args.db)) as sink:
            table = sink.query(sql, params)
    if args.json:
        sys.stdout.buffer.write(render.json_lines(table))
    else:
        print(render.table_text(table))
    return 0


def cmd_parse(args: argparse.Namespace) -> int:
    from dredge.flowlog.fields import DEFAULT_FORMAT, FlowFormat, looks_like_header
    from dredge.flowlog.parser import FlowParser
    from dredge.pipeline import dead_letters_of
    from dredge.sources.files import FileRef, ReadState, sniff, text_chunks

    fixed = FlowFormat.parse(args.format) if args.format else None
    out = sys.stdout.buffer
    bad = 0

    def emit(data: bytes, origin: str, fmt: FlowFormat | None, line_base: int) -> tuple[FlowFormat, int]:
        nonlocal bad
        if fmt is None:
            nl = data.find(b"\n")
            first = data[: nl if nl >= 0 else len(data)]
            if fixed is None and looks_like_header(first):
                fmt = FlowFormat.parse(first.decode("utf-8", "replace"))
                data = data[nl + 1:] if nl >= 0 else b""
                line_base += 1
            else:
                fmt = fixed or DEFAULT_FORMAT
        chunk = FlowParser(fmt, keep_text=True).parse(data)
        table = chunk.to_arrow()
        good = chunk.status == 0
        for row, ok in zip(table.to_pylist(), good, strict=True):
            if ok:
                out.write(orjson.dumps(row) + b"\n")
        for d in dead_letters_of(chunk, {"file": origin}, line_base):
            bad += 1
            sys.stderr.write(f"malformed: {d['file']}:{d['line']}: {d['reason']}"
                             f"{' (' + d['field'] + ')' if d['field'] else ''}: {d['text']}\n")
        return fmt, line_base + data.count(b"\n")

    if args.files:
        for f in args.files:
            ref = FileRef(f, os.path.getsize(f) if not f.startswith("s3://") else 0)
            state = ReadState()
            fmt, base = None, 0
            for chunk in text_chunks(ref, sniff(ref), state, 4 << 20):
                fmt, base = emit(chunk, f, fmt, base)
            if state.truncated:
                sys.stderr.write(f"warning: {f}: {state.error}\n")
    else:
        data = sys.stdin.buffer.read()
        emit(data, "<stdin>", None, 0)
    return 1 if bad else 0


def cmd_generate(args: argparse.Namespace) -> int:
    from dredge.generate import generate
    from dredge.query.spec import parse_time

    kwargs: dict[str, Any] = {"flows": args.flows, "seed": args.seed}
    if args.start:
        kwargs["start"] = parse_time(args.start)
    if args.hours is not None:
        kwargs["hours"] = args.hours
    summary = generate(Path(args.out), **kwargs)
    sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dredge", description="VPC flow logs, enriched with who owned each IP.")
    p.add_argument("--version", action="version", version=f"dredge {__version__}")
    p.add_argument("--log-level", default=os.environ.get("DREDGE_LOG_LEVEL", "info"))
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("replay", help="replay flow-log files (local or s3://) into the store")
    r.add_argument("paths", nargs="+", help="files, folders (recursive) or s3://bucket/prefix")
    add_index_args(r)
    r.add_argument("--db", default="dredge.duckdb", help="DuckDB database file (default: %(default)s)")
    r.add_argument("--window", type=int, default=60, help="rollup window in seconds (default: 60)")
    r.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="files processed at once (default: %(default)s)")
    r.add_argument("--format", help="format of files without a header line (default: v2)")
    r.add_argument("--dead-letter", help="dead-letter file (default: <db>.deadletter.jsonl)")
    r.add_argument("--commit-files", type=int, default=256,
                   help="commit at most this many files per transaction (default: %(default)s)")
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--sink", choices=["duckdb", "druid"], default="duckdb",
                   help="druid: also rebuild the touched hours in Druid from the store (docs/druid.md)")
    add_druid_args(r, staging=True)
    r.set_defaults(func=cmd_replay)

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
    q.add_argument("--json", action="store_true", help="JSON lines")
    q.add_argument("--backend", choices=["duckdb", "druid"], default="duckdb",
                   help="where to query: the DuckDB store (--db) or Druid SQL (--druid-*)")
    add_druid_args(q)
    q.set_defaults(func=cmd_query)

    pa_ = sub.add_parser("parse", help="flow-log lines -> JSON lines (stdin or files)")
    pa_.add_argument("files", nargs="*")
    pa_.add_argument("--format", help="field names or ${field} syntax; default: header line, else v2")
    pa_.set_defaults(func=cmd_parse)

    g = sub.add_parser("generate", help="write realistic sample flow logs, ownership history and CIDR map")
    g.add_argument("out")
    g.add_argument("--flows", type=int, default=1_000_000)
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--start", help="first hour (default 2026-11-25T00:00Z)")
    g.add_argument("--hours", type=float)
    g.set_defaults(func=cmd_generate)

    add_index_command(sub)
    add_run_command(sub)
    add_druid_command(sub)
    add_dashboards_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure(args.log_level)
    try:
        rc: int = args.func(args)
        return rc
    except DredgeError as exc:
        sys.stderr.write(f"dredge: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("dredge: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
