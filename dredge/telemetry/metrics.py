"""Prometheus metrics: one registry per process, names ``dredge_<component>_<noun>_<unit>``.

The values live in ``telemetry/values.py`` (plain Python); ``prometheus_client`` is imported
only when ``REGISTRY`` is first asked for (the HTTP server, tests), so a one-shot command
that counts but never serves does not pay for it.

Each component declares its own metrics beside its code with :func:`counter`, :func:`gauge`
and :func:`histogram` (``sinks/metrics.py``, ``batcher.py``, ``index/metrics.py``, ...); this
module holds the registry, the helpers and the few metrics several components share. Labels
are bounded (stream, shard, sink, outcome, reason); never IPs or app names.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from dredge.errors import ConfigError
from dredge.telemetry.values import Collector, Counter, Gauge, Histogram, Metric

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    REGISTRY: CollectorRegistry

# every metric of the process, by name; exposed through REGISTRY
DECLARED: dict[str, Metric[Any]] = {}
_FAMILIES: set[str] = set()  # their exposed names: one name once
_registry: CollectorRegistry | None = None
_registry_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    """``REGISTRY``: the process's ``prometheus_client`` registry, made (and the package
    imported) on first use: by the HTTP server, the ops readers and tests, never by a replay."""
    global _registry
    if name != "REGISTRY":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _registry_lock:
        if _registry is None:
            from prometheus_client import CollectorRegistry

            registry = CollectorRegistry(auto_describe=True)
            registry.register(Collector(DECLARED))
            _registry = registry
        return _registry


@dataclass(frozen=True)
class MetricsConfig:
    """``[metrics]``: where the process's HTTP server listens (``dredge.serve``): /metrics,
    /healthz, /readyz, /api/*, the dashboards (``[serve]`` has its auth and limits)."""

    port: int = 9108  # 0 = no HTTP server
    host: str = "127.0.0.1"  # others need [serve] auth (or allow_unauthenticated)

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", "must be in 0..65535")

_M = TypeVar("_M", Counter, Gauge, Histogram)


def _declare(kind: type[_M], name: str, doc: str, labels: Sequence[str], **extra: Any) -> _M:
    if not name.startswith("dredge_"):
        raise ValueError(f"metric {name!r}: names start with dredge_<component>_")
    metric = kind(name, doc, labels, **extra)
    if metric.family in _FAMILIES:
        raise ValueError(f"Duplicated timeseries in CollectorRegistry: {name}")
    _FAMILIES.add(metric.family)
    DECLARED[name] = metric
    return metric


def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
    """A counter on the process registry."""
    return _declare(Counter, name, doc, labels)


def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
    """A gauge on the process registry."""
    return _declare(Gauge, name, doc, labels)


def histogram(name: str, doc: str, labels: Sequence[str] = (),
              buckets: Sequence[float] | None = None) -> Histogram:
    """A histogram on the process registry (prometheus_client's default buckets unless given)."""
    extra: dict[str, Any] = {} if buckets is None else {"buckets": tuple(buckets)}
    return _declare(Histogram, name, doc, labels, **extra)


# Shared: counted by replay, the stream batcher and the dead-letter file.
records_total = counter(
    "dredge_parse_records_total",
    "Flow-log records seen by the parser, by outcome (ok, nodata, skipdata, malformed).",
    ["source", "outcome"])
# The index's (read by the live index); kept here until the index declares it beside itself.
index_intervals = gauge(
    "dredge_index_intervals", "Ownership intervals held by the current index snapshot.")
