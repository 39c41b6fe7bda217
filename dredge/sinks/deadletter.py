"""The dead-letter file: one JSON object per rejected record, with its origin and reason.

``{"file": ..., "line": 12, "reason": "bad_address", "field": "srcaddr", "text": "..."}``
(``shard``/``sequence`` instead of ``file``/``line`` for stream records). A record's text is
capped at ``MAX_TEXT`` characters (``text_length`` then gives the whole length), so a hostile
input cannot grow the file by more than that per rejected record.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from dredge.telemetry.metrics import records_total

MAX_TEXT = 4096  # a dead letter keeps at most this much of the rejected text


def _capped(record: dict[str, Any]) -> dict[str, Any]:
    text = record.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return {**record, "text": text[:MAX_TEXT], "text_length": len(text)}
    return record


@dataclass(frozen=True)
class DeadLetterConfig:
    """``[dead_letter]``: where the daemon writes rejected records."""

    path: str = "dredge.deadletter.jsonl"  # JSON lines; empty: count only

    def validate(self) -> None:
        pass


class DeadLetters:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self._lock = threading.Lock()
        self._fh: Any = None

    def write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        with self._lock:
            self.count += len(records)
            for r in records:
                records_total.labels("deadletter", str(r.get("reason", "unknown"))).inc()
            if self.path is None:
                return
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = self.path.open("ab")
            self._fh.write(b"".join(orjson.dumps(_capped(r)) + b"\n" for r in records))
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
