"""The ``dredge query --server URL`` client: a query sent to a running ``dredge run`` or
``dredge serve`` (/api/query), its answer as the table ``dredge query`` would print."""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from dredge.errors import ConfigError, DredgeError

if TYPE_CHECKING:
    import urllib.error

    import pyarrow as pa

    from dredge.query.spec import QuerySpec

TOKEN_ENV = "DREDGE_SERVE_TOKEN"


def query_server(url: str, spec: QuerySpec, token: str | None = None,
                 timeout_s: float = 120.0) -> pa.Table:
    """POST ``spec`` to ``url``'s /api/query; the answer as ``dredge query`` would print it."""
    import urllib.error  # here, not above: http.client costs every command ~15 ms at start
    import urllib.request

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

