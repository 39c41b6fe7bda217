"""Envelopes around flow-log lines in Kinesis records: CloudWatch Logs gzip JSON, KPL
aggregation, plain lines.

``decode_records`` turns one GetRecords batch into one buffer of lines plus per-line
provenance (record index, KPL sub-sequence number, ENI) for the columnar parser.
``encode_cloudwatch`` and ``encode_kpl`` build the same envelopes for tests, benchmarks
and the stream generator.

    batch.py       DecodeConfig, DecodedBatch, DeadLetter, decode_records, metrics
    cloudwatch.py  bounded gunzip, subscription payloads, encode_cloudwatch
    cwlscan.py     the compiled fast path from subscription JSON to lines (same answers)
    kpl.py         KPL aggregates (how the KCL recognises them), encode_kpl
    kplscan.py     the compiled fast path through an aggregate's protobuf (same answers)
    protowire.py   the protobuf wire format, hand-rolled
    lines.py       canonical line breaks for plain text
    reasons.py     the dead-letter reasons and EnvelopeError
"""

from __future__ import annotations

from dredge.decode.batch import DeadLetter, DecodeConfig, DecodedBatch, DecodeStats, decode_records
from dredge.decode.cloudwatch import encode_cloudwatch
from dredge.decode.kpl import encode_kpl
from dredge.decode.reasons import REASONS, EnvelopeError, Reason

__all__ = [
    "REASONS",
    "DeadLetter",
    "DecodeConfig",
    "DecodeStats",
    "DecodedBatch",
    "EnvelopeError",
    "Reason",
    "decode_records",
    "encode_cloudwatch",
    "encode_kpl",
]
