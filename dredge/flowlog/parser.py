"""The columnar flow-log parser: a chunk of text lines in, typed columns out.

``FlowParser(fmt).parse(chunk)`` runs one compiled pass over the bytes and returns a
:class:`ParsedChunk` whose columns are numpy arrays (ints, 128-bit addresses, int8 codes)
plus byte slices for string fields, materialized as Arrow strings only when asked.
Malformed lines are flagged in ``status`` (see ``kernels.STATUS_REASONS``), never raised.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from dredge.flowlog import kernels
from dredge.flowlog.fields import CODES, FIELDS, FlowFormat, Kind


@dataclass(frozen=True)
class Addr:
    """A column of 128-bit addresses; fam is 0 for null, 4 or 6."""

    fam: np.ndarray
    hi: np.ndarray
    lo: np.ndarray

    def where(self, mask: np.ndarray, other: Addr) -> Addr:
        """self where mask, else other."""
        return Addr(np.where(mask, self.fam, other.fam), np.where(mask, self.hi, other.hi),
                    np.where(mask, self.lo, other.lo))

    def take(self, idx: np.ndarray) -> Addr:
        return Addr(self.fam[idx], self.hi[idx], self.lo[idx])


@dataclass
class ParsedChunk:
    fmt: FlowFormat
    buf: np.ndarray
    n: int
    ints: np.ndarray
    int_null: np.ndarray
    fam: np.ndarray
    hi: np.ndarray
    lo: np.ndarray
    codes: np.ndarray
    str_start: np.ndarray
    str_len: np.ndarray
    line_start: np.ndarray
    line_end: np.ndarray
    line_no: np.ndarray
    status: np.ndarray
    bad_field: np.ndarray
    plan: FlowParser = field(repr=False)
    physical_lines: int = 0  # lines in the chunk, blank ones included

    def int_column(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, null mask)."""
        slot = self.plan.slot_of(name, Kind.INT)
        return self.ints[slot], self.int_null[slot]

    def addr(self, name: str) -> Addr:
        slot = self.plan.slot_of(name, Kind.ADDR)
        return Addr(self.fam[slot], self.hi[slot], self.lo[slot])

    def code(self, name: str) -> np.ndarray:
        out: np.ndarray = self.codes[self.plan.slot_of(name, Kind.CODE)]
        return out

    def strings(self, name: str) -> pa.Array:
        """A field's text as an Arrow string array ('-' is null)."""
        slot = self.plan.str_slots[self.fmt.fields.index(name)]
        if slot < 0:
            raise KeyError(f"{name} was not kept as text")
        starts, lens = self.str_start[slot], self.str_len[slot]
        offsets, data = kernels.gather_slices(self.buf, starts, lens)
        valid = lens >= 0
        mask = None if valid.all() else pa.array(valid).buffers()[1]
        return pa.LargeStringArray.from_buffers(
            self.n, pa.py_buffer(offsets), pa.py_buffer(data), mask, int((~valid).sum())
        )

    def line_text(self, rec: int) -> str:
        return bytes(self.buf[self.line_start[rec]:self.line_end[rec]]).decode("utf-8", "replace")

    def to_arrow(self) -> pa.Table:
        """Every field, snake_case names, integers typed, null for '-'. For `dredge parse`."""
        cols: dict[str, pa.Array] = {}
        for name in self.fmt.fields:
            f = FIELDS[name]
            if f.kind == Kind.INT:
                vals, null = self.int_column(name)
                cols[f.column] = pa.array(vals, mask=null)
            else:
                cols[f.column] = self.strings(name)
        return pa.table(cols)


class FlowParser:
    """A parse plan for one format; reusable across chunks (not thread-bound)."""

    def __init__(self, fmt: FlowFormat, keep_text: bool = False, keep_strings: bool = True) -> None:
        """keep_text: also keep the text of address and word fields (for `dredge parse`).
        keep_strings: keep string fields at all; the enrichment path needs none of them, so it
        skips them without a write (the line is still checked for its field count)."""
        self.fmt = fmt
        kinds = [FIELDS[f].kind for f in fmt.fields]
        counters = {k: 0 for k in Kind}
        slots = []
        self._slot: dict[tuple[str, Kind], int] = {}
        for name, k in zip(fmt.fields, kinds, strict=True):
            slots.append(counters[k])
            self._slot[(name, k)] = counters[k]
            counters[k] += 1
        str_slots = []
        n_str = 0
        for k in kinds:
            if k == Kind.STR and not (keep_strings or keep_text):
                str_slots.append(-1)
            elif k == Kind.STR or (keep_text and k != Kind.INT):
                str_slots.append(n_str)
                n_str += 1
            else:
                str_slots.append(-1)
        self.kinds = np.array([-1 if k == Kind.STR and s < 0 else int(k)
                               for k, s in zip(kinds, str_slots, strict=True)], np.int8)
        self.slots = np.array(slots, np.int16)
        self.str_slots = np.array(str_slots, np.int16)
        self.n_int, self.n_addr, self.n_code = counters[Kind.INT], counters[Kind.ADDR], counters[Kind.CODE]
        self.n_str = n_str
        code_fields = [f for f, k in zip(fmt.fields, kinds, strict=True) if k == Kind.CODE]
        max_words = max((len(CODES[f]) for f in code_fields), default=1)
        max_len = max((len(w) for f in code_fields for w in CODES[f]), default=1)
        self.code_words = np.zeros((max(len(code_fields), 1), max_words, max_len), np.uint8)
        self.code_lens = np.zeros((max(len(code_fields), 1), max_words), np.int16)
        for c, f in enumerate(code_fields):
            for w, word in enumerate(CODES[f]):
                self.code_words[c, w, : len(word)] = np.frombuffer(word, np.uint8)
                self.code_lens[c, w] = len(word)

    def slot_of(self, name: str, kind: Kind) -> int:
        try:
            return self._slot[(name, kind)]
        except KeyError:
            raise KeyError(f"field {name!r} is not in the format") from None

    def parse(self, chunk: bytes | bytearray | memoryview | np.ndarray) -> ParsedChunk:
        buf = chunk if isinstance(chunk, np.ndarray) else np.frombuffer(chunk, np.uint8)
        cap = int(kernels.count_newlines(buf)) + 1  # the exact upper bound on records
        ints = np.empty((self.n_int, cap), np.int64)
        int_null = np.empty((self.n_int, cap), np.bool_)
        fam = np.empty((self.n_addr, cap), np.int8)
        hi = np.empty((self.n_addr, cap), np.uint64)
        lo = np.empty((self.n_addr, cap), np.uint64)
        codes = np.empty((self.n_code, cap), np.int8)
        str_start = np.empty((self.n_str, cap), np.int64)
        str_len = np.empty((self.n_str, cap), np.int32)
        line_start = np.empty(cap, np.int64)
        line_end = np.empty(cap, np.int64)
        line_no = np.empty(cap, np.int64)
        status = np.empty(cap, np.uint8)
        bad_field = np.empty(cap, np.int16)
        n, phys = kernels.parse_lines(
            buf, self.kinds, self.slots, self.str_slots, self.code_words, self.code_lens,
            ints, int_null, fam, hi, lo, codes, str_start, str_len,
            line_start, line_end, line_no, status, bad_field,
        )
        parsed = ParsedChunk(
            self.fmt, buf, n, ints[:, :n], int_null[:, :n], fam[:, :n], hi[:, :n], lo[:, :n],
            codes[:, :n], str_start[:, :n], str_len[:, :n], line_start[:n], line_end[:n],
            line_no[:n], status[:n], bad_field[:n], self, phys,
        )
        return parsed



def parse_addresses(arr: pa.Array | pa.ChunkedArray) -> Addr:
    """Addresses held as Arrow strings -> 128-bit columns; a bad one has fam -1, null 0.

    Dictionary-encoded strings (how Parquet stores repeated addresses) are parsed once per
    distinct value and spread by their indices."""
    if isinstance(arr, pa.ChunkedArray):
        if pa.types.is_dictionary(arr.type) and arr.num_chunks != 1:
            parts = [parse_addresses(c) for c in arr.chunks]
            return Addr(*(np.concatenate([getattr(p, k) for p in parts]) if parts
                          else np.zeros(0, dt) for k, dt in (("fam", np.int8), ("hi", np.uint64),
                                                             ("lo", np.uint64))))
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        return _parse_dictionary(arr)
    arr = arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr
    n = len(arr)
    _validity, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64, n + 1, arr.offset * 8)
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else np.ones(n, np.bool_)
    fam = np.empty(n, np.int8)
    hi = np.empty(n, np.uint64)
    lo = np.empty(n, np.uint64)
    kernels.parse_addr_strings(offsets, data, valid, fam, hi, lo)
    return Addr(fam, hi, lo)


# A Parquet row group's address dictionary arrives again, copied, with each of its batches:
# the last few parsed per thread, so that it is parsed once, not once a batch.
_DICTIONARIES = threading.local()
_KEEP_DICTIONARIES = 4


def _dictionary_values(dictionary: pa.Array) -> Addr:
    held: list[tuple[pa.Array, Addr]] = getattr(_DICTIONARIES, "held", None) or []
    for d, values in held:
        if len(d) == len(dictionary) and d.equals(dictionary):
            return values
    values = parse_addresses(dictionary)
    _DICTIONARIES.held = [(dictionary, values), *held[:_KEEP_DICTIONARIES - 1]]
    return values


def _parse_dictionary(arr: pa.DictionaryArray) -> Addr:
    values = _dictionary_values(arr.dictionary)
    valid = arr.indices.is_valid().to_numpy(zero_copy_only=False)
    if not values.fam.size:  # nothing but nulls
        n = len(arr)
        return Addr(np.zeros(n, np.int8), np.zeros(n, np.uint64), np.zeros(n, np.uint64))
    idx = arr.indices.fill_null(0).to_numpy().astype(np.intp, copy=False)
    out = values.take(idx)
    if not valid.all():
        out.fam[~valid] = 0
        out.hi[~valid] = 0
        out.lo[~valid] = 0
    return out
