"""``dredge replay PATH...``: flow-log files (local or s3://) into the DuckDB store, and with
``--sink druid`` the touched hours into Druid; ``--sink iceberg``: into the Iceberg ledger
table of ``--config``'s ``[sink.iceberg]`` instead of DuckDB. The work is
:func:`dredge.replay.replay`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from dredge.commands.druid import add_druid_args
from dredge.commands.index import add_index_args, load_snapshot_beside
from dredge.commands.options import int_in
from dredge.commands.stores import store_to_write
from dredge.errors import ConfigError
from dredge.settings import check_output_file


def add_parser(sub: Any) -> None:
    r = sub.add_parser("replay", help="replay flow-log files (local or s3://) into the store")
    r.add_argument("paths", nargs="+", help="files, folders (recursive) or s3://bucket/prefix")
    add_index_args(r)
    r.add_argument("--db", default="dredge.duckdb", help="DuckDB database file (default: %(default)s)")
    r.add_argument("--window", type=int_in(1, 86400), default=60,
                   help="rollup window in seconds (default: %(default)s)")
    r.add_argument("--ephemeral-from", type=int_in(1, 65535), default=32768, metavar="PORT",
                   help="a flow whose lower port is this or above has service port 0, "
                        "'ephemeral' (default: %(default)s, the Linux ephemeral range)")
    r.add_argument("--workers", type=int_in(1, 256), default=None,
                   help="files processed at once (default: one per core this process may use)")
    r.add_argument("--read-ahead", type=int_in(0, 64), default=None, metavar="CHUNKS",
                   help="text chunks a thread inflates ahead of the parse, per file; 0: none "
                        "(default: 2 when there are more cores than workers, else 0)")
    r.add_argument("--format", help="format of files without a header line (default: the v2 "
                   "default format)")
    r.add_argument("--dead-letter", help="dead-letter file (default: <db>.deadletter.jsonl)")
    r.add_argument("--commit-files", type=int_in(1, 1_000_000), default=256,
                   help="commit at most this many files per transaction (default: %(default)s)")
    r.add_argument("--force", action="store_true",
                   help="read files already ingested again, replacing their earlier rows "
                        "(e.g. after fixing --format for a file whose records were all dead-lettered)")
    r.add_argument("--json", action="store_true", help="print the summary as JSON (default: "
                   "a table)")
    r.add_argument("--no-progress", action="store_true",
                   help="no progress bar (default: one on a terminal)")
    r.add_argument("--sink", choices=["duckdb", "druid", "iceberg"], default="duckdb",
                   help="druid: also rebuild the touched hours in Druid from the store "
                   "(docs/druid.md); iceberg: into --config's [sink.iceberg] table instead of "
                   "DuckDB, each file once (default: %(default)s)")
    add_druid_args(r, staging=True)
    r.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    from dredge.malloc import keep_freed_memory
    from dredge.replay import Progress, ReplayConfig, default_read_ahead, default_workers, replay
    from dredge.sinks.deadletter import DeadLetters

    keep_freed_memory()  # a batch job: fewer page faults for a little more peak RSS
    workers = default_workers() if args.workers is None else args.workers
    read_ahead = args.read_ahead if args.read_ahead is not None else default_read_ahead(workers)
    config = ReplayConfig(window_s=args.window, workers=workers, read_ahead=read_ahead,
                          ephemeral_from=args.ephemeral_from,
                          format=args.format or "", commit_files=args.commit_files,
                          force=args.force)
    config.validate()
    config.default_format()  # a bad --format fails before any work
    store_to_write(args.db)
    dl_path = Path(args.dead_letter) if args.dead_letter else Path(args.db).with_suffix(".deadletter.jsonl")
    check_output_file("--dead-letter", dl_path)
    snap = load_snapshot_beside(args)
    dead = DeadLetters(dl_path)
    druid: dict[str, Any] | None = None
    try:
        if config.force and args.sink == "iceberg":
            raise ConfigError("--force", "--force is for the DuckDB store; the Iceberg table keeps "
                              "each file once and has no per-file replace")
        with open_sink(args) as sink:
            if args.sink != "iceberg":
                sink.claim_window(config.window_s, "window")
                sink.claim_ephemeral_from(config.ephemeral_from, "ephemeral-from")
                if config.force:
                    sink.require_replaceable()
            bar = None if args.no_progress else (lambda n: Progress(n))
            if args.sink == "druid":
                from dredge.commands.druid import replay_into_druid

                summary, druid = replay_into_druid(
                    args, sink, lambda target: replay(args.paths, snap, target, dead, config, bar))
            else:
                summary = replay(args.paths, snap, sink, dead, config, bar)
    finally:
        dead.close()
    for w in summary.emptied:
        sys.stderr.write(f"dredge: warning: {w}\n")
    out = summary.as_dict()
    out["dead_letter_file"] = str(dl_path) if dead.count else None
    if druid is not None:
        out["druid"] = druid
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        lookups = summary.lookups or 1
        print(f"files        {summary.files} ({summary.stored} stored, {summary.already} already ingested, "
              f"{summary.failed} failed, {summary.truncated} truncated"
              + (f", {summary.replaced} replaced" if config.force else "")
              + (f", {len(summary.emptied)} all dead-lettered" if summary.emptied else "") + ")")
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


def open_sink(args: argparse.Namespace) -> Any:
    """The DuckDB store (``--db``), or with ``--sink iceberg`` the ledger table of
    ``--config``'s [sink.iceberg] (ConfigError, exit 2, without one)."""
    if args.sink != "iceberg":
        from dredge.replay import STORE_MEMORY_LIMIT
        from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

        # druid: its queries need more; in memory: the data itself lives in the buffer pool
        limit = STORE_MEMORY_LIMIT if args.sink == "duckdb" and args.db != ":memory:" else ""
        # batch: commits' row groups left unmerged, inserts on all threads (DuckDBSink)
        return DuckDBSink(DuckDBConfig(path=args.db, memory_limit=limit), batch=True)
    from dredge.config import load_config
    from dredge.sinks.iceberg.files import IcebergFileSink

    if not args.druid_config_file:
        raise ConfigError("--config", "--sink iceberg needs a dredge TOML file with [sink.iceberg]")
    ice = load_config(args.druid_config_file).sink.iceberg
    if ice is None:
        raise ConfigError("sink.iceberg", f"{args.druid_config_file} has no [sink.iceberg] section")
    return IcebergFileSink(ice)
