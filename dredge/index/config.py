"""Settings of the live index manager (:mod:`dredge.index.live`). Light on purpose: ``dredge.config`` imports it at start-up, so
nothing here may import numpy, pyarrow or the AWS SDK.

The whole ``[index]`` table (these plus the providers' settings) is
:class:`dredge.index.providers.config.IndexConfig`, a :class:`LiveConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dredge.errors import ConfigError
from dredge.settings import check_positive


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
        check_positive(self, "retention_s")
        if self.debounce_s < 0:
            raise ConfigError("debounce_s", "must be >= 0")
        check_positive(self, "compact_interval_s", "save_interval_s")
        if self.state_path and Path(self.state_path).is_dir():
            raise ConfigError("state_path", "is a directory; give a file path")


__all__ = ["LiveConfig"]
