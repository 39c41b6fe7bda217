"""``/api/query`` parameters -> a QuerySpec (the one ``dredge query`` builds), and back.

GET takes them from the query string (``where`` repeated, ``by`` comma-separated); POST from
a JSON object with the same keys (``where`` a list, ``by`` a list or a comma string, numbers
as numbers or strings). Every problem is an :class:`ApiError` with a status and one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dredge.errors import ConfigError, DredgeError

if TYPE_CHECKING:
    from dredge.query.spec import QuerySpec

KINDS = ("top", "timeseries", "cross-az")
DEFAULT_BY = {"top": "src_app,dst_app", "timeseries": "", "cross-az": "src_app,dst_app"}
DEFAULT_INTERVAL = "5m"  # as `dredge query --interval`
DEFAULT_LIMIT = 20
MAX_LIMIT = 10_000
SINGLE = ("kind", "by", "from", "to", "metric", "limit", "interval",
          "az_price", "region_price", "internet_price", "nat_price", "format")
FORMATS = {"json": "application/json", "csv": "text/csv; charset=utf-8; header=present"}
KEYS = (*SINGLE, "where")


class ApiError(DredgeError):
    """An answer other than 200: ``status`` and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(" ".join(message.split())[:500])
        self.status = status


def normalize(raw: Mapping[str, Any]) -> dict[str, list[str]]:
    """Query-string lists or a JSON object -> key: list of strings."""
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if key not in KEYS:
            raise ApiError(400, f"unknown parameter {key!r}; one of {', '.join(KEYS)}")
        values = value if isinstance(value, list) else [value]
        texts: list[str] = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                raise ApiError(400, f"{key}: expected text or a number, got {type(v).__name__}")
            texts.append(str(v))
        if key == "by" and isinstance(value, list):
            texts = [",".join(texts)]
        if key in SINGLE and len(texts) > 1:
            raise ApiError(400, f"{key}: given {len(texts)} times")
        out[key] = texts
    return out


def answer_format(raw: Mapping[str, Any], accept: str | None) -> str:
    """``json`` or ``csv``: the ``format`` parameter, else ``Accept: text/csv``, else JSON."""
    params = normalize(raw)
    name = _one(params, "format", "").strip().lower()
    if not name:
        wanted = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
        return "csv" if "text/csv" in wanted and "application/json" not in wanted else "json"
    if name not in FORMATS:
        raise ApiError(400, f"format: one of {', '.join(FORMATS)}, not {name[:50]!r}")
    return name


def _one(params: dict[str, list[str]], key: str, default: str) -> str:
    values = params.get(key)
    return values[0] if values else default


def _number(params: dict[str, list[str]], key: str, default: float) -> float:
    text = _one(params, key, "")
    if not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"{key}: not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise ApiError(400, f"{key}: must be >= 0")
    return value


def parse_spec(raw: Mapping[str, Any]) -> QuerySpec:
    """The QuerySpec of a request, validated (the SQL is built once here: errors now, not
    halfway through a query)."""
    from dredge.query import spec as q

    params = normalize(raw)
    kind = _one(params, "kind", "top")
    if kind not in KINDS:
        raise ApiError(400, f"kind: one of {', '.join(KINDS)}, not {kind!r}")
    by = tuple(b.strip() for b in _one(params, "by", DEFAULT_BY[kind]).split(",") if b.strip())
    if not by and kind != "timeseries":
        raise ApiError(400, f"by: {kind} needs at least one dimension")
    limit_text = _one(params, "limit", str(DEFAULT_LIMIT))
    try:
        limit = int(limit_text)
    except ValueError:
        raise ApiError(400, f"limit: not an integer: {limit_text!r}") from None
    if not 0 < limit <= MAX_LIMIT:
        raise ApiError(400, f"limit: between 1 and {MAX_LIMIT}")
    try:
        start, end = (_one(params, k, "").strip() for k in ("from", "to"))
        spec = q.QuerySpec(
            kind=kind, by=by, filters=tuple(q.Filter.parse(w) for w in params.get("where", [])),
            start=q.parse_time(start) if start else None,
            end=q.parse_time(end) if end else None,
            metric=_one(params, "metric", "bytes"), limit=limit,
            interval_s=q.parse_duration(_one(params, "interval", DEFAULT_INTERVAL)),
            az_price=_number(params, "az_price", q.DEFAULT_AZ_PRICE),
            region_price=_number(params, "region_price", q.DEFAULT_REGION_PRICE),
            internet_price=_number(params, "internet_price", q.DEFAULT_INTERNET_PRICE),
            nat_price=_number(params, "nat_price", q.DEFAULT_NAT_PRICE),
        )
        spec.sql()
    except ConfigError as exc:
        raise ApiError(400, str(exc)) from None
    return spec


def spec_params(spec: QuerySpec) -> dict[str, Any]:
    """The JSON body that asks a server for ``spec`` (what ``dredge query --server`` sends)."""
    body: dict[str, Any] = {
        "kind": spec.kind, "by": list(spec.by), "metric": spec.metric, "limit": spec.limit,
        "interval": spec.interval_s, "az_price": spec.az_price,
        "region_price": spec.region_price, "internet_price": spec.internet_price,
        "nat_price": spec.nat_price,
        "where": [f"{f.dim}{'!=' if f.negate else '='}{'|'.join(f.values)}" for f in spec.filters],
    }
    if spec.start is not None:
        body["from"] = spec.start
    if spec.end is not None:
        body["to"] = spec.end
    return body
