"""Structured logging: ``event key=value ...`` lines on stderr, or JSON with ``DREDGE_LOG_JSON=1``
(each object with ``ts``, the UTC time to the millisecond, for log pipelines that add none).

Usage: ``log = get_logger(__name__); log.info("file_stored", file=path, rows=n)``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import orjson


class _KVFormatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        ctx: dict[str, Any] = getattr(record, "ctx", {})
        if self.as_json:
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            body = {"ts": f"{ts}.{int(record.msecs):03d}Z", "level": record.levelname.lower(),
                    "logger": record.name, "event": record.msg, **ctx}
            return orjson.dumps(body, default=str).decode()
        pairs = " ".join(f"{k}={v}" for k, v in ctx.items())
        return f"{record.levelname.lower():<7} {record.msg} {pairs}".rstrip()


class KVLogger:
    """A thin wrapper over a stdlib logger that takes an event name and key-values."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, event: str, ctx: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={"ctx": ctx})

    def debug(self, event: str, **ctx: Any) -> None:
        self._log(logging.DEBUG, event, ctx)

    def info(self, event: str, **ctx: Any) -> None:
        self._log(logging.INFO, event, ctx)

    def warning(self, event: str, **ctx: Any) -> None:
        self._log(logging.WARNING, event, ctx)

    def error(self, event: str, **ctx: Any) -> None:
        self._log(logging.ERROR, event, ctx)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (it may be replaced, e.g. under tests)."""

    _dredge = True

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


LEVELS = ("debug", "info", "warning", "error")


def get_logger(name: str) -> KVLogger:
    return KVLogger(logging.getLogger(name))


def configure(level: str = "info") -> None:
    """Install the handler once (CLI entry points call this); ``level`` is one of
    :data:`LEVELS` (any case), checked by the callers (``--log-level``, the config)."""
    if level.lower() not in LEVELS:
        raise ValueError(f"log level: one of {', '.join(LEVELS)}, not {level!r}")
    root = logging.getLogger("dredge")
    if any(getattr(h, "_dredge", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = _StderrHandler()
    handler.setFormatter(_KVFormatter(os.environ.get("DREDGE_LOG_JSON") == "1"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
