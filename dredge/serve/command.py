"""``dredge serve`` (the dashboards and the API over a replayed store, or Druid) and the
``dredge query --server URL`` client (any query sent to a running server, printed as
``dredge query`` prints it).

``dredge serve`` opens the DuckDB file read-only: it never writes and never takes the write
lock, so it can serve a store that nothing else is writing. Its ``[serve]`` settings (auth,
limits) come from ``--config`` and ``DREDGE_SERVE__*`` variables.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import threading
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from dredge.errors import ConfigError, DredgeError

if TYPE_CHECKING:
    import pyarrow as pa

    from dredge.query.spec import QuerySpec

TOKEN_ENV = "DREDGE_SERVE_TOKEN"


def cmd_serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dredge.config import load_config
    from dredge.serve.backends import Backend, DruidBackend, DuckDBBackend
    from dredge.serve.ready import Readiness
    from dredge.serve.server import ApiServer
    from dredge.telemetry.metrics import REGISTRY

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    config = load_config(args.druid_config_file).serve
    config.check_bind(args.host, "--host")
    readiness = Readiness()
    backend: Backend
    if args.backend == "druid":
        from dredge.druid_cli import druid_config

        backend = DruidBackend(druid_config(args), timeout_s=config.query_timeout_s,
                               max_concurrent=config.max_concurrent_queries)
        where = f"druid {backend.config.url} {backend.config.datasource}"
    else:
        if not Path(args.db).exists():
            raise ConfigError("db", f"no database at {args.db} (run `dredge replay` first)")
        duck = DuckDBBackend.read_only(args.db, timeout_s=config.query_timeout_s,
                                       max_concurrent=config.max_concurrent_queries,
                                       cache=config.query_cache)
        readiness.add("store", duck.ping)
        backend = duck
        where = f"duckdb {args.db} (read-only)"
    server = ApiServer(args.host, args.port, config, backend, readiness, REGISTRY, daemon=False)
    try:
        server.start()
        print(f"dredge: serving {server.url}/ ({where}); Ctrl-C stops", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
        backend.close()
    return 0


def add_serve_command(sub: Any) -> None:
    from dredge.druid_cli import add_druid_args

    s = sub.add_parser("serve", help="the dashboards and the HTTP API over a store (or Druid)")
    s.add_argument("--db", default="dredge.duckdb", help="DuckDB store, opened read-only "
                   "(default: %(default)s)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: "
                   "%(default)s; others need [serve] token or user/password)")
    s.add_argument("--port", type=int, default=9108, help="port (default: %(default)s; 0: any free)")
    s.add_argument("--backend", choices=["duckdb", "druid"], default="duckdb",
                   help="query the DuckDB store (--db) or Druid SQL (--druid-*)")
    add_druid_args(s)  # its --config also gives [serve]
    s.set_defaults(func=cmd_serve)


def add_server_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("--server", metavar="URL", help="send the query to a running `dredge run` or "
                   "`dredge serve` (http://127.0.0.1:9108; user:password@ for basic auth)")
    q.add_argument("--server-token", metavar="TOKEN", help=f"bearer token for --server "
                   f"(default: ${TOKEN_ENV})")


def query_server(url: str, spec: QuerySpec, token: str | None = None,
                 timeout_s: float = 120.0) -> pa.Table:
    """POST ``spec`` to ``url``'s /api/query; the answer as ``dredge query`` would print it."""
    import orjson

    from dredge.serve.params import spec_params
    from dredge.serve.results import table_from_json

    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("server", f"not an http(s) URL: {url!r}")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    token = token or os.environ.get(TOKEN_ENV) or ""
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif parts.username is not None:
        pair = f"{parts.username}:{parts.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port:
        netloc += f":{parts.port}"
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    req = urllib.request.Request(base + "/api/query", data=orjson.dumps(spec_params(spec)),
                                 headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            payload: dict[str, Any] = orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise DredgeError(f"{base}: HTTP {exc.code}: {_error_text(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DredgeError(f"cannot reach {base}: {reason}") from None
    except orjson.JSONDecodeError:
        raise DredgeError(f"{base}: the answer is not JSON (is it a dredge server?)") from None
    try:
        return table_from_json(spec, payload)
    except (ValueError, TypeError, IndexError) as exc:
        raise DredgeError(f"{base}: unexpected answer: {exc}") from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    import orjson

    try:
        body = exc.read()
        return str(orjson.loads(body).get("error") or body[:200].decode("utf-8", "replace"))
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)

