"""Time parsing for command lines, configuration and input records (layer 0: no Dredge imports
but :mod:`dredge.errors`).

- :func:`parse_time`: what a user types (``--from``, ``--at``): epoch seconds or ISO 8601 /
  RFC 3339 text, naive meaning UTC; a bad value is a :class:`ConfigError`.
- :func:`parse_duration`: ``60``, ``30s``, ``5m``, ``1h``, ``2d`` -> seconds.
- :func:`epoch_seconds`: a time field of an input record (JSON number or RFC 3339 text);
  raises ``ValueError`` so the caller counts the record as bad.

Every time is within [:data:`MIN_TIME`, :data:`MAX_TIME`] (1970 to the end of 9999: what
a timestamp column and int64 arithmetic on it hold), every duration at most
:data:`MAX_DURATION_S` (ten years); anything else is refused, not wrapped or clamped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from dredge.errors import ConfigError

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_TIME = 0
MAX_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_DURATION_S = 10 * 366 * 86400


def _in_range(seconds: int | float) -> bool:
    return MIN_TIME <= seconds <= MAX_TIME


def parse_time(text: str, key: str = "time") -> int:
    """Epoch seconds from an integer or ISO 8601 / RFC 3339 text (``2026-11-25T10:00Z``);
    ``key`` names the option or setting in the error."""
    t = text.strip()
    hint = "(use 2026-11-25T10:00Z or epoch seconds)"
    if re.fullmatch(r"-?\d+", t):
        seconds = int(t)
    else:
        try:
            dt = datetime.fromisoformat(t.replace("z", "Z"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            seconds = int(dt.timestamp())
        except (ValueError, OverflowError) as exc:
            raise ConfigError(key, f"not a time: {text!r} {hint}") from exc
    if not _in_range(seconds):
        raise ConfigError(key, f"{text!r} is out of range (1970-01-01 to 9999-12-31) {hint}")
    return seconds


def parse_duration(text: str, key: str = "interval") -> int:
    m = re.fullmatch(r"(\d+)\s*([smhd]?)", text.strip())
    if not m:
        raise ConfigError(key, f"not a duration: {text!r} (e.g. 60, 5m, 1h)")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_DURATION_S:
        raise ConfigError(key, f"{text!r} is longer than ten years")
    return seconds


def epoch_seconds(value: object) -> int:
    """A record's time field: a number of epoch seconds (truncated) or RFC 3339 text
    (``Z`` allowed), within [MIN_TIME, MAX_TIME]. Raises ``ValueError`` for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        if not _in_range(value):  # NaN and infinities too
            raise ValueError(f"time out of range: {value!r}")
        return int(value)
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        seconds = int(dt.timestamp())
    except OverflowError as exc:
        raise ValueError(f"time out of range: {value!r}") from exc
    if not _in_range(seconds):
        raise ValueError(f"time out of range: {value!r}")
    return seconds


__all__ = ["epoch_seconds", "parse_duration", "parse_time"]
