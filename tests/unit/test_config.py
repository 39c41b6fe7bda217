"""DredgeConfig: every default validates; each bad key is named; env overrides; unknown keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dredge.config import DredgeConfig, StreamConfig, load_config
from dredge.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "infra" / "dredge.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "dredge.toml"
    p.write_text(text)
    return p


def test_every_default_validates() -> None:
    config = DredgeConfig()
    config.validate()
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            value.validate()  # type: ignore[union-attr]
    StreamConfig(name="s").validate()


def test_example_config_loads_and_names_every_key() -> None:
    config = load_config(EXAMPLE, env={})
    config.require_streams()
    text = EXAMPLE.read_text()
    for section in ("index", "pipeline", "kinesis", "decode", "lease", "dead_letter", "metrics"):
        for f in dataclasses.fields(getattr(config, section)):
            assert f"{f.name} =" in text, f"{section}.{f.name} is not in the example config"
    for f in dataclasses.fields(StreamConfig):
        assert f"{f.name} =" in text, f"streams.{f.name} is not in the example config"
    for f in dataclasses.fields(config.sink.duckdb):
        assert f"{f.name} =" in text


def test_minimal_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[[streams]]\nname = "vpc-flows"\n'), env={})
    assert config.streams[0].name == "vpc-flows"
    assert config.pipeline.flush_interval_s == 1.0
    assert config.streams[0].table_name(config.lease.table) == "dredge-leases-vpc-flows"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[pipeline]\nflush_interval_s = 0\n', "pipeline.flush_interval_s"),
        ('[pipeline]\nwindow_s = 7\n', "pipeline.window_s"),
        ('[kinesis]\nmax_records = 20000\n', "kinesis.max_records"),
        ('[kinesis]\nmax_calls_per_s = 6\n', "kinesis.max_calls_per_s"),
        ('[kinesis]\nbackoff_max_s = 0.01\n', "kinesis.backoff_max_s"),
        ('[lease]\nfailover_time_s = 2\nrenew_interval_s = 3\n', "lease.renew_interval_s"),
        ('[lease]\ntable = "bad name"\n', "lease.table"),
        ('[decode]\nmax_inflated_bytes = 0\n', "decode.max_inflated_bytes"),
        ('[sink.duckdb]\npath = ""\n', "sink.duckdb.path"),
        ('[metrics]\nport = 70000\n', "metrics.port"),
        ('log_level = "loud"\n', "log_level"),
        ('[[streams]]\nname = "a b"\n', "streams[0].name"),
        ('[[streams]]\nname = "a"\nstart_position = "EARLIEST"\n', "streams[0].start_position"),
        ('[[streams]]\nname = "a"\nstart_position = "AT_TIMESTAMP"\n', "streams[0].start_timestamp"),
        ('[[streams]]\nname = "a"\nstart_timestamp = "2026-01-01T00:00:00Z"\n', "streams[0].start_timestamp"),
        ('[[streams]]\nname = "a"\nformat = "version srcaddr"\n', "streams[0].format"),
        ('[[streams]]\nname = "a"\nrole_arn = "role/x"\n', "streams[0].role_arn"),
        ('[[streams]]\nname = "a"\n[[streams]]\nname = "a"\n', "streams[1].name"),
        ('[pipeline]\nflush_interval_s = "fast"\n', "pipeline.flush_interval_s"),
        ('[pipeline]\nqueue_batches = 1.5\n', "pipeline.queue_batches"),
        ('[index]\nownership = "a.jsonl"\n', "index.ownership"),
    ],
)
def test_bad_value_names_its_key(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert info.value.field == field


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[pipeline]\nflush_intervall = 1\n', "pipeline.flush_intervall"),
        ('[sink.duckdb]\npaht = "x"\n', "sink.duckdb.paht"),
        ('[sinks]\n', "sinks"),
        ('[[streams]]\nname = "a"\nregoin = "x"\n', "streams[0].regoin"),
    ],
)
def test_unknown_key_refused_by_name(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError, match="unknown key") as info:
        load_config(write(tmp_path, text), env={})
    assert info.value.field == field


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[[streams]]\nname = "a"\n[sink.duckdb]\npath = "file.duckdb"\n')
    config = load_config(path, env={
        "DREDGE_SINK__DUCKDB__PATH": "/data/env.duckdb",
        "DREDGE_PIPELINE__FLUSH_INTERVAL_S": "2.5",
        "DREDGE_STREAMS__0__REGION": "eu-west-1",
        "DREDGE_INDEX__OWNERSHIP": "a.jsonl, b.jsonl",
        "DREDGE_INDEX__CIDRS": '["n.csv"]',
        "DREDGE_WORKER_ID": "ingest-3",
        "DREDGE_METRICS__PORT": "0",
        "DREDGE_LOG_JSON": "1",  # not configuration: ignored
    })
    assert config.sink.duckdb.path == "/data/env.duckdb"
    assert config.pipeline.flush_interval_s == 2.5
    assert config.streams[0].region == "eu-west-1" and config.streams[0].name == "a"
    assert config.index.ownership == ["a.jsonl", "b.jsonl"]
    assert config.index.cidrs == ["n.csv"]
    assert config.worker_id == "ingest-3"
    assert config.metrics.port == 0


def test_env_unknown_key_and_bad_value_named() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"DREDGE_PIPELINE__FLUSH_INTERVALL": "1"})
    assert info.value.field == "pipeline.flush_intervall"
    assert "DREDGE_PIPELINE__FLUSH_INTERVALL" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"DREDGE_KINESIS__MAX_RECORDS": "lots"})
    assert info.value.field == "kinesis.max_records"


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[pipeline\n"), env={})


def test_streams_required_at_start() -> None:
    with pytest.raises(ConfigError) as info:
        DredgeConfig().require_streams()
    assert info.value.field == "streams"


def test_at_timestamp_parses() -> None:
    s = StreamConfig(name="a", start_position="AT_TIMESTAMP", start_timestamp="2026-11-25T10:00:00Z")
    s.validate()
    assert int(s.timestamp().timestamp()) == 1795600800
    assert int(StreamConfig(name="a", start_position="AT_TIMESTAMP",
                            start_timestamp="1795600800").timestamp().timestamp()) == 1795600800
