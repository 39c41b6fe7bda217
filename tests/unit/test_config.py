"""DredgeConfig: every default validates; each bad key is named; env overrides; unknown keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dredge.config import DredgeConfig, StreamConfig, load_config
from dredge.errors import ConfigError
from dredge.index.providers.config import Ec2Config as Ec2Section
from dredge.index.providers.config import EventFileConfig, EventStreamConfig
from dredge.index.providers.config import EventsConfig as EventsSection

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
    Ec2Section().validate()
    EventsSection(path="a.jsonl").validate()
    EventsSection(kind="kinesis", stream="s").validate()


def test_example_config_loads_and_names_every_key(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, env={})
    config.require_streams()
    text = EXAMPLE.read_text()
    for section in ("index", "pipeline", "kinesis", "decode", "lease", "dead_letter", "metrics"):
        for f in dataclasses.fields(getattr(config, section)):
            if f.name in ("ec2", "events"):  # sub-tables: every key of each, below
                assert f"[[{section}.{f.name}]]" in text
                continue
            assert f"{f.name} =" in text, f"{section}.{f.name} is not in the example config"
    for sub in (Ec2Section, EventsSection):
        for f in dataclasses.fields(sub):
            assert f"{f.name} =" in text, f"index.{sub.__name__}.{f.name} is not in the example config"
    assert config.index.ec2 and config.index.events and config.index.live
    for f in dataclasses.fields(StreamConfig):
        assert f"{f.name} =" in text, f"streams.{f.name} is not in the example config"
    for f in dataclasses.fields(config.sink.duckdb):
        assert f"{f.name} =" in text
    # the optional sink sections are there, commented out: off by default, and valid uncommented
    assert config.sink.kinesis_out is None and config.sink.druid is None
    on = EXAMPLE.read_text().replace("#[sink.", "[sink.")
    on = "\n".join(line[1:] if line[:1] == "#" and " = " in line.split("#")[1] else line
                   for line in on.splitlines())
    path = tmp_path / "on.toml"
    path.write_text(on)
    config = load_config(path, env={})
    assert config.sink.kinesis_out is not None and config.sink.druid is not None
    for section in (config.sink.kinesis_out, config.sink.druid):
        for f in dataclasses.fields(section):
            assert f"#{f.name} =" in text, f"{f.name} is not in the example config"


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
        ('[index]\nretention_s = 0\n', "index.retention_s"),
        ('[index]\nsave_interval_s = -1\n', "index.save_interval_s"),
        ('[index]\ndebounce_s = -1\n', "index.debounce_s"),
        ('[index]\ncidr_poll_interval_s = 0\n', "index.cidr_poll_interval_s"),
        ('[index]\ncidrs = ["nets.txt"]\n', "index.cidrs[0]"),  # live: the reloader reads .csv/.json
        ('[index]\nstate_path = "."\n', "index.state_path"),
        ('[[index.ec2]]\nregions = []\n', "index.ec2[0].regions"),
        ('[[index.ec2]]\nregions = [""]\n', "index.ec2[0].regions[0]"),
        ('[[index.ec2]]\nrole_arns = ["role/x"]\n', "index.ec2[0].role_arns"),
        ('[[index.ec2]]\npoll_interval_s = 0\n', "index.ec2[0].poll_interval_s"),
        ('[[index.ec2]]\napp_tags = []\n', "index.ec2[0].app_tags"),
        ('[[index.ec2]]\nendpoint_url = "localhost:5000"\n', "index.ec2[0].endpoint_url"),
        ('[[index.ec2]]\nasg_convention = "yes"\n', "index.ec2[0].asg_convention"),
        ('[[index.ec2]]\n[[index.ec2]]\nregions = "eu-west-1"\n', "index.ec2[1].regions"),
        ('[[index.events]]\nkind = "kafka"\n', "index.events[0].kind"),
        ('[[index.events]]\nkind = "file"\n', "index.events[0].path"),
        ('[[index.events]]\npath = "a"\nstart_at = "middle"\n', "index.events[0].start_at"),
        ('[[index.events]]\npath = "a"\nstream = "s"\n', "index.events[0].stream"),
        ('[[index.events]]\nkind = "kinesis"\n', "index.events[0].stream"),
        ('[[index.events]]\nkind = "kinesis"\nstream = "s"\npath = "a"\n', "index.events[0].path"),
        ('[[index.events]]\nkind = "kinesis"\nstream = "s"\ninitial_position = "LAST"\n',
         "index.events[0].initial_position"),
        ('[[index.events]]\nkind = "kinesis"\nstream = "s"\nendpoint_url = "x"\n',
         "index.events[0].endpoint_url"),
        ('[[index.events]]\npath = "a"\npoll_interval_s = 0\n', "index.events[0].poll_interval_s"),
        ('[[index.events]]\npath = "a"\n[[index.events]]\npath = "a"\n', "index.events[1]"),
        ('[pipeline]\nholdback_s = -1\n', "pipeline.holdback_s"),
        ('[pipeline]\nholdback_s = 7200\n', "pipeline.holdback_s"),
        ('[pipeline]\nholdback_max_rows = 0\n', "pipeline.holdback_max_rows"),
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
        ('[index]\nstate = "x"\n', "index.state"),
        ('[[index.ec2]]\nregion = "x"\n', "index.ec2[0].region"),
        ('[[index.events]]\npath = "a"\nfile = "x"\n', "index.events[0].file"),
        ('[pipeline]\nhold_back_s = 1\n', "pipeline.hold_back_s"),
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


def test_index_keys_and_env_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, """
[[streams]]
name = "a"
[index]
state_path = "index.arrow"
cidrs = ["n.csv"]
[[index.ec2]]
regions = ["us-east-1"]
role_arns = ["arn:aws:iam::123456789012:role/dredge"]
[[index.events]]
path = "tasks.jsonl"
[[index.events]]
kind = "kinesis"
stream = "assignments"
[pipeline]
holdback_s = 120
""")
    config = load_config(path, env={
        "DREDGE_INDEX__RETENTION_S": "3600",
        "DREDGE_INDEX__EC2__0__REGIONS": "us-east-1,eu-west-1",
        "DREDGE_INDEX__EC2__0__ASG_CONVENTION": "false",
        "DREDGE_INDEX__EVENTS__1__REGION": "eu-west-1",
        "DREDGE_PIPELINE__HOLDBACK_S": "90",
    })
    idx = config.index
    assert idx.live and idx.retention_s == 3600 and idx.state_path == "index.arrow"
    assert idx.ec2[0].regions == ["us-east-1", "eu-west-1"] and idx.ec2[0].asg_convention is False
    ec2 = idx.ec2[0].provider_config()
    assert ec2.regions == ("us-east-1", "eu-west-1")
    assert ec2.role_arns == ("arn:aws:iam::123456789012:role/dredge",)
    events_file, stream = (e.provider_config() for e in idx.events)
    assert isinstance(events_file, EventFileConfig) and events_file.path == "tasks.jsonl"
    assert isinstance(stream, EventStreamConfig)
    assert stream.stream == "assignments" and stream.region == "eu-west-1"
    live = idx.live_config()
    assert (live.retention_s, live.state_path, live.save_interval_s) == (3600, "index.arrow", 300)
    assert config.pipeline.holdback_s == 90
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"DREDGE_INDEX__EVENTS__0__KIND": "queue"})
    assert info.value.field == "index.events[0].kind"
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"DREDGE_INDEX__EC2__0__REGIONZ": "x"})
    assert info.value.field == "index.ec2[0].regionz"


@pytest.mark.parametrize(
    ("text", "live"),
    [
        ("", True),  # no files: an empty live index (CIDR maps reloaded if any)
        ('[index]\nownership = ["o.jsonl"]\ncidrs = ["n.txt"]\n', False),  # as replay: static
        ('[index]\ncidrs = ["n.csv"]\n', True),
        ('[index]\nownership = ["o.jsonl"]\nstate_path = "s.arrow"\n', True),
        ('[index]\nownership = ["o.jsonl"]\n[[index.events]]\npath = "e.jsonl"\n', True),
        ('[index]\nownership = ["o.jsonl"]\n[[index.ec2]]\n', True),
    ],
)
def test_static_only_for_ownership_files_alone(tmp_path: Path, text: str, live: bool) -> None:
    assert load_config(write(tmp_path, text), env={}).index.live is live


def test_optional_sink_sections_are_on_when_present(tmp_path: Path) -> None:
    assert load_config(None, env={}).sink.kinesis_out is None
    config = load_config(None, env={"DREDGE_SINK__KINESIS_OUT__STREAM": "flows-out"})
    assert config.sink.kinesis_out is not None and config.sink.kinesis_out.stream == "flows-out"
    config = load_config(write(tmp_path, "[sink.kinesis_out]\n"), env={})
    assert config.sink.kinesis_out is not None and config.sink.kinesis_out.stream == "dredge-flows"
    with pytest.raises(ConfigError, match=r"sink\.kinesis_out\.pack_bytes"):
        load_config(write(tmp_path, "[sink.kinesis_out]\npack_bytes = -1\n"), env={})
    with pytest.raises(ConfigError, match=r"sink\.kinesis_out\.strem: unknown key"):
        load_config(write(tmp_path, "[sink.kinesis_out]\nstrem = 'x'\n"), env={})
    with pytest.raises(ConfigError, match=r"sink\.druid\.user: a password needs a user"):
        load_config(None, env={"DREDGE_SINK__DRUID__PASSWORD": "p"})
