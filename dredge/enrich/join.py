"""The vectorized join: both sides of every flow get the owner of their address at the
flow's own start time (one index snapshot per batch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dredge.flowlog.columns import FlowColumns
from dredge.index.snapshot import IndexSnapshot, LookupStats
from dredge.telemetry import metrics


@dataclass
class JoinCounts:
    owner: int = 0
    cidr: int = 0
    unknown: int = 0
    internet: int = 0

    def add(self, s: LookupStats) -> None:
        self.owner += s.owner
        self.cidr += s.cidr
        self.unknown += s.unknown
        self.internet += s.internet

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
        for result in ("owner", "cidr", "unknown", "internet"):
            v = getattr(stats, result)
            if v:
                metrics.enrich_lookups_total.labels(result).inc(v)
    return src, dst
