"""Time parsing for command lines, configuration and input records (layer 0: no Dredge imports
but :mod:`dredge.errors`).

- :func:`parse_time`: what a user types (``--from``, ``--at``): epoch seconds or ISO 8601 /
  RFC 3339 text, naive meaning UTC; a bad value is a :class:`ConfigError`.
- :func:`parse_duration`: ``60``, ``30s``, ``5m``, ``1h``, ``2d`` -> seconds.
- :func:`epoch_seconds`: a time field of an input record (JSON number or RFC 3339 text);
  raises ``ValueError`` so the caller counts the record as bad.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from dredge.errors import ConfigError

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str) -> int:
    """Epoch seconds from an integer or ISO 8601 / RFC 3339 text (``2026-11-25T10:00Z``)."""
    t = text.strip()
    if re.fullmatch(r"-?\d+", t):
        return int(t)
    try:
        dt = datetime.fromisoformat(t.replace("z", "Z"))
    except ValueError as exc:
        raise ConfigError("time", f"not a time: {text!r} (use 2026-11-25T10:00Z or epoch seconds)") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def parse_duration(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([smhd]?)", text.strip())
    if not m:
        raise ConfigError("interval", f"not a duration: {text!r} (e.g. 60, 5m, 1h)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def epoch_seconds(value: object) -> int:
    """A record's time field: a number of epoch seconds (truncated) or RFC 3339 text
    (``Z`` allowed). Raises ``ValueError`` (or ``OverflowError``) for anything else."""
    if isinstance(value, int | float):
        return int(value)
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())


__all__ = ["epoch_seconds", "parse_duration", "parse_time"]
