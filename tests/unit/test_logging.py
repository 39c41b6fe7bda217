"""Structured log lines: key=value text, or JSON objects that carry their own time."""

from __future__ import annotations

import json
import logging

from dredge.telemetry.logging import _KVFormatter


def _record(created: float) -> logging.LogRecord:
    r = logging.LogRecord("dredge.x", logging.INFO, __file__, 1, "shard_caught_up", None, None)
    r.created, r.msecs = created, (created % 1) * 1000
    r.ctx = {"shard_id": "shardId-000000000001", "behind_ms": 61000}
    return r


def test_json_lines_carry_the_utc_time_to_the_millisecond() -> None:
    line = _KVFormatter(as_json=True).format(_record(1796000000.25))
    assert json.loads(line) == {"ts": "2026-11-30T00:53:20.250Z", "level": "info",
                                "logger": "dredge.x", "event": "shard_caught_up",
                                "shard_id": "shardId-000000000001", "behind_ms": 61000}


def test_text_lines_are_event_and_pairs() -> None:
    assert _KVFormatter(as_json=False).format(_record(0.0)) == (
        "info    shard_caught_up shard_id=shardId-000000000001 behind_ms=61000")
