"""Prometheus metrics: one registry per process, names ``dredge_<component>_<noun>_<unit>``.

Labels are bounded (stream, shard, sink, outcome, reason); never IPs or app names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

records_total = Counter(
    "dredge_parse_records_total",
    "Flow-log records seen by the parser, by outcome (ok, nodata, skipdata, malformed).",
    ["source", "outcome"],
    registry=REGISTRY,
)
files_total = Counter(
    "dredge_replay_files_total",
    "Files handled by replay, by outcome (stored, skipped, truncated, failed).",
    ["outcome"],
    registry=REGISTRY,
)
enrich_lookups_total = Counter(
    "dredge_enrich_lookups_total",
    "Address lookups by result (owner, cidr, unknown, internet).",
    ["result"],
    registry=REGISTRY,
)
sink_rows_total = Counter(
    "dredge_sink_rows_total",
    "Rolled-up rows written, by sink and outcome.",
    ["sink", "outcome"],
    registry=REGISTRY,
)
sink_flush_seconds = Histogram(
    "dredge_sink_flush_seconds",
    "Time to store one batch of rolled-up rows.",
    ["sink"],
    registry=REGISTRY,
)
index_intervals = Gauge(
    "dredge_index_intervals",
    "Ownership intervals held by the current index snapshot.",
    registry=REGISTRY,
)
