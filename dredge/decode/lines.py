"""Plain flow-log text made canonical: lines separated by one ``b"\\n"``, none of them blank.

Records written by hand or by other shippers may use ``\\r\\n``, end with a newline, or
hold blank lines. A chunk of 16 KiB or more is checked with numpy (one pass to find the
newlines, then work per line, not per byte) and comes back untouched when it is already
canonical, or as a view without its edge newlines; only a chunk with blanks inside is
rebuilt, by one boolean-mask gather. Smaller chunks take a pure-bytes path, because
numpy's fixed cost per call would dominate there.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Text = bytes | memoryview  # both are accepted by bytes.join, which builds the batch buffer

_BLANKS = b" \t\r"  # blanks trimmed from both ends of a line
_EDGES = _BLANKS + b"\n"
_IS_BLANK = np.zeros(256, dtype=np.bool_)
_IS_BLANK[list(_BLANKS)] = True
_SMALL = 16 * 1024  # below this, bytes methods beat numpy and its fixed cost per call
_TRIM_ROUNDS = 4  # vectorised trimming rounds before the rare leftover lines go one by one

_Offsets = npt.NDArray[np.int64]


def normalize_lines(text: bytes) -> tuple[Text, int]:
    """``text`` as canonical lines, and how many.

    ``\\r\\n`` becomes ``\\n``; spaces, tabs and carriage returns at either end of a line
    are removed; lines left empty are dropped. The result has no leading or trailing
    newline and is empty when ``text`` holds no line. Blanks inside a line are kept.
    """
    if len(text) <= _SMALL:
        return _normalize_small(text)
    return _normalize_large(text)


def _normalize_small(text: bytes) -> tuple[Text, int]:
    core = text.strip(_EDGES)  # the same object when there is nothing to strip
    if not core:
        return b"", 0
    if b"\r" in core or b"\t" in core or b"\n\n" in core or b" \n" in core or b"\n " in core:
        lines = [s for line in core.split(b"\n") if (s := line.strip(_BLANKS))]
        return b"\n".join(lines), len(lines)
    return core, core.count(b"\n") + 1


def _normalize_large(text: bytes) -> tuple[Text, int]:
    lines, starts = split_lines(text)
    return lines, starts.size


def split_lines(text: bytes) -> tuple[Text, npt.NDArray[np.int64]]:
    """Like ``normalize_lines``, but also where each kept line starts in ``text``.

    The offsets let a caller that joined several pieces into ``text`` tell which piece
    each line came from (``np.searchsorted`` over the pieces' offsets).
    """
    a = np.frombuffer(text, dtype=np.uint8)
    newlines = np.flatnonzero(a == 10)
    starts = np.empty(newlines.size + 1, dtype=np.int64)
    starts[0] = 0
    starts[1:] = newlines + 1
    ends = np.empty(newlines.size + 1, dtype=np.int64)
    ends[:-1] = newlines
    ends[-1] = a.size
    if (ends > starts).all() and not (_IS_BLANK[a[ends - 1]].any() or _IS_BLANK[a[starts]].any()):
        return text, starts  # canonical already: the common case
    trimmed = _trim(text, a, starts, ends, at_end=True)
    trimmed |= _trim(text, a, starts, ends, at_end=False)
    kept = np.flatnonzero(ends > starts)
    if kept.size == 0:
        return b"", kept
    first, last = int(kept[0]), int(kept[-1])
    if not trimmed and last - first + 1 == kept.size:  # the only blank lines are at the edges
        return memoryview(text)[starts[first] : ends[last]], starts[kept]
    return _gather(a, starts[kept], ends[kept]), starts[kept]


def _trim(
    text: bytes, a: npt.NDArray[np.uint8], starts: _Offsets, ends: _Offsets, *, at_end: bool
) -> bool:
    """Move ``ends`` back (or ``starts`` forward) over blanks, in place; say if any moved."""
    moved = False
    live = np.flatnonzero(ends > starts)
    for _ in range(_TRIM_ROUNDS):
        edge = ends[live] - 1 if at_end else starts[live]
        live = live[_IS_BLANK[a[edge]]]
        if live.size == 0:
            return moved
        moved = True
        if at_end:
            ends[live] -= 1
        else:
            starts[live] += 1
        live = live[ends[live] > starts[live]]
    for i in live.tolist():  # a line with more edge blanks than rounds: rare, so one by one
        line = text[starts[i] : ends[i]]
        if at_end:
            ends[i] = starts[i] + len(line.rstrip(_BLANKS))
        else:
            starts[i] = ends[i] - len(line.lstrip(_BLANKS))
    return moved


def _gather(a: npt.NDArray[np.uint8], starts: _Offsets, ends: _Offsets) -> memoryview:
    """The bytes ``a[starts[i]:ends[i]]`` joined with ``b"\\n"``, by one mask (no loop per line)."""
    # Keep one byte after every line but the last (there is one: the line's own newline or
    # a trimmed blank) and overwrite it with the separator.
    stops = ends.copy()
    stops[:-1] += 1
    mask = np.zeros(a.size + 1, dtype=np.int8)
    mask[starts] = 1
    mask[stops] -= 1  # a stop may fall on the next start: the ranges then simply touch
    np.cumsum(mask, out=mask)  # 1 inside a kept range, 0 outside
    out = a[mask[:-1].view(np.bool_)]
    out[np.cumsum(ends[:-1] - starts[:-1] + 1) - 1] = 10
    return out.data
