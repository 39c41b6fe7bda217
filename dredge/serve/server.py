"""One HTTP server per process: routing, auth and limits on a stdlib ThreadingHTTPServer.

    GET  /healthz            200 "ok" while the process lives (no auth: a probe)
    GET  /readyz             200, or 503 {"error", "reasons"} (no auth: a probe)
    GET  /metrics            Prometheus text of the process's registry
    GET|POST /api/query      a QuerySpec -> {"kind", "columns", "rows", "elapsed_ms"}; CSV
                             (RFC 4180, as `dredge query --format csv`) with format=csv
                             or Accept: text/csv
    GET  /api/meta           backend, dimensions, metrics, time range, default prices
    GET  /api/ops            the daemon's shards, leases, flushes, dead letters, index
    GET  /, /<page>, /static/...   the dashboards (see files.py)

Every error is JSON ``{"error": "one line"}`` with its status (400 bad parameters, 401 no
valid credentials, 404, 405, 413 body over ``max_request_bytes``, 503 store not readable,
504 query over ``query_timeout_s``), never a stack trace. Requests run in their own threads,
off the daemon's event loop; a query holds one of ``max_concurrent_queries`` slots.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dredge.errors import DredgeError
from dredge.serve import files
from dredge.serve.backends import Backend
from dredge.serve.config import ServeConfig
from dredge.serve.ops import OpsReader
from dredge.serve.params import FORMATS, ApiError, answer_format, parse_spec
from dredge.serve.ready import Readiness
from dredge.serve.results import dumps, table_json
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)

OPEN_ROUTES = ("/healthz", "/readyz")  # probes answer without credentials


class ApiServer:
    """Inert until :meth:`start`; :meth:`stop` is idempotent."""

    def __init__(self, host: str, port: int, config: ServeConfig, backend: Backend | None,
                 readiness: Readiness, registry: CollectorRegistry, *, daemon: bool) -> None:
        config.validate()
        self.host = host
        self.port = port
        self.config = config
        self.backend = backend
        self.readiness = readiness
        self.registry = registry
        self.daemon = daemon
        self.ops = OpsReader(registry) if daemon else None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        try:
            httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        except OSError as exc:
            raise DredgeError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        httpd.daemon_threads = True
        httpd.app = self  # type: ignore[attr-defined]
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="http", daemon=True)
        self._thread.start()
        log.info("http_listening", host=self.host, port=self.port, daemon=self.daemon,
                 backend=self.backend.name if self.backend else None, auth=self.config.auth)

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    # -- what the routes answer ----------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        cfg = self.config
        if not cfg.auth:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and cfg.token:
            return hmac.compare_digest(value.encode(), cfg.token.encode())
        if scheme.lower() == "basic" and cfg.user:
            try:
                given = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(given, f"{cfg.user}:{cfg.password}".encode())
        return False

    def query(self, raw: dict[str, Any], accept: str | None = None) -> tuple[str, bytes]:
        """(content type, body) of a query's answer: JSON, or CSV when asked for."""
        spec = parse_spec(raw)
        fmt = answer_format(raw, accept)
        t0 = time.perf_counter()
        table = self._backend().query(spec)
        if fmt == "csv":
            from dredge.query.render import csv_text

            return FORMATS["csv"], csv_text(table).encode()
        return FORMATS["json"], table_json(spec.kind, table, (time.perf_counter() - t0) * 1000)

    def meta(self) -> bytes:
        from dredge.query import spec as q
        from dredge.query.ports import NAMES as PORT_NAMES

        backend = self._backend()
        lo, hi = backend.time_range()
        return dumps({
            "backend": backend.name, "daemon": self.daemon,
            "dimensions": list(q.FILTERABLE), "metrics": list(q.METRICS),
            "kinds": ["top", "timeseries", "cross-az"],
            "time_range": None if lo is None else {"from": lo, "to": hi},
            "prices": {"az_price": q.DEFAULT_AZ_PRICE, "region_price": q.DEFAULT_REGION_PRICE,
                       "internet_price": q.DEFAULT_INTERNET_PRICE,
                       "nat_price": q.DEFAULT_NAT_PRICE},
            "filterable": list(q.FILTERABLE), "numeric": list(q.NUMERIC),
            "port_names": {str(p): n for p, n in PORT_NAMES.items()},
        })

    def ops_json(self) -> bytes:
        if self.ops is None:
            return dumps({"daemon": False})
        return dumps(self.ops.read())

    def _backend(self) -> Backend:
        if self.backend is None:
            raise ApiError(503, "no store to query")
        return self.backend


class _Handler(BaseHTTPRequestHandler):
    server_version = "dredge"
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may take to send its request

    @property
    def app(self) -> ApiServer:
        app: ApiServer = self.server.app  # type: ignore[attr-defined]
        return app

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http_request", client=self.client_address[0], line=format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        try:
            self._route(method)
        except ApiError as exc:
            self._error(exc.status, str(exc))
        except Exception as exc:  # a bug must not print a stack trace to the client
            log.error("http_failed", path=self.path[:200], error=f"{type(exc).__name__}: {exc}")
            self._error(500, f"internal error: {type(exc).__name__}")

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        route = url.path
        if route not in OPEN_ROUTES and not self.app.authorized(self.headers.get("Authorization")):
            self._drain()
            realm = "Basic realm=\"dredge\"" if self.app.config.user else "Bearer"
            self._error(401, "credentials required", {"WWW-Authenticate": realm})
            return
        if method == "POST":
            if route != "/api/query":
                self._drain()
                raise ApiError(405, f"POST is not allowed on {route}")
            self._send(200, *self.app.query(self._json_body(), self.headers.get("Accept")))
            return
        if route == "/healthz":
            self._send(200, "text/plain; charset=utf-8", b"ok\n")
        elif route == "/readyz":
            reasons = self.app.readiness.reasons()
            if reasons:
                self._send(503, "application/json", dumps(
                    {"error": "; ".join(f"{k}: {v}" for k, v in reasons.items()),
                     "reasons": reasons}))
            else:
                self._send(200, "application/json", dumps({"ready": True}))
        elif route == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, generate_latest(self.app.registry))
        elif route == "/api/query":
            self._send(200, *self.app.query(parse_qs(url.query, keep_blank_values=True),
                                            self.headers.get("Accept")))
        elif route == "/api/meta":
            self._send(200, "application/json", self.app.meta())
        elif route == "/api/ops":
            self._send(200, "application/json", self.app.ops_json())
        else:
            path = files.resolve(route)
            if path is None:
                raise ApiError(404, f"no such page: {route[:200]}")
            self._send(200, files.content_type(path), files.load(path),
                       {"Cache-Control": "no-cache"})

    def _json_body(self) -> dict[str, Any]:
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self.close_connection = True
            raise ApiError(411, "Content-Length required")
        try:
            length = int(length_text)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "bad Content-Length") from None
        if length > self.app.config.max_request_bytes:
            self.close_connection = True  # the body is not read: the connection cannot go on
            raise ApiError(413, f"request body over {self.app.config.max_request_bytes} bytes")
        body = self.rfile.read(length)
        try:
            data = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "body must be a JSON object")
        return data

    def _drain(self) -> None:
        """Read a small body we will not use, so the connection can serve the next request."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if 0 < length <= self.app.config.max_request_bytes:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, "application/json", orjson.dumps({"error": message}), headers)

    def _send(self, status: int, ctype: str, body: bytes,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
