"""The HTTP server inside ``dredge run``, on ``[metrics] host/port`` (0: none).

It starts first (``/metrics`` and ``/healthz`` answer while the index loads) and learns the
rest as the daemon builds it: queries read the store's own DuckDB connection through
per-request cursors; ``/readyz`` says 503 until the daemon started, and afterwards while the
store is closed, the index failed or went stale, or a lease table cannot be read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from dredge.errors import DredgeError
from dredge.serve.backends import DuckDBBackend
from dredge.serve.ready import LeaseWatch, Readiness, index_check
from dredge.serve.server import ApiServer
from dredge.telemetry.logging import get_logger
from dredge.telemetry.metrics import REGISTRY, MetricsConfig

if TYPE_CHECKING:
    from dredge.index.live import IndexManager
    from dredge.serve.config import ServeConfig
    from dredge.sinks.duckdb import DuckDBSink
    from dredge.snapshots import SnapshotSource
    from dredge.sources.kinesis.consumer import StreamConsumer

log = get_logger(__name__)


class DaemonServer:
    def __init__(self, metrics: MetricsConfig, serve: ServeConfig, store: DuckDBSink) -> None:
        self.serve = serve
        self.readiness = Readiness()
        self.readiness.add("daemon", lambda: "starting")
        self.readiness.add("store", lambda: _store_open(store))
        self.backend = DuckDBBackend(lambda: store.con, timeout_s=serve.query_timeout_s,
                                     max_concurrent=serve.max_concurrent_queries,
                                     version=_commits, cache=serve.query_cache)
        self.server: ApiServer | None = None
        if metrics.port:
            self.server = ApiServer(metrics.host, metrics.port, serve, self.backend,
                                    self.readiness, REGISTRY, daemon=True)
        self._leases: LeaseWatch | None = None

    def watch_index(self, snapshots: SnapshotSource, manager: IndexManager | None) -> None:
        self.readiness.add("index", index_check(snapshots, manager, self.serve.index_stale_s))

    def watch_leases(self, consumers: Sequence[StreamConsumer]) -> None:
        self._leases = LeaseWatch(consumers, self.serve.lease_check_interval_s)
        self.readiness.add("leases", self._leases.check)

    async def run(self, stop: asyncio.Event) -> None:
        """Read the lease tables until ``stop`` (a task of the daemon's group)."""
        if self._leases is not None:
            await self._leases.run(stop)

    def started(self) -> None:
        self.readiness.remove("daemon")

    def close_queries(self) -> None:
        """Before the store closes: the pooled cursors would keep the file open."""
        self.backend.close()


def _commits() -> float:
    """Transactions the store committed (its flush histogram counts each): the version of the
    data, for the query cache."""
    return REGISTRY.get_sample_value("dredge_sink_flush_seconds_count", {"sink": "duckdb"}) or 0.0


def _store_open(store: DuckDBSink) -> str | None:
    try:
        _ = store.con
    except DredgeError as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def daemon_server(metrics: MetricsConfig, serve: ServeConfig, store: DuckDBSink
                  ) -> Iterator[DaemonServer]:
    http = DaemonServer(metrics, serve, store)
    if http.server is not None:
        try:
            http.server.start()
        except DredgeError as exc:
            raise DredgeError(f"metrics.port: {exc}") from exc
        log.info("metrics_listening", host=http.server.host, port=http.server.port)
    try:
        yield http
    finally:
        if http.server is not None:
            http.server.stop()
        http.backend.close()
