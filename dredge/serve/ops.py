"""``/api/ops``: the daemon's health for the Operations page, read back from the process's
Prometheus registry (the components declare their metrics; nothing is counted twice).

Flush latency is *recent*: p50/p99 of ``dredge_sink_flush_seconds`` over the last
``window_s`` (the difference between the histogram now and a remembered earlier reading),
interpolated within buckets as Prometheus' ``histogram_quantile`` does.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry

Buckets = list[tuple[float, float]]  # (upper bound, cumulative count)


def quantile(q: float, buckets: Buckets) -> float | None:
    """``histogram_quantile`` over cumulative buckets (the last one +Inf); None if empty."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> [(labels, value)] of everything in the registry."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in registry.collect():
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


class OpsReader:
    def __init__(self, registry: CollectorRegistry, window_s: float = 60.0,
                 sink: str = "duckdb") -> None:
        self._registry = registry
        self._window_s = window_s
        self._sink = sink
        self._history: deque[tuple[float, Buckets]] = deque()
        self._lock = threading.Lock()

    def _flush_buckets(self, found: dict[str, list[tuple[dict[str, str], float]]]) -> Buckets:
        rows = [(float(labels["le"]), v) for labels, v in found.get("dredge_sink_flush_seconds_bucket", [])
                if labels.get("sink") == self._sink]
        return sorted(rows)

    def _recent(self, now: float, current: Buckets) -> tuple[Buckets, float]:
        """Buckets of the flushes in about the last window, and the seconds they cover."""
        with self._lock:
            self._history.append((now, current))
            while len(self._history) > 1 and now - self._history[1][0] >= self._window_s:
                self._history.popleft()
            then, old = self._history[0]
        if then == now or len(old) != len(current):
            return current, 0.0
        return [(b, c - o) for (b, c), (_, o) in zip(current, old, strict=True)], now - then

    def read(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        found = samples(self._registry)
        behind = [{"stream": labels.get("stream", ""), "shard": labels.get("shard", ""),
                   "millis_behind_latest": v}
                  for labels, v in found.get("dredge_kinesis_millis_behind_latest", [])]
        held = [v for _, v in found.get("dredge_kinesis_leases_held", [])]
        recent, span = self._recent(now, self._flush_buckets(found))
        dead: dict[str, float] = {}
        for labels, v in found.get("dredge_parse_records_total", []):
            if labels.get("source") == "deadletter":
                dead[labels.get("outcome", "")] = v
        freshness = {labels.get("provider", ""): round(now - v, 3)
                     for labels, v in found.get("dredge_index_provider_updated_timestamp_seconds", [])}
        flushes = sum(v for _, v in found.get("dredge_stream_flushes_total", []))
        return {
            "daemon": True,
            "shards": sorted(behind, key=lambda r: (r["stream"], r["shard"])),
            "leases_held": int(held[0]) if held else 0,
            "flush": {"count": flushes, "recent": recent[-1][1] if recent else 0,
                      "window_s": round(span, 3),
                      "p50_s": quantile(0.5, recent), "p99_s": quantile(0.99, recent)},
            "dead_letters": dead,
            "index_freshness_s": freshness,
        }
