"""The dead-letter file: one JSON object per rejected record, with its origin and reason.

``{"file": ..., "line": 12, "reason": "bad_address", "field": "srcaddr", "text": "..."}``
(``shard``/``sequence`` instead of ``file``/``line`` for stream records).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from dredge.telemetry.metrics import records_total


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
            self._fh.write(b"".join(orjson.dumps(r) + b"\n" for r in records))
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
