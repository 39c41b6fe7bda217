"""Assignment events from the sample's ownership history, delivered late, for the holdback
accuracy study (``benchmarks/holdback.py``).

Each interval of :func:`dredge.generate.owners.build_intervals` becomes an assignment at its
start and, if it ends, a release at its end. Each event *arrives* ``delay`` seconds after
it happened, ``delay`` uniform in [0, max_delay_s]: so arrival order is not event order,
and some releases arrive before the assignment they end.

The other generate modules' output does not change: this module only reads intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from dredge.generate.estate import NAT_APP, TYPES, Estate
from dredge.generate.owners import Intervals


@dataclass(frozen=True)
class AssignmentEvents:
    """Columns, sorted by arrival. ``app`` is an index into estate.apps (len = the NAT
    app) or -1 for a release."""

    slot: np.ndarray
    time: np.ndarray
    app: np.ndarray
    arrival: np.ndarray

    def __len__(self) -> int:
        return int(self.slot.shape[0])


def assignment_events(rng: np.random.Generator, iv: Intervals, max_delay_s: float
                      ) -> AssignmentEvents:
    ends = np.flatnonzero(iv.end >= 0)
    slot = np.concatenate([iv.slot, iv.slot[ends]])
    t = np.concatenate([iv.start, iv.end[ends]])
    app = np.concatenate([iv.app, np.full(ends.size, -1, np.int64)])
    delay = (rng.random(slot.size) * max_delay_s).astype(np.int64) if max_delay_s > 0 \
        else np.zeros(slot.size, np.int64)
    arrival = t + delay
    order = np.argsort(arrival, kind="stable")
    return AssignmentEvents(slot[order], t[order], app[order], arrival[order])


def app_names(estate: Estate) -> list[str]:
    return [*estate.apps, NAT_APP]


def write_events(path: Path, estate: Estate, ev: AssignmentEvents) -> int:
    """The events as JSON lines in arrival order (what the file provider follows)."""
    names = app_names(estate)
    stype = estate.ep["stype"]
    lines = []
    for s, t, a in zip(ev.slot.tolist(), ev.time.tolist(), ev.app.tolist(), strict=True):
        rec: dict[str, object] = {"ip": estate.text[s]}
        if a < 0:
            rec["unassigned_at"] = t
        else:
            rec |= {"app": names[a], "type": TYPES[int(stype[s])], "assigned_at": t}
        lines.append(orjson.dumps(rec))
    data = b"\n".join(lines) + (b"\n" if lines else b"")
    path.write_bytes(data)
    return len(data)
