"""The values behind Dredge's metrics: counters, gauges and histograms with labels, held in
plain Python and exposed to Prometheus only when something asks (``metrics.REGISTRY``).

Why not ``prometheus_client``'s own classes: importing that package loads its HTTP exposition
(``http.server``, ``ssl``, ``email``), 15-35 ms of every process, and a one-shot ``dredge
replay`` counts into its metrics but never serves them. These classes keep the same calls
(``labels(...).inc()``, ``set``, ``observe``, ``remove``) and the same rules (a counter never
goes down, label values are strings, one name once); :class:`Collector` turns them into
Prometheus metric families for ``/metrics`` and the ops readers.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

INF = float("inf")
# prometheus_client's Histogram.DEFAULT_BUCKETS
DEFAULT_BUCKETS = (.005, .01, .025, .05, .075, .1, .25, .5, .75, 1.0, 2.5, 5.0, 7.5, 10.0, INF)


class CounterValue:
    """One counter series: goes up only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        with self._lock:
            self.value += amount


class GaugeValue:
    """One gauge series: set, or moved up and down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def inc(self, amount: float = 1) -> None:
        with self._lock:
            self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.inc(-amount)


class HistogramValue:
    """One histogram series: counts per bucket (not cumulative) and the sum."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._lock = threading.Lock()
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        i = min(bisect_left(self.bounds, amount), len(self.bounds) - 1)  # NaN: +Inf
        with self._lock:
            self.counts[i] += 1
            self.sum += amount


_V = TypeVar("_V", CounterValue, GaugeValue, HistogramValue)


class Metric(Generic[_V]):
    """A named metric, with or without labels; without, it is its own single series."""

    kind = ""

    def __init__(self, name: str, doc: str, labels: Sequence[str] = ()) -> None:
        self.name, self.doc, self.label_names = name, doc, tuple(labels)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], _V] = {}
        if not self.label_names:
            self._series[()] = self._new()

    @property
    def family(self) -> str:
        """The name Prometheus exposes it under (a counter's without ``_total``)."""
        return self.name

    def _new(self) -> _V:
        raise NotImplementedError

    def labels(self, *values: Any, **by_name: Any) -> _V:
        """The series of these label values (positional, or all by name), made on first use."""
        if not self.label_names:
            raise ValueError(f"No label names were set when constructing {self.name}")
        if values and by_name:
            raise ValueError("Can't pass both *args and **kwargs")
        if by_name:
            if set(by_name) != set(self.label_names):
                raise ValueError(f"{self.name}: incorrect label names {sorted(by_name)}")
            values = tuple(by_name[n] for n in self.label_names)
        if len(values) != len(self.label_names):
            raise ValueError(f"{self.name}: incorrect label count {len(values)}")
        key = tuple(str(v) for v in values)
        series = self._series.get(key)
        if series is None:
            with self._lock:
                series = self._series.setdefault(key, self._new())
        return series

    def remove(self, *values: Any) -> None:
        """Forget one series (a shard this worker no longer reads)."""
        with self._lock:
            self._series.pop(tuple(str(v) for v in values), None)

    def _single(self) -> _V:
        if self.label_names:
            raise ValueError(f"{self.name} has labels {self.label_names}: call .labels() first")
        return self._series[()]

    def series(self) -> list[tuple[tuple[str, ...], _V]]:
        with self._lock:
            return list(self._series.items())


class Counter(Metric[CounterValue]):
    kind = "counter"

    @property
    def family(self) -> str:
        return self.name.removesuffix("_total")

    def _new(self) -> CounterValue:
        return CounterValue()

    def inc(self, amount: float = 1) -> None:
        self._single().inc(amount)


class Gauge(Metric[GaugeValue]):
    kind = "gauge"

    def _new(self) -> GaugeValue:
        return GaugeValue()

    def set(self, value: float) -> None:
        self._single().set(value)

    def inc(self, amount: float = 1) -> None:
        self._single().inc(amount)

    def dec(self, amount: float = 1) -> None:
        self._single().dec(amount)


class Histogram(Metric[HistogramValue]):
    kind = "histogram"

    def __init__(self, name: str, doc: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != INF:
            bounds.append(INF)
        self.bounds = tuple(bounds)
        super().__init__(name, doc, labels)

    def _new(self) -> HistogramValue:
        return HistogramValue(self.bounds)

    def observe(self, amount: float) -> None:
        self._single().observe(amount)


class Collector:
    """Exposes metrics to a ``prometheus_client`` registry (imported only when one exists)."""

    def __init__(self, metrics: dict[str, Metric[Any]]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        for m in list(self._metrics.values()):
            names = list(m.label_names)
            if isinstance(m, Counter):
                c = CounterMetricFamily(m.family, m.doc, labels=names)
                for key, cv in m.series():
                    c.add_metric(list(key), cv.value)
                yield c
            elif isinstance(m, Gauge):
                g = GaugeMetricFamily(m.name, m.doc, labels=names)
                for key, gv in m.series():
                    g.add_metric(list(key), gv.value)
                yield g
            elif isinstance(m, Histogram):
                h = HistogramMetricFamily(m.name, m.doc, labels=names)
                for key, hv in m.series():
                    with hv._lock:
                        counts, total = list(hv.counts), hv.sum
                    running, buckets = 0, []
                    for bound, n in zip(m.bounds, counts, strict=True):
                        running += n
                        buckets.append(("+Inf" if bound == INF else repr(bound), running))
                    h.add_metric(list(key), buckets, total)
                yield h
