"""The vectorized join: both sides of every flow get the owner of their address at the
flow's own start time (one index snapshot per batch).

Lookups are counted by result (:class:`~dredge.index.snapshot.LookupStats`: owner, cidr,
unknown, internet), returned for the caller to add up and counted in
``dredge_enrich_lookups_total``.
"""

from __future__ import annotations

import numpy as np

from dredge.flowlog.columns import FlowColumns
from dredge.index.snapshot import IndexSnapshot, LookupStats
from dredge.telemetry.metrics import counter

lookups_total = counter("dredge_enrich_lookups_total",
                        "Address lookups by result (owner, cidr, unknown, internet).", ["result"])
_RESULTS = ("owner", "cidr", "unknown", "internet")


def enrich(cols: FlowColumns, snapshot: IndexSnapshot
           ) -> tuple[np.ndarray, np.ndarray, LookupStats]:
    """Owner ids (rows of ``snapshot.owners``) for the source and destination of each flow,
    and how both sides' lookups were answered."""
    src, s_stats = snapshot.lookup(cols.src, cols.start)
    dst, d_stats = snapshot.lookup(cols.dst, cols.start)
    stats = s_stats + d_stats
    for result in _RESULTS:
        v = getattr(stats, result)
        if v:
            lookups_total.labels(result).inc(v)
    return src, dst, stats
