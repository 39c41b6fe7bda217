"""The hot path shared by replay and the stream daemon: parse -> enrich -> roll up, in columns.

- :class:`Enricher`: enrich and roll up column batches against one index snapshot; the
  stream daemon keeps one per shard and snapshot (:mod:`dredge.batcher.batches`).
- :func:`process_file`: one file (text or Parquet) through it, for replay
  (:mod:`dredge.replay`); :func:`dead_letters_of` for its malformed lines (and ``dredge parse``).
- :class:`PipelineConfig`: the stream daemon's pipeline settings (``[pipeline]``), and the
  rollup window's rule (:func:`window_ok`) replay checks too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from dredge.enrich.join import enrich
from dredge.enrich.rollup import Rolled, Rollup
from dredge.errors import ConfigError, DredgeError, ParseError
from dredge.flowlog import kernels
from dredge.flowlog.columns import DICTIONARY_COLUMNS, FlowColumns, RecordCounts
from dredge.flowlog.fields import FIELDS, LONG_LINE_HEAD, FlowFormat, looks_like_header
from dredge.flowlog.parser import FlowParser, ParsedChunk
from dredge.flowlog.ports import EPHEMERAL_FROM, check_ephemeral_from
from dredge.index.snapshot import IndexSnapshot, LookupStats
from dredge.settings import check_positive
from dredge.sinks.deadletter import DeadLetters
from dredge.sources.files import FileRef, ReadState, open_file, text_chunks
from dredge.telemetry.metrics import records_total


def window_ok(window_s: int) -> bool:
    """A rollup window: a positive number of seconds dividing a day, or whole minutes."""
    return window_s > 0 and (86400 % window_s == 0 or window_s % 60 == 0)


@dataclass(frozen=True)
class PipelineConfig:
    """The stream daemon's pipeline (``[pipeline]``)."""

    window_s: int = 60  # rollup window
    ephemeral_from: int = EPHEMERAL_FROM  # service ports from here on count as 0, "ephemeral"
    flush_interval_s: float = 1.0  # commit rows + checkpoints this often
    # ...and sooner, in the background, once this many rolled-up rows wait (a backlog is then
    # stored while it is still read, not all after its last answer); 0 = the interval only
    flush_rows: int = 100_000
    queue_batches: int = 64  # GetRecords batches waiting for the pipeline (backpressure)
    sink_retry_max_s: float = 30.0  # longest wait between retries of a failed flush
    shutdown_flush_attempts: int = 5  # flush attempts on SIGTERM before giving up (no checkpoint)
    # hold parsed batches this long before enrichment, so late assignment events land in the
    # index first; 0 = off. Held batches are never checkpointed (dropped on stop, read again).
    holdback_s: float = 0.0
    holdback_max_rows: int = 5_000_000  # flow rows held at most; more: readers wait

    def validate(self) -> None:
        if not window_ok(self.window_s):
            raise ConfigError("window_s", "a positive number of seconds dividing a day, or whole minutes")
        why = check_ephemeral_from(self.ephemeral_from)
        if why:
            raise ConfigError("ephemeral_from", why)
        check_positive(self, "flush_interval_s", "sink_retry_max_s")
        for name in ("queue_batches", "shutdown_flush_attempts", "holdback_max_rows"):
            if getattr(self, name) < 1:
                raise ConfigError(name, "must be >= 1")
        if self.flush_rows < 0:
            raise ConfigError("flush_rows", "must be >= 0 (0: flush on the interval only)")
        if not 0 <= self.holdback_s <= 3600:
            raise ConfigError("holdback_s", "between 0 (off) and 3600 seconds")


UTF8_BOM = b"\xef\xbb\xbf"

# process_file's ``part``: (rows, callback) -> the callback takes each part of that many rows
Part = tuple[int, Callable[[Rolled], None]]

# The columns enrichment reads from a Parquet flow-log file; the rest are never decoded.
PARQUET_COLUMNS = frozenset({
    "start", "bytes", "packets", "protocol", "action", "log_status", "flow_direction",
    "traffic_path", "srcaddr", "dstaddr", "pkt_srcaddr", "pkt_dstaddr", "srcport", "dstport",
})


@dataclass
class FileResult:
    ref: FileRef
    kind: str
    rows: Rolled | None = None
    counts: RecordCounts = field(default_factory=RecordCounts)
    join: LookupStats = field(default_factory=LookupStats)
    fmt: str = ""
    truncated: bool = False
    error: str | None = None  # the file could not be used at all
    warning: str | None = None  # the file was used, with a problem (truncation)
    seconds: float = 0.0


def dead_letters_of(chunk: ParsedChunk, origin: dict[str, Any], line_base: int) -> list[dict[str, Any]]:
    """Malformed lines of a chunk as dead-letter records (few: a loop over the bad ones only)."""
    bad = np.flatnonzero(chunk.status != kernels.OK)
    out = []
    for rec in bad:
        bf = int(chunk.bad_field[rec])
        letter = {
            **origin,
            "line": line_base + int(chunk.line_no[rec]) + 1,
            "reason": kernels.STATUS_REASONS.get(int(chunk.status[rec]), "malformed"),
            "field": chunk.fmt.fields[bf].replace("-", "_") if bf >= 0 else None,
        }
        if chunk.status[rec] == kernels.LINE_TOO_LONG:  # its head and length, as the reader does
            start, end = int(chunk.line_start[rec]), int(chunk.line_end[rec])
            letter["text"] = bytes(chunk.buf[start:start + LONG_LINE_HEAD]).decode("utf-8", "replace")
            letter["length"] = end - start
        else:
            letter["text"] = chunk.line_text(int(rec))
        out.append(letter)
    return out


def count_records(source: str, counts: RecordCounts) -> None:
    """Add a batch's or a file's records to ``dredge_parse_records_total{source=...}``."""
    for outcome, n in counts.outcomes():
        if n:
            records_total.labels(source, outcome).inc(n)


class IndexLoadFailed(Exception):
    """The index loading beside the first files failed; ``error`` is what it raised. Not a
    DredgeError, so that no file counts it as its own failure: replay raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


Snapshot = IndexSnapshot | Future[IndexSnapshot]  # a Future: still loading (replay)


def resolved(snapshot: Snapshot) -> IndexSnapshot:
    """The snapshot, once loaded (:class:`IndexLoadFailed` if that failed)."""
    if isinstance(snapshot, IndexSnapshot):
        return snapshot
    try:
        return snapshot.result()
    except Exception as exc:
        raise IndexLoadFailed(exc) from exc


class Enricher:
    """Parse + enrich + roll up batches against one index snapshot (or one loading: the
    first batch waits for it, so a file is read and parsed while the index loads)."""

    def __init__(self, snapshot: Snapshot, window_s: int,
                 ephemeral_from: int = EPHEMERAL_FROM) -> None:
        self._snapshot = snapshot
        self.rollup = Rollup(window_s, ephemeral_from)
        self.counts = RecordCounts()
        self.join = LookupStats()
        self._next_check = 0  # take_part: held groups (upper bound) worth compacting again

    @property
    def snapshot(self) -> IndexSnapshot:
        snap = self._snapshot
        if not isinstance(snap, IndexSnapshot):
            snap = self._snapshot = resolved(snap)
        return snap

    def add_columns(self, cols: FlowColumns, counts: RecordCounts) -> None:
        self.counts.add(counts)
        if cols.n:
            src, dst, stats = enrich(cols, self.snapshot)
            self.join += stats
            self.rollup.add(cols, src, dst)

    def table(self) -> pa.Table:
        """Rolled-up rows in the ``flows`` schema (strings)."""
        return self.rollup.to_table(self.snapshot.owners)

    def rolled(self) -> Rolled:
        """Rolled-up rows as facts + owner dictionary (what the DuckDB sink stores fastest)."""
        return self.rollup.to_rolled(self.snapshot.owners)

    def take_part(self, min_rows: int) -> Rolled | None:
        """The rows rolled up so far if they are at least ``min_rows`` (0: never); the
        rollup then starts anew, so a large file is held a part at a time.

        The count before a compaction is an upper bound (batches not merged yet). When a
        compaction finds fewer than ``min_rows`` (keys that repeat), the next waits until
        the count has doubled: else every later batch would merge all the held groups again.
        So at most about twice ``min_rows`` groups (plus a batch) are held."""
        if min_rows <= 0 or self.rollup.groups < max(min_rows, self._next_check):
            return None
        self.rollup.compact()
        held = self.rollup.groups
        if held < min_rows:
            self._next_check = 2 * held
            return None
        part = self.rolled()
        self.rollup = Rollup(self.rollup.window_s, self.rollup.ephemeral_from)
        self._next_check = 0
        return part


def process_file(ref: FileRef, kind: str, snapshot: Snapshot, window_s: int,
                 default_format: FlowFormat, dead: DeadLetters, chunk_bytes: int = 16 << 20,
                 read_ahead: int = 0, ephemeral_from: int = EPHEMERAL_FROM,
                 part: Part | None = None) -> FileResult:
    """read_ahead: text chunks inflated by a thread ahead of the parse (``text_chunks``);
    ephemeral_from: the rollup's service-port setting (:mod:`dredge.flowlog.ports`);
    ``part`` (rows, callback): hand the rolled-up rows to the callback whenever they reach
    that many, so memory stays bounded (``result.rows`` is then only the last part)."""
    t0 = time.perf_counter()
    result = FileResult(ref, kind)
    enricher = Enricher(snapshot, window_s, ephemeral_from)
    try:
        if kind == "parquet":
            _parquet(ref, enricher, result, dead, part)
        else:
            _text(ref, kind, enricher, result, default_format, dead, chunk_bytes, read_ahead, part)
    except DredgeError as exc:
        result.error = str(exc)
        result.rows = None
        result.seconds = time.perf_counter() - t0
        return result
    result.counts = enricher.counts
    result.join = enricher.join
    result.rows = enricher.rolled()
    result.seconds = time.perf_counter() - t0
    return result


def _emit(enricher: Enricher, part: Part | None) -> None:
    if part is not None:
        rows = enricher.take_part(part[0])
        if rows is not None:
            part[1](rows)


def _text(ref: FileRef, kind: str, enricher: Enricher, result: FileResult,
          default_format: FlowFormat, dead: DeadLetters, chunk_bytes: int, read_ahead: int,
          part: Part | None) -> None:
    state = ReadState()
    parser: FlowParser | None = None
    line_base = 0
    origin = {"file": ref.path}
    for chunk in text_chunks(ref, kind, state, chunk_bytes, read_ahead=read_ahead):
        body: bytes | np.ndarray = chunk
        if parser is None:
            if chunk.startswith(UTF8_BOM):  # editors on Windows write one; not part of the header
                chunk = body = chunk[len(UTF8_BOM):]
            first_end = chunk.find(b"\n")
            first = chunk[: first_end if first_end >= 0 else len(chunk)]
            if looks_like_header(first):
                fmt = FlowFormat.parse(first.decode("utf-8", "replace"))
                # a view past the header: slicing the bytes would copy the whole first chunk
                # (a small file's whole text), holding the GIL the other workers wait for
                body = np.frombuffer(chunk, np.uint8)[first_end + 1:] if first_end >= 0 else b""
                line_base = 1
            else:
                fmt = default_format
            fmt.check_enrichable()
            result.fmt = str(fmt)
            parser = FlowParser(fmt, keep_strings=False)
        if not len(body):
            continue
        parsed = parser.parse(body)
        cols, counts = FlowColumns.from_parsed(parsed)
        if counts.malformed:
            dead.write(dead_letters_of(parsed, origin, line_base))
        enricher.add_columns(cols, counts)
        _emit(enricher, part)
        line_base += parsed.physical_lines
    if state.long_lines:
        enricher.counts.malformed += len(state.long_lines)
        dead.write([{**origin, "line": long.line, "reason": "line_too_long", "field": None,
                     "text": long.head.decode("utf-8", "replace"), "length": long.length}
                    for long in state.long_lines])
    if state.truncated:
        result.truncated = True
        result.warning = state.error
        if state.tail:
            enricher.counts.malformed += 1
            dead.write([{**origin, "line": line_base + 1, "reason": "truncated_line", "field": None,
                         "text": state.tail.decode("utf-8", "replace")}])


def _parquet(ref: FileRef, enricher: Enricher, result: FileResult, dead: DeadLetters,
             part: Part | None) -> None:
    import pyarrow.parquet as pq  # here: text-only replays need not load it (~8 ms)

    try:
        with open_file(ref) as fh:
            pf = pq.ParquetFile(fh)
            dictionary = [c for c in pf.schema_arrow.names if c in DICTIONARY_COLUMNS]
            if dictionary:  # repeated addresses and words: decoded and parsed once each
                pf = pq.ParquetFile(fh, metadata=pf.metadata, read_dictionary=dictionary)
            result.fmt = " ".join(FIELDS[c.replace("_", "-")].name if c.replace("_", "-") in FIELDS else c
                                  for c in pf.schema_arrow.names)
            row_base = 0
            wanted = [c for c in pf.schema_arrow.names if c in PARQUET_COLUMNS]
            # 128k rows a batch, decoded on this thread: a batch's columns and the arrays
            # enrichment makes of them are the memory that grows with it. The 20M set's
            # Parquet file (1M-row row groups): peak 535 -> 480 MB for ~5 % more CPU than
            # 256k on threads; 64k: 455 MB for ~25 % more (each batch's fixed costs).
            # A reader per row group: one over the whole file kept memory of each row group
            # it had read (reading alone, 1 / 4 / 7 row groups of 1M rows: 126 / 196 / 259 MB).
            for batch in _batches(pf, wanted):
                table = pa.Table.from_batches([batch])
                cols, counts, bad_rows, reasons = FlowColumns.from_arrow(table)
                if bad_rows.size:
                    dead.write([{"file": ref.path, "line": row_base + int(r) + 1, "reason": str(why),
                                 "field": None, "text": str(table.slice(int(r), 1).to_pylist()[0])}
                                for r, why in zip(bad_rows, reasons, strict=True)])
                enricher.add_columns(cols, counts)
                _emit(enricher, part)
                row_base += table.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise ParseError(f"cannot read Parquet file {ref.path}: {exc}") from exc


def _batches(pf: Any, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The file's rows in batches, read a row group at a time."""
    for group in range(pf.metadata.num_row_groups):
        yield from pf.iter_batches(batch_size=1 << 17, row_groups=[group], columns=columns,
                                   use_threads=False)
