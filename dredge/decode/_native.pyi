"""Types of the compiled kernels in ``_native.c`` (see that file and the modules that wrap
them: cwlscan.py, kplscan.py). Arrays pass through the buffer protocol: C-contiguous,
aligned, of the item type each argument names."""

from typing import Any

import numpy as np

Buffer = bytes | bytearray | memoryview | np.ndarray[Any, Any]

def cwl_scan(doc: Buffer, out: Buffer, /) -> tuple[int, int, int, int, int]:
    """(kind, lines, output length, logStream start, logStream end); ``out``: uint8."""

def kpl_spans(data: Buffer, end: int, pk: Buffer, ehk: Buffer, has_ehk: Buffer,
              starts: Buffer, ends: Buffer, /) -> tuple[int, int, int, int]:
    """(status, records, partition keys, explicit hash keys) of ``data[4:end]``."""

def kpl_gather(data: Buffer, starts: Buffer, ends: Buffer, out: Buffer, /) -> int:
    """Bytes written to ``out``: the int64 spans of ``data`` joined with newlines."""
