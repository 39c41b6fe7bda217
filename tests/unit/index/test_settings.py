"""The index's settings, declared once: each rule names its key, the providers get their
own view, and the live manager takes the ``[index]`` table as it is."""

from __future__ import annotations

import pytest

from dredge.errors import ConfigError
from dredge.index.config import LiveConfig
from dredge.index.live import IndexManager
from dredge.index.providers.config import (
    CidrConfig,
    Ec2Config,
    EventFileConfig,
    EventsConfig,
    EventStreamConfig,
    IndexConfig,
)


def test_event_kinds_get_their_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    stream = EventsConfig(kind="kinesis", stream="s", poll_interval_s=0.5).provider_config()
    assert isinstance(stream, EventStreamConfig)
    assert (stream.region, stream.poll_interval_s, stream.limit) == ("ap-south-1", 0.5, 1000)
    file = EventsConfig(path="a.jsonl", start_at="end").provider_config()
    assert isinstance(file, EventFileConfig)
    assert (file.path, file.start_at, file.max_read_bytes) == ("a.jsonl", "end", 8 << 20)


@pytest.mark.parametrize(("settings", "key"), [
    (EventsConfig(kind="kinesis", stream="bad name"), "stream"),
    (EventsConfig(kind="kinesis", stream="s", path="a"), "path"),
    (EventsConfig(path="a", region="eu-west-1"), "region"),
    (EventFileConfig(path="a", max_read_bytes=10), "max_read_bytes"),
    (EventStreamConfig(stream="s", limit=0), "limit"),
    (EventStreamConfig(stream="s", discover_interval_s=0), "discover_interval_s"),
    (Ec2Config(endpoint_url="localhost"), "endpoint_url"),
    (Ec2Config(regions=["us-east-1", ""]), "regions[1]"),
    (CidrConfig(poll_interval_s=0), "poll_interval_s"),
    (LiveConfig(debounce_s=-1), "debounce_s"),
    (IndexConfig(ec2=[Ec2Config(poll_interval_s=0)]), "ec2[0].poll_interval_s"),
    (IndexConfig(events=[EventsConfig(path="a"), EventsConfig(path="a")]), "events[1]"),
])
def test_each_rule_names_its_key(settings: LiveConfig | EventsConfig | Ec2Config | CidrConfig,
                                 key: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings.validate()
    assert info.value.field == key


def test_ec2_provider_keeps_frozen_lists() -> None:
    toml = Ec2Config(regions=["us-east-1"], app_tags=["team"])
    kept = toml.provider_config()
    assert kept.regions == ("us-east-1",) and kept.app_tags == ("team",)
    assert toml.regions == ["us-east-1"]  # the loaded table is left as it is


def test_manager_takes_the_index_table() -> None:
    index = IndexConfig(retention_s=60.0, cidrs=["n.csv"], cidr_poll_interval_s=2.0)
    assert index.live_config() is index
    assert IndexManager(index).config.retention_s == 60.0
    assert index.cidr_config() == CidrConfig(("n.csv",), 2.0)
