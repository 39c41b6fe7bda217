"""`dredge replay`: flow-log files -> enriched, rolled-up rows in the store, once per file.

Each file is hashed first; a file already in the store's ``ingested`` table is skipped,
unless ``force``: then it is read again and its earlier rows are replaced by the new ones in
the commit that stores them (``IngestRecord.replace``). Its rows and its ``ingested`` record
are committed together, so a replay killed midway and run again ends with the same totals as
one clean run.

A file whose every record was dead-lettered is still recorded (its dead letters name it);
it is counted in ``ReplaySummary.emptied`` with a warning that says how to re-ingest it once
the format is fixed.

:func:`warm_up` compiles every kernel a replay runs (numba keeps them on disk), so that the
first real replay after an install runs at full speed; ``make install`` calls it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dredge.errors import ConfigError, SourceError
from dredge.flowlog.columns import RecordCounts
from dredge.flowlog.fields import DEFAULT_FORMAT, FlowFormat
from dredge.flowlog.ports import EPHEMERAL_FROM, check_ephemeral_from
from dredge.index.snapshot import IndexSnapshot
from dredge.pipeline import FileResult, count_records, process_file, window_ok
from dredge.sinks.base import FileSink, IngestRecord
from dredge.sinks.deadletter import DeadLetters
from dredge.sources.files import FileRef, discover, file_digest, sniff
from dredge.telemetry.logging import get_logger
from dredge.telemetry.metrics import counter

log = get_logger(__name__)

files_total = counter("dredge_replay_files_total",
                      "Files handled by replay, by outcome (stored, already_ingested, truncated, failed, "
                      "replaced, dead_lettered).",
                      ["outcome"])


@dataclass(frozen=True)
class ReplayConfig:
    window_s: int = 60
    ephemeral_from: int = EPHEMERAL_FROM  # service ports from here on count as 0 (flowlog.ports)
    workers: int = 1  # files processed at once (threads; the kernels release the GIL)
    chunk_bytes: int = 16 << 20  # decompressed text per parse batch
    read_ahead: int = 2  # chunks a thread inflates ahead of the parse, per file (0: none)
    commit_rows: int = 500_000  # commit when this many rolled-up rows wait...
    commit_files: int = 256  # ...or this many files...
    commit_seconds: float = 5.0  # ...or this long has passed since the last commit
    format: str = ""  # used for files without a header line; default: the v2 format
    force: bool = False  # read files already ingested again, replacing their earlier rows

    def validate(self) -> None:
        if not window_ok(self.window_s):
            raise ConfigError("window", "must be a positive number of seconds dividing a day, or whole minutes")
        why = check_ephemeral_from(self.ephemeral_from)
        if why:
            raise ConfigError("ephemeral-from", why)
        if self.workers < 1:
            raise ConfigError("workers", "must be >= 1")
        if self.chunk_bytes < 4096:
            raise ConfigError("chunk_bytes", "must be >= 4096")
        if self.read_ahead < 0:
            raise ConfigError("read_ahead", "must be >= 0")

    def default_format(self) -> FlowFormat:
        return FlowFormat.parse(self.format) if self.format else DEFAULT_FORMAT


@dataclass
class ReplaySummary:
    """What one replay did: files by outcome, records, lookups, rows stored, time."""

    files: int = 0  # found under the paths
    stored: int = 0  # committed by this run
    already: int = 0  # ingested before (same content hash): skipped
    failed: int = 0  # unreadable: nothing stored, see ``failures``
    truncated: int = 0  # stored up to the damage, see ``warnings``
    replaced: int = 0  # ingested before, stored again with --force (earlier rows replaced)
    counts: RecordCounts = field(default_factory=RecordCounts)
    lookups: int = 0
    unknown: int = 0
    internet: int = 0
    rows: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    emptied: list[str] = field(default_factory=list)  # every record dead-lettered: warnings

    @property
    def flows_per_s(self) -> float:
        return self.counts.data / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files, "stored": self.stored, "already_ingested": self.already,
            "failed": self.failed, "truncated": self.truncated, "replaced": self.replaced,
            "dead_lettered_files": len(self.emptied),
            "records": self.counts.records, "flows": self.counts.data, "nodata": self.counts.nodata,
            "skipdata": self.counts.skipdata, "malformed": self.counts.malformed,
            "rows": self.rows, "lookups": self.lookups,
            "unknown_share": self.unknown / self.lookups if self.lookups else 0.0,
            "internet_share": self.internet / self.lookups if self.lookups else 0.0,
            "seconds": round(self.seconds, 3), "flows_per_s": round(self.flows_per_s),
            "failures": self.failures, "warnings": self.warnings,
            "dead_lettered_warnings": self.emptied,
        }


class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, enabled: bool | None = None) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.t0 = time.perf_counter()
        self._last = 0.0

    def update(self, done: int, flows: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        width = 30
        filled = int(width * done / self.total) if self.total else width
        rate = flows / (now - self.t0) if now > self.t0 else 0.0
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} files  "
                         f"{flows:,} flows  {rate:,.0f} flows/s ")
        sys.stderr.flush()

    def clear(self) -> None:
        """Blank the bar's line so a log line can be written there."""
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._last = 0.0

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def replay(paths: list[str], snapshot: IndexSnapshot, sink: FileSink, dead: DeadLetters,
           config: ReplayConfig, progress: Progress | Callable[[int], Progress] | None = None
           ) -> ReplaySummary:
    config.validate()
    t0, c0 = time.perf_counter(), time.process_time()
    refs, passed_over = discover(paths)
    summary = ReplaySummary(files=len(refs))
    for p in passed_over:
        log.debug("file_passed_over", reason=p)
    bar = progress(len(refs)) if callable(progress) else progress
    fmt = config.default_format()
    lock = threading.Lock()
    done = 0
    pending: list[tuple[FileRef, str, FileResult]] = []
    last_commit = time.perf_counter()
    processed = 0  # flows parsed so far (stored or waiting for their commit)
    earlier: set[str] = set()  # with force: hashes ingested before this run

    def commit() -> None:
        nonlocal last_commit
        if pending:
            if bar is not None:
                bar.clear()
            _store(sink, pending, summary, earlier if config.force else None)
            pending.clear()
        last_commit = time.perf_counter()

    def work(ref: FileRef) -> tuple[FileRef, str | None, FileResult | None]:
        try:
            digest = file_digest(ref)
            if sink.is_ingested(digest):
                if not config.force:
                    return ref, digest, None
                with lock:
                    earlier.add(digest)
            return ref, digest, process_file(ref, sniff(ref), snapshot, config.window_s, fmt, dead,
                                             config.chunk_bytes, config.read_ahead,
                                             config.ephemeral_from)
        except SourceError as exc:
            return ref, None, FileResult(ref, "unknown", error=str(exc))

    # in parallel, the largest files first: a large one left for last would run alone
    order = sorted(refs, key=lambda r: -r.size) if config.workers > 1 else refs
    for ref, digest, result in _ordered_map(work, order, config.workers):
        with lock:
            done += 1
        if result is None:
            summary.already += 1
            files_total.labels("already_ingested").inc()
        elif result.error is not None or result.rows is None or digest is None:
            summary.failed += 1
            summary.failures.append(f"{ref.path}: {result.error}")
            files_total.labels("failed").inc()
            if bar is not None:
                bar.clear()
            log.warning("file_failed", file=ref.path, error=result.error)
            dead.write([{"file": ref.path, "line": None, "reason": "unreadable_file", "field": None,
                         "text": result.error}])
        else:
            processed += result.counts.data
            pending.append((ref, digest, result))
            waiting = sum(r.rows.num_rows for _, _, r in pending if r.rows is not None)
            if (waiting >= config.commit_rows or len(pending) >= config.commit_files
                    or time.perf_counter() - last_commit >= config.commit_seconds):
                commit()
        if bar is not None:
            bar.update(done, processed)
    commit()
    if bar is not None:
        bar.update(done, processed, force=True)
        bar.close()
    summary.seconds = time.perf_counter() - t0
    summary.cpu_seconds = time.process_time() - c0
    return summary


def default_workers() -> int:
    """Files at once when not told: one per core this process may run on (``taskset`` and
    container CPU sets included), at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def _store(sink: FileSink, pending: list[tuple[FileRef, str, FileResult]], summary: ReplaySummary,
           earlier: set[str] | None) -> None:
    """Commit finished files together; count only what the sink stored. ``earlier``
    (``force``): hashes stored before, whose rows the sink replaces."""
    batch = []
    for ref, digest, result in pending:
        assert result.rows is not None
        c = result.counts
        batch.append((result.rows, IngestRecord(digest, ref.path, ref.size, c.records, c.nodata,
                                                 c.skipdata, c.malformed, result.truncated,
                                                 result.rows.num_rows, result.seconds,
                                                 replace=earlier is not None and digest in earlier)))
    stored = sink.store_files(batch)
    for (ref, digest, result), ok in zip(pending, stored, strict=True):
        if not ok:
            summary.already += 1
            files_total.labels("already_ingested").inc()
            continue
        assert result.rows is not None
        c = result.counts
        summary.stored += 1
        if earlier is not None and digest in earlier:
            summary.replaced += 1
            files_total.labels("replaced").inc()
        summary.rows += result.rows.num_rows
        summary.counts.add(c)
        summary.lookups += result.join.lookups
        summary.unknown += result.join.unknown
        summary.internet += result.join.internet
        count_records("replay", c)
        if result.truncated:
            summary.truncated += 1
            summary.warnings.append(f"{ref.path}: {result.warning}")
            files_total.labels("truncated").inc()
            log.warning("file_truncated", file=ref.path, error=result.warning, records=c.records)
        if c.malformed and not c.records:
            summary.emptied.append(_emptied_warning(ref.path, c.malformed))
            files_total.labels("dead_lettered").inc()
        files_total.labels("stored").inc()


def _emptied_warning(path: str, malformed: int) -> str:
    return (f"{path}: all {malformed:,} record(s) were dead-lettered, none stored; the file is "
            "recorded as ingested, so after fixing its format (a header line, or --format) "
            "re-ingest it with `dredge replay --force`")


def _ordered_map(fn: Callable[[FileRef], tuple[FileRef, str | None, FileResult | None]],
                 refs: list[FileRef], workers: int
                 ) -> Iterator[tuple[FileRef, str | None, FileResult | None]]:
    """fn over refs with up to ``workers`` threads, results in input order, bounded in flight."""
    if workers <= 1:
        for ref in refs:
            yield fn(ref)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="replay") as pool:
        pending: list[Future[tuple[FileRef, str | None, FileResult | None]]] = []
        it = iter(refs)
        for ref in it:
            pending.append(pool.submit(fn, ref))
            if len(pending) >= workers * 2:
                break
        while pending:
            result = pending.pop(0).result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(fn, nxt))
            yield result


def warm_up(flows: int = 3000) -> ReplaySummary:
    """Replay a tiny generated sample (v2 and v5 gzip text, Parquet, IPv6, malformed lines,
    a truncated file) into an in-memory store: every kernel on replay's path is compiled
    with the argument types the real path passes, and numba's on-disk cache
    (``cache=True``) keeps them for every later process."""
    from dredge.generate import generate
    from dredge.index.loaders import load_index
    from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

    with tempfile.TemporaryDirectory(prefix="dredge-warm-up-") as tmp:
        folder = Path(tmp)
        generate(folder, flows=flows, seed=1, hours=1.0)
        snapshot, _ = load_index([folder / "owners.jsonl"], [folder / "networks.csv"])
        with DuckDBSink(DuckDBConfig(path=":memory:")) as sink:
            return replay([str(folder / "logs")], snapshot, sink, DeadLetters(None), ReplayConfig())
