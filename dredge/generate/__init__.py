"""Deterministic sample data: IP ownership history, a CIDR map, and VPC flow-log files.

``generate(out_dir)`` writes::

    owners.jsonl     who owned each IP when (intervals [start, end), end null = still owned)
    networks.csv     cidr,app,type,region,account,vpc (longest prefix wins; ranges nest)
    logs/AWSLogs/... gzip text files (S3 layout) and Parquet files (Hive-style layout)
    manifest.json    what was written, counted (the dict ``generate`` returns)

The same arguments give the same bytes: one ``PCG64(seed)`` stream feeds every draw, gzip
headers carry mtime 0, and nothing reads the clock.

Manifest keys: ``files`` (flow-log files, text and Parquet, the two odd ones included),
``files_text``/``files_parquet``; ``flows`` (data records, log-status OK, in every file but
the truncated one: equals the ``flows`` argument), ``flows_text``/``flows_parquet``,
``flows_ipv6``; ``nat_rows`` (records whose pkt-srcaddr/pkt-dstaddr differ from
srcaddr/dstaddr, in formats that have those fields); ``nodata``/``skipdata`` (records of
that log-status, also not in ``flows``); ``malformed`` (broken lines, text only);
``flows_in_truncated`` (complete records a streaming reader recovers from the truncated file;
``truncated`` says which file and how many were written); ``empty`` (the header-only file);
``intervals``/``owner_ips``/``reassigned_ips`` (owners.jsonl lines, distinct IPs, IPs owned by
two or more apps); ``cidrs`` (networks.csv rows); ``bytes`` (everything written but the
manifest); ``window`` ([start, end) of flow start times); ``formats`` (field lists);
``file_list`` (per file: path, role, kind, format, account, region, hour_start, counts, bytes).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from dredge.errors import ConfigError
from dredge.generate.estate import REGIONS, build_estate
from dredge.generate.files import (
    gzip_bytes,
    plan_units,
    text_bytes,
    truncate,
    unit_path,
    write_parquet,
)
from dredge.generate.lines import FORMATS, MALFORMED_KINDS
from dredge.generate.owners import build_intervals, write_owners
from dredge.generate.records import Words, unit_columns

__all__ = ["generate"]

_PKT_FIELDS = "pkt-srcaddr"


MAX_FLOWS = 10**10
MAX_SEED = 2**63 - 1
MAX_START = 253_402_300_799 - 745 * 3600  # the last flow stays before the year 10000


def _validate(flows: int, hours: float, shares: dict[str, float], accounts: int, apps: int,
              seed: int = 0, start: int = 0) -> None:
    if not 0 <= flows <= MAX_FLOWS:
        raise ConfigError("flows", f"must be in [0, {MAX_FLOWS}]")
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError("seed", f"must be in [0, 2**63 - 1], not {seed}")
    if not 0 <= start <= MAX_START:
        raise ConfigError("start", "must be between 1970 and 9999")
    if not 0 < hours <= 24 * 31:
        raise ConfigError("hours", "must be in (0, 744]")
    for name, share in shares.items():
        if not 0.0 <= share <= 1.0:
            raise ConfigError(name, "must be between 0 and 1")
    if not 1 <= accounts <= 60:
        raise ConfigError("accounts", "must be between 1 and 60")
    if apps < 1:
        raise ConfigError("apps", "must be >= 1")


def generate(
    out_dir: Path,
    *,
    flows: int = 1_000_000,
    seed: int = 7,
    start: int = 1795564800,  # 2026-11-25T00:00:00Z
    hours: float = 24.0,
    ipv6_share: float = 0.03,
    malformed_share: float = 0.0005,
    parquet_share: float = 0.1,
    accounts: int = 3,
    apps: int = 40,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Writes a sample into ``out_dir`` and returns its manifest (also in manifest.json).

    ``progress`` is called after each file with the number of flows written so far.
    """
    args = {
        "flows": flows,
        "seed": seed,
        "start": start,
        "hours": hours,
        "ipv6_share": ipv6_share,
        "malformed_share": malformed_share,
        "parquet_share": parquet_share,
        "accounts": accounts,
        "apps": apps,
    }
    _validate(
        flows,
        hours,
        {
            "ipv6_share": ipv6_share,
            "malformed_share": malformed_share,
            "parquet_share": parquet_share,
        },
        accounts,
        apps,
        seed,
        start,
    )
    out_dir = Path(out_dir)
    logs = out_dir / "logs"
    if logs.exists():
        if not (out_dir / "manifest.json").exists():
            raise ConfigError("out_dir", f"{logs} exists and was not written by dredge generate")
        shutil.rmtree(logs)
    out_dir.mkdir(parents=True, exist_ok=True)

    rng = np.random.Generator(np.random.PCG64(seed))
    estate = build_estate(rng, accounts=accounts, apps=apps, flows=flows)
    window_end = start + max(1, round(hours * 3600))
    iv = build_intervals(rng, estate, start, window_end)
    size = write_owners(out_dir / "owners.jsonl", rng, estate, iv)
    csv = "cidr,app,type,region,account,vpc\n" + "".join(
        ",".join(r) + "\n" for r in estate.networks
    )
    (out_dir / "networks.csv").write_text(csv)
    size += len(csv)
    words = Words.of(estate.pool)
    units = plan_units(
        rng,
        estate,
        flows=flows,
        start=start,
        hours=hours,
        parquet_share=parquet_share,
        malformed_share=malformed_share,
    )

    totals = dict.fromkeys(
        (
            "flows",
            "flows_text",
            "flows_parquet",
            "flows_ipv6",
            "nat_rows",
            "nodata",
            "skipdata",
            "malformed",
            "files_text",
            "files_parquet",
        ),
        0,
    )
    listing: list[dict[str, Any]] = []
    truncated: dict[str, Any] = {}
    for unit in units:
        cols, stats = unit_columns(rng, estate, words, unit, ipv6_share)
        rel = unit_path(estate, unit)
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if unit.parquet:
            write_parquet(path, unit, cols, estate.pool)
        else:
            good = np.flatnonzero(cols["log-status"] == words.ok)
            gz = gzip_bytes(text_bytes(rng, unit, cols, estate.pool, good))
            if unit.role == "truncated":
                gz, complete = truncate(gz)
                truncated = {
                    "path": rel.as_posix(),
                    "records_written": unit.data,
                    "complete_records_before_cut": complete,
                }
            path.write_bytes(gz)
        site = estate.sites[unit.site]
        nbytes = path.stat().st_size
        size += nbytes
        nat = stats["nat"] if _PKT_FIELDS in FORMATS[unit.fmt] else 0
        listing.append(
            {
                "path": rel.as_posix(),
                "role": unit.role,
                "kind": "parquet" if unit.parquet else "text",
                "format": unit.fmt,
                "account": site.account,
                "region": site.region,
                "hour_start": unit.hour_start,
                "flows": unit.data,
                "nodata": unit.nodata,
                "skipdata": unit.skipdata,
                "malformed": unit.malformed,
                "ipv6": stats["ipv6"],
                "nat_rows": nat,
                "bytes": nbytes,
            }
        )
        totals["files_parquet" if unit.parquet else "files_text"] += 1
        if unit.role != "truncated":
            kind = "flows_parquet" if unit.parquet else "flows_text"
            for key, value in (
                ("flows", unit.data),
                (kind, unit.data),
                ("flows_ipv6", stats["ipv6"]),
                ("nat_rows", nat),
                ("nodata", unit.nodata),
                ("skipdata", unit.skipdata),
                ("malformed", unit.malformed),
            ):
                totals[key] += value
            if progress is not None:
                progress(totals["flows"])

    apps_of_slot = np.unique(np.stack([iv.slot, iv.app]), axis=1)[0]
    manifest: dict[str, Any] = {
        "generator": "dredge.generate",
        "manifest_version": 1,
        "args": args,
        "window": {"start": start, "end": window_end},
        "files": len(units),
        **totals,
        "flows_in_truncated": truncated["complete_records_before_cut"],
        "truncated": truncated,
        "empty": listing[-1]["path"],
        "intervals": len(iv.slot),
        "owner_ips": len(np.unique(iv.slot)),
        "reassigned_ips": int((np.bincount(apps_of_slot) >= 2).sum()),
        "cidrs": len(estate.networks),
        "accounts": sorted({s.account for s in estate.sites}),
        "regions": [r for r in REGIONS if any(s.region == r for s in estate.sites)],
        "formats": {name: list(fields) for name, fields in FORMATS.items()},
        "malformed_kinds": list(MALFORMED_KINDS),
        "bytes": size,
        "file_list": listing,
    }
    (out_dir / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest
