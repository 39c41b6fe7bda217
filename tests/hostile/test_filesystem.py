"""Filesystem failures for every command that reads or writes a path: missing files,
directories where files are expected, places that cannot be written (``/sys`` refuses even
root), a file where a folder is expected, names and paths past the OS limits. Each is one
clear line naming the path; nothing half-written is left claiming success."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.conftest import accepted, cli, refused

LONG_NAME = "n" * 300  # past NAME_MAX (255)


def _long_path(tmp_path: Path) -> Path:
    return tmp_path.joinpath(*(["d" * 200] * 25), "x")  # past PATH_MAX (4096)


def _places(tmp_path: Path) -> dict[str, Path]:
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    return {"unwritable": Path("/sys/dredge-hostile-x"), "under_a_file": a_file / "x",
            "long_name": tmp_path / LONG_NAME, "long_path": _long_path(tmp_path),
            "a_directory": tmp_path}


PLACES = ["unwritable", "under_a_file", "long_name", "long_path", "a_directory"]


@pytest.mark.parametrize("where", PLACES)
def test_replay_db_cannot_be_written(tmp_path: Path, flowlog: Path, where: str) -> None:
    db = _places(tmp_path)[where]
    refused(cli("replay", flowlog, "--db", db, "--dead-letter", tmp_path / "dl.jsonl",
                "--no-progress"), 2, "db")


@pytest.mark.parametrize("where", PLACES)
def test_replay_dead_letter_cannot_be_written(tmp_path: Path, where: str) -> None:
    p = tmp_path / "bad.log"
    p.write_text("not a flow log record\n")
    dl = _places(tmp_path)[where]
    refused(cli("replay", p, "--db", tmp_path / "d.duckdb", "--dead-letter", dl,
                "--no-progress"), 2, "dead")


@pytest.mark.parametrize("where", ["long_name", "long_path", "under_a_file", "missing"])
def test_replay_input_paths(tmp_path: Path, where: str) -> None:
    path = {**_places(tmp_path), "missing": tmp_path / "nope.log"}[where]
    refused(cli("replay", path, "--db", tmp_path / "d.duckdb", "--no-progress"), 2)


@pytest.mark.parametrize("where", ["long_name", "long_path", "under_a_file", "missing",
                                   "a_directory"])
def test_parse_input_paths(tmp_path: Path, where: str) -> None:
    path = {**_places(tmp_path), "missing": tmp_path / "nope.log"}[where]
    refused(cli("parse", path), 2)


@pytest.mark.parametrize("where", PLACES)
def test_generate_output_cannot_be_written(tmp_path: Path, where: str) -> None:
    out = _places(tmp_path)[where]
    if where == "a_directory":  # an existing folder is fine: the sample goes into it
        out = tmp_path / "plain-file"
    refused(cli("generate", out, "--flows", "10"), 2)


@pytest.mark.parametrize("option", ["--index", "--cidrs", "--state"])
@pytest.mark.parametrize("where", ["missing", "a_directory", "long_name", "under_a_file"])
def test_index_inputs(tmp_path: Path, option: str, where: str) -> None:
    path = {**_places(tmp_path), "missing": tmp_path / "nope.jsonl"}[where]
    refused(cli("index", "stats", option, path), 2)


@pytest.mark.parametrize("where", ["missing", "a_directory", "long_name", "under_a_file"])
def test_run_config_path(tmp_path: Path, where: str) -> None:
    path = {**_places(tmp_path), "missing": tmp_path / "nope.toml"}[where]
    refused(cli("run", "--config", path), 2, "config")


@pytest.mark.parametrize("where", PLACES)
def test_dashboards_export_out(tmp_path: Path, where: str) -> None:
    out = _places(tmp_path)[where]
    refused(cli("dashboards", "export", "--out", out, "--no-duckdb"),
            2)


def test_generate_into_existing_sample_is_fine(tmp_path: Path) -> None:
    accepted(cli("generate", tmp_path / "g", "--flows", "50", "--seed", "1"))
    accepted(cli("generate", tmp_path / "g", "--flows", "50", "--seed", "1"))
