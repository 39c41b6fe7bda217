"""Foreign or damaged stores given to ``query``, ``serve``, ``replay`` and ``druid
backfill``: a DuckDB file that is not a Dredge store (left unchanged), a corrupted store,
a file that is not DuckDB at all, an empty file, a directory."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest

from tests.hostile.conftest import accepted, cli, refused, sub


def _foreign(tmp_path: Path) -> Path:
    p = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(p))
    con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'a')")
    con.close()
    return p


def _corrupt(tmp_path: Path, store: Path) -> Path:
    p = tmp_path / "corrupt.duckdb"
    shutil.copy(store, p)
    data = bytearray(p.read_bytes())
    for i in range(4096, len(data), 997):
        data[i] ^= 0xA5
    p.write_bytes(bytes(data))
    return p


def _stores(tmp_path: Path, store: Path) -> dict[str, Path]:
    text = tmp_path / "text.duckdb"
    text.write_text("this is not a database\n" * 100)
    empty = tmp_path / "empty.duckdb"
    empty.write_bytes(b"")
    half = tmp_path / "half.duckdb"
    half.write_bytes(store.read_bytes()[:5000])
    return {"foreign": _foreign(tmp_path), "corrupt": _corrupt(tmp_path, store), "text": text,
            "empty": empty, "half": half, "directory": tmp_path}


KINDS = ["foreign", "corrupt", "text", "empty", "half", "directory"]


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""


@pytest.mark.parametrize("kind", KINDS)
def test_query_refuses_what_is_not_a_store(tmp_path: Path, store: Path, kind: str) -> None:
    db = _stores(tmp_path, store)[kind]
    before = _digest(db)
    refused(cli("query", "top", "--db", db), 2, str(db))
    assert _digest(db) == before  # a query writes nothing, not even Dredge's tables
    if kind == "foreign":
        con = duckdb.connect(str(db), read_only=True)
        assert [r[0] for r in con.execute("SHOW TABLES").fetchall()] == ["customers"]


@pytest.mark.parametrize("kind", KINDS)
def test_serve_refuses_what_is_not_a_store(tmp_path: Path, store: Path, kind: str) -> None:
    db = _stores(tmp_path, store)[kind]
    refused(cli("serve", "--db", db, "--port", "0"), 2, str(db))


@pytest.mark.parametrize("kind", ["corrupt", "text", "half", "directory"])
def test_replay_refuses_a_damaged_store(tmp_path: Path, store: Path, flowlog: Path,
                                        kind: str) -> None:
    db = _stores(tmp_path, store)[kind]
    refused(cli("replay", flowlog, "--db", db, "--dead-letter", tmp_path / "dl.jsonl",
                "--no-progress"), 2, str(db))


def test_replay_into_a_foreign_duckdb_is_refused(tmp_path: Path, flowlog: Path) -> None:
    """Someone else's database is not made a Dredge store by accident."""
    db = _foreign(tmp_path)
    refused(cli("replay", flowlog, "--db", db, "--no-progress"), 2, "not a dredge store")


def _respecting_modes() -> list[str]:
    """A command prefix under which file modes count (root ignores them unless it drops
    CAP_DAC_OVERRIDE): nothing for another user, setpriv for root."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only folder would not be one")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def test_query_a_store_in_a_read_only_place(store: Path) -> None:
    """Queries need no write access: a read-only store in a read-only folder answers."""
    ro = Path(tempfile.mkdtemp(prefix="dredge-ro-"))
    try:
        shutil.copy(store, ro / "s.duckdb")
        (ro / "s.duckdb").chmod(0o444)
        ro.chmod(0o555)
        p = subprocess.run([*_respecting_modes(), sys.executable, "-m", "dredge.cli", "query",
                            "top", "--json", "--db", str(ro / "s.duckdb")],
                           capture_output=True, timeout=120, cwd=ro)
        assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr.decode()
        assert json.loads(p.stdout)["bytes"] == 2520
        assert sorted(x.name for x in ro.iterdir()) == ["s.duckdb"]  # nothing written beside it
    finally:
        ro.chmod(0o755)
        shutil.rmtree(ro)


@pytest.mark.parametrize("kind", ["foreign", "text", "directory"])
def test_druid_backfill_refuses_what_is_not_a_store(tmp_path: Path, store: Path,
                                                    kind: str) -> None:
    db = _stores(tmp_path, store)[kind]
    refused(cli("druid", "backfill", "--db", db, "--druid-url", "http://127.0.0.1:9"), 2)


@pytest.mark.parametrize("kind", ["foreign", "text", "empty", "half", "directory"])
def test_index_state_that_is_not_one(tmp_path: Path, store: Path, kind: str) -> None:
    """``--state`` names the live index's saved state (Arrow IPC): anything else is refused."""
    state = _stores(tmp_path, store)[kind]
    for argv in (["index", "stats"], ["index", "lookup", "10.0.0.1", "--at", "5"]):
        refused(cli(*argv, "--state", state), 2, str(state))


def test_query_a_store_another_process_writes(tmp_path: Path, store: Path) -> None:
    """DuckDB's lock: the query is refused in one line that says what to do (--server)."""
    db = tmp_path / "locked.duckdb"
    shutil.copy(store, db)
    con = duckdb.connect(str(db))  # this process holds the write lock
    try:
        r = sub("query", "top", "--db", db, timeout=60)
    finally:
        con.close()
    refused(r, 2, str(db), "--server")


@pytest.mark.parametrize("where", ["src_app=a'; DROP TABLE flow_facts; --",
                                   "src_app=\\x00", "dst_app!=' OR '1'='1"])
def test_query_where_values_are_data_not_sql(tmp_path: Path, store: Path, where: str) -> None:
    db = tmp_path / "s.duckdb"
    shutil.copy(store, db)
    before = accepted(cli("query", "top", "--db", db, "--json")).out
    r = accepted(cli("query", "top", "--db", db, "--json", "--where", where))
    assert r.out in (b"", before)
    assert accepted(cli("query", "top", "--db", db, "--json")).out == before


def test_replay_into_a_store_another_process_writes(tmp_path: Path, store: Path,
                                                   flowlog: Path) -> None:
    db = tmp_path / "locked.duckdb"
    shutil.copy(store, db)
    con = duckdb.connect(str(db))
    try:
        r = sub("replay", flowlog, "--db", db, "--no-progress", timeout=60)
    finally:
        con.close()
    refused(r, 2, str(db), "another process")


@pytest.mark.parametrize("argv", [
    ["query", "top", "--backend", "druid"],
    ["druid", "status"],
])
def test_a_sink_that_is_down_is_a_run_time_failure(argv: list[str]) -> None:
    """Nobody's input is wrong when Druid does not answer: exit 1 (credentials, certificates
    and missing datasources are refused setups, exit 2: tests/integration/test_druid_auth.py)."""
    refused(cli(*argv, "--druid-url", "http://127.0.0.1:9"), 1, "unreachable", "127.0.0.1:9")
