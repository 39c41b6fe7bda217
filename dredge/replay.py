"""`dredge replay`: flow-log files -> enriched, rolled-up rows in the store, once per file.

Each file is hashed first; a file already in the store's ``ingested`` table is skipped,
unless ``force``: then it is read again and its earlier rows are replaced by the new ones in
the commit that stores them (``IngestRecord.replace``). Its rows and its ``ingested`` record
are committed together, so a replay killed midway and run again ends with the same totals as
one clean run.

Files run on ``workers`` threads (the kernels, gunzip, Parquet and DuckDB release the GIL),
the largest first; one writer thread commits (:class:`_Writer`), so the workers never wait
for the store. A file whose rows roll up to more than ``part_rows`` is written in parts as
it is read, each part committed (memory stays bounded by the part, not the file) but hidden
from ``flows`` until the file's ``ingested`` record is (:meth:`DuckDBSink.store_part`).

A file whose every record was dead-lettered is still recorded (its dead letters name it);
it is counted in ``ReplaySummary.emptied`` with a warning that says how to re-ingest it once
the format is fixed.

The kernels are C, compiled at install: nothing is compiled when a replay starts.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from dredge.cores import usable_cores
from dredge.enrich.rollup import Rolled
from dredge.errors import ConfigError, SourceError
from dredge.flowlog.columns import RecordCounts
from dredge.flowlog.fields import DEFAULT_FORMAT, FlowFormat
from dredge.flowlog.ports import EPHEMERAL_FROM, check_ephemeral_from
from dredge.pipeline import (
    FileResult,
    IndexLoadFailed,
    Snapshot,
    count_records,
    process_file,
    resolved,
    window_ok,
)
from dredge.sinks.base import FileSink, IngestRecord
from dredge.sinks.deadletter import DeadLetters
from dredge.sources.files import FileRef, discover, file_digest, sniff
from dredge.telemetry.logging import get_logger
from dredge.telemetry.metrics import counter
from dredge.telemetry.progress import Progress

__all__ = ["STORE_MEMORY_LIMIT", "Progress", "ReplayConfig", "ReplaySummary", "default_read_ahead",
           "default_workers", "replay"]

log = get_logger(__name__)

files_total = counter("dredge_replay_files_total",
                      "Files handled by replay, by outcome (stored, already_ingested, truncated, failed, "
                      "replaced, dead_lettered).",
                      ["outcome"])


# DuckDB's buffer pool for the store `dredge replay` writes: by default DuckDB keeps the pages
# it wrote up to 80 % of the machine's memory, so the process would grow with the data stored
# (measured, peak RSS of 20M flows against 2M: 256MB 1.31x, 128MB 1.20-1.24x, 64MB about the
# same but 10 % more CPU, DuckDB evicting pages it still needs; the rest is Parquet's).
STORE_MEMORY_LIMIT = "128MB"


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
    # (each commit costs more than its sync: 15 more commits of ~100k rows each cost 0.8 CPU s
    # of the 2M-flow replay of 170 files, measured; so no commit when the writer would idle)
    # a file rolled up to this many rows is written in parts (DuckDBSink.store_part), so
    # memory does not grow with the file; 0: whole files
    part_rows: int = 250_000
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
        if self.part_rows < 0:
            raise ConfigError("part_rows", "must be >= 0 (0: whole files)")

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


def replay(paths: list[str], snapshot: Snapshot, sink: FileSink, dead: DeadLetters,
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
    earlier: set[str] = set()  # with force: hashes ingested before this run
    staging = config.part_rows > 0 and callable(getattr(sink, "store_part", None))
    stages = itertools.count(1)

    def store(batch: list[_Done]) -> None:
        if bar is not None:
            bar.clear()
        _store(sink, batch, summary, earlier if config.force else None, lock)

    writer = _Writer(sink, store, config, depth=2 * config.workers)

    def work(ref: FileRef) -> _Done:
        done = _Done(ref)
        try:
            done.digest = file_digest(ref)
            if sink.is_ingested(done.digest):
                if not config.force:
                    return done
                with lock:
                    earlier.add(done.digest)

            def emit(rows: Rolled) -> None:  # a large file's rows so far: committed apart
                done.stage = done.stage or next(stages)
                done.staged += rows.num_rows
                writer.put(_Part(rows, done.stage))

            part = (config.part_rows, emit) if staging else None
            done.result = process_file(ref, sniff(ref), snapshot, config.window_s, fmt, dead,
                                       config.chunk_bytes, config.read_ahead, config.ephemeral_from,
                                       part)
        except SourceError as exc:
            done.result = FileResult(ref, "unknown", error=str(exc))
        return done

    # in parallel, the largest files first: a large one left for last would run alone
    order = sorted(refs, key=lambda r: -r.size) if config.workers > 1 else refs
    files = processed = 0  # files handled, flows parsed (stored or waiting for their commit)
    try:
        for done in _ordered_map(work, order, config.workers):
            files += 1
            ref, result = done.ref, done.result
            if result is None:
                with lock:
                    summary.already += 1
                files_total.labels("already_ingested").inc()
            elif result.error is not None or result.rows is None or done.digest is None:
                if done.stage:
                    writer.put(_Part(None, done.stage))
                with lock:
                    summary.failed += 1
                    summary.failures.append(f"{ref.path}: {result.error}")
                files_total.labels("failed").inc()
                if bar is not None:
                    bar.clear()
                log.warning("file_failed", file=ref.path, error=result.error)
                dead.write([{"file": ref.path, "line": None, "reason": "unreadable_file",
                             "field": None, "text": result.error}])
            else:
                processed += result.counts.data
                writer.put(done)
            if bar is not None:
                bar.update(files, processed)
        resolved(snapshot)  # a failed index load is an error even when no file needed it
    except IndexLoadFailed as exc:
        raise exc.error from None
    finally:
        writer.close()
    if bar is not None:
        bar.update(files, processed, force=True)
        bar.close()
    summary.seconds = time.perf_counter() - t0
    summary.cpu_seconds = time.process_time() - c0
    return summary


@dataclass
class _Done:
    """One file handled by a worker: its hash, result, and the stage of its committed parts."""

    ref: FileRef
    digest: str | None = None
    result: FileResult | None = None  # None: ingested before, skipped
    stage: int = 0  # > 0: parts of the file's rows wait in the store, not yet committed
    staged: int = 0  # rows in those parts

    @property
    def rows(self) -> int:
        return self.staged + (self.result.rows.num_rows if self.result and self.result.rows else 0)


@dataclass
class _Part:
    """Part of a large file's rows for the store; ``rows`` None: drop the stage."""

    rows: Rolled | None
    stage: int


class _Writer:
    """Commits on a thread of its own, so the workers never wait for the store: parts of
    large files as they come, finished files together (a commit costs a sync to disk) once
    ``commit_rows`` rows or ``commit_files`` files wait or ``commit_seconds`` have passed,
    and what is left at the end. A full queue (``depth``) holds the workers back; the
    first error stops the writing and is raised to the caller of :meth:`put` or :meth:`close`."""

    def __init__(self, sink: FileSink, store: Callable[[list[_Done]], None], config: ReplayConfig,
                 depth: int) -> None:
        self.sink, self.store, self.config = sink, store, config
        self.queue: queue.Queue[_Done | _Part | None] = queue.Queue(max(depth, 1))
        self.error: BaseException | None = None
        self.closed = threading.Event()  # after close, what workers still put is dropped
        self.thread = threading.Thread(target=self._run, name="replay-writer", daemon=True)
        self.thread.start()

    def put(self, item: _Done | _Part) -> None:
        while not self.closed.is_set():
            if self.error is not None:
                raise self.error
            with contextlib.suppress(queue.Full):
                self.queue.put(item, timeout=0.1)
                return

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self.closed.set()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        pending: list[_Done] = []
        last = time.perf_counter()
        c = self.config
        while True:
            wait = max(0.0, c.commit_seconds - (time.perf_counter() - last)) if pending else None
            try:
                item = self.queue.get(timeout=wait)
            except queue.Empty:
                item = _Part(None, 0)  # nothing came: time to commit what waits
            if self.error is not None:  # failed: keep taking, so that no put blocks forever
                if item is None:
                    return
                continue
            try:
                if isinstance(item, _Part):
                    if item.rows is not None:
                        self.sink.store_part(item.rows, item.stage)  # type: ignore[attr-defined]
                    elif item.stage:
                        self.sink.drop_part(item.stage)  # type: ignore[attr-defined]
                elif item is not None:
                    pending.append(item)
                if pending and (item is None or len(pending) >= c.commit_files
                                or sum(d.rows for d in pending) >= c.commit_rows
                                or time.perf_counter() - last >= c.commit_seconds):
                    self.store(pending)
                    pending = []
                    last = time.perf_counter()
            except BaseException as exc:  # raised to the replay's thread
                self.error = exc
            if item is None:
                return


def default_read_ahead(workers: int) -> int:
    """Text chunks inflated ahead of the parse when not told: 2 while the workers leave a core
    idle, else 0 (with a worker per core it only adds thread switches: measured slower)."""
    return 2 if workers < default_workers() else 0


def default_workers() -> int:
    """Files at once when not told: one per core this process may run on (``taskset`` and
    container CPU sets included), at most 8."""
    return min(usable_cores(), 8)


def _store(sink: FileSink, batch: list[_Done], summary: ReplaySummary, earlier: set[str] | None,
           lock: threading.Lock) -> None:
    """Commit finished files together; count only what the sink stored. ``earlier``
    (``force``): hashes stored before, whose rows the sink replaces."""
    files = []
    for d in batch:
        assert d.result is not None and d.result.rows is not None and d.digest is not None
        c = d.result.counts
        files.append((d.result.rows, IngestRecord(d.digest, d.ref.path, d.ref.size, c.records,
                                                  c.nodata, c.skipdata, c.malformed,
                                                  d.result.truncated, d.rows, d.result.seconds,
                                                  replace=earlier is not None and d.digest in earlier)))
    if any(d.stage for d in batch):
        stored = sink.store_files(files, [d.stage or None for d in batch])  # type: ignore[call-arg]
    else:
        stored = sink.store_files(files)
    with lock:
        for d, ok in zip(batch, stored, strict=True):
            _count(d, ok, summary, earlier)


def _count(d: _Done, ok: bool, summary: ReplaySummary, earlier: set[str] | None) -> None:
    if not ok:
        summary.already += 1
        files_total.labels("already_ingested").inc()
        return
    assert d.result is not None
    ref, result, c = d.ref, d.result, d.result.counts
    summary.stored += 1
    if earlier is not None and d.digest in earlier:
        summary.replaced += 1
        files_total.labels("replaced").inc()
    summary.rows += d.rows
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


def _ordered_map(fn: Callable[[FileRef], _Done], refs: list[FileRef], workers: int
                 ) -> Iterator[_Done]:
    """fn over refs with up to ``workers`` threads, results in input order, bounded in flight."""
    if workers <= 1:
        for ref in refs:
            yield fn(ref)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="replay") as pool:
        pending: list[Future[_Done]] = []
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
