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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dredge.index.snapshot import OWNER_FIELDS, IndexSnapshot
from dredge.telemetry.logging import get_logger

if TYPE_CHECKING:
    from dredge.config import IndexSection
    from dredge.index.live import IndexManager, SourceSink
    from dredge.index.owners import Owner

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


OWNERSHIP_KIND = "files"
# Ownership intervals that began before the retention cutoff start this long after it, so
# that they are not refused as too late while being submitted.
_CUTOFF_MARGIN_S = 60


class OwnershipFiles:
    """Provider: ownership history files (JSON lines of intervals, as ``replay --index``)
    read once at start into the live index, one source per file (``files/<path>``).

    Each interval becomes an assignment at its start and, if it ends, a release at its end,
    clipped to the index's retention: intervals that ended before the cutoff are left out,
    those that began before it begin just after it. Within one file, a later start ends the
    interval before it (the events model; the static index would let the earlier owner come
    back when the later interval ends). Re-read at each start: duplicates are compacted."""

    name = OWNERSHIP_KIND

    def __init__(self, paths: list[str], manager: IndexManager) -> None:
        self._manager = manager
        self._sinks = {p: manager.sink(f"{OWNERSHIP_KIND}/{p}", OWNERSHIP_KIND) for p in paths}
        self.failure: BaseException | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.load)

    async def stop(self) -> None:
        pass

    def load(self) -> int:
        """Submit every file's intervals (blocking). Returns the events accepted."""
        from dredge.index.loaders import load_ownership

        accepted = 0
        for path, sink in self._sinks.items():
            table = load_ownership(Path(path))
            accepted += _submit_intervals(sink, table, self._manager.cutoff() + _CUTOFF_MARGIN_S)
        return accepted


def _submit_intervals(sink: SourceSink, table: pa.Table, floor: int) -> int:
    start, end = table.column("start"), table.column("end")
    open_ = pc.is_null(end).to_numpy(zero_copy_only=False)
    end_s = pc.fill_null(end, 0).to_numpy().astype(np.int64)
    keep = pc.is_valid(start).to_numpy(zero_copy_only=False) & (open_ | (end_s > floor))
    rows = np.flatnonzero(keep)
    ends = rows[~open_[rows]]
    times = np.concatenate([np.maximum(pc.fill_null(start, 0).to_numpy()[rows], floor), end_s[ends]])
    ip = table.column("ip")
    ips = ip.take(pa.array(rows)).to_pylist() + ip.take(pa.array(ends)).to_pylist()
    cols = [table.column(f).take(pa.array(rows)).to_pylist() if f in table.column_names
            else [None] * len(rows) for f in OWNER_FIELDS]
    owners: list[Owner | None] = [*zip(*cols, strict=True), *([None] * len(ends))]
    result = sink.submit(ips, times, owners)
    log.info("ownership_file_loaded", source=sink.source, intervals=len(rows),
             clipped=len(table) - len(rows), accepted=result.accepted,
             invalid=result.invalid)
    return result.accepted


async def index_from_config(index: IndexSection) -> tuple[SnapshotSource, IndexManager | None]:
    """The snapshot source ``[index]`` describes; the manager (not started) when live."""
    if not index.live:
        snaps = await asyncio.to_thread(StaticSnapshots.from_files, index.ownership, index.cidrs)
        return snaps, None
    from dredge.index.cidr import CidrConfig, CidrFiles
    from dredge.index.ec2 import Ec2Inventory
    from dredge.index.events import AssignmentFile, AssignmentStream, EventFileConfig
    from dredge.index.live import IndexManager

    manager = IndexManager(index.live_config())
    if index.ownership:
        manager.add(OwnershipFiles(index.ownership, manager))
    for ec2 in index.ec2:
        manager.add(Ec2Inventory(ec2.provider_config(), manager))
    for ev in index.events:
        cfg = ev.provider_config()
        if isinstance(cfg, EventFileConfig):
            manager.add(AssignmentFile(cfg, manager))
        else:
            manager.add(AssignmentStream(cfg, manager))
    if index.cidrs:
        manager.add(CidrFiles(CidrConfig(tuple(index.cidrs), index.cidr_poll_interval_s), manager))
    return manager, manager
