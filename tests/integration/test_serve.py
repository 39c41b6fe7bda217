"""`dredge serve` on a store built from generated data (`dredge generate` + `dredge replay`),
as its own process on loopback: every endpoint answers; /api/query equals
`dredge query --json` on the same store for top, timeseries and cross-az; `dredge query
--server` prints what `dredge query` prints; bad parameters are a 400 with one line; auth.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dredge.cli import main
from dredge.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

URL_LINE = re.compile(rb"serving (http://[0-9.]+:\d+)/")


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(20)


def start_serve(args: list[str], log: Path, env: dict[str, str] | None = None,
                timeout: float = 60) -> Served:
    """`dredge serve ... --port 0` as a process; its URL from the line it prints."""
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dredge.cli", "serve", "--port", "0", *args],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = URL_LINE.search(log.read_bytes())
        if m:
            return Served(m.group(1).decode(), proc, log)
        if proc.poll() is not None:
            raise AssertionError(f"dredge serve exited {proc.returncode}: {log.read_text()}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"dredge serve did not start: {log.read_text()}")


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         ) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def api(url: str, **params: Any) -> dict[str, Any]:
    query = urllib.parse.urlencode(params, doseq=True)
    status, body = http("GET", f"{url}/api/query?{query}")
    assert status == 200, body
    result: dict[str, Any] = json.loads(body)
    return result


def as_records(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["query", *args, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serve-sample")
    generate(out, flows=40_000, seed=3, hours=6)
    path = out / "store.duckdb"
    assert main(["replay", str(out / "logs"), "--index", str(out / "owners.jsonl"),
                 "--cidrs", str(out / "networks.csv"), "--db", str(path), "--no-progress"]) in (0, 1)
    return path


@pytest.fixture(scope="module")
def served(db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = start_serve(["--db", str(db)], tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield s
    finally:
        assert s.stop() == 0, s.log.read_text()


QUERIES: list[list[str]] = [
    ["top"],
    ["top", "--by", "src_region,dst_region,action", "--metric", "packets", "--limit", "50"],
    ["top", "--by", "dst_app", "--where", "action!=REJECT", "--where", "src_app=api|web|orders",
     "--from", "2026-11-25T01:00Z", "--to", "2026-11-25T04:30Z"],
    ["timeseries", "--interval", "15m"],
    ["timeseries", "--by", "action", "--interval", "1h", "--metric", "flows"],
    ["cross-az", "--limit", "100"],
    ["cross-az", "--by", "src_app", "--internet-price", "0", "--nat-price", "0.05",
     "--az-price", "0.02"],
    ["top", "--by", "protocol,traffic_path", "--where", "protocol=6|17"],
    ["top", "--by", "protocol,action", "--where", "protocol=TCP|udp", "--where", "action=reject"],
    ["top", "--by", "port", "--where", "action=REJECT", "--where", "port!=https|ephemeral"],
]

OPTION_KEYS = {"--by": "by", "--where": "where", "--from": "from", "--to": "to",
               "--metric": "metric", "--limit": "limit", "--interval": "interval",
               "--az-price": "az_price", "--region-price": "region_price",
               "--internet-price": "internet_price", "--nat-price": "nat_price"}


def params_of(args: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {"kind": args[0]}
    for opt, value in zip(args[1::2], args[2::2], strict=True):
        key = OPTION_KEYS[opt]
        if key == "where":
            params.setdefault("where", []).append(value)
        else:
            params[key] = value
    return params


@pytest.mark.parametrize("args", QUERIES, ids=[" ".join(q) for q in QUERIES])
def test_api_query_equals_dredge_query_json(served: Served, db: Path, args: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    want = cli_json(capsys, *args, "--db", str(db))
    assert want, "the query should find rows in the sample"
    got = api(served.url, **params_of(args))
    assert got["kind"] == args[0] and isinstance(got["elapsed_ms"], float)
    assert as_records(got) == want
    # POST with a JSON body: the same answer
    body = {**params_of(args)}
    if "by" in body:
        body["by"] = body["by"].split(",")
    status, posted = http("POST", served.url + "/api/query", body,
                          {"Content-Type": "application/json"})
    assert status == 200 and as_records(json.loads(posted)) == want
    # and `dredge query --server` prints the same JSON lines and the same table
    assert cli_json(capsys, *args, "--server", served.url) == want
    assert main(["query", *args, "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert main(["query", *args, "--server", served.url]) == 0
    assert capsys.readouterr().out == text
    assert main(["query", *args, "--db", str(db), "--format", "csv"]) == 0
    csv = capsys.readouterr().out
    assert main(["query", *args, "--server", served.url, "--format", "csv"]) == 0
    assert capsys.readouterr().out == csv and csv.count("\r\n") == len(want) + 1


def test_every_endpoint_answers(served: Served, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert http("GET", served.url + "/healthz") == (200, b"ok\n")
    assert http("GET", served.url + "/readyz") == (200, b'{"ready":true}')
    status, metrics = http("GET", served.url + "/metrics")
    assert status == 200 and b"# TYPE dredge_sink_flush_seconds histogram" in metrics
    status, body = http("GET", served.url + "/api/meta")
    meta = json.loads(body)
    first = cli_json(capsys, "timeseries", "--interval", "1m", "--db", str(db))
    assert meta["backend"] == "duckdb" and meta["daemon"] is False
    assert meta["time_range"] == {"from": first[0]["t"], "to": first[-1]["t"]}
    assert set(meta["prices"]) == {"az_price", "region_price", "internet_price", "nat_price"}
    assert "port" in meta["filterable"] and "port" in meta["numeric"]
    assert meta["port_names"]["443"] == "https"
    assert json.loads(http("GET", served.url + "/api/ops")[1]) == {"daemon": False}
    status, js = http("GET", served.url + "/static/vendor/plotly.min.js")
    assert status == 200 and len(js) > 1_000_000 and b"plotly" in js[:2000].lower()
    for page in ("/", "/overview", "/dependencies", "/cost", "/ops"):
        status, html = http("GET", served.url + page)
        assert status == 200 and b"<html" in html.lower(), page
    for script in re.findall(rb'src="(/static/[^"]+)"', http("GET", served.url + "/overview")[1]):
        assert http("GET", served.url + script.decode())[0] == 200, script
    assert http("GET", served.url + "/nope")[0] == 404


@pytest.mark.parametrize(("query", "error"), [
    ("by=src_app,colour", "by: unknown dimension 'colour'"),
    ("where=src_ap=api", "where: unknown dimension 'src_ap'"),
    ("where=protocol=tcpx", "where: protocol takes a number 0-255 or an IANA name (tcp, udp, icmp, ...), not 'tcpx'"),
    ("from=last+tuesday", "time: not a time"),
    ("kind=pie", "kind: one of top, timeseries, cross-az"),
    ("limit=-3", "limit: between 1 and"),
    ("metric=bytes&metric=flows", "metric: given 2 times"),
])
def test_bad_parameters_are_400_one_line(served: Served, query: str, error: str) -> None:
    status, body = http("GET", f"{served.url}/api/query?{query}")
    assert status == 400
    message = json.loads(body)["error"]
    assert error in message and "\n" not in message and "Traceback" not in body.decode()


def test_auth_token_and_basic(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = start_serve(["--db", str(db)], tmp_path / "auth.log",
                    env={"DREDGE_SERVE__TOKEN": "t0ken", "DREDGE_SERVE__USER": "ops",
                         "DREDGE_SERVE__PASSWORD": "pw"})
    try:
        for path in ("/api/query", "/api/meta", "/api/ops", "/metrics", "/overview"):
            status, body = http("GET", s.url + path)
            assert status == 401 and json.loads(body) == {"error": "credentials required"}, path
        assert http("GET", s.url + "/api/meta", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert http("GET", s.url + "/api/meta", headers={"Authorization": "Bearer t0ken"})[0] == 200
        basic = "Basic " + base64.b64encode(b"ops:pw").decode()
        assert http("GET", s.url + "/api/meta", headers={"Authorization": basic})[0] == 200
        assert http("GET", s.url + "/healthz")[0] == 200
        # the client: a token option, or user:password in the URL
        capsys.readouterr()
        assert main(["query", "top", "--server", s.url]) == 2
        assert "HTTP 401: credentials required" in capsys.readouterr().err
        want = cli_json(capsys, "top", "--db", str(db))
        assert cli_json(capsys, "top", "--server", s.url, "--server-token", "t0ken") == want
        assert cli_json(capsys, "top", "--server", s.url.replace("http://", "http://ops:pw@")) == want
    finally:
        assert s.stop() == 0


def test_refuses_an_open_address_without_auth(db: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "dredge.cli", "serve", "--db", str(db),
                           "--host", "0.0.0.0", "--port", "0"], capture_output=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.decode().strip().splitlines()[-1] == (
        "dredge: error: --host: 0.0.0.0 is not a loopback address: set [serve] token or "
        "user/password, or allow_unauthenticated = true")


def test_missing_store_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--db", str(tmp_path / "none.duckdb"), "--port", "0"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"dredge: error: db: no database at {tmp_path / 'none.duckdb'} (run `dredge replay` first)")
