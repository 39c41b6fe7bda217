"""FlowColumns: the columns of a batch of flow records that enrichment and rollup use.

Built from parsed text (:class:`ParsedChunk`) or from an Arrow table (Parquet delivery);
either way the rest of the pipeline sees the same numpy columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dredge.flowlog import bounds, kernels, ports
from dredge.flowlog.fields import BY_COLUMN, CODES, LOG_NODATA, LOG_OK, LOG_SKIPDATA, FlowFormat
from dredge.flowlog.parser import Addr, ParsedChunk, parse_addresses
from dredge.telemetry.tally import Tally

# Parquet string columns read dictionary-encoded: few distinct values, parsed once each.
DICTIONARY_COLUMNS = frozenset({"srcaddr", "dstaddr", "pkt_srcaddr", "pkt_dstaddr", "action",
                                "log_status", "flow_direction"})


@dataclass
class RecordCounts(Tally):
    """Lines of a batch or a file by what they held."""

    records: int = 0  # lines that parsed (data + nodata + skipdata)
    data: int = 0
    nodata: int = 0
    skipdata: int = 0
    malformed: int = 0

    def outcomes(self) -> tuple[tuple[str, int], ...]:
        """(outcome label of ``dredge_parse_records_total``, count)."""
        return (("ok", self.data), ("nodata", self.nodata), ("skipdata", self.skipdata),
                ("malformed", self.malformed))


@dataclass
class FlowColumns:
    """Data records only (NODATA/SKIPDATA and malformed lines removed)."""

    start: np.ndarray  # int64 epoch s
    bytes: np.ndarray  # int64
    packets: np.ndarray  # int64
    protocol: np.ndarray  # int16, -1 = null
    action: np.ndarray  # int8 code, 0 = null
    flow_direction: np.ndarray  # int8 code, 0 = null
    traffic_path: np.ndarray  # int8, 0 = null
    src: Addr  # pkt-srcaddr when present, else srcaddr
    dst: Addr
    # int32, -1 = null: the lower port of a TCP/UDP/SCTP flow (``ports.lower_port``); the
    # rollup folds ports past its ``ephemeral_from`` to 0 (``ports.fold_ephemeral``)
    port: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def __post_init__(self) -> None:
        if self.port.shape[0] != self.start.shape[0]:  # built without ports: none known
            self.port = np.full(self.start.shape[0], ports.NO_PORT, np.int32)

    @property
    def n(self) -> int:
        return int(self.start.shape[0])

    @classmethod
    def from_parsed(cls, chunk: ParsedChunk, now: int | None = None
                    ) -> tuple[FlowColumns, RecordCounts]:
        """The data records of a chunk; records past a plausibility bound are marked
        ``OUT_OF_RANGE`` in ``chunk.status`` (and counted malformed) first."""
        fmt = chunk.fmt
        fmt.check_enrichable()
        bounds.mark(chunk, now)
        good = chunk.status == kernels.OK
        counts = RecordCounts(malformed=int(chunk.n - good.sum()))
        if fmt.has("log-status"):
            status = chunk.code("log-status")
            counts.nodata = int((good & (status == LOG_NODATA)).sum())
            counts.skipdata = int((good & (status == LOG_SKIPDATA)).sum())
            keep = good & ((status == LOG_OK) | (status == 0))
        else:
            keep = good
        idx = None if keep.all() else np.flatnonzero(keep)
        counts.data = int(keep.sum())
        counts.records = counts.data + counts.nodata + counts.skipdata

        def sel(a: np.ndarray) -> np.ndarray:
            return a if idx is None else a[idx]

        def integer(name: str, null: int, dtype: type) -> np.ndarray:
            if not fmt.has(name):
                return np.full(counts.data, null, dtype)
            vals, nulls = chunk.int_column(name)
            return sel(np.where(nulls, null, vals).astype(dtype, copy=False))

        def code(name: str) -> np.ndarray:
            return sel(chunk.code(name)) if fmt.has(name) else np.zeros(counts.data, np.int8)

        def port(name: str) -> tuple[np.ndarray, np.ndarray]:
            if not fmt.has(name):
                return np.zeros(counts.data, np.int64), np.ones(counts.data, np.bool_)
            vals, nulls = chunk.int_column(name)
            return sel(vals), sel(nulls)

        def addr(plain: str, pkt: str) -> Addr:
            a = chunk.addr(plain)
            if fmt.has(pkt):
                p = chunk.addr(pkt)
                a = p.where(p.fam > 0, a)
            return a if idx is None else a.take(idx)

        cols = cls(
            start=integer("start", 0, np.int64),
            bytes=integer("bytes", 0, np.int64),
            packets=integer("packets", 0, np.int64),
            protocol=integer("protocol", -1, np.int16),
            action=code("action"),
            flow_direction=code("flow-direction"),
            traffic_path=integer("traffic-path", 0, np.int8),
            src=addr("srcaddr", "pkt-srcaddr"),
            dst=addr("dstaddr", "pkt-dstaddr"),
        )
        cols.port = ports.lower_port(*port("srcport"), *port("dstport"), cols.protocol)
        return cols, counts

    @classmethod
    def from_arrow(cls, table: pa.Table, now: int | None = None
                   ) -> tuple[FlowColumns, RecordCounts, np.ndarray, np.ndarray]:
        """From a Parquet flow-log table (snake_case columns). Returns the row numbers of bad
        rows (bad addresses, numbers past a plausibility bound) and their reasons too, so the
        caller can dead-letter them."""
        names = set(table.column_names)
        fmt = FlowFormat(tuple(BY_COLUMN[c].name for c in table.column_names if c in BY_COLUMN))
        fmt.check_enrichable()
        n = table.num_rows
        counts = RecordCounts()

        def col(name: str) -> pa.ChunkedArray | None:
            c = name.replace("-", "_")
            return table.column(c) if c in names else None

        def words(name: str) -> np.ndarray:
            c = col(name)
            return np.zeros(n, np.int8) if c is None else word_codes(c, CODES[name])

        def integer(name: str, null: int, dtype: type) -> np.ndarray:
            c = col(name)
            if c is None:
                return np.full(n, null, dtype)
            out: np.ndarray = pc.fill_null(c.cast(pa.int64()), null).to_numpy().astype(dtype, copy=False)
            return out

        status = words("log-status")
        counts.nodata = int((status == LOG_NODATA).sum())
        counts.skipdata = int((status == LOG_SKIPDATA).sum())
        src_plain, dst_plain = parse_addresses(col("srcaddr")), parse_addresses(col("dstaddr"))
        src, dst = src_plain, dst_plain
        bad = (src_plain.fam < 0) | (dst_plain.fam < 0)
        for plain_name, pkt_name in (("srcaddr", "pkt-srcaddr"), ("dstaddr", "pkt-dstaddr")):
            c = col(pkt_name)
            if c is not None:
                p = parse_addresses(c)
                bad |= p.fam < 0
                if plain_name == "srcaddr":
                    src = p.where(p.fam > 0, src)
                else:
                    dst = p.where(p.fam > 0, dst)
        int_column = bounds.arrow_column(table)
        odd, _which = bounds.out_of_range(int_column, n, bounds.clock(now))
        reasons = np.where(bad, "bad_address", np.where(odd, "out_of_range", ""))
        bad |= odd
        keep = ((status == LOG_OK) | (status == 0)) & ~bad
        counts.malformed = int(bad.sum())
        counts.data = int(keep.sum())
        counts.records = counts.data + counts.nodata + counts.skipdata
        idx = np.flatnonzero(keep)
        cols = cls(
            start=integer("start", 0, np.int64)[idx],
            bytes=integer("bytes", 0, np.int64)[idx],
            packets=integer("packets", 0, np.int64)[idx],
            protocol=integer("protocol", -1, np.int16)[idx],
            action=words("action")[idx],
            flow_direction=words("flow-direction")[idx],
            traffic_path=integer("traffic-path", 0, np.int8)[idx],
            src=src.take(idx),
            dst=dst.take(idx),
        )
        sport, dport = (int_column(p) or (np.zeros(n, np.int64), np.ones(n, np.bool_))
                        for p in ("srcport", "dstport"))
        cols.port = ports.lower_port(sport[0][idx], sport[1][idx], dport[0][idx], dport[1][idx],
                                     cols.protocol)
        rows = np.flatnonzero(bad)
        return cols, counts, rows, reasons[rows]


def word_codes(c: pa.ChunkedArray | pa.Array, words: tuple[bytes, ...]) -> np.ndarray:
    """int8 code of each value (i + 1 for ``words[i]``, 0 for null or anything else); a
    dictionary-encoded column is compared once per distinct value."""
    if isinstance(c, pa.ChunkedArray):
        if c.num_chunks != 1:
            return (np.concatenate([word_codes(k, words) for k in c.chunks]) if c.num_chunks
                    else np.zeros(0, np.int8))
        c = c.chunk(0)
    if pa.types.is_dictionary(c.type):
        codes = np.concatenate([word_codes(c.dictionary, words), np.zeros(1, np.int8)])
        idx = c.indices.fill_null(len(c.dictionary)).to_numpy()  # null -> the 0 appended
        out: np.ndarray = codes[idx]
        return out
    text = c.cast(pa.string())
    out = np.zeros(len(c), np.int8)
    for i, w in enumerate(words):
        out[pc.fill_null(pc.equal(text, w.decode()), False).to_numpy(zero_copy_only=False)] = i + 1
    return out
