"""glibc's malloc told to keep the memory a replay frees and allocates again.

A replay allocates the same large blocks over and over: a text chunk of ~16 MB, the inflated
pieces it is made of, the columns parsed from it. glibc hands blocks that large (past its
mmap threshold) or the free top of its heap (past its trim threshold) back to the kernel,
and the next allocation faults the pages in again, zeroed: ~135k page faults and ~0.55 s of
system time in a one-core replay of 2M flows. With both thresholds fixed high, the freed
memory is reused instead: ~80k faults and ~0.40 s of system time, for ~+20 MB of peak RSS
(see the README's Performance section for the runs).

Both thresholds are set, or neither: fixing only the trim threshold turns off glibc's own
adjustment of the mmap threshold, which then stays at 128 KiB, and every block of a chunk is
mapped afresh (~590k faults, +40 % CPU). A value in the environment (``MALLOC_*_``,
``GLIBC_TUNABLES``) wins; off glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import os
import sys

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 256 << 20

_OWN_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD,
                      trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds for this process; True if both were set."""
    if not sys.platform.startswith("linux") or any(k in os.environ for k in _OWN_SETTINGS):
        return False
    import ctypes  # numpy has already imported it in a replay

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library to ask, or one without mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not mallopt(M_MMAP_THRESHOLD, mmap_threshold):
        return False  # refused: then the trim threshold must stay glibc's
    # glibc accepts any trim threshold (it refuses only an mmap threshold past its maximum)
    return bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
