"""The vectorized join: both sides of every flow get the owner of their address at the
flow's own start time (one index snapshot per batch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dredge.flowlog.columns import FlowColumns
from dredge.index.snapshot import IndexSnapshot
from dredge.telemetry.metrics import counter
from dredge.telemetry.tally import Tally

lookups_total = counter("dredge_enrich_lookups_total",
                        "Address lookups by result (owner, cidr, unknown, internet).", ["result"])
_RESULTS = ("owner", "cidr", "unknown", "internet")


@dataclass
class JoinCounts(Tally):
    """Both sides' lookups by result, added up from the snapshot's ``LookupStats``."""

    owner: int = 0  # an interval of the ownership history
    cidr: int = 0  # a CIDR map's prefix
    unknown: int = 0  # nothing, private address space
    internet: int = 0  # nothing, public address space

    @property
    def lookups(self) -> int:
        return self.owner + self.cidr + self.unknown + self.internet


def enrich(cols: FlowColumns, snapshot: IndexSnapshot, counts: JoinCounts | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Owner ids (rows of ``snapshot.owners``) for the source and destination of each flow."""
    src, s_stats = snapshot.lookup(cols.src, cols.start)
    dst, d_stats = snapshot.lookup(cols.dst, cols.start)
    for stats in (s_stats, d_stats):
        if counts is not None:
            counts.add(stats)
        for result in _RESULTS:
            v = getattr(stats, result)
            if v:
                lookups_total.labels(result).inc(v)
    return src, dst
