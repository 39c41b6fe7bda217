"""Where ``/api/query`` and ``/api/meta`` run: the DuckDB store, Druid SQL or the Iceberg ledger.

DuckDB: every request gets a cursor (a connection of its own on the same database) from a
small pool. In the daemon the base connection is the store's own (``DuckDBSink.con``), so
queries read committed data while the daemon holds the file's lock; ``dredge serve`` opens
the file ``read_only``, so it never writes nor takes the write lock. At most
``max_concurrent_queries`` run at once (the flush keeps CPU) and each is interrupted
(``DuckDBPyConnection.interrupt``) after ``query_timeout_s``. DuckDB's errors become
:class:`ApiError` here and nowhere else: 503 when the store cannot be read, 504 on timeout.

Answers are cached per statement until the store's ``version`` changes (the daemon: its
count of commits; ``dredge serve``: never), so dashboards refreshing every second, however
many are open, cost at most one run of each query per flush.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from dredge.errors import SinkError
from dredge.query.store import as_current
from dredge.serve.params import ApiError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from pyiceberg.table import Table

    from dredge.query.spec import QuerySpec
    from dredge.sinks.druid import DruidConfig

TimeRange = tuple[datetime | None, datetime | None]


class Backend(Protocol):
    name: str

    def query(self, spec: QuerySpec) -> pa.Table: ...

    def time_range(self) -> TimeRange: ...

    def close(self) -> None: ...


class DuckDBBackend:
    name = "duckdb"

    def __init__(self, connection: Callable[[], duckdb.DuckDBPyConnection], *,
                 timeout_s: float = 10.0, max_concurrent: int = 2,
                 owns_connection: bool = False, version: Callable[[], float] = lambda: 0.0,
                 cache: int = 128) -> None:
        self._connection = connection
        self._version = version
        self._cache_size = cache  # answers kept (small tables: the API's results are limited)
        self._cache: OrderedDict[tuple[str, tuple[object, ...]], tuple[float, pa.Table]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._timeout_s = timeout_s
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._idle: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
        self._owns = owns_connection
        self._closed = False

    @classmethod
    def read_only(cls, path: str, **kwargs: Any) -> DuckDBBackend:
        """``dredge serve --db``: the file opened read-only, once (SinkError if it cannot be)."""
        import duckdb

        try:
            con = duckdb.connect(path, read_only=True)
        except duckdb.Error as exc:
            raise SinkError(f"cannot open DuckDB database {path} read-only: {exc}") from exc
        return cls(lambda: con, owns_connection=True, **kwargs)

    def _run(self, sql: str, params: list[object]) -> pa.Table:
        import duckdb

        if self._closed:
            raise ApiError(503, "store closed")
        if not self._slots.acquire(timeout=self._timeout_s):
            raise ApiError(503, f"busy: no query slot within {self._timeout_s:g} s")
        cur: duckdb.DuckDBPyConnection | None = None
        try:
            try:
                cur = self._idle.get_nowait()
            except queue.Empty:
                try:
                    cur = self._connection().cursor()
                    cur.execute("SET enable_progress_bar = false")  # no bars on the terminal
                    as_current(cur)  # an older store: new columns read as NULL (per cursor)
                except (SinkError, duckdb.Error) as exc:
                    raise ApiError(503, f"store not readable: {exc}") from None
            timer = threading.Timer(self._timeout_s, cur.interrupt)
            timer.daemon = True
            timer.start()
            try:
                table: pa.Table = cur.sql(sql, params=params or None).to_arrow_table()
            finally:
                timer.cancel()
            self._idle.put(cur)
            return table
        except duckdb.InterruptException:
            self._idle.put(cur)  # type: ignore[arg-type]  # set: execute raised
            raise ApiError(504, f"query took longer than {self._timeout_s:g} s") from None
        except (duckdb.CatalogException, duckdb.IOException, duckdb.ConnectionException) as exc:
            raise ApiError(503, f"store not readable: {exc}") from None
        except duckdb.Error as exc:
            raise ApiError(500, f"query failed: {type(exc).__name__}: {exc}") from None
        finally:
            self._slots.release()

    def _cached(self, sql: str, params: list[object]) -> pa.Table:
        if self._closed:
            raise ApiError(503, "store closed")
        key = (sql, tuple(params))
        version = self._version()  # read before: a commit during the run makes it stale
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == version:
                self._cache.move_to_end(key)
                return hit[1]
        table = self._run(sql, params)
        with self._cache_lock:
            held = self._cache.get(key)
            if held is None or held[0] <= version:  # never replace a newer answer
                self._cache[key] = (version, table)
                self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return table

    def query(self, spec: QuerySpec) -> pa.Table:
        sql, params = spec.sql()
        return self._cached(sql, params)

    def time_range(self) -> TimeRange:
        t = self._cached("SELECT min(window_start) AS lo, max(window_start) AS hi FROM flow_facts", [])
        lo, hi = t.column("lo")[0].as_py(), t.column("hi")[0].as_py()
        return lo, hi

    def ping(self) -> str | None:
        """None when the store answers (for /readyz), else why not."""
        try:
            self._run("SELECT 1 FROM flows LIMIT 1", [])
        except ApiError as exc:
            return str(exc)
        return None

    def close(self) -> None:
        """Close the pooled cursors (they keep the database file open) and, for
        ``read_only``, the connection; later queries answer 503."""
        self._closed = True
        with self._cache_lock:
            self._cache.clear()
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break
        if self._owns:
            self._connection().close()


class SlotBackend:
    """A backend whose queries run elsewhere (Druid, an Iceberg scan): at most
    ``max_concurrent`` at once, a SinkError answered 503 (504 when it says it timed out)."""

    def __init__(self, *, max_concurrent: int = 2, timeout_s: float = 10.0) -> None:
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._timeout_s = timeout_s

    def _call(self, fn: Callable[[], Any]) -> Any:
        if not self._slots.acquire(timeout=self._timeout_s):
            raise ApiError(503, f"busy: no query slot within {self._timeout_s:g} s")
        try:
            return fn()
        except SinkError as exc:
            if "timeout" in str(exc).lower() or "timed out" in str(exc).lower():
                raise ApiError(504, f"query took longer than {self._timeout_s:g} s") from None
            raise ApiError(503, str(exc)) from None
        finally:
            self._slots.release()

    def close(self) -> None:
        pass


class DruidBackend(SlotBackend):
    """The same specs on Druid SQL, with the settings of ``dredge query --backend druid``."""

    name = "druid"

    def __init__(self, config: DruidConfig, *, max_concurrent: int = 2,
                 timeout_s: float = 10.0) -> None:
        config.validate()
        super().__init__(max_concurrent=max_concurrent, timeout_s=timeout_s)
        self.config = config

    def query(self, spec: QuerySpec) -> pa.Table:
        from dredge.query.druid import run

        table: pa.Table = self._call(lambda: run(spec, self.config, self._timeout_s))
        return table

    def time_range(self) -> TimeRange:
        from dredge.query.druid import time_range

        lo, hi = self._call(lambda: time_range(self.config, self._timeout_s))
        return lo, hi


class IcebergBackend(SlotBackend):
    """The same specs on the Iceberg ledger, as ``dredge query --backend iceberg``: each
    query reads the table's current snapshot (refreshed first)."""

    name = "iceberg"

    def __init__(self, table: Table, *, max_concurrent: int = 2, timeout_s: float = 10.0) -> None:
        super().__init__(max_concurrent=max_concurrent, timeout_s=timeout_s)
        self.table = table
        self._lock = threading.Lock()  # a refresh swaps the table's metadata: one at a time

    def _current(self) -> Table:
        from dredge.sinks.iceberg.table import iceberg_errors

        with self._lock, iceberg_errors("cannot refresh the table"):
            return self.table.refresh()

    def query(self, spec: QuerySpec) -> pa.Table:
        from dredge.query.iceberg import run
        from dredge.sinks.iceberg.table import iceberg_errors

        def go() -> pa.Table:
            with iceberg_errors("query failed"):
                return run(spec, self._current())

        table: pa.Table = self._call(go)
        return table

    def time_range(self) -> TimeRange:
        from dredge.query.iceberg import time_range
        from dredge.sinks.iceberg.table import iceberg_errors

        def go() -> TimeRange:
            with iceberg_errors("cannot read the table's range"):
                return time_range(self._current())

        lo, hi = self._call(go)
        return lo, hi
