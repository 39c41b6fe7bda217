"""``dredge replay`` on a file whose every record is dead-lettered (a warning that says how
to recover), ``--force`` after the fix (rows replaced, never added twice), and a store
refusing a second rollup window; through the command line, on a real DuckDB store."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pytest

from dredge.cli import main
from tests.integration.druid import DruidCluster, druid_totals, duckdb_totals

pytestmark = pytest.mark.integration

FORMAT = "srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
N = 40


def lines() -> bytes:
    return "".join(f"10.0.0.{i} 10.0.1.{i} 443 5{i:04d} 6 {i} {100 * i} 1764547200 1764547260 "
                   "ACCEPT OK\n" for i in range(1, N + 1)).encode()


def totals(db: Path) -> tuple[int, int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT count(*), coalesce(SUM(flows), 0)::BIGINT, "
                          "coalesce(SUM(bytes), 0)::BIGINT FROM flow_facts").fetchall()[0]
    finally:
        con.close()
    return int(row[0]), int(row[1]), int(row[2])


def replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object], str]:
    rc = main(["replay", *args, "--no-progress", "--json"])
    out, err = capsys.readouterr()
    return rc, (orjson.loads(out) if rc == 0 else {}), err


def test_all_dead_lettered_warns_then_force_replaces(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "custom.log"  # no header line, not the default format
    path.write_bytes(lines())
    db = tmp_path / "s.duckdb"
    rc, out, err = replay(capsys, str(path), "--db", str(db))
    assert rc == 0
    assert (out["stored"], out["malformed"], out["flows"], out["dead_lettered_files"]) == (1, N, 0, 1)
    warning = [x for x in err.splitlines() if x.startswith("dredge: warning:")]
    assert len(warning) == 1 and str(path) in warning[0]
    assert f"all {N} record(s) were dead-lettered" in warning[0] and "--force" in warning[0]
    assert totals(db) == (0, 0, 0)

    # the format fixed, without --force: the file is recorded, nothing happens
    rc, out, _ = replay(capsys, str(path), "--db", str(db), "--format", FORMAT)
    assert (rc, out["already_ingested"], out["stored"]) == (0, 1, 0)
    # with --force: stored, and the summary says it replaced the earlier (empty) contribution
    rc, out, err = replay(capsys, str(path), "--db", str(db), "--format", FORMAT, "--force")
    assert (rc, out["stored"], out["replaced"], out["flows"], out["malformed"]) == (0, 1, 1, N, 0)
    assert "dredge: warning" not in err
    expected = totals(db)
    assert expected[1:] == (N, sum(100 * i for i in range(1, N + 1)))
    # again with --force: the same totals, not twice them
    rc, out, _ = replay(capsys, str(path), "--db", str(db), "--format", FORMAT, "--force")
    assert (rc, out["replaced"]) == (0, 1)
    assert totals(db) == expected
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*), max(malformed) FROM ingested").fetchall() == [(1, 0)]
    finally:
        con.close()


def stored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """A file with a header line, replayed into a new store (60-second windows)."""
    path = tmp_path / "a.log"
    path.write_bytes(f"version {FORMAT}\n".encode()
                     + b"".join(b"2 " + line + b"\n" for line in lines().splitlines()))
    db = tmp_path / "s.duckdb"
    rc, out, _ = replay(capsys, str(path), "--db", str(db))
    assert rc == 0 and out["flows"] == N
    return path, db


def one_error(err: str) -> str:
    errors = [x for x in err.splitlines() if x.startswith("dredge: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_another_window_into_the_same_store_is_refused(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path, db = stored(tmp_path, capsys)
    other = tmp_path / "b.log"
    other.write_bytes(path.read_bytes().replace(b"1764547200", b"1764547320"))
    rc, _, err = replay(capsys, str(other), "--db", str(db), "--window", "300")
    assert rc == 2
    error = one_error(err)
    assert error.startswith("dredge: error: window: ")
    assert "60-second" in error and "300-second" in error
    assert totals(db)[1] == N  # nothing of the refused run stored


def test_the_daemon_refuses_a_store_of_another_window(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _, db = stored(tmp_path, capsys)
    config = tmp_path / "dredge.toml"
    config.write_text(f'[[streams]]\nname = "flows"\n\n[pipeline]\nwindow_s = 300\n\n'
                      f'[sink.duckdb]\npath = "{db}"\n\n[metrics]\nport = 0\n')
    # refused when the store is opened, before any stream, lease table or AWS call
    rc = main(["run", "--config", str(config)])
    err = capsys.readouterr().err
    assert rc == 2
    error = one_error(err)
    assert "pipeline.window_s" in error and "60-second" in error and "300-second" in error


def test_force_with_sink_druid_rebuilds_the_replaced_hours_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], druid: DruidCluster) -> None:
    """A wrong --format put the rows in hour 10; fixed, they belong in hour 12: Druid must
    lose hour 10 as the store does, not keep the stale rows beside the new ones."""
    from tests.integration.test_druid_sink import ROUTER

    ten, twelve = 1764583200, 1764590400  # 2025-12-01 10:00 and 12:00 UTC
    path = tmp_path / "two-times.log"
    path.write_text("".join(f"10.0.0.{i} 10.0.1.{i} {ten + i} {twelve + i} {100 * i} {i}\n"
                            for i in range(1, N + 1)))
    db = tmp_path / "s.duckdb"
    ds = druid.datasource("force")
    druid_args = ["--sink", "druid", "--druid-url", ROUTER, "--druid-datasource", ds]
    wrong = "srcaddr dstaddr start interface-id bytes packets"
    right = "srcaddr dstaddr interface-id start bytes packets"
    rc, out, _ = replay(capsys, str(path), "--db", str(db), "--format", wrong, *druid_args)
    assert rc == 0 and out["flows"] == N
    assert druid_totals(druid, ds) == duckdb_totals(db)
    assert {t[:13] for t, _, _ in duckdb_totals(db)} == {"2025-12-01T10"}
    rc, out, _ = replay(capsys, str(path), "--db", str(db), "--format", right, "--force", *druid_args)
    assert rc == 0 and out["replaced"] == 1, out
    assert {t[:13] for t, _, _ in duckdb_totals(db)} == {"2025-12-01T12"}
    assert druid_totals(druid, ds) == duckdb_totals(db)
