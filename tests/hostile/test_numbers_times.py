"""Numeric ranges, overflow and time ranges: in records (dead-lettered as out of range, the
rest kept), in options of every command and in ownership files (refused in one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.conftest import HEADER, RECORD, accepted, cli, no_traceback, refused

HUGE = ["99999999999999999999999", "-99999999999999999999999", "9223372036854775808",
        "18446744073709551616", "1e309", "nan", "inf", "-inf", "0x10", "1_000"]


@pytest.mark.parametrize("field,value", [
    ("srcport", "65536"), ("dstport", "-1"), ("protocol", "256"), ("packets", "-5"),
    ("bytes", "9223372036854775808"), ("bytes", "18446744073709551616"),
    ("start", "99999999999999"), ("end", "1"), ("version", "99"), ("packets", "1e3"),
])
def test_parse_out_of_range_field_is_dead_lettered(field: str, value: str) -> None:
    names = HEADER.split()
    values = RECORD.split()
    values[names.index(field.replace("_", "-"))] = value
    r = accepted(cli("parse", stdin=f"{HEADER}\n{RECORD}\n{' '.join(values)}\n".encode()), rc=1)
    assert len(r.out.splitlines()) == 1 and "<stdin>:3:" in r.err


def test_replay_keeps_the_good_and_counts_the_out_of_range(tmp_path: Path, owners: Path) -> None:
    bad = RECORD.replace(" 840 ", " 9223372036854775807 ")  # bytes past any link's rate
    p = tmp_path / "x.log"
    p.write_text(f"{HEADER}\n{RECORD}\n{bad}\n{RECORD}\n")
    r = accepted(cli("replay", p, "--index", owners, "--db", tmp_path / "d.duckdb", "--json",
                     "--no-progress"))
    s = json.loads(r.out)
    assert (s["flows"], s["malformed"]) == (2, 1)
    q = accepted(cli("query", "top", "--db", tmp_path / "d.duckdb", "--json"))
    assert json.loads(q.out)["bytes"] == 1680


@pytest.mark.parametrize("value", [*HUGE, "0", "-1", ""])
@pytest.mark.parametrize("option", ["--window", "--workers", "--commit-files"])
def test_replay_numeric_options(tmp_path: Path, flowlog: Path, option: str, value: str) -> None:
    r = cli("replay", flowlog, "--db", tmp_path / "d.duckdb", option, value, "--no-progress")
    refused(r, 2, option.lstrip("-").split("-")[0])


@pytest.mark.parametrize("option,value", [
    ("--limit", v) for v in ("0", "-1", "99999999999999999999999", "x")] + [
    ("--interval", v) for v in ("0", "-5m", "99999999999999999999d", "5y", "")] + [
    (p, v) for p in ("--az-price", "--nat-price") for v in ("nan", "inf", "-inf", "-0.5", "1e400")])
def test_query_numeric_options(store: Path, option: str, value: str) -> None:
    refused(cli("query", "timeseries", "--db", store, option, value), 2,
            option.lstrip("-").split("-")[0])


@pytest.mark.parametrize("value", ["99999999999999999999", "-99999999999999999999",
                                   "9999-12-31T23:59:59Z", "0001-01-01T00:00Z", "+275760-09-13",
                                   "nan", "", " ", "2026-13-01T00:00Z", "2026-11-25T10:00+99:00",
                                   "1e10", "today"])
@pytest.mark.parametrize("option", ["--from", "--to"])
def test_query_time_range_options(store: Path, option: str, value: str) -> None:
    r = cli("query", "top", "--db", store, option, value)
    if r.rc == 0:  # a far but representable time is a valid (empty or full) range
        accepted(r)
    else:
        refused(r, 2, option)


def test_query_from_after_to(store: Path) -> None:
    refused(cli("query", "top", "--db", store, "--from", "2026-11-26T00:00Z", "--to",
                "2026-11-25T00:00Z"), 2, "--from")


@pytest.mark.parametrize("value", ["99999999999999999999", "-99999999999999999999",
                                   "9999-12-31T23:59:59Z", "nan", "2026-02-30T00:00Z"])
def test_index_lookup_at(owners: Path, value: str) -> None:
    r = cli("index", "lookup", "10.0.0.1", "--at", value, "--index", owners)
    if r.rc == 0:
        accepted(r)
    else:
        refused(r, 2, "--at")


@pytest.mark.parametrize("line", [
    '{"ip": "10.0.0.1", "start": 1e300, "app": "a"}',
    '{"ip": "10.0.0.1", "start": 99999999999999999999999, "app": "a"}',
    '{"ip": "10.0.0.1", "start": -99999999999999999999999, "app": "a"}',
    '{"ip": "10.0.0.1", "start": 0, "end": 1e30, "app": "a"}',
    '{"ip": "10.0.0.1", "start": "9999-99-99", "app": "a"}',
    '{"ip": "10.0.0.1", "start": NaN, "app": "a"}',
    '{"ip": "10.0.0.1", "start": Infinity, "app": "a"}',
    '{"ip": "10.0.0.1", "start": true, "app": "a"}',
    '{"ip": "10.0.0.1", "start": [1], "app": "a"}',
    '{"ip": "10.0.0.1", "start": 10, "end": 5, "app": "a"}',
])
def test_ownership_times_out_of_range(tmp_path: Path, line: str) -> None:
    """One bad line is counted and skipped; the other line still answers."""
    p = tmp_path / "o.jsonl"
    p.write_text(line + '\n{"ip": "10.0.0.9", "start": 0, "app": "good"}\n')
    r = accepted(cli("index", "lookup", "10.0.0.9", "--at", "100", "--index", p))
    assert json.loads(r.out)["owner"]["app"] == "good"
    r = accepted(cli("index", "stats", "--index", p))
    assert json.loads(r.out)["intervals"] == 1


@pytest.mark.parametrize("args", [
    ["--flows", "-1"], ["--flows", "99999999999999999999"], ["--seed", "-1"],
    ["--seed", "99999999999999999999999"], ["--hours", "nan"], ["--hours", "inf"],
    ["--hours", "-1"], ["--hours", "0"], ["--start", "99999999999999999999"],
    ["--start", "-99999999999999999999"], ["--start", "nan"], ["--flows", "x"],
])
def test_generate_numeric_and_time_options(tmp_path: Path, args: list[str]) -> None:
    refused(cli("generate", tmp_path / "g", *args), 2, args[0].lstrip("-"))
    assert not (tmp_path / "g").exists() or not any((tmp_path / "g").iterdir())


@pytest.mark.parametrize("args", [
    ["--task-count", "0"], ["--task-count", "-3"], ["--replicas", "0"],
    ["--task-count", "99999999999999999999"], ["--task-duration", "forever"],
    ["--late-rejection", "-1"],
])
def test_druid_spec_numeric_options(args: list[str]) -> None:
    refused(cli("druid", "spec", *args), 2, args[0].lstrip("-").split("-")[0])


@pytest.mark.parametrize("value", ["70000", "-1", "99999999999999999999", "http"])
def test_serve_port(store: Path, value: str) -> None:
    refused(cli("serve", "--db", store, "--port", value), 2, "port")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.one_of(st.integers(min_value=-(2**70), max_value=2**70).map(str),
                                 st.floats().map(str), st.sampled_from(HUGE)),
                       min_size=6, max_size=6))
def test_parse_numeric_fields_fuzzed(values: list[str]) -> None:
    """srcport dstport protocol packets bytes start: any numbers; good records kept, the rest
    dead-lettered; an accepted record is within the documented bounds."""
    fields = RECORD.split()
    for i, v in zip((5, 6, 7, 8, 9, 10), values, strict=True):
        fields[i] = v
    r = no_traceback(cli("parse", stdin=f"{RECORD}\n{' '.join(fields)}\n".encode()))
    rows = [json.loads(x) for x in r.out.splitlines()]
    assert len(rows) in (1, 2) and r.rc == (0 if len(rows) == 2 else 1)
    for row in rows:
        assert 0 <= row["srcport"] <= 65535 and 0 <= row["dstport"] <= 65535
        assert 0 <= row["protocol"] <= 255
        assert 0 <= row["bytes"] < 2**63 and 0 <= row["packets"] < 2**63
