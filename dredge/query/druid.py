"""``dredge query --backend druid``: the same query specs, run on Druid SQL through pydruid.

The SQL comes from :mod:`dredge.query.spec` in the Druid dialect (``__time``, ``TIME_FLOOR``
with DuckDB's bucket origin, NULLs ordered last). Results become an Arrow table with the types
DuckDB gives the same query, so :mod:`dredge.query.render` prints both identically.

Parameters are written into the SQL as literals here rather than passed to pydruid: pydruid
0.6.9 formats its ``pyformat`` parameters with ``%`` over the whole statement and passes the
value ``*`` through unquoted (``pydruid.db.api.escape``). The query context asks for exact
answers: ``useApproximateTopN: false`` (a one-dimension top-N would otherwise be approximate).

TLS and basic auth go to pydruid as ``requests`` takes them: ``ssl_verify_cert`` is the CA file,
True, or False when ``tls_verify`` is off (which wins over a CA file); user and password as
basic auth. pydruid reports an HTTP error as the response text: Jetty's HTML page for a 401, so
the status is read back from it to give one line.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa

from dredge.errors import SinkError, SinkUnavailable
from dredge.query.spec import DRUID, Dialect, QuerySpec
from dredge.sinks.druid import DruidConfig, certificate_error, refused_message, untrusted_message

QUERY_CONTEXT = {"useApproximateTopN": False, "sqlTimeZone": "Etc/UTC"}
JETTY_ERROR = re.compile(r"HTTP ERROR (\d{3})\s*([^<]*)")  # Jetty's error page, e.g. a 401


def dialect(datasource: str) -> Dialect:
    return dataclasses.replace(DRUID, table=f'"{datasource}"')


def literal(value: object) -> str:
    """A Druid SQL literal for a filter value (strings quoted, quotes doubled)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def inline_parameters(sql: str, params: list[object]) -> str:
    """Replace each ``?`` outside string literals and quoted names with the next parameter's
    literal (the region pattern ``(-gov)?`` is a literal)."""
    out: list[str] = []
    values = iter(params)
    quote = ""
    for ch in sql:
        if ch in "'\"" and quote in ("", ch):
            quote = "" if quote else ch  # a doubled quote inside toggles twice: still inside
        if ch == "?" and not quote:
            try:
                out.append(literal(next(values)))
            except StopIteration:
                raise ValueError("more placeholders than parameters") from None
            continue
        out.append(ch)
    if next(values, None) is not None:
        raise ValueError("more parameters than placeholders")
    return "".join(out)


def result_schema(spec: QuerySpec) -> pa.Schema:
    """The column names and types of a spec's result, as DuckDB returns them."""
    return spec.result_schema()


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    # Druid's SQL answers timestamps as ISO 8601 text in UTC ("2026-11-25T10:00:00.000Z")
    return datetime.fromisoformat(str(value)).replace(tzinfo=None)


def connect(config: DruidConfig, timeout_s: float | None = None) -> Any:
    """A pydruid DB-API connection to the SQL endpoint of ``config.url``; ``timeout_s``: Druid
    cancels a query that runs longer (its ``timeout`` context key)."""
    from pydruid.db import connect as pydruid_connect

    url = urlsplit(config.url)
    if url.hostname is None:
        raise SinkError(f"Druid URL without a host: {config.url}")
    verify: bool | str = (config.ca_file or True) if config.tls_verify else False
    return pydruid_connect(
        host=url.hostname, port=url.port or (443 if url.scheme == "https" else 80),
        path=url.path.rstrip("/") + "/druid/v2/sql/", scheme=url.scheme,
        user=config.user or None, password=config.password or None,
        context=dict(QUERY_CONTEXT, **({"timeout": int(timeout_s * 1000)} if timeout_s else {})),
        ssl_verify_cert=verify)


def run(spec: QuerySpec, config: DruidConfig, timeout_s: float | None = None) -> pa.Table:
    """Run a query spec on Druid; the result as DuckDB would give it."""
    config.validate()
    sql, params = spec.sql(dialect(config.datasource))
    rows = _fetch(config, inline_parameters(sql, params), timeout_s)
    schema = result_schema(spec)
    columns: dict[str, pa.Array] = {}
    for i, f in enumerate(schema):
        values = [r[i] for r in rows]
        if pa.types.is_timestamp(f.type):
            values = [_time(v) for v in values]
        columns[f.name] = pa.array(values, f.type)
    return pa.table(columns, schema=schema)


def time_range(config: DruidConfig, timeout_s: float | None = None
               ) -> tuple[datetime | None, datetime | None]:
    """The first and last ``__time`` of the datasource (None, None when it is empty)."""
    config.validate()
    table = dialect(config.datasource).table
    rows = _fetch(config, f"SELECT MIN(__time), MAX(__time) FROM {table}", timeout_s)
    if not rows:
        return None, None
    return _time(rows[0][0]), _time(rows[0][1])


def _fetch(config: DruidConfig, query: str, timeout_s: float | None) -> list[Any]:
    """Rows of one Druid SQL statement; every failure a one-line SinkError."""
    import requests
    import urllib3
    from pydruid.db import exceptions

    conn = connect(config, timeout_s)
    try:
        with warnings.catch_warnings():
            if not config.tls_verify:  # asked for: no InsecureRequestWarning on every query
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            cursor = conn.cursor()
            cursor.execute(query)
            rows = cursor.fetchall()
    except requests.RequestException as exc:
        cert = certificate_error(exc)
        if cert is not None:
            raise SinkError(untrusted_message(config.url, cert)) from exc
        raise SinkUnavailable(f"Druid unreachable at {config.url}: {exc}") from exc
    except exceptions.Error as exc:
        text = " ".join(str(exc).split())
        if "not found" in text and config.datasource in text:
            raise SinkError(f"no datasource {config.datasource!r} in Druid at {config.url} "
                            "(run `dredge druid init` or `dredge replay --sink druid`)") from exc
        page = JETTY_ERROR.search(text)
        if page and page[1] in ("401", "403"):
            raise SinkError(refused_message(f"Druid SQL at {config.url}", int(page[1]),
                                            config.user)) from exc
        if page:
            raise SinkError(f"Druid refused the query: HTTP {page[1]} {page[2].strip()}") from exc
        raise SinkError(f"Druid refused the query: {text[:500]}") from exc
    finally:
        conn.close()
    return list(rows)
