"""warm_up(): the tiny replay that compiles replay's kernels after an install really replays
(every kind of file the generator writes), and replay's read-ahead setting is validated."""

from __future__ import annotations

import pytest

from dredge.errors import ConfigError
from dredge.replay import ReplayConfig, warm_up


def test_warm_up_replays_a_sample_of_every_kind() -> None:
    summary = warm_up(flows=600)
    assert summary.failed == 0 and summary.stored == summary.files >= 3
    assert summary.counts.data > 500 and summary.rows > 0 and summary.truncated == 1


def test_read_ahead_must_not_be_negative() -> None:
    with pytest.raises(ConfigError, match="read_ahead"):
        ReplayConfig(read_ahead=-1).validate()
