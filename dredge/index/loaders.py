"""Loaders for index inputs kept in files: ownership history (JSON lines), CIDR maps
(CSV), and AWS's published ``ip-ranges.json``.

Each returns an Arrow table in the shape :mod:`dredge.index.build` expects. A bad record is
counted and skipped, never fatal; an unreadable file raises :class:`OwnerIndexError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from dredge.errors import OwnerIndexError
from dredge.index.build import BuildReport, build_snapshot
from dredge.index.owners import OWNER_FIELDS
from dredge.index.snapshot import IndexSnapshot
from dredge.telemetry.logging import get_logger
from dredge.times import MAX_TIME, MIN_TIME, epoch_seconds

log = get_logger(__name__)

# epoch seconds (int, decimal or exponent) or RFC 3339 text -> epoch seconds; a value that is
# not a time or lies outside [MIN_TIME, MAX_TIME] (dredge.times) becomes {bad}: NULL for a
# start, -1 for an end (the interval is then counted invalid, not stretched to "forever")
_EPOCH_SQL = """
CASE WHEN regexp_full_match(trim({c}), '-?[0-9]+(\\.[0-9]*)?([eE][+-]?[0-9]+)?')
     THEN TRY_CAST(floor(TRY_CAST({c} AS DOUBLE)) AS BIGINT)
     ELSE TRY_CAST(floor(epoch(TRY_CAST({c} AS TIMESTAMPTZ))) AS BIGINT) END
"""
# a parsed time within [MIN_TIME, MAX_TIME], else {bad}; NULL stays NULL
_RANGE_SQL = (f"CASE WHEN {{c}} IS NULL THEN NULL WHEN {{v}} BETWEEN {MIN_TIME} AND {MAX_TIME} "
              "THEN {v} ELSE {bad} END")


def load_ownership(path: Path) -> pa.Table:
    """JSON lines, one interval per line: ip, start, end (epoch s or RFC 3339), owner fields."""
    cols = {"ip": "VARCHAR", "start": "VARCHAR", "end": "VARCHAR"} | {f: "VARCHAR" for f in OWNER_FIELDS}
    con = duckdb.connect()
    try:
        rel = con.read_json(str(path), format="newline_delimited", columns=cols)
        con.register("raw", rel)
        owners = [f'"{f}"' for f in OWNER_FIELDS]
        parsed = ", ".join(["ip", "start", '"end"', _EPOCH_SQL.format(c="start") + " AS s",
                            _EPOCH_SQL.format(c='"end"') + " AS e", *owners])
        select = ", ".join(["ip", _RANGE_SQL.format(c="start", v="s", bad="NULL") + " AS start",
                            _RANGE_SQL.format(c='"end"', v="e", bad="-1") + ' AS "end"', *owners])
        table = con.sql(f"SELECT {select} FROM (SELECT {parsed} FROM raw)").to_arrow_table()
    except duckdb.Error as exc:
        log.warning("ownership_file_fallback", file=str(path), error=str(exc).splitlines()[0])
        table = _load_ownership_slow(path)
    finally:
        con.close()
    return table


def _load_ownership_slow(path: Path) -> pa.Table:
    """Line by line, for files with bad lines: keeps the good ones, counts the bad."""
    rows: dict[str, list[object]] = {k: [] for k in ("ip", "start", "end", *OWNER_FIELDS)}
    bad = 0
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise OwnerIndexError(f"cannot read {path}: {exc}") from exc
    with fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
                start = _to_epoch(rec["start"])
                end = _to_epoch(rec.get("end"))
                ip = str(rec["ip"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                bad += 1
                continue
            rows["ip"].append(ip)
            rows["start"].append(start)
            rows["end"].append(end)
            for f in OWNER_FIELDS:
                v = rec.get(f)
                rows[f].append(None if v is None else str(v))
    if bad:
        log.warning("ownership_bad_lines", file=str(path), count=bad)
    schema = pa.schema([("ip", pa.string()), ("start", pa.int64()), ("end", pa.int64())]
                       + [(f, pa.string()) for f in OWNER_FIELDS])
    return pa.table(rows, schema=schema)


def _to_epoch(v: object) -> int | None:
    return None if v is None else epoch_seconds(v)


def load_cidr_csv(path: Path) -> pa.Table:
    """CSV with a header: cidr,app,type,region[,cluster,account,az,vpc,subnet]."""
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(column_types={f: pa.string() for f in ("cidr", *OWNER_FIELDS)},
                                                 strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise OwnerIndexError(f"cannot read CIDR map {path}: {exc}") from exc
    if "cidr" not in table.column_names:
        raise OwnerIndexError(f"CIDR map {path} has no 'cidr' column (header: cidr,app,type,region)")
    return table


def load_ip_ranges(path: Path) -> pa.Table:
    """AWS ip-ranges.json: app = service, type = aws-service. AMAZON (the catch-all) first so
    that a more specific service listed for the same prefix wins."""
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise OwnerIndexError(f"cannot read ip-ranges {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise OwnerIndexError(f"ip-ranges {path}: not AWS's ip-ranges.json (a JSON object with "
                              "'prefixes' and 'ipv6_prefixes')")
    entries: list[tuple[Any, dict[str, Any]]] = []
    for key, field in (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")):
        items = doc.get(key, [])
        if not isinstance(items, list):
            raise OwnerIndexError(f"ip-ranges {path}: '{key}' is not a list")
        # an item of the wrong shape is left out (the CIDR loader counts it invalid)
        entries += [(p.get(field), p) for p in items if isinstance(p, dict)]
    entries.sort(key=lambda e: e[1].get("service") != "AMAZON")
    return pa.table({
        "cidr": [e[0] for e in entries],
        "app": [e[1].get("service") for e in entries],
        "type": ["aws-service"] * len(entries),
        "region": [e[1].get("region") for e in entries],
    })


def load_networks(path: Path) -> pa.Table:
    if path.suffix == ".json":
        return load_ip_ranges(path)
    return load_cidr_csv(path)


def load_index(ownership: list[Path], networks: list[Path]) -> tuple[IndexSnapshot, BuildReport]:
    """Read the files and build one snapshot."""
    intervals = [load_ownership(p) for p in ownership]
    nets = [load_networks(p) for p in networks]
    iv = pa.concat_tables(intervals, promote_options="permissive") if intervals else None
    nt = None
    if nets:
        nt = pa.concat_tables([n.select([c for c in n.column_names if c in ("cidr", *OWNER_FIELDS)])
                               for n in nets], promote_options="permissive")
    sources = {"ownership_files": len(ownership), "network_files": len(networks)}
    return build_snapshot(iv, nt, sources)
