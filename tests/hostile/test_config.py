"""``dredge run`` configuration: every bad value is refused before anything starts, in one
line naming the key, exit status 2 (``dredge run --check`` validates without starting; the
same cases through a plain ``dredge run`` exit the same way, nothing reached)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.conftest import accepted, cli, no_traceback, refused, sub

STREAM = '[[streams]]\nname = "flows"\n'


def _run(tmp_path: Path, toml: str, env: dict[str, str] | None = None,
         check: bool = True) -> tuple[Path, list[str]]:
    p = tmp_path / "dredge.toml"
    p.write_text(toml)
    return p, ["run", "--config", str(p), *(["--check"] if check else [])]


@pytest.mark.parametrize("toml,key", [
    (STREAM + "[pipeline]\nflush_interval_s = inf\n", "pipeline.flush_interval_s"),
    (STREAM + "[pipeline]\nflush_interval_s = nan\n", "pipeline.flush_interval_s"),
    (STREAM + "[pipeline]\nflush_interval_s = -1.0\n", "pipeline.flush_interval_s"),
    (STREAM + "[kinesis]\nidle_poll_interval_s = inf\n", "kinesis.idle_poll_interval_s"),
    (STREAM + "[lease]\nfailover_time_s = inf\n", "lease.failover_time_s"),
    (STREAM + "[index]\ncidr_poll_interval_s = -inf\n", "index.cidr_poll_interval_s"),
    (STREAM + "[pipeline]\nwindow_s = 0\n", "pipeline.window_s"),
    (STREAM + "[pipeline]\nwindow_s = 9223372036854775807\n", "pipeline.window_s"),
    (STREAM + "[pipeline]\nflush_intervall = 1.0\n", "pipeline.flush_intervall"),
    (STREAM + "[pipline]\n", "pipline"),
    (STREAM + '[sink.duckdb]\nmemory_limit = "lots"\n', "sink.duckdb.memory_limit"),
    (STREAM + '[sink.duckdb]\nmemory_limit = "-5GB"\n', "sink.duckdb.memory_limit"),
    (STREAM + "[sink.duckdb]\nthreads = -1\n", "sink.duckdb.threads"),
    (STREAM + '[index]\nownership = ["/nonexistent/owners.jsonl"]\n', "index.ownership[0]"),
    (STREAM + '[index]\ncidrs = ["/nonexistent/networks.csv"]\n', "index.cidrs[0]"),
    (STREAM + '[dead_letter]\npath = "/tmp"\n', "dead_letter.path"),
    (STREAM + '[dead_letter]\npath = "/sys/dredge-hostile-dl.jsonl"\n', "dead_letter.path"),
    (STREAM + '[sink.duckdb]\npath = "/tmp"\n', "sink.duckdb.path"),
    (STREAM + 'log_level = "loud"\n', "log_level"),
    (STREAM + "[metrics]\nport = 70000\n", "metrics.port"),
    (STREAM + "[metrics]\nport = -1\n", "metrics.port"),
    (STREAM + '[[streams]]\nname = "flows"\n', "streams[1].name"),
    ('[[streams]]\nname = ""\n', "streams[0].name"),
    ('[[streams]]\nname = "flows"\nstart_position = "AT_TIMESTAMP"\nstart_timestamp = "99999999999999999999"\n',
     "streams[0].start_timestamp"),
    ("", "streams"),
    ("this is = = not toml", "config"),
    (STREAM + "[pipeline]\nholdback_s = 1e400\n", "pipeline.holdback_s"),
    (STREAM + "[decode]\nmax_inflated_bytes = 0\n", "decode.max_inflated_bytes"),
    # rules that span two keys name the one to change
    (STREAM + "[lease]\nrenew_interval_s = 20.0\nfailover_time_s = 10.0\n", "lease.renew_interval_s"),
    (STREAM + "[kinesis]\nbackoff_base_s = 20.0\nbackoff_max_s = 1.0\n", "kinesis.backoff_max_s"),
    (STREAM + 'start_timestamp = "2026-01-01"\n', "streams[0].start_timestamp"),
    (STREAM + '[[index.events]]\nkind = "file"\n', "index.events[0].path"),
    (STREAM + '[metrics]\nhost = "0.0.0.0"\n', "metrics.host"),
    (STREAM + '[index]\nstate_path = "/tmp"\n', "index.state_path"),
    (STREAM + '[index]\ncidrs = ["x.txt"]\n', "index.cidrs[0]"),
    (STREAM + 'format = "bogus"\n', "streams[0].format"),
])
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, toml: str, key: str) -> None:
    _, argv = _run(tmp_path, toml)
    refused(cli(*argv), 2, key)


@pytest.mark.parametrize("toml", [STREAM + '[sink.duckdb]\nmemory_limit = "lots"\n',
                                  STREAM + '[index]\nownership = ["/nonexistent/o.jsonl"]\n'])
def test_bad_config_real_exit_status(tmp_path: Path, toml: str) -> None:
    """As an operator's shell sees it: a subprocess, under the address-space limit, with a
    timeout (a daemon that started instead of refusing would run into it)."""
    _, argv = _run(tmp_path, toml, check=False)
    r = sub(*argv, timeout=60)
    refused(r, 2, "memory_limit" if "memory" in toml else "ownership")


def test_bad_config_without_check_exits_2_too(tmp_path: Path) -> None:
    """The same validation runs before the daemon starts (no Kinesis is needed to refuse)."""
    _, argv = _run(tmp_path, STREAM + '[sink.duckdb]\nmemory_limit = "lots"\n', check=False)
    refused(cli(*argv), 2, "memory_limit")
    _, argv = _run(tmp_path, STREAM + '[index]\nownership = ["/nonexistent/o.jsonl"]\n',
                   check=False)
    refused(cli(*argv), 2, "ownership")


@pytest.mark.parametrize("text", [
    b'{"syncToken": "1", "prefixes": "no"}', b'{"prefixes": [{"ip_prefix": 5}]}', b"[1, 2",
    b'{"prefixes": [{"ip_prefix": "10.0.0.0/8", "service": null, "region": 3}]}', b"",
])
def test_malformed_ip_ranges_json(tmp_path: Path, text: bytes) -> None:
    j = tmp_path / "ip-ranges.json"
    j.write_bytes(text)
    r = cli("index", "lookup", "10.1.1.1", "--cidrs", j)
    if r.rc == 0:
        accepted(r)
    else:
        refused(r, 2, "ip-ranges.json")


@pytest.mark.parametrize("name,value", [
    ("DREDGE_PIPELNE__FLUSH_INTERVAL_S", "2"), ("DREDGE_PIPELINE__FLUSH_INTERVAL", "2"),
    ("DREDGE_PIPELINE__FLUSH_INTERVAL_S", "inf"), ("DREDGE_PIPELINE__FLUSH_INTERVAL_S", "x"),
    ("DREDGE_STREAMS__X__REGION", "eu-west-1"), ("DREDGE_SINK__DUCKDB__MEMORY_LIMIT", "lots"),
    ("DREDGE_LOG_LEVEL", "loud"),
])
def test_bad_environment_override(tmp_path: Path, name: str, value: str) -> None:
    _, argv = _run(tmp_path, STREAM)
    refused(cli(*argv, env={name: value}), 2, name if "PIPELNE" in name else "")


def test_good_config_checks_ok(tmp_path: Path) -> None:
    owners = tmp_path / "o.jsonl"
    owners.write_text('{"ip": "10.0.0.1", "start": 0, "app": "a"}\n')
    _, argv = _run(tmp_path, STREAM + f'[index]\nownership = ["{owners}"]\n'
                   f'[sink.duckdb]\npath = "{tmp_path / "d.duckdb"}"\nmemory_limit = "1GB"\n')
    r = accepted(cli(*argv))
    assert b"ok" in r.out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(section=st.sampled_from(["pipeline", "kinesis", "lease", "decode", "sink.duckdb",
                                "dead_letter", "metrics", "serve", "index"]),
       key=st.sampled_from(["window_s", "flush_interval_s", "max_records", "path", "port",
                            "memory_limit", "threads", "table", "token", "retention_s"]),
       value=st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
                       st.sampled_from(["inf", "nan", "-inf", "1e400", '""', '"x"', "true",
                                        "[]", "{}", '"/"', '"1GB"'])))
def test_fuzzed_config_values(section: str, key: str, value: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        _, argv = _run(Path(d), f'{STREAM}[{section}]\n{key} = {value}\n')
        r = no_traceback(cli(*argv))
        assert r.rc in (0, 2)
