"""The sinks' metrics (``dredge_sink_<noun>_<unit>``), labelled by ``sink`` (duckdb, kinesis,
druid) and a bounded outcome."""

from __future__ import annotations

from dredge.telemetry.metrics import counter, gauge, histogram

rows_total = counter(
    "dredge_sink_rows_total", "Rolled-up rows written, by sink and outcome.", ["sink", "outcome"])
flush_seconds = histogram(
    "dredge_sink_flush_seconds", "Time to store one batch of rolled-up rows.", ["sink"])
requests_total = counter(
    "dredge_sink_requests_total",
    "Requests a sink sent (PutRecords calls, Druid API calls), by outcome (ok, partial, failed).",
    ["sink", "outcome"])
retries_total = counter(
    "dredge_sink_retries_total",
    "Waits before a sink retried, by what failed (partial: some records, call: the request).",
    ["sink", "outcome"])
pending_intervals = gauge(
    "dredge_sink_pending_intervals",
    "Hours waiting to be pushed to a sink (Druid backfill) after the last push.", ["sink"])
