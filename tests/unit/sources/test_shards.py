"""Shard positions: order along a shard, as the lease table stores them; the start-position rule."""

from __future__ import annotations

import pytest

from dredge.errors import ConfigError
from dredge.sources.kinesis.shards import SEQUENCE, Position, check_initial_position, furthest


def test_positions_order_along_a_shard() -> None:
    th = Position.from_checkpoint("TRIM_HORIZON")
    a = Position.from_checkpoint("49590338271490256608559692538361571095921575989136588898", 0)
    b = Position.from_checkpoint("49590338271490256608559692538361571095921575989136588898", 3)
    c = Position.from_checkpoint("49590338271490256608559692540925702759324208523137515618", 0)
    end = Position.from_checkpoint("SHARD_END")
    assert a.kind == SEQUENCE
    assert furthest(th, a) == a and furthest(a, th) == a
    assert furthest(a, b) == b and furthest(b, c) == c
    assert furthest(c, end) == end and furthest(end, th) == end
    assert str(b).endswith("/3")


def test_checkpoint_is_the_sequence_or_the_sentinel() -> None:
    assert Position(SEQUENCE, "42", 3).checkpoint == "42"
    assert Position.from_checkpoint("SHARD_END").checkpoint == "SHARD_END"
    assert Position.from_checkpoint("AT_TIMESTAMP").checkpoint == "AT_TIMESTAMP"


@pytest.mark.parametrize("value", ["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"])
def test_start_sentinels_are_initial_positions(value: str) -> None:
    check_initial_position(value, "start_position")


def test_other_initial_positions_name_their_key() -> None:
    for value in ("SHARD_END", "EARLIEST", "42"):
        with pytest.raises(ConfigError) as err:
            check_initial_position(value, "streams[0].start_position")
        assert err.value.field == "streams[0].start_position"
