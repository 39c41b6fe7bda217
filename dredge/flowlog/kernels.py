"""Compiled kernels over raw bytes: split lines, tokenize, parse integers and addresses.

These are the only loops over records in the hot path. They are C (``_native.c`` beside
this file, built once at install), and they release the GIL so decompression and parsing
can overlap on two cores. This module is their thin Python face: it checks dtypes and
contiguity, allocates outputs with numpy and hands buffers to C, which checks every length
and offset before it loops. Addresses are 128-bit: IPv4 is stored as (family=4, hi=0,
lo=address); IPv6 as (family=6, hi, lo) with the upper and lower 64 bits.
"""

from __future__ import annotations

import numpy as np

from dredge.flowlog import _native

# Line status codes (uint8). 0 means the record parsed.
OK = 0
WRONG_FIELD_COUNT = 1
BAD_INTEGER = 2
BAD_ADDRESS = 3
BAD_WORD = 4
OUT_OF_RANGE = 5  # parsed, but past a plausibility bound (flowlog/bounds.py)
LINE_TOO_LONG = 6  # longer than bounds.MAX_LINE_BYTES: not a flow-log record
STATUS_REASONS = {
    WRONG_FIELD_COUNT: "wrong_field_count",
    BAD_INTEGER: "bad_integer",
    BAD_ADDRESS: "bad_address",
    BAD_WORD: "bad_word",
    OUT_OF_RANGE: "out_of_range",
    LINE_TOO_LONG: "line_too_long",
}


def _in(a: np.ndarray, dtype: type) -> np.ndarray:
    """An input as C-contiguous ``dtype`` (converted only when it is not already)."""
    return np.ascontiguousarray(a, dtype)


def _out(a: np.ndarray, dtype: type, name: str) -> np.ndarray:
    """An output C writes into: it must already have the dtype and be C-contiguous."""
    if a.dtype != dtype or not a.flags.c_contiguous or not a.flags.writeable:
        raise TypeError(f"{name} must be a writable C-contiguous {np.dtype(dtype)} array")
    return a


def parse_lines(
    buf: np.ndarray,  # uint8, the chunk
    kinds: np.ndarray,  # int8 per format field (fields.Kind; -1 = skip)
    slots: np.ndarray,  # int16 per field: its row in the output of its kind
    str_slots: np.ndarray,  # int16 per field: row in str output too (-1: none)
    code_words: np.ndarray,  # uint8 [n_code, n_words, max_len]
    code_lens: np.ndarray,  # int16 [n_code, n_words] (0 = no word)
    ints: np.ndarray,  # int64 [n_int, max_lines]
    int_null: np.ndarray,  # bool [n_int, max_lines]
    fam: np.ndarray,  # int8 [n_addr, max_lines]
    hi: np.ndarray,  # uint64 [n_addr, max_lines]
    lo: np.ndarray,  # uint64 [n_addr, max_lines]
    codes: np.ndarray,  # int8 [n_code, max_lines]
    str_start: np.ndarray,  # int64 [n_str, max_lines]
    str_len: np.ndarray,  # int32 [n_str, max_lines]  (-1 = null)
    line_start: np.ndarray,  # int64 [max_lines]
    line_end: np.ndarray,  # int64 [max_lines]
    line_no: np.ndarray,  # int64 [max_lines]: physical line index in the chunk
    status: np.ndarray,  # uint8 [max_lines]
    bad_field: np.ndarray,  # int16 [max_lines]
) -> tuple[int, int]:
    """Parse every non-blank line of ``buf`` in one pass over the bytes.

    Fields are separated by runs of spaces/tabs; a CR before the newline is ignored.
    Returns (records written, physical lines). ValueError if an output is too small.
    """
    code_words = _in(code_words, np.uint8)
    code_lens = _in(code_lens, np.int16)
    if code_words.ndim != 3 or code_lens.shape != code_words.shape[:2]:
        raise ValueError("code_words must be [n_code, n_words, max_len], code_lens [n_code, n_words]")
    cap = line_start.shape[0]
    outs = {"ints": (ints, np.int64), "int_null": (int_null, np.bool_), "fam": (fam, np.int8),
            "hi": (hi, np.uint64), "lo": (lo, np.uint64), "codes": (codes, np.int8),
            "str_start": (str_start, np.int64), "str_len": (str_len, np.int32)}
    for name, (a, dtype) in outs.items():
        _out(a, dtype, name)
        if a.ndim != 2 or a.shape[1] != cap:
            raise ValueError(f"{name} must be [rows, {cap}]")
    n, phys = _native.parse_lines(
        _in(buf, np.uint8), _in(kinds, np.int8), _in(slots, np.int16), _in(str_slots, np.int16),
        code_words, code_lens, code_words.shape[1], code_words.shape[2],
        ints, int_null, fam, hi, lo, codes, str_start, str_len,
        _out(line_start, np.int64, "line_start"), _out(line_end, np.int64, "line_end"),
        _out(line_no, np.int64, "line_no"), _out(status, np.uint8, "status"),
        _out(bad_field, np.int16, "bad_field"),
    )
    return n, phys


def count_newlines(buf: np.ndarray) -> int:
    """How many b'\\n' bytes ``buf`` holds."""
    n: int = _native.count_newlines(_in(buf, np.uint8))
    return n


def parse_addr_strings(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray,
                       fam: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> int:
    """Addresses held in an Arrow string array (offsets + data). Returns the number of bad ones.

    Null, empty and '-' entries get family 0; a bad address gets -1 (hi = lo = 0)."""
    bad: int = _native.parse_addr_strings(
        _in(offsets, np.int64), _in(data, np.uint8), _in(valid, np.bool_),
        _out(fam, np.int8, "fam"), _out(hi, np.uint64, "hi"), _out(lo, np.uint64, "lo"))
    return bad


def gather_slices(buf: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copy byte slices into one Arrow-style (offsets, data) pair; a negative length is null."""
    starts = _in(starts, np.int64)
    lens = _in(lens, np.int32)
    if starts.shape != lens.shape:
        raise ValueError("starts and lens differ in length")
    offsets = np.empty(starts.shape[0] + 1, np.int64)
    data = np.frombuffer(_native.gather_slices(_in(buf, np.uint8), starts, lens, offsets), np.uint8)
    return offsets, data
