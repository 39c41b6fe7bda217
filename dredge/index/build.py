"""Build an :class:`IndexSnapshot` from ownership intervals and CIDR maps (Arrow tables).

Intervals: columns ``ip`` (string), ``start`` (int64 epoch s), ``end`` (int64, null = still
owned) and any of the owner fields. Networks: ``cidr`` (string) and owner fields.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dredge.flowlog.parser import Addr, parse_addresses
from dredge.index.owners import OWNER_FIELDS, SPECIAL_OWNERS, encode_owners, owners_table
from dredge.index.snapshot import IndexSnapshot
from dredge.index.tables import AddrTable, CidrTable, addr_table

_FOREVER = np.iinfo(np.int64).max
_SPECIAL = owners_table(SPECIAL_OWNERS)


@dataclass
class BuildReport:
    intervals: int = 0
    invalid_intervals: int = 0
    segments: int = 0
    networks: int = 0
    invalid_networks: int = 0


def _interval_segments(intervals: pa.Table, owner_ids: np.ndarray, report: BuildReport
                       ) -> AddrTable:
    addr = parse_addresses(intervals.column("ip"))
    start = intervals.column("start").to_numpy(zero_copy_only=False)
    end_col = intervals.column("end")
    end = pc.fill_null(end_col, _FOREVER).to_numpy(zero_copy_only=False) if end_col.null_count \
        else end_col.to_numpy(zero_copy_only=False)
    start_null = intervals.column("start").is_null().to_numpy()
    good = (addr.fam > 0) & ~start_null & (end > start)
    report.invalid_intervals += int((~good).sum())
    idx = np.flatnonzero(good)
    table = addr_table(addr.fam[idx], addr.hi[idx], addr.lo[idx], start[idx].astype(np.int64),
                       end[idx].astype(np.int64), owner_ids[idx].astype(np.int32))
    report.intervals += int(idx.size)
    report.segments += table.segments
    return table


def cidr_tables(networks: pa.Table, owner_ids: np.ndarray, report: BuildReport
                 ) -> tuple[CidrTable, ...]:
    fams, prefixes, his, los, keep = [], [], [], [], []
    for i, text in enumerate(networks.column("cidr").to_pylist()):
        try:
            net = ipaddress.ip_network(str(text).strip(), strict=False)
        except ValueError:
            report.invalid_networks += 1
            continue
        value = int(net.network_address)
        fams.append(net.version)
        prefixes.append(net.prefixlen)
        his.append(value >> 64 if net.version == 6 else 0)
        los.append(value & ((1 << 64) - 1))
        keep.append(i)
    report.networks += len(keep)
    if not keep:
        return ()
    fam = np.array(fams, np.int8)
    prefix = np.array(prefixes, np.int16)
    hi = np.array(his, np.uint64)
    lo = np.array(los, np.uint64)
    ow = owner_ids[np.array(keep)]
    arrival = np.arange(len(keep))
    tables = []
    for f, p in sorted({(int(a), int(b)) for a, b in zip(fam, prefix, strict=True)},
                       key=lambda fp: -(fp[1] + (0 if fp[0] == 6 else 96))):
        sel = np.flatnonzero((fam == f) & (prefix == p))
        # the same network listed twice: the later line wins
        order = sel[np.lexsort((arrival[sel], lo[sel], hi[sel]))]
        last = np.ones(order.size, np.bool_)
        last[:-1] = (hi[order][1:] != hi[order][:-1]) | (lo[order][1:] != lo[order][:-1])
        order = order[last]
        k = order.size
        table = AddrTable.build(fam[order], hi[order], lo[order], np.zeros(k, np.int64),
                                np.full(k, _FOREVER, np.int64), ow[order].astype(np.int32))
        tables.append(CidrTable(f, p, table))
    return tuple(tables)


def build_snapshot(intervals: pa.Table | None = None, networks: pa.Table | None = None,
                   sources: dict[str, int] | None = None) -> tuple[IndexSnapshot, BuildReport]:
    intervals = intervals if intervals is not None else empty_intervals()
    networks = networks if networks is not None else pa.table({"cidr": pa.array([], pa.string())})
    report = BuildReport()
    owners, (_, net_ids, int_ids) = encode_owners(_SPECIAL, networks, intervals)
    addrs = _interval_segments(intervals, int_ids, report)
    cidrs = cidr_tables(networks, net_ids, report)
    snap = IndexSnapshot(owners, addrs, cidrs, report.intervals, time.time(), dict(sources or {}))
    return snap, report


def empty_intervals() -> pa.Table:
    cols: dict[str, pa.Array] = {
        "ip": pa.array([], pa.string()),
        "start": pa.array([], pa.int64()),
        "end": pa.array([], pa.int64()),
    }
    for f in OWNER_FIELDS:
        cols[f] = pa.array([], pa.string())
    return pa.table(cols)


__all__ = ["Addr", "BuildReport", "build_snapshot", "cidr_tables", "empty_intervals",
           "encode_owners"]
