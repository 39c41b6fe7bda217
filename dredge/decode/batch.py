"""Decode one GetRecords batch into one buffer of flow-log lines with per-line provenance.

Each Kinesis record is, by its first bytes:

    1f 8b         a CloudWatch Logs subscription payload (gzip JSON)    -> cloudwatch.py, cwlscan.py
    f3 89 9a c2   a KPL aggregate, if its MD5 and protobuf check out     -> kpl.py, kplscan.py
                  (each user record is then itself CloudWatch Logs or plain; one level)
    anything else plain flow-log lines                                   -> lines.py

Each record, CloudWatch Logs payload, or run of plain KPL user records becomes one
canonical chunk of lines (lines.py) with rows of provenance (record, sub-sequence number,
ENI, line count); the chunks are joined once and the rows expanded to one entry per line
with ``np.repeat``. Python loops here run per record (or per CloudWatch Logs payload inside
a KPL aggregate), never per line or per plain user record: the JSON of a payload and the
protobuf of an aggregate are read by compiled kernels (cwlscan.py, kplscan.py) that agree
with the reference readers (orjson, kpl.py's parser) and hand anything unusual to them.
Line ``i`` of ``lines`` is physical line ``i``: there are no blank lines to skip.

Problems with one record are dead-lettered and counted; ``decode_records`` does not raise
for them. Plain records are passed on as they are: a flow-log header line in one (which
CloudWatch Logs and KPL producers of flow logs do not write) is left to the parser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from dredge.decode import cloudwatch, cwlscan, kpl, kplscan
from dredge.decode.lines import Text, normalize_lines, split_lines
from dredge.decode.reasons import REASONS, EnvelopeError, Reason
from dredge.errors import ConfigError
from dredge.telemetry.metrics import counter

SAMPLE_BYTES = 256
KINDS = ("cwl", "kpl", "kpl_fallback", "plain")

records_total = counter(
    "dredge_decode_records_total",
    "Kinesis records decoded, by envelope (cwl, kpl, kpl_fallback, plain).",
    ["kind"],
)
subrecords_total = counter(
    "dredge_decode_subrecords_total",
    "User records unpacked from KPL aggregates.",
)
lines_total = counter(
    "dredge_decode_lines_total",
    "Flow-log lines handed to the parser.",
)
control_messages_total = counter(
    "dredge_decode_control_messages_total",
    "CloudWatch Logs CONTROL_MESSAGE payloads skipped.",
)
inflated_bytes_total = counter(
    "dredge_decode_inflated_bytes_total",
    "Bytes of CloudWatch Logs JSON produced by gunzip.",
)
dead_letters_total = counter(
    "dredge_decode_dead_letters_total",
    "Records (or KPL user records) that could not be decoded, by reason.",
    ["reason"],
)
for _kind in KINDS:
    records_total.labels(kind=_kind)
for _reason in REASONS:
    dead_letters_total.labels(reason=_reason)


@dataclass(frozen=True)
class DecodeConfig:
    max_inflated_bytes: int = 8 * 1024 * 1024  # a gzip payload inflating past this is refused

    def validate(self) -> None:
        if type(self.max_inflated_bytes) is not int or self.max_inflated_bytes <= 0:
            raise ConfigError("max_inflated_bytes", "must be a positive integer")


DEFAULT_CONFIG = DecodeConfig()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record, or a KPL user record (``subseq``), that could not be decoded."""

    record_index: int
    subseq: int
    reason: Reason
    detail: str
    sample: bytes  # the first SAMPLE_BYTES bytes of the undecodable data


@dataclass(slots=True)
class DecodeStats:
    """What a batch held. Every input record counts in exactly one of the four kinds."""

    cwl: int = 0  # CloudWatch Logs payloads (dead-lettered ones included)
    kpl: int = 0  # KPL aggregates (dead-lettered ones included)
    kpl_fallback: int = 0  # KPL magic, but MD5 or protobuf failed: read as plain
    plain: int = 0  # plain lines (empty records included)
    kpl_subrecords: int = 0  # user records inside the KPL aggregates
    nested_cwl: int = 0  # of those, CloudWatch Logs payloads
    inflated_bytes: int = 0  # JSON bytes produced by gunzip


@dataclass(frozen=True)
class DecodedBatch:
    """The flow-log lines of a batch and where each came from.

    ``lines`` holds ``n`` lines joined with ``b"\\n"`` (no header, no blank line, no final
    newline; ``b""`` when ``n == 0``). The ``line_*`` arrays have ``n`` int32 entries:
    the input record's index, the KPL sub-sequence number (0 unless aggregated), and an
    index into ``eni_table`` (-1 when the network interface is not known).
    """

    lines: bytes
    line_record: npt.NDArray[np.int32]
    line_subseq: npt.NDArray[np.int32]
    line_eni: npt.NDArray[np.int32]
    eni_table: list[str]
    control_messages: int
    dead_letters: list[DeadLetter]
    stats: DecodeStats

    def __len__(self) -> int:
        return len(self.line_record)

    def line_list(self) -> list[bytes]:
        """The lines as a list (for tests and tools; the hot path reads ``lines``)."""
        return self.lines.split(b"\n") if self.lines else []

    def eni_list(self) -> list[str | None]:
        """The ENI of each line as a list (for tests and tools)."""
        table: list[str | None] = [*self.eni_table, None]  # code -1 picks the None
        return [table[code] for code in self.line_eni.tolist()]


def decode_records(records: Sequence[bytes], config: DecodeConfig = DEFAULT_CONFIG, *,
                   fast: bool = True) -> DecodedBatch:
    """Decode the data of a batch of Kinesis records, in order; see the module docstring.

    ``fast=False`` reads every CloudWatch Logs payload with orjson and every KPL aggregate
    with the Python parser: the reference path the compiled kernels (cwlscan, kplscan) must
    agree with; for tests and the benchmark's baseline."""
    builder = _BatchBuilder(config.max_inflated_bytes, fast)
    for index, data in enumerate(records):
        builder.add_record(index, data)
    batch = builder.build()
    _count(batch)
    return batch


_Offsets = npt.NDArray[np.int64]
_Meta = npt.NDArray[np.int64]  # rows of (record index, subseq, eni code, line count)


@dataclass
class _BatchBuilder:
    """Collects canonical chunks of lines and, in step, rows saying where they came from."""

    max_inflated_bytes: int
    fast: bool = True  # the compiled kernels where they can (False: the reference readers)
    chunks: list[Text] = field(default_factory=list)
    rows: list[tuple[int, int, int, int]] = field(default_factory=list)  # pending _Meta rows
    blocks: list[_Meta] = field(default_factory=list)  # finished _Meta, in order
    eni_codes: dict[str, int] = field(default_factory=dict)
    control_messages: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    stats: DecodeStats = field(default_factory=DecodeStats)

    def add_record(self, index: int, data: bytes) -> None:
        if data[:2] == cloudwatch.GZIP_MAGIC:
            self.stats.cwl += 1
            self._cloudwatch(index, 0, data)
        elif data[:4] == kpl.MAGIC:
            self._aggregate(index, data)
        else:
            self.stats.plain += 1
            self._lines(index, 0, data, -1)

    def _aggregate(self, index: int, data: bytes) -> None:
        try:
            spans = kpl.user_record_spans(data, fast=self.fast)
        except EnvelopeError as exc:
            self.stats.kpl += 1
            self._dead_letter(index, 0, exc, data)
            return
        if spans is None:
            self.stats.kpl_fallback += 1
            self._lines(index, 0, data, -1)
            return
        starts, ends = spans
        n = starts.size
        self.stats.kpl += 1
        self.stats.kpl_subrecords += n
        buf = np.frombuffer(data, np.uint8)
        two = ends - starts >= 2
        gzipped = np.flatnonzero(two & (buf[np.where(two, starts, 0)] == cloudwatch.GZIP_MAGIC[0])
                                 & (buf[np.where(two, starts + 1, 0)] == cloudwatch.GZIP_MAGIC[1]))
        self.stats.nested_cwl += gzipped.size
        plain_from = 0
        for subseq in gzipped.tolist():
            self._plain_run(index, data, starts[plain_from:subseq], ends[plain_from:subseq], plain_from)
            self._cloudwatch(index, subseq, data[starts[subseq]:ends[subseq]])
            plain_from = subseq + 1
        # one level only: a nested aggregate is read as plain, as the KCL would
        self._plain_run(index, data, starts[plain_from:], ends[plain_from:], plain_from)

    def _plain_run(self, index: int, data: bytes, starts: _Offsets, ends: _Offsets, lo: int) -> None:
        """Plain user records ``lo, lo + 1, ...`` (at ``data[starts[i]:ends[i]]``) as one chunk:
        one gather and one normalization, not one each."""
        if starts.size <= 1:
            if starts.size:
                self._lines(index, lo, data[starts[0]:ends[0]], -1)
            return
        lines, line_starts = split_lines(kplscan.gather(data, starts, ends))
        if not line_starts.size:
            return
        sizes = ends - starts + 1
        run_starts = np.cumsum(sizes) - sizes  # where each user record begins in the joined text
        of_line = np.searchsorted(run_starts, line_starts, side="right") - 1
        counts = np.bincount(of_line, minlength=starts.size)
        has_lines = np.flatnonzero(counts)
        block = np.empty((has_lines.size, 4), dtype=np.int64)
        block[:, 0] = index
        block[:, 1] = has_lines + lo
        block[:, 2] = -1
        block[:, 3] = counts[has_lines]
        self._flush_rows()
        self.blocks.append(block)
        self.chunks.append(lines)

    def _cloudwatch(self, index: int, subseq: int, data: bytes) -> None:
        try:
            inflated = cloudwatch.inflate_gzip(data, self.max_inflated_bytes)
        except EnvelopeError as exc:
            self._dead_letter(index, subseq, exc, data)
            return
        self.stats.inflated_bytes += len(inflated)
        scanned = cwlscan.scan(inflated) if self.fast else None
        if scanned is None:  # not the plain shape: the reference path decides
            try:
                message = cloudwatch.parse_cloudwatch(inflated)
            except EnvelopeError as exc:
                self._dead_letter(index, subseq, exc, data)
                return
            is_data, log_stream = message.message_type == cloudwatch.DATA_MESSAGE, message.log_stream
        else:
            is_data, lines, n, log_stream = scanned
        del inflated  # the JSON is no longer needed; release it before the next payload
        if not is_data:
            self.control_messages += 1
            return
        eni = cloudwatch.eni_from_log_stream(log_stream)
        code = -1 if eni is None else self.eni_codes.setdefault(eni, len(self.eni_codes))
        if scanned is None:
            self._lines(index, subseq, message.lines, code)
        elif n:  # already canonical
            self.chunks.append(lines)
            self.rows.append((index, subseq, code, n))

    def _lines(self, index: int, subseq: int, text: bytes, eni_code: int) -> None:
        lines, n = normalize_lines(text)
        if n:
            self.chunks.append(lines)
            self.rows.append((index, subseq, eni_code, n))

    def _flush_rows(self) -> None:
        if self.rows:
            self.blocks.append(np.array(self.rows, dtype=np.int64))
            self.rows = []

    def _dead_letter(self, index: int, subseq: int, exc: EnvelopeError, data: bytes) -> None:
        self.dead_letters.append(
            DeadLetter(index, subseq, exc.reason, str(exc), bytes(data[:SAMPLE_BYTES]))
        )

    def build(self) -> DecodedBatch:
        self._flush_rows()
        meta = np.concatenate(self.blocks) if self.blocks else np.empty((0, 4), dtype=np.int64)
        counts = meta[:, 3]

        def per_line(column: int) -> npt.NDArray[np.int32]:
            return np.repeat(meta[:, column].astype(np.int32), counts)

        return DecodedBatch(
            lines=b"\n".join(self.chunks),
            line_record=per_line(0),
            line_subseq=per_line(1),
            line_eni=per_line(2),
            eni_table=list(self.eni_codes),
            control_messages=self.control_messages,
            dead_letters=self.dead_letters,
            stats=self.stats,
        )


def _count(batch: DecodedBatch) -> None:
    stats = batch.stats
    for kind, n in (
        ("cwl", stats.cwl),
        ("kpl", stats.kpl),
        ("kpl_fallback", stats.kpl_fallback),
        ("plain", stats.plain),
    ):
        if n:
            records_total.labels(kind=kind).inc(n)
    if stats.kpl_subrecords:
        subrecords_total.inc(stats.kpl_subrecords)
    if len(batch):
        lines_total.inc(len(batch))
    if batch.control_messages:
        control_messages_total.inc(batch.control_messages)
    if stats.inflated_bytes:
        inflated_bytes_total.inc(stats.inflated_bytes)
    for letter in batch.dead_letters:
        dead_letters_total.labels(reason=letter.reason).inc()
