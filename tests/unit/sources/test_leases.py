"""Lease rows as KCL writes them, and the lease configuration."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dredge.errors import ConfigError
from dredge.sources.kinesis.config import LeaseConfig
from dredge.sources.kinesis.leases import Lease, LeaseCoordinator


def test_defaults_validate() -> None:
    LeaseConfig().validate()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("table", "x"),
        ("table", "has space"),
        ("failover_time_s", 0.0),
        ("renew_interval_s", 0.0),
        ("renew_interval_s", 10.0),
        ("max_leases_per_worker", -1),
        ("max_leases_to_steal_at_once", 0),
    ],
)
def test_invalid_settings_name_their_field(field: str, value: Any) -> None:
    config = dataclasses.replace(LeaseConfig(), **{field: value})
    with pytest.raises(ConfigError) as err:
        config.validate()
    assert err.value.field == field


def test_item_uses_kcl_names_and_types_and_round_trips() -> None:
    lease = Lease(
        shard_id="shardId-000000000002",
        owner="worker-a",
        counter=7,
        checkpoint="49590338271490256608559692538361571095921575989136588898",
        sub_sequence=3,
        owner_switches=1,
        parent_shard_ids=frozenset({"shardId-000000000000", "shardId-000000000001"}),
        child_shard_ids=frozenset({"shardId-000000000005"}),
        starting_hash_key="0",
        ending_hash_key="170141183460469231731687303715884105727",
        pending_checkpoint="49590338271490256608559692538361571095921575989136588999",
        pending_sub_sequence=0,
    )
    item = lease.to_item()
    assert {name: next(iter(v)) for name, v in item.items()} == {
        "leaseKey": "S",
        "leaseOwner": "S",
        "leaseCounter": "N",
        "checkpoint": "S",
        "checkpointSubSequenceNumber": "N",
        "ownerSwitchesSinceCheckpoint": "N",
        "parentShardId": "SS",
        "childShardIds": "SS",
        "startingHashKey": "S",
        "endingHashKey": "S",
        "pendingCheckpoint": "S",
        "pendingCheckpointSubSequenceNumber": "N",
    }
    assert Lease.from_item(item) == lease


def test_minimal_item_leaves_optional_attributes_out() -> None:
    item = Lease(shard_id="s", owner=None, counter=0, checkpoint="TRIM_HORIZON").to_item()
    assert set(item) == {
        "leaseKey",
        "leaseCounter",
        "checkpoint",
        "checkpointSubSequenceNumber",
        "ownerSwitchesSinceCheckpoint",
    }
    assert Lease.from_item(item).owner is None


def test_readiness_follows_parent_checkpoints() -> None:
    def lease(shard: str, checkpoint: str, *parents: str) -> Lease:
        return Lease(shard, None, 0, checkpoint, parent_shard_ids=frozenset(parents))

    leases = [lease("p", "123"), lease("q", "SHARD_END"), lease("c", "TRIM_HORIZON", "p", "q")]
    assert LeaseCoordinator.is_ready("p", leases)
    assert not LeaseCoordinator.is_ready("c", leases)
    leases[0] = lease("p", "SHARD_END")
    assert LeaseCoordinator.is_ready("c", leases)
    assert LeaseCoordinator.is_ready("c", leases[1:])  # parent lease deleted
    assert not LeaseCoordinator.is_ready("unknown", leases)


def test_initial_position_must_be_a_start_sentinel() -> None:
    """The per-stream start position is an argument of the coordinator, checked by name."""
    with pytest.raises(ConfigError) as err:
        LeaseCoordinator(None, LeaseConfig(), "w", initial_position="SHARD_END")  # type: ignore[arg-type]
    assert err.value.field == "initial_position"
