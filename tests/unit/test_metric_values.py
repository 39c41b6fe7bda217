"""Dredge's own metric values (``telemetry/values.py``) expose exactly what
``prometheus_client``'s classes would for the same calls: /metrics must not change."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as PCounter
from prometheus_client import Gauge as PGauge
from prometheus_client import Histogram as PHistogram

from dredge.telemetry.values import Collector, Counter, Gauge, Histogram, Metric


def _exposed(registry: CollectorRegistry) -> list[str]:
    # prometheus_client adds a creation time to counters and histograms; ours has none
    return [line for line in generate_latest(registry).decode().splitlines()
            if "_created" not in line]


def _exercise(counter, gauge, hist, plain, plain_hist) -> None:  # type: ignore[no-untyped-def]
    counter.labels("s1", "ok").inc()
    counter.labels(stream="s2", outcome="failed").inc(2.5)
    counter.labels("s1", "ok").inc(4)
    gauge.labels("a").set(7)
    gauge.labels("b").inc(3)
    gauge.labels("b").dec(1.5)
    for v in (0.001, 0.05, 0.3, 0.3, 7, 100, float("inf")):
        hist.labels("duckdb").observe(v)
    plain.inc(9)
    for v in (0.2, 2, 20):
        plain_hist.observe(v)


def test_the_exposition_is_prometheus_client_s() -> None:
    theirs = CollectorRegistry()
    _exercise(PCounter("dredge_t_events_total", "Events.", ["stream", "outcome"], registry=theirs),
              PGauge("dredge_t_level", "Level.", ["side"], registry=theirs),
              PHistogram("dredge_t_flush_seconds", "Flush.", ["sink"], registry=theirs),
              PCounter("dredge_t_plain_total", "Plain.", registry=theirs),
              PHistogram("dredge_t_plain_seconds", "Plain h.", buckets=(1, 10), registry=theirs))
    mine: dict[str, Metric] = {}  # type: ignore[type-arg]
    metrics = [Counter("dredge_t_events_total", "Events.", ["stream", "outcome"]),
               Gauge("dredge_t_level", "Level.", ["side"]),
               Histogram("dredge_t_flush_seconds", "Flush.", ["sink"]),
               Counter("dredge_t_plain_total", "Plain."),
               Histogram("dredge_t_plain_seconds", "Plain h.", buckets=(1, 10))]
    for m in metrics:
        mine[m.name] = m
    _exercise(*metrics)
    ours = CollectorRegistry()
    ours.register(Collector(mine))  # type: ignore[arg-type]
    assert _exposed(ours) == _exposed(theirs)
    assert ours.get_sample_value("dredge_t_events_total", {"stream": "s1", "outcome": "ok"}) == 5
    assert ours.get_sample_value("dredge_t_flush_seconds_bucket",
                                 {"sink": "duckdb", "le": "0.5"}) == 4


def test_the_rules_are_prometheus_client_s() -> None:
    c = Counter("dredge_t_rules_total", "Rules.", ["a"])
    with pytest.raises(ValueError, match="non-negative"):
        c.labels("x").inc(-1)
    with pytest.raises(ValueError):
        c.inc()  # labelled: a series first
    with pytest.raises(ValueError):
        c.labels("x", "y")
    with pytest.raises(ValueError):
        c.labels(b="x")
    with pytest.raises(ValueError):
        Gauge("dredge_t_plain", "No labels.").labels("x")
    c.labels(3).inc()
    assert c.labels("3").value == 1  # label values are strings
    c.remove("3")
    assert [key for key, _ in c.series()] == [("x",)]


def test_counting_from_many_threads_loses_nothing() -> None:
    c = Counter("dredge_t_threads_total", "Threads.", ["t"])
    h = Histogram("dredge_t_threads_seconds", "Threads.", buckets=(1,))

    def work() -> None:
        for _ in range(20_000):
            c.labels("same").inc()
            h.observe(0.5)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.labels("same").value == 80_000
    assert h.series()[0][1].counts == [80_000, 0]


def test_declaring_a_name_twice_is_refused() -> None:
    from dredge.telemetry.metrics import counter

    counter("dredge_t_once_total", "Once.")
    with pytest.raises(ValueError, match="Duplicated"):
        counter("dredge_t_once_total", "Twice.")
    with pytest.raises(ValueError, match="dredge_"):
        counter("t_other_total", "Not ours.")
