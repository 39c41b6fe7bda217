"""Option values of every command, the log level, help texts and output noise: a bad value
is one ``dredge: error:`` line with exit status 2 (argparse's too); ``--help`` gives every
option's meaning and default; a one-shot command that succeeds keeps stderr quiet."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from tests.hostile.conftest import accepted, cli, refused, sub

COMMANDS = [["replay"], ["query"], ["parse"], ["generate"], ["index"], ["run"], ["druid", "spec"],
            ["druid", "init"], ["druid", "status"], ["druid", "backfill"], ["serve"],
            ["dashboards", "export"]]


@pytest.mark.parametrize("argv", [
    ["nonsense"], [], ["query"], ["query", "sideways"], ["replay"], ["replay", "x", "--bogus"],
    ["query", "top", "--metric", "dollars"], ["query", "top", "--limit"],
    ["index", "lookup", "1.2.3.4", "--at"], ["druid"], ["dashboards"], ["run"],
    ["query", "top", "--backend", "postgres"], ["generate"],
])
def test_usage_errors_are_one_line(argv: list[str]) -> None:
    r = refused(cli(*argv), 2)
    assert "usage:" not in r.err and len(r.err.strip().splitlines()) == 1


@pytest.mark.parametrize("option,value", [
    *[("--where", w) for w in ("srcport=abc", "protocol=tcp|udp|x", "protocol=1e3",
                               "traffic_path=-", "protocol=99999999999999999999", "nodim=1",
                               "src_app", "=x", "src_app=a=b=c")],
    *[("--by", b) for b in ("nope", "src_app,,", "window_start", "bytes", "")]])
def test_query_where_and_by_values(store: Path, option: str, value: str) -> None:
    r = cli("query", "top", "--db", store, option, value)
    if r.rc == 0:
        accepted(r)
    else:
        refused(r, 2, option.lstrip("-"))


@pytest.mark.parametrize("level", ["loud", "INFO ", "5", ""])
def test_log_level_option(store: Path, level: str) -> None:
    refused(cli("--log-level", level, "query", "top", "--db", store), 2, "log")


@pytest.mark.parametrize("level", ["loud", "verbose", "10"])
def test_log_level_environment(store: Path, level: str) -> None:
    refused(cli("query", "top", "--db", store, env={"DREDGE_LOG_LEVEL": level}), 2,
            "DREDGE_LOG_LEVEL")


@pytest.mark.parametrize("level", ["DEBUG", "warning", "Error"])
def test_log_level_known_values(store: Path, level: str) -> None:
    accepted(cli("--log-level", level, "query", "top", "--db", store))


def test_one_shot_commands_keep_stderr_quiet(tmp_path: Path, flowlog: Path, owners: Path) -> None:
    r = accepted(cli("replay", flowlog, "--index", owners, "--db", tmp_path / "d.duckdb",
                     "--no-progress"))
    assert r.err == ""
    assert accepted(cli("index", "lookup", "10.0.0.1", "--at", "5", "--index", owners)).err == ""
    assert accepted(cli("query", "top", "--db", tmp_path / "d.duckdb")).err == ""


def test_generate_prints_one_line_and_writes_the_manifest(tmp_path: Path) -> None:
    r = accepted(cli("generate", tmp_path / "g", "--flows", "200", "--seed", "3"))
    lines = r.out.decode().strip().splitlines()
    assert len(lines) == 1 and "200" in lines[0] and "manifest.json" in lines[0]
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert manifest["flows"] == 200
    # the generator's own Parquet through `parse`: every record, as JSON lines
    for f in [x for x in manifest["file_list"] if x["kind"] == "parquet"][:2]:
        r = accepted(cli("parse", tmp_path / "g" / f["path"]))
        assert len(r.out.splitlines()) == f["flows"] + f["nodata"] + f["skipdata"]


@pytest.mark.parametrize("argv", COMMANDS)
def test_help_gives_every_option_a_meaning_and_default(argv: list[str]) -> None:
    """Every option says what it is; every option that takes a value says its default
    (``default: none`` where there is none)."""
    from dredge.cli import build_parser

    parser = build_parser()
    for name in argv:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        what = "/".join(action.option_strings) or action.dest
        assert action.help, f"dredge {' '.join(argv)} {what}: no help text"
        if action.nargs != 0 and action.option_strings:
            assert "default" in action.help, f"dredge {' '.join(argv)} {what}: no default"
    accepted(cli(*argv, "--help"))


def test_top_level_help_and_version_in_a_subprocess() -> None:
    r = sub("--help", timeout=60)
    assert r.rc == 0 and b"replay" in r.out and r.err == ""
    assert b"--log-level" in r.out and b"default" in r.out


@pytest.mark.parametrize("host", ["not a host", "999.1.1.1", "::1::", ""])
def test_serve_host_that_cannot_be_listened_on(store: Path, host: str) -> None:
    refused(cli("serve", "--db", store, "--host", host, "--port", "0"), 2, "host")


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999", "ftp://x", "x",
                                 "http://", "http://127.0.0.1:1"])
def test_query_server_urls(url: str) -> None:
    refused(cli("query", "top", "--server", url), 2, url if url != "http://" else "server")
