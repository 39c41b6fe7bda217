"""Which flow-log files exist, where they go, and how each is written.

One file per (account, region, hour) of the window. Formats rotate so that about half the
files use the default v2 format and the rest a v5 custom format (AWS's field order, or a
shuffled one). A ``parquet_share`` of the files is delivered as Parquet in the Hive-style
layout instead. Two odd files close the set: a gzip cut in half and one with only a header.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from zlib_ng import zlib_ng

from dredge.generate.estate import Estate, hex_ids
from dredge.generate.lines import (
    FORMAT_VERSION,
    FORMATS,
    I64,
    StringPool,
    arrow_column,
    format_lines,
    malform,
)
from dredge.generate.records import Unit

FORMAT_CYCLE = ("v2", "v5", "v2", "v5-shuffled")
GZIP_LEVEL = 3
_NODATA = 0.003
_SKIPDATA = 0.0005


def plan_units(
    rng: np.random.Generator,
    estate: Estate,
    *,
    flows: int,
    start: int,
    hours: float,
    parquet_share: float,
    malformed_share: float,
) -> list[Unit]:
    window = max(1, round(hours * 3600))
    n_sites, n_hours = len(estate.sites), math.ceil(window / 3600)
    logs = {
        (s, f): f"fl-{h}"
        for (s, f), h in zip(
            [(s, f) for s in range(n_sites) for f in FORMATS],
            hex_ids(rng, n_sites * 3),
            strict=True,
        )
    }
    site = np.repeat(np.arange(n_sites), n_hours)
    hour = np.tile(np.arange(n_hours), n_sites)
    hour_start = start + 3600 * hour
    span = np.minimum(3600, start + window - hour_start)
    of_day = (hour_start % 86_400) / 3600
    weight = (
        np.array([s.weight for s in estate.sites])[site]
        * span
        * (1 + 0.5 * np.sin(2 * np.pi * (of_day - 9) / 24))
    )
    data = rng.multinomial(flows, weight / weight.sum())
    parquet = rng.random(len(site)) < parquet_share
    if parquet_share > 0 and not parquet.any():
        parquet[len(site) // 2] = True
    if parquet_share < 1 and parquet.all():
        parquet[0] = False
    nodata = rng.binomial(data, _NODATA)
    skipdata = rng.binomial(data, _SKIPDATA)
    text_rows = np.flatnonzero(~parquet & (data > 0))
    if flows and len(text_rows):  # every sample has both kinds of empty record
        nodata[text_rows[0]] += not nodata.any()
        skipdata[text_rows[-1]] += not skipdata.any()
    # Broken lines are copies of good records, so a file has no more of them than records.
    malformed = np.where(
        parquet, 0, np.minimum(rng.binomial(data + nodata + skipdata, malformed_share), data)
    )
    names = hex_ids(rng, len(site) + 2, 8)
    units = []
    for i in range(len(site)):
        fmt = FORMAT_CYCLE[(site[i] + hour[i]) % len(FORMAT_CYCLE)]
        units.append(
            Unit(
                int(site[i]),
                int(hour_start[i]),
                int(span[i]),
                fmt,
                FORMAT_VERSION[fmt],
                bool(parquet[i]),
                logs[int(site[i]), fmt],
                int(data[i]),
                int(nodata[i]),
                int(skipdata[i]),
                int(malformed[i]),
                names[i],
            )
        )
    odd = hex_ids(rng, 2)
    units.append(
        Unit(
            0,
            start,
            int(span[0]),
            "v2",
            2,
            False,
            f"fl-{odd[0]}",
            int(np.clip(flows // 100, 200, 5000)),
            0,
            0,
            0,
            names[-2],
            "truncated",
        )
    )
    last = len(site) - 1
    units.append(
        Unit(
            int(site[last]),
            int(hour_start[last]),
            int(span[last]),
            "v5",
            5,
            False,
            f"fl-{odd[1]}",
            0,
            0,
            0,
            0,
            names[-1],
            "empty",
        )
    )
    return units


def unit_path(estate: Estate, unit: Unit) -> Path:
    """Where AWS would deliver the unit: plain S3 layout for gzip, Hive-style for Parquet."""
    site = estate.sites[unit.site]
    t = dt.datetime.fromtimestamp(unit.hour_start, dt.UTC)
    stamp = t.strftime("%Y%m%dT%H%MZ")
    name = f"{site.account}_vpcflowlogs_{site.region}_{unit.flow_log}_{stamp}_{unit.name_hash}"
    if unit.parquet:
        return Path(
            "logs",
            "AWSLogs",
            f"aws-account-id={site.account}",
            "aws-service=vpcflowlogs",
            f"aws-region={site.region}",
            f"year={t:%Y}",
            f"month={t:%m}",
            f"day={t:%d}",
            f"hour={t:%H}",
            f"{name}.log.parquet",
        )
    return Path(
        "logs",
        "AWSLogs",
        site.account,
        "vpcflowlogs",
        site.region,
        f"{t:%Y}",
        f"{t:%m}",
        f"{t:%d}",
        f"{name}.log.gz",
    )


def gzip_bytes(data: bytes) -> bytes:
    """gzip with mtime 0 and no name, so equal input gives equal bytes."""
    c = zlib_ng.compressobj(GZIP_LEVEL, zlib_ng.DEFLATED, 31)
    return c.compress(data) + c.flush()


def text_bytes(
    rng: np.random.Generator, unit: Unit, cols: dict[str, I64], pool: StringPool, good: I64
) -> bytes:
    """Header, records and ``unit.malformed`` broken copies of the ``good`` rows, inserted."""
    fields = FORMATS[unit.fmt]
    body, ends = format_lines(fields, cols, pool)
    pieces = [(" ".join(fields) + "\n").encode()]
    k = min(unit.malformed, len(good))
    rows = rng.choice(good, size=k, replace=False)
    kinds = rng.integers(0, 4, k)
    at = np.sort(rng.integers(0, len(ends) + 1, k))
    done = 0
    for pos, row, kind in zip(at.tolist(), rows.tolist(), kinds.tolist(), strict=True):
        cut = int(ends[pos - 1]) if pos else 0
        first = int(ends[row - 1]) if row else 0
        pieces += [body[done:cut], malform(body[first : int(ends[row])], fields, kind)]
        done = cut
    pieces.append(body[done:])
    return b"".join(pieces)


def truncate(gz: bytes) -> tuple[bytes, int]:
    """The first half of ``gz``, and how many complete records a reader gets back from it."""
    cut = gz[: len(gz) // 2]
    recovered = zlib.decompressobj(31).decompress(cut)
    return cut, max(0, recovered.count(b"\n") - 1)


def write_parquet(path: Path, unit: Unit, cols: dict[str, I64], pool: StringPool) -> None:
    fields = FORMATS[unit.fmt]
    table = pa.table({f.replace("-", "_"): arrow_column(f, cols[f], pool) for f in fields})
    pq.write_table(table, path, compression="snappy")
