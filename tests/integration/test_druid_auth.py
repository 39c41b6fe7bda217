"""Dredge's Druid settings against a Druid that speaks TLS and checks passwords (``make druid-up``).

The local cluster's Router also listens on https (``DRUID_ROUTER_TLS_PORT``, 18889) with a
certificate from the CA that ``druid.sh up`` makes (``infra/druid/var/tls/ca.pem``), and every
service runs druid-basic-security's authenticator before allowAll: wrong credentials are a 401,
no credentials pass (the other Druid tests send none). ``druid.sh up`` creates the user
``dredge`` (``DRUID_AUTH_USER`` / ``DRUID_AUTH_PASSWORD``). These tests go through the https
Router with that user: ``druid status``, ``query --backend druid`` (pydruid over TLS) and
``replay --sink druid`` (a REPLACE task), and check the one-line errors for a wrong password and
an untrusted certificate. A cluster that is not up skips them locally and fails them in CI.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from pathlib import Path

import pytest

from dredge.cli import main
from dredge.errors import SinkError
from dredge.sinks.druid import DruidAPI, DruidConfig
from dredge.testing import service_unavailable
from tests.integration.druid import DruidCluster, druid_totals, duckdb_totals
from tests.integration.samples import replay_args

pytestmark = [pytest.mark.integration, pytest.mark.druid]

DRUID_DIR = Path(__file__).resolve().parents[2] / "infra" / "druid"
TLS_URL = f"https://127.0.0.1:{os.environ.get('DRUID_ROUTER_TLS_PORT', 18889)}"
PLAIN_URL = f"http://127.0.0.1:{os.environ.get('DRUID_ROUTER_PORT', 18888)}"
CA_FILE = os.environ.get("DRUID_CA_FILE", str(DRUID_DIR / "var" / "tls" / "ca.pem"))
USER = os.environ.get("DRUID_AUTH_USER", "dredge")
PASSWORD = os.environ.get("DRUID_AUTH_PASSWORD", "dredge-local-password")


def tls_config(**kw: object) -> DruidConfig:
    return DruidConfig(**{"url": TLS_URL, "user": USER, "password": PASSWORD,  # type: ignore[arg-type]
                          "ca_file": CA_FILE, "max_attempts": 2, **kw})


@pytest.fixture(autouse=True)
def no_druid_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test passes: no DREDGE_DRUID_* from the caller's shell."""
    for name in list(os.environ):
        if name.startswith(("DREDGE_DRUID_", "DREDGE_SINK__DRUID__")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def tls(druid: DruidCluster) -> DruidAPI:
    """The session's cluster through the https Router, as the dredge user."""
    if not os.path.isfile(CA_FILE):
        service_unavailable(f"no CA file at {CA_FILE} (make druid-up makes it)")
    return druid.client(tls_config())


def config_file(path: Path, datasource: str, **extra: str) -> Path:
    """A daemon config whose [sink.druid] holds the whole TLS and auth connection."""
    fields = {"url": TLS_URL, "user": USER, "password": PASSWORD, "ca_file": CA_FILE,
              "datasource": datasource, **extra}
    path.write_text("[sink.druid]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items()))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dredge: error: "), err
    return lines[0]


def test_the_auth_chain_refuses_bad_credentials_and_lets_none_through(tls: DruidAPI) -> None:
    """What druid-basic-security's chain ["basic", "allowAll"] does (skipOnFailure false)."""
    assert tls.sql("SELECT 1 AS n") == [{"n": 1}]  # the dredge user
    for url in (TLS_URL, PLAIN_URL):  # both Router ports, the same filters
        anonymous = DruidAPI(tls_config(url=url, user="", password=""))
        assert anonymous.sql("SELECT 1 AS n") == [{"n": 1}]  # next in chain: allowAll
        for user, password in ((USER, "wrong"), ("nobody", PASSWORD)):
            bad = DruidAPI(tls_config(url=url, user=user, password=password))
            with pytest.raises(SinkError, match=f"HTTP 401: user '{user}' or its password refused"):
                bad.sql("SELECT 1")
    # /status/health is unsecured: Druid answers it whatever the credentials
    DruidAPI(tls_config(password="wrong")).request("GET", "/status/health")


def test_status_over_tls_with_basic_auth_from_a_config_file(
        tls: DruidAPI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = config_file(tmp_path / "dredge.toml", "dredge_flows")
    rc, out, err = run(capsys, "druid", "status", "--config", str(conf), "--json")
    assert rc == 0, err
    status = json.loads(out)
    assert (status["url"], status["datasource"]) == (TLS_URL, "dredge_flows")
    assert set(status["segments"]) >= {"segments", "rows", "realtime"}


def test_wrong_password_is_one_line_exit_2(
        tls: DruidAPI, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    conf = config_file(tmp_path / "dredge.toml", "dredge_flows", password="not-the-password")
    rc, _, err = run(capsys, "druid", "status", "--config", str(conf))
    assert rc == 2
    assert "HTTP 401: user 'dredge' or its password refused" in one_error_line(err)
    monkeypatch.setenv("DREDGE_DRUID_PASSWORD", "also-wrong")  # the variable beats the file
    rc, _, err = run(capsys, "query", "top", "--backend", "druid", "--druid-url", TLS_URL,
                     "--druid-ca-file", CA_FILE, "--druid-user", USER)
    assert rc == 2
    line = one_error_line(err)
    assert "Druid SQL at https://" in line and "HTTP 401: user 'dredge' or its password" in line


def test_untrusted_certificate_is_one_line_exit_2_and_no_verify_works_without_a_ca(
        tls: DruidAPI, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DREDGE_DRUID_PASSWORD", PASSWORD)
    # a datasource no test writes: the query's answer then comes from Druid's SQL layer
    # whatever datasources the cluster holds (proof that TLS and auth got through)
    absent = f"dredge_test_absent_{uuid.uuid4().hex[:8]}"
    conn = ["--druid-url", TLS_URL, "--druid-user", USER, "--druid-datasource", absent]
    for cmd in (["druid", "status"], ["query", "top", "--backend", "druid"]):
        rc, _, err = run(capsys, *cmd, *conn)  # system CAs only, verification on
        assert rc == 2
        line = one_error_line(err)
        assert "TLS certificate not trusted (self-signed certificate in certificate chain)" in line
        assert "--druid-ca-file" in line

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rc, _, err = run(capsys, *cmd, *conn, "--no-druid-tls-verify")
        if cmd[0] == "query":  # reached Druid SQL, which knows no such datasource
            assert rc == 2
            assert f"no datasource '{absent}' in Druid at {TLS_URL}" in one_error_line(err)
        else:
            assert rc == 0, err
            assert err == ""
        # no InsecureRequestWarning per query: the check was turned off on purpose
        assert not [w for w in caught if "Unverified HTTPS" in str(w.message)]
    monkeypatch.setenv("DREDGE_DRUID_TLS_VERIFY", "0")
    rc, _, err = run(capsys, "druid", "status", *conn)
    assert rc == 0, err


def test_replay_and_query_through_the_tls_router_with_auth(
        druid: DruidCluster, tls: DruidAPI, hour_logs: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong password leaves the hours pending at once (exit 1, no retries); the next run
    with the right one pushes them through the https Router (a REPLACE task); Druid then holds
    the store's totals, and ``query --backend druid`` prints what the DuckDB store prints."""
    ds = druid.datasource("auth")
    db = tmp_path / "auth.duckdb"
    conn = ["--druid-url", TLS_URL, "--druid-ca-file", CA_FILE, "--druid-user", USER,
            "--druid-datasource", ds]

    monkeypatch.setenv("DREDGE_DRUID_PASSWORD", "wrong")
    t0 = time.monotonic()
    rc, out, _ = run(capsys, *replay_args(hour_logs, db, "--sink", "druid", *conn))
    assert rc == 1
    assert "druid        FAILED, 1 hour(s) pending (run again)" in out
    assert "HTTP 401: user 'dredge' or its password refused" in out
    assert time.monotonic() - t0 < 60  # refused credentials are not retried with backoff

    monkeypatch.setenv("DREDGE_DRUID_PASSWORD", PASSWORD)
    rc, out, err = run(capsys, *replay_args(hour_logs, db, "--sink", "druid", *conn))
    assert rc == 0, out + err
    assert f"1 hour(s) pushed to {ds}" in out

    want = duckdb_totals(db)
    assert want and druid_totals(tls, ds) == want  # loaded before the task ended

    conf = config_file(tmp_path / "dredge.toml", ds)
    for spec in (["top", "--by", "src_app,dst_app"], ["timeseries", "--interval", "5m"]):
        rc, expected, err = run(capsys, "query", *spec, "--db", str(db))
        assert rc == 0, err
        rc, got, err = run(capsys, "query", *spec, "--backend", "druid", "--config", str(conf))
        assert rc == 0, err
        assert got == expected
