"""The Kinesis source's metrics (``dredge_kinesis_*``): shard readers and leases, declared once."""

from __future__ import annotations

from dredge.telemetry.metrics import counter, gauge

# -- shard readers -------------------------------------------------------------------------

reader_events_total = counter(
    "dredge_kinesis_reader_events_total",
    "Shard reader events: throttled, kms_throttled, server_error, network_error,"
    " expired_iterator, trimmed_checkpoint, shard_end, shard_gone, restarted.",
    ["stream", "event"])
get_records_total = counter(
    "dredge_kinesis_get_records_total", "GetRecords calls that returned (ok), by stream.",
    ["stream"])
records_read_total = counter(
    "dredge_kinesis_records_read_total", "Kinesis records handed to the pipeline.", ["stream"])
bytes_read_total = counter(
    "dredge_kinesis_bytes_read_total", "Bytes of record data handed to the pipeline.", ["stream"])
millis_behind_latest = gauge(
    "dredge_kinesis_millis_behind_latest",
    "MillisBehindLatest of the shard's last GetRecords response.", ["stream", "shard"])

# -- leases --------------------------------------------------------------------------------

lease_events_total = counter(
    "dredge_kinesis_lease_events_total",
    "Lease ownership changes seen by this worker (taken, stolen, lost, expired, released,"
    " deleted: the lease of a finished shard cleaned up).",
    ["event"])
leases_held = gauge(
    "dredge_kinesis_leases_held", "Shard leases this worker holds after its last renewal.")
checkpoints_total = counter(
    "dredge_kinesis_checkpoints_total", "Checkpoint writes by outcome (ok, lost, failed).",
    ["outcome"])
