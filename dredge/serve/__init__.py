"""The HTTP server: one per process (the daemon's metrics port, or ``dredge serve``).

    config.py    ServeConfig: the ``[serve]`` settings (auth, limits, readiness staleness)
    params.py    /api/query parameters -> QuerySpec, and back (for ``query --server``)
    results.py   a result table as the API's JSON, and back into a table
    backends.py  where queries run: DuckDB (a cursor per request, time-limited) or Druid
    ops.py       /api/ops: the process's Prometheus registry read back for the Ops page
    ready.py     /readyz: named checks (index fresh, store open, lease tables, leases held)
    files.py     the dashboard pages, their static files and plotly.min.js from plotly
    server.py    routing, auth and limits on a stdlib ThreadingHTTPServer in a thread
    daemon.py    the server inside ``dredge run``
    command.py   ``dredge serve`` and the ``dredge query --server`` client

Importing this package is cheap: DuckDB, pyarrow and the compiled kernels load when a
server starts or a query runs, never for ``dredge --help``.
"""
