"""Who owned each slot when: the intervals behind owners.jsonl.

A slot's timeline starts before the window and hands the address from app to app (never to
the app it just had), back-to-back half of the time and after a gap otherwise, until past the
window's end, where the last interval is usually left open (``end`` null). NAT gateways and
load balancers own their addresses for the whole window. A few intervals are overlapped by a
later-starting one for another app that runs to the same end: under "latest start wins" the
later one owns the overlap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from dredge.generate.estate import LAMBDA, LOAD_BALANCER, NAT_APP, NAT_GATEWAY, TYPES, Estate
from dredge.generate.lines import I64

_MEDIAN_HOURS = np.array([14.0, 4.0, 3.0, 1.5])  # instance, eks-pod, ecs-task, lambda
_RFC3339_SHARE = 0.03
_OVERLAP_SHARE = 0.003


@dataclass(frozen=True)
class Intervals:
    slot: I64
    start: I64
    end: I64  # -1: still owned
    app: I64  # index into estate.apps; len(estate.apps) is the NAT gateways' app
    canary: np.ndarray


def _draw_apps(rng: np.random.Generator, estate: Estate, stype: I64, prev: I64) -> I64:
    """An app of each slot's type, by popularity, other than ``prev`` where there is one."""
    out = np.empty(len(stype), dtype=np.int64)
    for t in range(LAMBDA + 1):
        rows = np.flatnonzero(stype == t)
        cand = np.flatnonzero(estate.app_type == t)
        if not len(cand):
            cand = np.arange(len(estate.apps))
        cum = np.cumsum(estate.app_weight[cand])
        k = np.minimum(np.searchsorted(cum, rng.random(len(rows)) * cum[-1]), len(cand) - 1)
        k = np.where(cand[k] == prev[rows], (k + 1) % len(cand), k)
        out[rows] = cand[k]
    return out


def build_intervals(rng: np.random.Generator, estate: Estate, start: int, end: int) -> Intervals:
    stype = estate.ep["stype"][: estate.n_slots]
    fixed = np.flatnonzero(stype >= NAT_GATEWAY)
    lb_app = np.minimum(rng.zipf(1.6, len(fixed)) - 1, len(estate.apps) - 1)
    parts = [
        (
            fixed,
            start - rng.integers(86_400, 30 * 86_400, len(fixed)),
            np.full(len(fixed), -1),
            np.where(stype[fixed] == LOAD_BALANCER, lb_app, len(estate.apps)),
        )
    ]
    moving = np.flatnonzero(stype < NAT_GATEWAY)
    median = (_MEDIAN_HOURS[stype[moving]] * 3600).astype(np.int64)
    cur = start - (rng.random(len(moving)) * 2 * median).astype(np.int64)
    prev = np.full(len(moving), -1, dtype=np.int64)
    alive = np.arange(len(moving))
    while len(alive):
        n = len(alive)
        dur = np.maximum(300, (median[alive] * rng.lognormal(0.0, 0.9, n)).astype(np.int64))
        app = _draw_apps(rng, estate, stype[moving[alive]], prev[alive])
        stop = cur[alive] + dur
        done = stop >= end
        left_open = done & (rng.random(n) < 0.85)
        parts.append((moving[alive], cur[alive], np.where(left_open, -1, stop), app))
        gap = np.where(rng.random(n) < 0.5, 0, rng.integers(1, 3600, n))
        cur[alive] = stop + gap
        prev[alive] = app
        alive = alive[~done & (cur[alive] < end)]
    slot, first, last, app = (np.concatenate(c) for c in zip(*parts, strict=True))
    # Overlaps: B starts inside A (both in the window) and ends with A, for another app.
    closed = np.flatnonzero(
        (last > start) & (first < end) & (last - first >= 600) & (stype[slot] < NAT_GATEWAY)
    )
    k = min(len(closed), max(1, round(_OVERLAP_SHARE * len(moving))))
    a = rng.choice(closed, size=k, replace=False) if k else closed[:0]
    b_start = first[a] + ((last[a] - first[a]) * rng.uniform(0.3, 0.7, k)).astype(np.int64)
    b_app = _draw_apps(rng, estate, stype[slot[a]], app[a])
    slot, first, last, app = (
        np.concatenate(c)
        for c in ((slot, slot[a]), (first, b_start), (last, last[a]), (app, b_app))
    )
    order = np.lexsort((slot, first))
    canary = rng.random(len(order)) < 0.1
    return Intervals(slot[order], first[order], last[order], app[order], canary)


def _rfc3339(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_owners(path: Path, rng: np.random.Generator, estate: Estate, iv: Intervals) -> int:
    """owners.jsonl, one interval a line, by start; a few times as RFC 3339 text. Its size."""
    ep, pool, sites = estate.ep, estate.pool, estate.sites
    suffix = []
    for s in range(estate.n_slots):
        site = sites[int(ep["site"][s])]
        rest = {
            "account": site.account,
            "region": site.region,
            "az": pool.text(int(ep["az"][s])),
            "vpc": site.vpc,
            "subnet": pool.text(int(ep["subnet"][s])),
            "type": TYPES[int(ep["stype"][s])],
        }
        suffix.append(orjson.dumps(rest).decode()[1:])
    names = [*estate.apps, NAT_APP]
    as_text = rng.random((len(iv.slot), 2)) < _RFC3339_SHARE
    lines = []
    for i, (s, t0, t1, a, c) in enumerate(
        zip(
            iv.slot.tolist(),
            iv.start.tolist(),
            iv.end.tolist(),
            iv.app.tolist(),
            iv.canary.tolist(),
            strict=True,
        )
    ):
        begin = f'"{_rfc3339(t0)}"' if as_text[i, 0] else str(t0)
        finish = "null" if t1 < 0 else f'"{_rfc3339(t1)}"' if as_text[i, 1] else str(t1)
        app = names[a]
        cluster = f"{app}-canary" if c and a < len(estate.apps) else f"{app}-prod"
        lines.append(
            f'{{"ip":"{estate.text[s]}","start":{begin},"end":{finish},'
            f'"app":"{app}","cluster":"{cluster}",{suffix[s]}\n'
        )
    data = "".join(lines).encode()
    path.write_bytes(data)
    return len(data)
