"""Settings of the live index manager (:mod:`dredge.index.live`), and the validation helper
the index's settings share. Light on purpose: ``dredge.config`` imports it at start-up, so
nothing here may import numba, pyarrow or the AWS SDK.

The whole ``[index]`` table (these plus the providers' settings) is
:class:`dredge.index.providers.config.IndexConfig`, a :class:`LiveConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dredge.errors import ConfigError


def validate_within(prefix: str, validate: Callable[[], None]) -> None:
    """Run a part's ``validate()``; the key its ConfigError names becomes ``prefix.key``."""
    try:
        validate()
    except ConfigError as exc:
        if exc.field.startswith(prefix + ".") or exc.field == prefix:
            raise
        raise ConfigError(f"{prefix}.{exc.field}", str(exc)[len(exc.field) + 2:]) from None


def require_positive(settings: object, *names: str) -> None:
    """ConfigError naming the first of ``names`` whose value is not > 0."""
    for name in names:
        if not getattr(settings, name) > 0:
            raise ConfigError(name, "must be > 0")


@dataclass(frozen=True)
class LiveConfig:
    """The live index: history kept, rebuilds, the state file."""

    retention_s: float = 24 * 3600.0  # history kept this long; older events are refused
    # wait this long after a change before rebuilding, to fold a burst into one rebuild
    debounce_s: float = 1.0
    # rebuild (and so compact) at least this often, even with no change
    compact_interval_s: float = 300.0
    state_path: str = ""  # saved here periodically and on stop, loaded at start; "" = nothing
    save_interval_s: float = 300.0

    def validate(self) -> None:
        require_positive(self, "retention_s")
        if self.debounce_s < 0:
            raise ConfigError("debounce_s", "must be >= 0")
        require_positive(self, "compact_interval_s", "save_interval_s")
        if self.state_path and Path(self.state_path).is_dir():
            raise ConfigError("state_path", "is a directory; give a file path")


__all__ = ["LiveConfig", "require_positive", "validate_within"]
