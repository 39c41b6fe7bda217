"""Dredge: AWS VPC flow logs, enriched with the application that owned each IP at the flow's time."""

import os
import sys

# numpy's OpenBLAS starts a spinning thread per core when numpy is imported, and Dredge never
# multiplies matrices: on two cores those threads burned ~0.1 CPU s of every process's start
# (each replay worker's too) and competed with the replay's own threads. Set before numpy
# loads; a value already in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Arrow's allocator: jemalloc gives memory back that pyarrow's default (mimalloc) kept. One-core
# replays, peak RSS: 2M flows 326-373 -> 315-331 MB, 20M flows 473 -> 435 MB, CPU the same
# (medians of 5 and of 2 runs). Read when pyarrow makes its first allocation; a value already
# in the environment wins (``system``, ``mimalloc``). Linux only: the manylinux wheels have
# jemalloc; where a build lacks it, pyarrow would warn on every start.
if sys.platform.startswith("linux"):
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

__version__ = "0.1.0"
__all__ = ["__version__"]
