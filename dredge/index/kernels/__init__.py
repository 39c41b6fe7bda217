"""Compiled (C) kernels of the index, re-exported here: ``from dredge.index import kernels``.

- :mod:`.layout`: the hash tables' layout; hashing, ordering and filling them;
- :mod:`.lookup`: owner lookups in those tables (prefetching software pipeline);
- :mod:`.intervals`: flattening overlapping intervals, merging sorted event runs.

Light to import (numpy and one C extension, ``_native``: nothing is compiled at start).
"""

from dredge.index.kernels.intervals import flatten, merge_sorted
from dredge.index.kernels.layout import (
    MAX_SEGMENTS,
    OPEN,
    W4,
    W6,
    addr_hash,
    fill_table,
    probe_slots,
    sort_runs,
    table_bits,
    zeros,
)
from dredge.index.kernels.lookup import lookup, lookup_networks

__all__ = [
    "MAX_SEGMENTS",
    "OPEN",
    "W4",
    "W6",
    "addr_hash",
    "fill_table",
    "flatten",
    "lookup",
    "lookup_networks",
    "merge_sorted",
    "probe_slots",
    "sort_runs",
    "table_bits",
    "zeros",
]
