"""Plain flow-log text made canonical: lines separated by one ``b"\\n"``, none of them blank.

Records written by hand or by other shippers may use ``\\r\\n``, end with a newline, or
hold blank lines. The whole chunk is rewritten at once (one regex pass in C, skipped when
the text is already canonical) so the parser can count lines with ``bytes.count``.
"""

from __future__ import annotations

import re

# a line break with the blanks around it, including whole blank lines
_BREAK = re.compile(rb"[ \t\r]*\n[ \t\r\n]*")
_EDGES = b" \t\r\n"


def normalize_lines(text: bytes) -> bytes:
    """``text`` with ``\\r\\n`` made ``\\n``, blank lines and edge blanks of each line removed.

    The result has no leading or trailing newline; it is empty when ``text`` holds no line.
    """
    if b"\r" in text or b"\n\n" in text or b" \n" in text or b"\n " in text or b"\t" in text:
        text = _BREAK.sub(b"\n", text)
    return text.strip(_EDGES)


def count_lines(normalized: bytes) -> int:
    """The number of lines in the output of ``normalize_lines``."""
    return normalized.count(b"\n") + 1 if normalized else 0
