"""Types of the compiled line writer in ``_native.c`` (wrapped by lines.py ``format_lines``).
Arrays pass through the buffer protocol: C-contiguous, aligned, of the item type each
argument names."""

from typing import Any

import numpy as np

Buffer = bytes | bytearray | memoryview | np.ndarray[Any, Any]

def format_rows(table: Buffer, rows: int, fields: int, is_str: Buffer, pool: Buffer,
                offsets: Buffer, lengths: Buffer, out: Buffer, line_end: Buffer, /) -> int:
    """Bytes written to ``out``: one space-separated line per row of the int64 table."""
