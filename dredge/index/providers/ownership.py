"""Ownership history files as a provider: intervals (JSON lines, as ``replay --index``) read
once at start into the live index, each file its own source (``files/<path>``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dredge.index.owners import OWNER_FIELDS, Owner
from dredge.index.providers.base import IndexFeed, SourceSink
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)

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

    def __init__(self, paths: list[str], manager: IndexFeed) -> None:
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
