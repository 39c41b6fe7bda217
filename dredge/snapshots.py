"""Where the stream daemon gets the IP -> application index: a ``SnapshotSource``.

A batch reads ``current()`` once and uses that snapshot for all its lines; providers swap
the reference when they build a new snapshot and never mutate one (see STYLE.md).

Two sources, chosen by :func:`index_from_config` from ``[index]``:

- :class:`StaticSnapshots`: one snapshot built from files at start (``ownership`` history
  files alone, no provider, no ``state_path``: what ``dredge replay --index/--cidrs`` does,
  no retention applied);
- the live :class:`~dredge.index.live.IndexManager` with its providers (EC2 inventory,
  assignment events, CIDR maps reloaded on change, ownership files read once at start);
  ``current()`` raises ``OwnerIndexError`` once a provider or the rebuild loop crashed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from dredge.index.snapshot import IndexSnapshot
from dredge.telemetry.logging import get_logger

if TYPE_CHECKING:
    from dredge.index.live import IndexManager
    from dredge.index.providers.config import IndexConfig

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


async def index_from_config(index: IndexConfig) -> tuple[SnapshotSource, IndexManager | None]:
    """The snapshot source ``[index]`` describes; the manager (not started) when live."""
    if not index.live:
        snaps = await asyncio.to_thread(StaticSnapshots.from_files, index.ownership, index.cidrs)
        return snaps, None
    from dredge.index.live import IndexManager
    from dredge.index.providers.cidr import CidrFiles
    from dredge.index.providers.config import EventFileConfig
    from dredge.index.providers.ec2 import Ec2Inventory
    from dredge.index.providers.events import AssignmentFile, AssignmentStream
    from dredge.index.providers.ownership import OwnershipFiles

    manager = IndexManager(index.live_config())
    if index.ownership:
        manager.add(OwnershipFiles(index.ownership, manager))
    for ec2 in index.ec2:
        manager.add(Ec2Inventory(ec2, manager))
    for ev in index.events:
        cfg = ev.provider_config()
        if isinstance(cfg, EventFileConfig):
            manager.add(AssignmentFile(cfg, manager))
        else:
            manager.add(AssignmentStream(cfg, manager))
    if index.cidrs:
        manager.add(CidrFiles(index.cidr_config(), manager))
    return manager, manager
