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
from dredge.index import kernels
from dredge.index.snapshot import OWNER_FIELDS, AddrTable, CidrTable, IndexSnapshot

_FOREVER = np.iinfo(np.int64).max
_SPECIAL = pa.table({
    f: pa.array(
        {"app": ["unknown", "internet"], "type": ["unknown", "internet"]}.get(f, [None, None]),
        pa.string(),
    )
    for f in OWNER_FIELDS
})


@dataclass
class BuildReport:
    intervals: int = 0
    invalid_intervals: int = 0
    segments: int = 0
    networks: int = 0
    invalid_networks: int = 0


def owner_columns(table: pa.Table) -> pa.Table:
    """The owner fields of a table, as strings; missing columns are null."""
    cols = {}
    for f in OWNER_FIELDS:
        if f in table.column_names:
            col = table.column(f)
            cols[f] = col.cast(pa.string()) if col.type != pa.string() else col
        else:
            cols[f] = pa.nulls(table.num_rows, pa.string())
    return pa.table(cols)


def encode_owners(*tables: pa.Table) -> tuple[pa.Table, list[np.ndarray]]:
    """Distinct owner tuples (in order of first appearance) and each table's owner ids."""
    combined = pa.concat_tables([owner_columns(t) for t in tables]).combine_chunks()
    n = combined.num_rows
    codes = []
    cards = []
    for f in OWNER_FIELDS:
        enc = pc.dictionary_encode(combined.column(f), null_encoding="encode").combine_chunks()
        codes.append(enc.indices.to_numpy(zero_copy_only=False).astype(np.int64))
        cards.append(max(len(enc.dictionary), 1))
    if float(np.prod(np.array(cards, np.float64))) < 2**62:
        key = np.zeros(n, np.int64)
        for c, card in zip(codes, cards, strict=True):
            key = key * card + c
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:  # too many distinct values for one int64 key: rows of codes
        _, first, inverse = np.unique(np.stack(codes, axis=1), axis=0, return_index=True,
                                      return_inverse=True)
    order = np.argsort(first, kind="stable")  # ids in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    ids = rank[inverse.ravel()].astype(np.int32)
    owners = combined.take(pa.array(first[order]))
    out, pos = [], 0
    for t in tables:
        out.append(ids[pos:pos + t.num_rows])
        pos += t.num_rows
    return owners, out


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
    return addr_table(addr.fam[idx], addr.hi[idx], addr.lo[idx], start[idx].astype(np.int64),
                      end[idx].astype(np.int64), owner_ids[idx].astype(np.int32), report)


def address_order(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, start: np.ndarray
                  ) -> np.ndarray:
    """Row order with each address's rows together, by start (ties: arrival order).

    Addresses come in hash order (:func:`kernels.addr_hash`), which is the order of their
    slots in the table: :meth:`AddrTable.build` then writes front to back instead of at
    random; one sort by hash and short sorts of each address's rows are cheaper than a
    four-key lexsort.
    """
    h = kernels.addr_hash(fam, hi, lo)
    order = np.argsort(h, kind="stable")
    if kernels.sort_runs(order, h, fam, hi, lo, start):
        return order
    # two addresses share a hash (IPv6, or across families): sort fully
    return np.lexsort((start, lo, hi, fam))


def addr_table(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray, start: np.ndarray,
               end: np.ndarray, owner: np.ndarray, report: BuildReport | None = None
               ) -> AddrTable:
    """Valid intervals (end > start, end = int64 max for open) in arrival order -> AddrTable.

    Where intervals of one address overlap, the latest start wins (ties: the later row).
    """
    n = fam.size
    order = address_order(fam, hi, lo, start)
    fam, hi, lo, st, en, ow = (a[order] for a in (fam, hi, lo, start, end, owner))
    change = np.ones(n, np.bool_)
    if n:
        change[1:] = (fam[1:] != fam[:-1]) | (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    group = np.cumsum(change) - 1
    g, s, e, o = kernels.flatten(group, st, en, ow)
    firsts = np.flatnonzero(change)
    if report is not None:
        report.intervals += n
        report.segments += int(g.size)
    gf = firsts[g]
    return AddrTable.build(fam[gf], hi[gf], lo[gf], s, e, o)


def _cidr_tables(networks: pa.Table, owner_ids: np.ndarray, report: BuildReport
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
    cidrs = _cidr_tables(networks, net_ids, report)
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


__all__ = ["Addr", "BuildReport", "build_snapshot", "empty_intervals", "encode_owners"]
