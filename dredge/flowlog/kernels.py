"""Compiled kernels over raw bytes: split lines, tokenize, parse integers and addresses.

These are the only loops over records in the hot path, and they are compiled by numba
(``nogil=True`` so decompression and parsing can overlap on two cores; ``cache=True`` so
the compile happens once per machine). Addresses are 128-bit: IPv4 is stored as
(family=4, hi=0, lo=address); IPv6 as (family=6, hi, lo) with the upper and lower 64 bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit

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

_U64 = np.uint64


@njit(cache=True, nogil=True, inline="always")
def _parse_v4(buf: np.ndarray, s: int, e: int) -> tuple[bool, int]:
    val = 0
    octet = 0
    ndig = 0
    dots = 0
    for i in range(s, e):
        c = buf[i]
        if 48 <= c <= 57:
            octet = octet * 10 + (c - 48)
            ndig += 1
            if ndig > 3 or octet > 255:
                return False, 0
        elif c == 46:
            if ndig == 0 or dots == 3:
                return False, 0
            val = (val << 8) | octet
            octet = 0
            ndig = 0
            dots += 1
        else:
            return False, 0
    if dots != 3 or ndig == 0:
        return False, 0
    return True, (val << 8) | octet


@njit(cache=True, nogil=True, inline="always")
def _hexval(c: int) -> int:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


@njit(cache=True, nogil=True)
def _parse_v6(buf: np.ndarray, s: int, e: int, groups: np.ndarray) -> tuple[bool, np.uint64, np.uint64]:
    zero = _U64(0)
    n = 0  # groups parsed
    dc = -1  # index in groups where '::' stands
    i = s
    if e - s >= 2 and buf[i] == 58 and buf[i + 1] == 58:
        dc = 0
        i += 2
    while i < e:
        if n >= 8:
            return False, zero, zero
        gs = i
        val = 0
        while i < e and i - gs < 5:
            h = _hexval(buf[i])
            if h < 0:
                break
            val = val * 16 + h
            i += 1
        if i < e and buf[i] == 46:  # embedded IPv4 as the last 32 bits
            ok, v4 = _parse_v4(buf, gs, e)
            if not ok or n > 6:
                return False, zero, zero
            groups[n] = v4 >> 16
            groups[n + 1] = v4 & 0xFFFF
            n += 2
            i = e
            break
        if i == gs or i - gs > 4:
            return False, zero, zero
        groups[n] = val
        n += 1
        if i == e:
            break
        if buf[i] != 58:
            return False, zero, zero
        i += 1
        if i < e and buf[i] == 58:
            if dc >= 0:
                return False, zero, zero
            dc = n
            i += 1
        elif i == e:
            return False, zero, zero  # trailing single ':'
    if dc >= 0:
        if n > 7:
            return False, zero, zero
        shift = 8 - n
        for k in range(n - 1, dc - 1, -1):
            groups[k + shift] = groups[k]
        for k in range(dc, dc + shift):
            groups[k] = 0
    elif n != 8:
        return False, zero, zero
    hi = zero
    lo = zero
    for k in range(4):
        hi = (hi << _U64(16)) | _U64(groups[k])
        lo = (lo << _U64(16)) | _U64(groups[k + 4])
    return True, hi, lo


@njit(cache=True, nogil=True, inline="always")
def _parse_addr(buf: np.ndarray, s: int, e: int, groups: np.ndarray) -> tuple[int, np.uint64, np.uint64]:
    ok4, v = _parse_v4(buf, s, e)  # most addresses: one pass (it stops at a ':' or a letter)
    if ok4:
        return 4, _U64(0), _U64(v)
    for i in range(s, e):
        if buf[i] == 58:
            ok, hi, lo = _parse_v6(buf, s, e, groups)
            if ok and hi == 0 and (lo >> _U64(32)) == _U64(0xFFFF):
                # IPv4-mapped (::ffff:10.0.0.1): the IPv4 address itself, so it meets its owner
                return 4, _U64(0), lo & _U64(0xFFFFFFFF)
            return (6 if ok else -1), hi, lo
    return -1, _U64(0), _U64(0)


@njit(cache=True, nogil=True, inline="always")
def _is_sep(c: int) -> bool:
    return c == 32 or c == 9 or c == 13


@njit(cache=True, nogil=True)
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
    Returns (records written, physical lines).
    """
    n = buf.shape[0]
    nfields = kinds.shape[0]
    groups = np.zeros(8, np.int64)
    rec = 0
    phys = 0
    i = 0
    while i < n:
        ls = i
        f = 0
        st = 0
        bf = -1
        last_end = i
        while True:
            while i < n and _is_sep(buf[i]):
                i += 1
            if i >= n or buf[i] == 10:
                break
            ts = i
            k = kinds[f] if f < nfields else -2
            if k == 0:  # INT: digits are read while the token is scanned
                v = 0
                good = True
                while i < n:
                    c = buf[i]
                    if c == 32 or c == 10 or c == 9 or c == 13:
                        break
                    d = c - 48
                    if d < 0 or d > 9:
                        good = False
                    v = v * 10 + d
                    i += 1
                slot = slots[f]
                if i - ts == 1 and buf[ts] == 45:
                    ints[slot, rec] = 0
                    int_null[slot, rec] = True
                else:
                    ints[slot, rec] = v
                    int_null[slot, rec] = False
                    if (not good or i - ts > 18) and st == 0:
                        st = 2
                        bf = f
                ss = str_slots[f]
                if ss >= 0:
                    str_start[ss, rec] = ts
                    str_len[ss, rec] = -1 if (i - ts == 1 and buf[ts] == 45) else i - ts
            else:
                while i < n:
                    c = buf[i]
                    if c == 32 or c == 10 or c == 9 or c == 13:
                        break
                    i += 1
                te = i
                if k >= 0:
                    slot = slots[f]
                    is_null = te - ts == 1 and buf[ts] == 45
                    ss = str_slots[f]
                    if ss >= 0:
                        str_start[ss, rec] = ts
                        str_len[ss, rec] = -1 if is_null else te - ts
                    if k == 1:  # ADDR
                        if is_null:
                            fam[slot, rec] = 0
                            hi[slot, rec] = 0
                            lo[slot, rec] = 0
                        else:
                            fa, h, lw = _parse_addr(buf, ts, te, groups)
                            if fa < 0:
                                fam[slot, rec] = 0
                                if st == 0:
                                    st = 3
                                    bf = f
                            else:
                                fam[slot, rec] = fa
                            hi[slot, rec] = h
                            lo[slot, rec] = lw
                    elif k == 2:  # CODE
                        code = 0
                        if not is_null:
                            for w in range(code_lens.shape[1]):
                                wl = code_lens[slot, w]
                                if wl == te - ts and wl > 0:
                                    same = True
                                    for j in range(wl):
                                        if buf[ts + j] != code_words[slot, w, j]:
                                            same = False
                                            break
                                    if same:
                                        code = w + 1
                                        break
                            if code == 0 and st == 0:
                                st = 4
                                bf = f
                        codes[slot, rec] = code
            last_end = i
            f += 1
        if f > 0:
            for ff in range(f, nfields):  # fields the line lacks: null, never left unset
                k = kinds[ff]
                if k < 0:
                    continue
                slot = slots[ff]
                if str_slots[ff] >= 0:
                    str_start[str_slots[ff], rec] = 0
                    str_len[str_slots[ff], rec] = -1
                if k == 0:
                    ints[slot, rec] = 0
                    int_null[slot, rec] = True
                elif k == 1:
                    fam[slot, rec] = 0
                    hi[slot, rec] = 0
                    lo[slot, rec] = 0
                elif k == 2:
                    codes[slot, rec] = 0
            if f != nfields and st == 0:
                st = 1
                bf = -1
            line_start[rec] = ls
            line_end[rec] = last_end
            line_no[rec] = phys
            status[rec] = st
            bad_field[rec] = bf
            rec += 1
        # skip to the end of the line (a line longer than the format is already flagged)
        while i < n and buf[i] != 10:
            i += 1
        phys += 1
        i += 1
    return rec, phys


@njit(cache=True, nogil=True)
def count_newlines(buf: np.ndarray) -> int:
    n = 0
    for i in range(buf.shape[0]):
        n += buf[i] == 10
    return n


@njit(cache=True, nogil=True)
def parse_addr_strings(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray,
                       fam: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> int:
    """Addresses held in an Arrow string array (offsets + data). Returns the number of bad ones."""
    groups = np.zeros(8, np.int64)
    bad = 0
    for r in range(fam.shape[0]):
        s = offsets[r]
        e = offsets[r + 1]
        if not valid[r] or (e - s == 1 and data[s] == 45) or e == s:
            fam[r] = 0
            hi[r] = 0
            lo[r] = 0
            continue
        fa, h, lw = _parse_addr(data, s, e, groups)
        if fa < 0:
            fam[r] = -1
            bad += 1
        else:
            fam[r] = fa
        hi[r] = h
        lo[r] = lw
    return bad


@njit(cache=True, nogil=True)
def gather_slices(buf: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copy byte slices into one Arrow-style (offsets, data) pair; a negative length is null."""
    n = starts.shape[0]
    offsets = np.empty(n + 1, np.int64)
    total = 0
    offsets[0] = 0
    for r in range(n):
        if lens[r] > 0:
            total += lens[r]
        offsets[r + 1] = total
    data = np.empty(total, np.uint8)
    p = 0
    for r in range(n):
        ln = lens[r]
        s = starts[r]
        for j in range(ln):
            data[p + j] = buf[s + j]
        if ln > 0:
            p += ln
    return offsets, data
