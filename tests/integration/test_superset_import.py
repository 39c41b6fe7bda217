"""Superset's own importers accept the bundle (run in Superset's venv, infra/superset):
``superset import-dashboards`` on a fresh copy of the local metadata database creates every
object with the bundle's UUIDs; the assets importer then updates them in place."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dredge.cli import main
from dredge.dashboards.datasets import DUCKDB_DATABASE, duckdb_dataset
from dredge.dashboards.ids import stable_uuid
from dredge.testing import service_unavailable
from tests.integration.superset_env import HOME, VAR, VENV, superset_env, venv_missing

pytestmark = [pytest.mark.integration, pytest.mark.superset]


@pytest.fixture()
def metadata_copy(tmp_path: Path) -> Iterator[Path]:
    """The local Superset's metadata (migrated, with the admin user), copied: the running
    server's own database is not touched."""
    why = venv_missing()
    if why:
        service_unavailable(why)
    var = tmp_path / "var"
    var.mkdir()
    shutil.copy(VAR / "secret_key", var / "secret_key")
    src = sqlite3.connect(VAR / "superset.db")
    dst = sqlite3.connect(var / "superset.db")
    src.backup(dst)  # consistent even while the server writes
    src.close()
    dst.close()
    yield var


def objects(db: Path) -> dict[str, dict[str, int]]:
    """uuid -> id of each kind of object in a Superset metadata database."""
    con = sqlite3.connect(db)
    try:
        out: dict[str, dict[str, int]] = {}
        for kind, table in (("database", "dbs"), ("dataset", "tables"), ("chart", "slices"),
                            ("dashboard", "dashboards")):
            out[kind] = {str(uuid.UUID(bytes=u)): i
                         for i, u in con.execute(f"SELECT id, uuid FROM {table}")}
        return out
    finally:
        con.close()


def bundle_uuids(zip_path: Path) -> dict[str, set[str]]:
    import zipfile

    import yaml

    out: dict[str, set[str]] = {k: set() for k in ("database", "dataset", "chart", "dashboard")}
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            folder = name.split("/")[1]
            if folder.endswith("s") and folder[:-1] in out:
                out[folder[:-1]].add(yaml.safe_load(zf.read(name))["uuid"])
    return out


def test_superset_imports_the_bundle(metadata_copy: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "dredge-superset.zip"
    assert main(["dashboards", "export", "--out", str(bundle), "--druid-url",
                 "http://127.0.0.1:18888", "--duckdb", str(tmp_path / "store.duckdb")]) == 0
    env = superset_env(metadata_copy)
    run = subprocess.run([str(VENV / "bin" / "superset"), "import-dashboards", "-p", str(bundle),
                          "-u", "admin"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert "error" not in run.stderr.lower(), run.stderr[-4000:]
    want = bundle_uuids(bundle)
    got = objects(metadata_copy / "superset.db")
    assert len(want["chart"]) == 23 and len(want["dashboard"]) == 3
    assert len(want["database"]) == 2  # Druid and the DuckDB store (duckdb-engine)
    duck_db = stable_uuid("database", DUCKDB_DATABASE)
    duck_ds = duckdb_dataset().uuid
    for kind, uuids in want.items():
        # a dashboard import brings only what the dashboards use: not the DuckDB entry
        missing = uuids - set(got[kind]) - {duck_db, duck_ds}
        assert not missing, (kind, missing)

    # the assets importer overwrites: a bundle for another datasource moves the same charts,
    # and brings every object, the DuckDB database and its dataset too
    other = tmp_path / "other.zip"
    assert main(["dashboards", "export", "--out", str(other), "--duckdb", "/x/store.duckdb",
                 "--druid-datasource", "flows_elsewhere"]) == 0
    run = subprocess.run([str(VENV / "bin" / "python"), str(HOME / "import_bundle.py"),
                          str(other), "admin"], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    again = objects(metadata_copy / "superset.db")
    assert again["chart"] == got["chart"]  # updated in place: same ids
    assert duck_db in again["database"] and duck_ds in again["dataset"]
    assert again["dashboard"] == got["dashboard"]
    con = sqlite3.connect(metadata_copy / "superset.db")
    tables = {t for u, t in con.execute(  # the bundle's charts (the copy may hold others)
        "SELECT s.uuid, t.table_name FROM slices s JOIN tables t ON s.datasource_id = t.id")
        if str(uuid.UUID(bytes=u)) in want["chart"]}
    con.close()
    assert tables == {"flows_elsewhere", "flows_elsewhere_app_edges",
                      "flows_elsewhere_app_traffic", "flows_elsewhere_transfer"}


def test_superset_reads_the_duckdb_store(tmp_path: Path) -> None:
    """duckdb-engine in Superset's venv opens a store Dredge wrote, read-only, and reads the
    ``flows`` view: the storage format versions agree."""
    why = venv_missing()
    if why:
        service_unavailable(why)
    from dredge.generate import generate

    generate(tmp_path / "gen", flows=3000, seed=3, hours=1)
    db = tmp_path / "store.duckdb"
    assert main(["replay", str(tmp_path / "gen" / "logs"), "--index",
                 str(tmp_path / "gen" / "owners.jsonl"), "--db", str(db), "--no-progress"]) == 0
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        want = con.execute("SELECT count(*), sum(bytes)::BIGINT FROM flows").fetchone()
    code = ("import sys; from sqlalchemy import create_engine, text; "
            "e = create_engine('duckdb:///' + sys.argv[1], connect_args={'read_only': True}); "
            "c = e.connect(); "
            "print(*c.execute(text('SELECT count(*), CAST(sum(bytes) AS BIGINT) FROM flows'))"
            ".fetchone())")
    out = subprocess.run([str(VENV / "bin" / "python"), "-c", code, str(db)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == [str(v) for v in want]


def test_bundle_database_reaches_druid_over_tls(tmp_path: Path) -> None:
    """The bundle's Druid URI and connect_args, for the https Router with basic auth, work
    with pydruid in Superset's venv once the password is added (and a wrong one is refused)."""
    import json
    import os
    import zipfile

    import yaml

    from dredge.sinks.druid import DruidAPI, DruidConfig

    why = venv_missing()
    if why:
        service_unavailable(why)
    repo = Path(__file__).resolve().parents[2]
    tls_url = f"https://127.0.0.1:{os.environ.get('DRUID_ROUTER_TLS_PORT', 18889)}"
    ca = os.environ.get("DRUID_CA_FILE", str(repo / "infra" / "druid" / "var" / "tls" / "ca.pem"))
    user = os.environ.get("DRUID_AUTH_USER", "dredge")
    password = os.environ.get("DRUID_AUTH_PASSWORD", "dredge-local-password")
    if not os.path.isfile(ca):
        service_unavailable(f"no CA file at {ca} (make druid-up makes it)")
    why = DruidAPI(DruidConfig(url=tls_url, user=user, password=password, ca_file=ca,
                               max_attempts=2)).healthy()
    if why:
        service_unavailable(f"{why} (make druid-up)")
    bundle = tmp_path / "tls.zip"
    assert main(["dashboards", "export", "--out", str(bundle), "--no-duckdb", "--druid-url",
                 tls_url, "--druid-user", user, "--druid-ca-file", ca]) == 0
    with zipfile.ZipFile(bundle) as zf:
        (name,) = [n for n in zf.namelist() if "/databases/" in n]
        text = zf.read(name).decode()
    assert password not in text
    db = yaml.safe_load(text)
    code = ("import json, sys; from sqlalchemy import create_engine, text; "
            "from sqlalchemy.engine.url import make_url; "
            "url = make_url(sys.argv[1]).set(password=sys.argv[3]); "
            "e = create_engine(url, connect_args=json.loads(sys.argv[2])); "
            "print(e.connect().execute(text('SELECT 1 + 1')).scalar())")
    args = json.dumps(db["extra"]["engine_params"]["connect_args"])
    good = subprocess.run([str(VENV / "bin" / "python"), "-c", code, db["sqlalchemy_uri"], args,
                           password], capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stderr[-3000:]
    assert good.stdout.strip() == "2"
    bad = subprocess.run([str(VENV / "bin" / "python"), "-c", code, db["sqlalchemy_uri"], args,
                          password + "-wrong"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "401" in bad.stderr, bad.stderr[-2000:]
