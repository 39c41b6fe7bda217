"""``dredge replay PATH...``: flow-log files (local or s3://) into the DuckDB store, and with
``--sink druid`` the touched hours into Druid. The work is :func:`dredge.replay.replay`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from dredge.commands.druid import add_druid_args
from dredge.commands.index import add_index_args, load_snapshot


def add_parser(sub: Any) -> None:
    r = sub.add_parser("replay", help="replay flow-log files (local or s3://) into the store")
    r.add_argument("paths", nargs="+", help="files, folders (recursive) or s3://bucket/prefix")
    add_index_args(r)
    r.add_argument("--db", default="dredge.duckdb", help="DuckDB database file (default: %(default)s)")
    r.add_argument("--window", type=int, default=60, help="rollup window in seconds (default: 60)")
    r.add_argument("--workers", type=int, default=None,
                   help="files processed at once (default: one per core this process may use)")
    r.add_argument("--read-ahead", type=int, default=None, metavar="CHUNKS",
                   help="text chunks a thread inflates ahead of the parse, per file; 0: none "
                        "(default: 2 with more than one core, else 0)")
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


def cmd_replay(args: argparse.Namespace) -> int:
    from dredge.replay import Progress, ReplayConfig, default_workers, replay
    from dredge.sinks.deadletter import DeadLetters
    from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

    workers = default_workers() if args.workers is None else args.workers
    read_ahead = args.read_ahead if args.read_ahead is not None else (2 if default_workers() > 1 else 0)
    config = ReplayConfig(window_s=args.window, workers=workers, read_ahead=read_ahead,
                          format=args.format or "",
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
                from dredge.commands.druid import replay_into_druid

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
            from dredge.commands.druid import druid_replay_lines

            print("\n".join(druid_replay_lines(druid)))
    return 1 if summary.failed or (druid is not None and druid.get("error")) else 0
