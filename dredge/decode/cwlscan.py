"""The fast path for CloudWatch Logs subscription JSON: one compiled pass from the inflated
document to canonical flow-log lines, without building a Python object per log event.

``scan(doc)`` accepts only documents of the shape CloudWatch Logs writes, in plain ASCII::

    {"messageType": "DATA_MESSAGE" | "CONTROL_MESSAGE", "owner": "...", "logGroup": "...",
     "logStream": "...", "subscriptionFilters": ["...", ...],
     "logEvents": [{"id": "...", "timestamp": 1764000000000, "message": "..."}, ...]}

(any key order, spaces between tokens, each key at most once, ``messageType`` required, the
others optional; each event has a string ``message`` and at most a string ``id`` and an
integer ``timestamp``). For such a document it returns exactly what the reference path
(``cloudwatch.parse_cloudwatch`` then ``lines.normalize_lines``) returns: the messages
joined with ``b"\\n"``, each trimmed of spaces, empty ones dropped. Anything else, including
any escape sequence, control character, non-ASCII byte, duplicate key, unknown key or
other number form, is answered with ``None``: the caller then takes the reference path,
which decides (a line, or the dead-letter reason). So the fast path never changes a result;
it only skips work where the answer is known. About 3x cheaper than orjson plus the
normalization, per line (``benchmarks/pipeline.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Result codes of _scan.
DATA = 0
CONTROL = 1
FALLBACK = 2

# Keys, each a small integer once matched.
_KEYS = ("messageType", "owner", "logGroup", "logStream", "subscriptionFilters", "logEvents",
         "id", "timestamp", "message", "DATA_MESSAGE", "CONTROL_MESSAGE")
_WORDS = np.zeros((len(_KEYS), max(map(len, _KEYS))), np.uint8)
_LENS = np.array([len(k) for k in _KEYS], np.int64)
for _i, _k in enumerate(_KEYS):
    _WORDS[_i, : len(_k)] = np.frombuffer(_k.encode(), np.uint8)
_MESSAGE_TYPE, _OWNER, _LOG_GROUP, _LOG_STREAM, _FILTERS, _EVENTS = range(6)
_ID, _TIMESTAMP, _MESSAGE, _DATA_MESSAGE, _CONTROL_MESSAGE = range(6, 11)


_QUOTE, _BACKSLASH, _COLON, _COMMA, _SPACE, _NL = 34, 92, 58, 44, 32, 10
_LBRACE, _RBRACE, _LBRACKET, _RBRACKET, _MINUS, _ZERO, _NINE = 123, 125, 91, 93, 45, 48, 57


@njit(cache=True, nogil=True)
def _ws(buf: np.ndarray, i: int, n: int) -> int:
    while i < n and (buf[i] == 32 or buf[i] == 9 or buf[i] == 10 or buf[i] == 13):
        i += 1
    return i


@njit(cache=True, nogil=True)
def _string_end(i: int, quotes: np.ndarray) -> int:
    """A string opens at ``i``: the index of its closing quote, or -1. ``quotes[1:]`` are the
    positions of every quote in the document, ``quotes[0]`` the next one not yet used: with
    no escapes (see ``_scan``), a string ends at the next quote, found without a byte loop."""
    k = quotes[0]
    if k + 1 >= quotes.shape[0] or quotes[k] != i:
        return -1
    quotes[0] = k + 2
    return int(quotes[k + 1])


@njit(cache=True, nogil=True)
def _is(buf: np.ndarray, s: int, e: int, w: int) -> bool:
    """``buf[s:e]`` spells keyword ``w``."""
    if _LENS[w] != e - s:
        return False
    for j in range(e - s):  # noqa: SIM110 (numba compiles no generator into all())
        if buf[s + j] != _WORDS[w, j]:
            return False
    return True


@njit(cache=True, nogil=True)
def _which(buf: np.ndarray, s: int, e: int, words: np.ndarray, lens: np.ndarray) -> int:
    """The index of the keyword ``buf[s:e]`` spells, or -1."""
    for w in range(lens.shape[0]):
        if _is(buf, s, e, w):
            return w
    return -1


@njit(cache=True, nogil=True)
def _integer_end(buf: np.ndarray, i: int, n: int) -> int:
    """``-?(0|[1-9][0-9]{0,17})`` at ``i`` (fits in int64, as JSON and orjson read it): the
    index after it, or -1."""
    if i < n and buf[i] == _MINUS:
        i += 1
    if i >= n or not (_ZERO <= buf[i] <= _NINE):
        return -1
    if buf[i] == _ZERO:
        i += 1
    else:
        digits = 0
        while i < n and _ZERO <= buf[i] <= _NINE:
            i += 1
            digits += 1
            if digits > 18:
                return -1
    if i < n and (buf[i] == 46 or buf[i] == 101 or buf[i] == 69):  # . e E: not this fast path
        return -1
    return i


@njit(cache=True, nogil=True)
def _event(buf: np.ndarray, i: int, n: int, quotes: np.ndarray, out: np.ndarray, o: int,
           words: np.ndarray, lens: np.ndarray) -> tuple[int, int, int]:
    """One log event object at ``i``: (index after it or -1, new output length, lines added).
    The message, trimmed of spaces, is appended to ``out`` after a newline unless empty."""
    if i >= n or buf[i] != _LBRACE:
        return -1, o, 0
    i = _ws(buf, i + 1, n)
    seen_id = seen_ts = False
    ms = me = -1
    while True:
        ke = _string_end(i, quotes)
        if ke < 0:
            return -1, o, 0
        s = i + 1
        key = (_MESSAGE if _is(buf, s, ke, _MESSAGE) else _ID if _is(buf, s, ke, _ID)
               else _TIMESTAMP if _is(buf, s, ke, _TIMESTAMP) else -1)
        i = _ws(buf, ke + 1, n)
        if i >= n or buf[i] != _COLON:
            return -1, o, 0
        i = _ws(buf, i + 1, n)
        if key == _MESSAGE and ms < 0:
            end = _string_end(i, quotes)
            if end < 0:
                return -1, o, 0
            ms, me, i = i + 1, end, end + 1
        elif key == _ID and not seen_id:
            end = _string_end(i, quotes)
            if end < 0:
                return -1, o, 0
            seen_id, i = True, end + 1
        elif key == _TIMESTAMP and not seen_ts:
            i = _integer_end(buf, i, n)
            if i < 0:
                return -1, o, 0
            seen_ts = True
        else:  # unknown or repeated key
            return -1, o, 0
        i = _ws(buf, i, n)
        if i < n and buf[i] == _COMMA:
            i = _ws(buf, i + 1, n)
            continue
        if i < n and buf[i] == _RBRACE and ms >= 0:
            break
        return -1, o, 0
    while ms < me and buf[ms] == _SPACE:
        ms += 1
    while me > ms and buf[me - 1] == _SPACE:
        me -= 1
    if me == ms:
        return i + 1, o, 0
    if o > 0:
        out[o] = _NL
        o += 1
    k = me - ms
    for j in range(k):  # a plain loop: numba's slice assignment costs 10x more for short runs
        out[o + j] = buf[ms + j]
    return i + 1, o + k, 1


@njit(cache=True, nogil=True)
def _array(buf: np.ndarray, i: int, n: int, quotes: np.ndarray, events: bool, out: np.ndarray,
           o: int, words: np.ndarray, lens: np.ndarray) -> tuple[int, int, int]:
    """An array of plain strings, or (``events``) of log events: (index after it or -1,
    output length, lines)."""
    if i >= n or buf[i] != _LBRACKET:
        return -1, o, 0
    i = _ws(buf, i + 1, n)
    lines = 0
    if i < n and buf[i] == _RBRACKET:
        return i + 1, o, 0
    while True:
        if events:
            i, o, k = _event(buf, i, n, quotes, out, o, words, lens)
            lines += k
        else:
            end = _string_end(i, quotes)
            i = end + 1 if end >= 0 else -1
        if i < 0:
            return -1, o, 0
        i = _ws(buf, i, n)
        if i < n and buf[i] == _COMMA:
            i = _ws(buf, i + 1, n)
            continue
        if i < n and buf[i] == _RBRACKET:
            return i + 1, o, lines
        return -1, o, 0


@njit(cache=True, nogil=True)
def _scan(buf: np.ndarray, quotes: np.ndarray, out: np.ndarray, words: np.ndarray,
          lens: np.ndarray) -> tuple[int, int, int, int, int]:
    """(DATA/CONTROL/FALLBACK, lines, output length, logStream start, logStream end)."""
    n = buf.shape[0]
    refused = 0
    for j in range(n):  # no branch, no table: LLVM vectorizes this
        c = buf[j]
        refused |= (np.uint8(c - np.uint8(32)) >= np.uint8(96)) | (c == np.uint8(_BACKSLASH))
    if refused:
        return FALLBACK, 0, 0, 0, 0
    i = _ws(buf, 0, n)
    if i >= n or buf[i] != _LBRACE:
        return FALLBACK, 0, 0, 0, 0
    i = _ws(buf, i + 1, n)
    seen = np.zeros(6, np.bool_)
    kind = -1
    o = lines = 0
    ls_start = ls_end = 0
    while True:
        ke = _string_end(i, quotes)
        if ke < 0:
            return FALLBACK, 0, 0, 0, 0
        key = _which(buf, i + 1, ke, words, lens)
        if key < 0 or key >= 6 or seen[key]:
            return FALLBACK, 0, 0, 0, 0
        seen[key] = True
        i = _ws(buf, ke + 1, n)
        if i >= n or buf[i] != _COLON:
            return FALLBACK, 0, 0, 0, 0
        i = _ws(buf, i + 1, n)
        if key == _FILTERS or key == _EVENTS:  # noqa: SIM109 (a plain compare in numba)
            i, o, k = _array(buf, i, n, quotes, key == _EVENTS, out, o, words, lens)
            lines += k
            if i < 0:
                return FALLBACK, 0, 0, 0, 0
        else:
            end = _string_end(i, quotes)
            if end < 0:
                return FALLBACK, 0, 0, 0, 0
            if key == _MESSAGE_TYPE:
                word = _which(buf, i + 1, end, words, lens)
                if word == _DATA_MESSAGE:
                    kind = DATA
                elif word == _CONTROL_MESSAGE:
                    kind = CONTROL
                else:
                    return FALLBACK, 0, 0, 0, 0
            elif key == _LOG_STREAM:
                ls_start, ls_end = i + 1, end
            i = end + 1
        i = _ws(buf, i, n)
        if i < n and buf[i] == _COMMA:
            i = _ws(buf, i + 1, n)
            continue
        if i < n and buf[i] == _RBRACE:
            break
        return FALLBACK, 0, 0, 0, 0
    if _ws(buf, i + 1, n) != n or kind < 0:
        return FALLBACK, 0, 0, 0, 0
    return kind, lines, o, ls_start, ls_end


def scan(doc: bytes | bytearray) -> tuple[bool, bytes, int, str] | None:
    """``(is_data, lines, line_count, log_stream)`` of a document in the shape above, or
    ``None`` (take the reference path). ``lines`` is canonical (lines.py)."""
    buf = np.frombuffer(doc, np.uint8)
    at = np.flatnonzero(buf == _QUOTE)  # numpy's SIMD search; the kernel then hops quote to quote
    quotes = np.empty(at.size + 1, np.int64)
    quotes[0] = 1
    quotes[1:] = at
    out = np.empty(buf.shape[0], np.uint8)
    kind, lines, size, ls_start, ls_end = _scan(buf, quotes, out, _WORDS, _LENS)
    if kind == FALLBACK:
        return None
    log_stream = bytes(doc[ls_start:ls_end]).decode("ascii")
    return kind == DATA, out[:size].tobytes(), int(lines), log_stream
