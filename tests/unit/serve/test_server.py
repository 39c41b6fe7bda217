"""The server on loopback over a small store: routes, JSON errors with one line, auth, body
limit, read-only store, query time limit, readiness reasons."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dredge.serve.backends import DuckDBBackend
from dredge.serve.config import ServeConfig
from dredge.serve.params import ApiError
from dredge.serve.ready import Readiness
from dredge.serve.server import ApiServer
from dredge.telemetry.metrics import REGISTRY


def request(server: ApiServer, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    con = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        con.request(method, path, body=body, headers=headers or {})
        resp = con.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        con.close()


def get_json(server: ApiServer, path: str, **kw: Any) -> tuple[int, Any]:
    status, _, body = request(server, "GET", path, **kw)
    return status, json.loads(body)


@pytest.fixture
def serve(store: Path) -> Iterator[ApiServer]:
    yield from _serve(store, ServeConfig())


def _serve(store: Path, config: ServeConfig, readiness: Readiness | None = None
           ) -> Iterator[ApiServer]:
    backend = DuckDBBackend.read_only(str(store), timeout_s=config.query_timeout_s)
    server = ApiServer("127.0.0.1", 0, config, backend, readiness or Readiness(), REGISTRY,
                       daemon=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        backend.close()
        server.stop()  # idempotent


def test_query_meta_and_probes(serve: ApiServer) -> None:
    status, top = get_json(serve, "/api/query?kind=top&by=src_app&limit=2")
    assert status == 200
    assert top["columns"] == ["src_app", "bytes", "packets", "flows"]
    assert top["rows"] == [["web", 10_000_000_000, 10_000_000, 2],
                           ["api", 7_500_000_000, 7_500_000, 4]]
    status, ts = get_json(serve, "/api/query?kind=timeseries&interval=1h&where=src_app=web")
    assert ts["rows"] == [["2026-11-25T10:00:00Z", 1_000_000_000, 1_000_000, 1],
                          ["2026-11-25T11:00:00Z", 9_000_000_000, 9_000_000, 1]]
    status, meta = get_json(serve, "/api/meta")
    assert meta["backend"] == "duckdb" and meta["daemon"] is False
    assert meta["time_range"] == {"from": "2026-11-25T10:00:00Z", "to": "2026-11-25T11:00:00Z"}
    assert meta["prices"] == {"az_price": 0.01, "region_price": 0.02, "internet_price": 0.09,
                              "nat_price": 0.045}
    assert "src_app" in meta["filterable"] and meta["metrics"] == ["bytes", "packets", "flows"]
    assert get_json(serve, "/api/ops") == (200, {"daemon": False})
    assert request(serve, "GET", "/healthz")[::2] == (200, b"ok\n")
    assert get_json(serve, "/readyz") == (200, {"ready": True})
    status, headers, body = request(serve, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert b"dredge_sink_rows_total" in body


def test_post_equals_get(serve: ApiServer) -> None:
    body = json.dumps({"kind": "cross-az", "by": ["src_app", "dst_app"], "where": ["action!=REJECT"],
                       "nat_price": 0}).encode()
    status, _, posted = request(serve, "POST", "/api/query", body,
                                {"Content-Type": "application/json"})
    assert status == 200
    _, got = get_json(serve, "/api/query?kind=cross-az&by=src_app,dst_app&where=action!=REJECT&nat_price=0")
    assert {**json.loads(posted), "elapsed_ms": 0} == {**got, "elapsed_ms": 0}


def test_query_as_csv_like_the_command_line(serve: ApiServer, store: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """format=csv (GET or POST) or Accept: text/csv: the bytes `dredge query --format csv`
    prints; a browser's Accept header keeps JSON."""
    from dredge.cli import main

    assert main(["query", "top", "--by", "src_app", "--limit", "2", "--format", "csv",
                 "--db", str(store)]) == 0
    printed = capsys.readouterr().out.encode()
    assert printed.startswith(b"src_app,bytes,packets,flows\r\nweb,10000000000,")
    status, headers, body = request(serve, "GET", "/api/query?by=src_app&limit=2&format=csv")
    assert (status, headers["content-type"]) == (200, "text/csv; charset=utf-8; header=present")
    assert body == printed
    posted = request(serve, "POST", "/api/query", json.dumps(
        {"by": "src_app", "limit": 2, "format": "csv"}).encode())[2]
    accepted = request(serve, "GET", "/api/query?by=src_app&limit=2",
                       headers={"Accept": "text/csv"})[2]
    assert posted == accepted == printed
    browser = request(serve, "GET", "/api/query?by=src_app&limit=2", headers={
        "Accept": "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8"})
    assert browser[1]["content-type"] == "application/json"
    assert get_json(serve, "/api/query?format=xml") == (
        400, {"error": "format: one of json, csv, not 'xml'"})


@pytest.mark.parametrize(("method", "path", "body", "status", "error"), [
    ("GET", "/api/query?by=nope", None, 400, "by: unknown dimension 'nope'"),
    ("GET", "/api/query?where=protocol=tcpx", None, 400, "protocol takes a number 0-255 or an IANA name"),
    ("GET", "/api/query?from=tomorrow", None, 400, "not a time"),
    ("POST", "/api/query", b"{not json", 400, "body is not JSON"),
    ("POST", "/api/query", b"[1, 2]", 400, "body must be a JSON object"),
    ("POST", "/api/meta", b"{}", 405, "POST is not allowed on /api/meta"),
    ("GET", "/nothing/here", None, 404, "no such page"),
    ("GET", "/static/../../../etc/passwd", None, 404, "no such page"),
    ("POST", "/api/query", b" " * 70_000, 413, "request body over 65536 bytes"),
])
def test_errors_are_json_with_one_line(serve: ApiServer, method: str, path: str,
                                       body: bytes | None, status: int, error: str) -> None:
    got, headers, raw = request(serve, method, path, body)
    assert got == status
    assert headers["content-type"] == "application/json"
    message = json.loads(raw)["error"]
    assert error in message and "\n" not in message and "Traceback" not in raw.decode()


def test_the_store_is_opened_read_only(serve: ApiServer, store: Path) -> None:
    import duckdb

    # a second reader can open it too; a writer cannot (serve never takes the write lock)
    duckdb.connect(str(store), read_only=True).close()
    with pytest.raises(duckdb.Error):
        duckdb.connect(str(store))


def test_queries_over_the_time_limit_are_interrupted(store: Path) -> None:
    backend = DuckDBBackend.read_only(str(store), timeout_s=0.3)
    try:
        with pytest.raises(ApiError) as err:
            backend._run("SELECT count(*) FROM range(100000000000) a", [])
        assert err.value.status == 504 and "longer than 0.3 s" in str(err.value)
        assert backend.time_range()[0] is not None  # the cursor is usable again
    finally:
        backend.close()
    with pytest.raises(ApiError, match="store closed"):
        backend.time_range()


@pytest.mark.parametrize("config", [ServeConfig(token="s3cret"),
                                    ServeConfig(user="ops", password="pw")])
def test_auth(store: Path, config: ServeConfig) -> None:
    good = ({"Authorization": "Bearer s3cret"} if config.token else
            {"Authorization": "Basic " + base64.b64encode(b"ops:pw").decode()})
    for server in _serve(store, config):
        for path in ("/api/query", "/api/meta", "/metrics", "/", "/static/vendor/plotly.min.js"):
            status, headers, body = request(server, "GET", path)
            assert status == 401, path
            assert json.loads(body) == {"error": "credentials required"}
            assert "www-authenticate" in headers
        for wrong in ("Bearer nope", "Basic " + base64.b64encode(b"ops:no").decode(),
                      "Basic !!!", "Digest x"):
            assert request(server, "GET", "/api/meta", headers={"Authorization": wrong})[0] == 401
        assert request(server, "GET", "/api/meta", headers=good)[0] == 200
        assert request(server, "POST", "/api/query", b"{}", good)[0] == 200
        assert request(server, "GET", "/healthz")[0] == 200  # probes stay open
        assert request(server, "GET", "/readyz")[0] == 200


def test_readyz_lists_the_reasons(store: Path) -> None:
    ready = Readiness()
    ready.add("index", lambda: "index stopped updating")
    ready.add("fine", lambda: None)
    ready.add("broken", lambda: 1 / 0)  # type: ignore[arg-type, return-value]
    for server in _serve(store, ServeConfig(), ready):
        status, body = get_json(server, "/readyz")
        assert status == 503
        assert body["reasons"] == {"index": "index stopped updating",
                                   "broken": "ZeroDivisionError: division by zero"}
        assert "\n" not in body["error"]
        ready.remove("index")
        ready.remove("broken")
        assert get_json(server, "/readyz") == (200, {"ready": True})


def test_druid_unreachable_is_503_one_line() -> None:
    from dredge.serve.backends import DruidBackend
    from dredge.sinks.druid import DruidConfig
    from dredge.testing import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    backend = DruidBackend(DruidConfig(url=url), timeout_s=5)
    server = ApiServer("127.0.0.1", 0, ServeConfig(), backend, Readiness(), REGISTRY, daemon=False)
    server.start()
    try:
        for path in ("/api/query?kind=top", "/api/meta"):
            status, body = get_json(server, path)
            assert status == 503, body
            assert body["error"].startswith(f"Druid unreachable at {url}") and "\n" not in body["error"]
        assert get_json(server, "/api/query?by=nope")[0] == 400  # checked before Druid is asked
    finally:
        server.stop()


def test_answers_are_cached_until_the_store_changes(store: Path) -> None:
    import duckdb

    from dredge.query.spec import QuerySpec

    con = duckdb.connect(str(store))  # a writer, as the daemon's own connection
    version = [0.0]
    backend = DuckDBBackend(lambda: con, version=lambda: version[0])
    try:
        spec = QuerySpec(kind="top", by=("src_app",), limit=3)
        first = backend.query(spec)
        assert first.num_rows == 3
        con.execute("DELETE FROM flow_facts")
        assert backend.query(spec).equals(first)  # same version: the cached answer
        version[0] += 1  # a commit
        assert backend.query(spec).num_rows == 0
        assert backend.time_range() == (None, None)
    finally:
        backend.close()
        con.close()
