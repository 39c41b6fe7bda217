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
it only skips work where the answer is known.

The scan is C (``cwl_scan`` in ``_native.c``, which runs without the GIL); this module
allocates its output and shapes the answer. A document of 500 events takes ~44 us of CPU,
~5x less than orjson plus the normalization (~240 us) and ~4.5x less than the numba kernel
it replaced in December 2026 (~200 us); ``benchmarks/pipeline.py`` shows the whole decode.
"""

from __future__ import annotations

import numpy as np

from dredge.decode import _native

# Result codes of _native.cwl_scan.
DATA = 0
CONTROL = 1
FALLBACK = 2


def scan(doc: bytes | bytearray) -> tuple[bool, bytes, int, str] | None:
    """``(is_data, lines, line_count, log_stream)`` of a document in the shape above, or
    ``None`` (take the reference path). ``lines`` is canonical (lines.py)."""
    out = np.empty(len(doc), np.uint8)  # the lines never outgrow the document
    kind, lines, size, ls_start, ls_end = _native.cwl_scan(doc, out)
    if kind == FALLBACK:
        return None
    log_stream = bytes(doc[ls_start:ls_end]).decode("ascii")
    return kind == DATA, out[:size].tobytes(), lines, log_stream
