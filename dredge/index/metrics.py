"""Prometheus metrics of the live index and its providers (``dredge_index_<noun>_<unit>``).

Labels are bounded: ``provider`` is the provider kind (ec2, events, cidr), never an account,
an address or an app.
"""

from __future__ import annotations

from dredge.telemetry.metrics import counter, gauge, histogram

events_total = counter(
    "dredge_index_events_total",
    "Assignment events offered to the index, by provider and outcome "
    "(accepted, too_late, invalid).",
    ["provider", "outcome"])
rebuilds_total = counter(
    "dredge_index_rebuilds_total", "Snapshot rebuilds by outcome (ok, failed).",
    ["outcome"])
rebuild_seconds = histogram(
    "dredge_index_rebuild_seconds", "Time to merge, compact and build one snapshot.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60))
history_events = gauge(
    "dredge_index_history_events", "Events held in the history after the last compaction.")
snapshot_bytes = gauge(
    "dredge_index_snapshot_bytes", "Memory of the current snapshot's arrays.")
snapshot_age_seconds = gauge(
    "dredge_index_snapshot_built_timestamp_seconds",
    "When the current snapshot was built (epoch s).")
saves_total = counter(
    "dredge_index_saves_total", "State saves by outcome (ok, failed).", ["outcome"])
provider_updated = gauge(
    "dredge_index_provider_updated_timestamp_seconds",
    "Last time a provider reported (a poll, a read, a reload), epoch s.", ["provider"])
provider_errors_total = counter(
    "dredge_index_provider_errors_total",
    "Provider calls that failed and will be retried (AWS errors, unreadable files).",
    ["provider"])
polls_total = counter(
    "dredge_index_polls_total", "Provider polls by outcome (ok, failed).",
    ["provider", "outcome"])
