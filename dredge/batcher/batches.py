"""One GetRecords batch through the stream's hot path: decode the envelopes, parse the lines
(:func:`parse_batch`), then enrich and roll up into its shard's pending rows
(:func:`enrich_batch`, :class:`Pending`). No Python loop per line: only the few dead letters
are built one by one.

A GetRecords answer may hold 10 MiB of gzip (~400,000 lines of CloudWatch Logs); without the
holdback :meth:`Pending.add_batch` takes it in pieces of at most ``PIECE_BYTES`` of records
(:func:`pieces`), so the memory a batch needs while it is decoded, parsed and enriched (its
inflated JSON, lines, columns) is that of a piece, whatever the answer's size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dredge.decode import DecodeConfig, decode_records
from dredge.flowlog import kernels
from dredge.flowlog.columns import FlowColumns, RecordCounts
from dredge.flowlog.parser import FlowParser
from dredge.flowlog.ports import EPHEMERAL_FROM
from dredge.pipeline import Enricher
from dredge.snapshots import SnapshotSource
from dredge.sources.kinesis.reader import ReadBatch
from dredge.sources.kinesis.shards import SEQUENCE, SHARD_END, Position

ShardKey = tuple[str, str]  # (stream, shard id)
PIECE_BYTES = 1 << 20  # record bytes (as read, gzip for CloudWatch Logs) decoded together at most


@dataclass
class ParsedBatch:
    """A batch decoded and parsed, not yet enriched."""

    batch: ReadBatch
    cols: FlowColumns | None
    counts: RecordCounts
    dead: list[dict[str, Any]]
    position: Position  # the shard's position once this batch is stored


@dataclass
class Pending:
    """What a shard has accumulated since the last flush."""

    epoch: int
    enrichers: dict[int, Enricher] = field(default_factory=dict)  # by id(snapshot)
    position: Position | None = None
    records: int = 0
    dead: list[dict[str, Any]] = field(default_factory=list)
    # rows of an earlier flush that failed while this one was filling (Flusher.flush)
    earlier: list[Enricher] = field(default_factory=list)

    def all_enrichers(self) -> list[Enricher]:
        return [*self.earlier, *self.enrichers.values()]

    def absorb_earlier(self, earlier: Pending) -> None:
        """Take back the rows of a flush that failed, read before this one's (same tenure):
        both are stored by the next flush, at this one's position."""
        self.earlier = [*earlier.all_enrichers(), *self.earlier]
        self.records += earlier.records
        self.dead = [*earlier.dead, *self.dead]
        if self.position is None:
            self.position = earlier.position

    def add(self, parsed: ParsedBatch, snapshots: SnapshotSource, window_s: int,
            records: int, ephemeral_from: int = EPHEMERAL_FROM) -> None:
        """Enrich and roll up into the shard's rows; its position moves to this batch's."""
        enrich_batch(parsed, snapshots, window_s, self.enrichers, ephemeral_from)
        self.position = parsed.position
        self.records += records
        self.dead.extend(parsed.dead)

    def add_batch(self, batch: ReadBatch, parser: FlowParser, decode: DecodeConfig,
                  snapshots: SnapshotSource, window_s: int, piece_bytes: int = PIECE_BYTES,
                  ephemeral_from: int = EPHEMERAL_FROM) -> RecordCounts:
        """Decode, parse, enrich and roll up a whole batch, piece by piece; its lines' counts.
        The rows, dead letters and final position are those of the batch in one piece."""
        counts = RecordCounts()
        for piece in pieces(batch, piece_bytes):
            parsed = parse_batch(piece, parser, decode)
            self.add(parsed, snapshots, window_s, len(piece.data), ephemeral_from)
            counts.add(parsed.counts)
        return counts


@dataclass
class HeldBatch:
    """A parsed batch in the holdback (the raw records are not kept)."""

    key: ShardKey
    epoch: int
    parsed: ParsedBatch
    records: int


def pieces(batch: ReadBatch, max_bytes: int = PIECE_BYTES) -> Iterator[ReadBatch]:
    """The batch as consecutive batches of at most ``max_bytes`` of record data (a larger
    record alone); only the first keeps ``skip_through_subseq``, which is about record 0."""
    if batch.shard_end or len(batch.data) <= 1 or batch.nbytes <= max_bytes:
        yield batch
        return
    start = size = 0
    for i, n in enumerate(map(len, batch.data)):  # per record, not per line
        if size and size + n > max_bytes:
            yield _piece(batch, start, i)
            start, size = i, 0
        size += n
    yield _piece(batch, start, len(batch.data))


def _piece(batch: ReadBatch, lo: int, hi: int) -> ReadBatch:
    return dataclasses.replace(batch, data=batch.data[lo:hi], sequences=batch.sequences[lo:hi],
                               skip_through_subseq=batch.skip_through_subseq if lo == 0 else -1)


def parse_batch(batch: ReadBatch, parser: FlowParser, decode: DecodeConfig) -> ParsedBatch:
    """Decode the envelopes and parse the lines of one batch (no per-line Python)."""
    if batch.shard_end:
        return ParsedBatch(batch, None, RecordCounts(), [], Position(SHARD_END))
    decoded = decode_records(batch.data, decode)
    origin = {"stream": batch.stream, "shard": batch.shard_id}
    lines = decoded.lines
    first = 0
    if batch.skip_through_subseq >= 0 and len(decoded):
        # Resumed AT a KPL aggregate: its user records up to the checkpoint are stored. They
        # come first in the buffer, so dropping them is dropping a prefix of lines.
        first = int(np.count_nonzero((decoded.line_record == 0)
                                     & (decoded.line_subseq <= batch.skip_through_subseq)))
        if first:
            newlines = np.flatnonzero(np.frombuffer(lines, np.uint8) == 10)
            lines = lines[int(newlines[first - 1]) + 1:] if first < len(decoded) else b""
    dead = [
        {**origin, "sequence": batch.sequences[d.record_index], "subseq": d.subseq,
         "reason": d.reason, "field": None, "text": d.sample.decode("utf-8", "replace")}
        for d in decoded.dead_letters
        if not (d.record_index == 0 and d.subseq <= batch.skip_through_subseq)
    ]
    cols: FlowColumns | None = None
    counts = RecordCounts()
    if lines:
        parsed = parser.parse(lines)
        cols, counts = FlowColumns.from_parsed(parsed)
        if counts.malformed:
            for rec in np.flatnonzero(parsed.status != kernels.OK):  # the bad lines only
                line = first + int(parsed.line_no[rec])
                bf = int(parsed.bad_field[rec])
                dead.append({
                    **origin,
                    "sequence": batch.sequences[int(decoded.line_record[line])],
                    "subseq": int(decoded.line_subseq[line]),
                    "reason": kernels.STATUS_REASONS.get(int(parsed.status[rec]), "malformed"),
                    "field": parsed.fmt.fields[bf].replace("-", "_") if bf >= 0 else None,
                    "text": parsed.line_text(int(rec)),
                })
    last = len(batch.data) - 1
    subs = decoded.line_subseq[decoded.line_record == last]
    sub = max(int(subs.max()) if subs.size else 0,
              max((d.subseq for d in decoded.dead_letters if d.record_index == last), default=0))
    return ParsedBatch(batch, cols, counts, dead, Position(SEQUENCE, batch.sequences[last], sub))


def enrich_batch(parsed: ParsedBatch, snapshots: SnapshotSource, window_s: int,
                 into: dict[int, Enricher], ephemeral_from: int = EPHEMERAL_FROM) -> None:
    """Enrich and roll up one parsed batch against the snapshot current NOW (read once)."""
    if parsed.cols is None:
        return
    snapshot = snapshots.current()
    enricher = into.get(id(snapshot))
    if enricher is None or enricher.snapshot is not snapshot:
        enricher = into[id(snapshot)] = Enricher(snapshot, window_s, ephemeral_from)
    enricher.add_columns(parsed.cols, parsed.counts)
