"""``dredge serve``: the dashboards and the API over a replayed store, Druid or the Iceberg
ledger (the ``dredge query --server URL`` client is :mod:`dredge.serve.client`).

``dredge serve`` opens the DuckDB file read-only: it never writes and never takes the write
lock, so it can serve a store that nothing else is writing. Its ``[serve]`` settings (auth,
limits) come from ``--config`` and ``DREDGE_SERVE__*`` variables.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from dredge.commands.druid import add_druid_args
from dredge.commands.options import int_in
from dredge.commands.stores import existing_store
from dredge.serve.client import TOKEN_ENV


def cmd_serve(args: argparse.Namespace) -> int:
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
        from dredge.commands.druid import druid_config

        backend = DruidBackend(druid_config(args), timeout_s=config.query_timeout_s,
                               max_concurrent=config.max_concurrent_queries)
        where = f"druid {backend.config.url} {backend.config.datasource}"
    elif args.backend == "iceberg":
        from dredge.commands.iceberg import iceberg_config, open_ledger
        from dredge.serve.backends import IcebergBackend

        backend = IcebergBackend(open_ledger(args.druid_config_file),
                                 timeout_s=config.query_timeout_s,
                                 max_concurrent=config.max_concurrent_queries)
        where = f"iceberg {iceberg_config(args.druid_config_file).describe()}"
    else:
        existing_store(args.db)
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


def add_parser(sub: Any) -> None:
    s = sub.add_parser("serve", help="the dashboards and the HTTP API over a store (or Druid)")
    s.add_argument("--db", default="dredge.duckdb", help="DuckDB store, opened read-only "
                   "(default: %(default)s)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: "
                   "%(default)s; others need [serve] token or user/password)")
    s.add_argument("--port", type=int_in(0, 65535), default=9108,
                   help="port (default: %(default)s; 0: any free)")
    s.add_argument("--backend", choices=["duckdb", "druid", "iceberg"], default="duckdb",
                   help="query the DuckDB store (--db), Druid SQL (--druid-*) or the Iceberg "
                   "ledger ([sink.iceberg] of --config) (default: %(default)s)")
    add_druid_args(s)  # its --config also gives [serve]
    s.set_defaults(func=cmd_serve)


def add_server_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("--server", metavar="URL", help="send the query to a running `dredge run` or "
                   "`dredge serve` (http://127.0.0.1:9108; user:password@ for basic auth) "
                   "(default: none, read --db)")
    q.add_argument("--server-token", metavar="TOKEN", help=f"bearer token for --server "
                   f"(default: ${TOKEN_ENV})")
