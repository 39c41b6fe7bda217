"""Where the stream daemon gets the IP -> application index: a ``SnapshotSource``.

A batch reads ``current()`` once and uses that snapshot for all its lines; providers swap
the reference when they build a new snapshot and never mutate one (see STYLE.md). The
static source serves one snapshot built from files at start; live providers (index
updates from a feed) implement the same protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from dredge.index.snapshot import IndexSnapshot
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)


class SnapshotSource(Protocol):
    def current(self) -> IndexSnapshot:
        """The snapshot to enrich the next batch with (cheap: a reference read)."""
        ...


class StaticSnapshots:
    """One snapshot for the daemon's whole life."""

    def __init__(self, snapshot: IndexSnapshot) -> None:
        self._snapshot = snapshot

    def current(self) -> IndexSnapshot:
        return self._snapshot

    @classmethod
    def from_files(cls, ownership: list[str], cidrs: list[str]) -> StaticSnapshots:
        from dredge.index.loaders import load_index

        snap, report = load_index([Path(p) for p in ownership], [Path(p) for p in cidrs])
        log.info("index_loaded", intervals=report.intervals, segments=report.segments,
                 networks=report.networks, invalid_intervals=report.invalid_intervals,
                 invalid_networks=report.invalid_networks)
        return cls(snap)
