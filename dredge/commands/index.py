"""`dredge index`: who owned an address at a time and its whole history; index statistics.

The index comes from the live index's saved state (``--state``, what ``dredge run`` writes)
or from files (``--index`` ownership history, ``--cidrs`` CIDR maps).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from dredge.errors import ConfigError, ParseError
from dredge.telemetry.logging import get_logger

if TYPE_CHECKING:  # numpy, Arrow and the compiled parser: imported when the command runs
    from dredge.index.snapshot import IndexSnapshot

log = get_logger(__name__)


def add_index_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", action="append", default=[], metavar="FILE",
                   help="ownership history, JSON lines (repeatable; default: none)")
    p.add_argument("--cidrs", action="append", default=[], metavar="FILE",
                   help="CIDR map: CSV (cidr,app,type,region,...) or AWS ip-ranges.json "
                   "(repeatable; default: none)")
    p.add_argument("--state", metavar="PATH", default=None,
                   help="the live index's saved state (Arrow IPC), instead of --index/--cidrs "
                   "(default: none)")


def load_snapshot(args: argparse.Namespace) -> IndexSnapshot:
    if getattr(args, "state", None):
        from dredge.index.live import IndexManager

        return IndexManager.from_state(Path(args.state)).current()
    from dredge.index.loaders import load_index

    snap, report = load_index([Path(p) for p in args.index], [Path(p) for p in args.cidrs])
    log.info("index_loaded", intervals=report.intervals, segments=report.segments,
             networks=report.networks, invalid_intervals=report.invalid_intervals,
             invalid_networks=report.invalid_networks)
    return snap


def load_snapshot_beside(args: argparse.Namespace) -> IndexSnapshot | Future[IndexSnapshot]:
    """The snapshot loading on a thread of its own while the store opens and the first files
    are read and parsed (replay's join waits for it), when a second core can run it;
    else loaded here."""
    from dredge.cores import usable_cores

    if usable_cores() < 2:
        return load_snapshot(args)
    future: Future[IndexSnapshot] = Future()

    def load() -> None:
        try:
            future.set_result(load_snapshot(args))
        except BaseException as exc:  # raised where the snapshot is needed
            future.set_exception(exc)

    threading.Thread(target=load, name="index-load", daemon=True).start()
    return future


def _snapshot_stats(snap: IndexSnapshot) -> dict[str, Any]:
    return {"intervals": snap.intervals, "segments": snap.addrs.segments,
            "addresses": snap.addrs.addresses,
            "networks": sum(c.table.segments for c in snap.cidrs),
            "owners": snap.owners.num_rows, "memory_bytes": snap.nbytes,
            "bytes_per_interval": round(snap.nbytes / snap.intervals, 1) if snap.intervals else None,
            "built_at": round(snap.built_at, 3)}


def _stats(args: argparse.Namespace) -> dict[str, Any]:
    if not args.state:
        snap = load_snapshot(args)
        return {**_snapshot_stats(snap), "sources": snap.sources}
    from dredge.index.live import IndexManager

    path = Path(args.state)
    m = IndexManager.from_state(path)
    snap = m.current()
    now = time.time()
    sources = {}
    for name, st in sorted(m.status().items()):
        sources[name] = {**st.to_json(), "age_s": round(now - st.updated_at, 1) if st.updated_at else None,
                         "rows": snap.sources.get(name, 0)}
    hist = m.history
    return {**_snapshot_stats(snap), "history_events": len(hist),
            "history_bytes": sum(int(a.nbytes) for a in (
                hist.src, hist.seq, hist.events.fam, hist.events.hi, hist.events.lo,
                hist.events.time, hist.events.kind, hist.events.owner)),
            "state_file": {"path": str(path), "bytes": path.stat().st_size},
            "sources": sources}


def _file_history(args: argparse.Namespace, ip: str) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    from dredge.flowlog.parser import parse_addresses
    from dredge.index.loaders import load_ownership
    from dredge.index.owners import OWNER_FIELDS

    a = parse_addresses(pa.array([ip]))
    out: list[dict[str, Any]] = []
    for p in args.index:
        t = load_ownership(Path(p))
        addr = parse_addresses(t.column("ip"))
        hit = (addr.fam == a.fam[0]) & (addr.hi == a.hi[0]) & (addr.lo == a.lo[0])
        rows = t.filter(pa.array(hit))
        rows = rows.take(pc.sort_indices(rows, [("start", "ascending")]))
        for r in rows.to_pylist():
            out.append({"source": p, "start": r["start"], "end": r["end"],
                        **{f: r.get(f) for f in OWNER_FIELDS}})
    return out


def cmd_index(args: argparse.Namespace) -> int:
    import numpy as np
    import pyarrow as pa

    from dredge.flowlog.parser import parse_addresses
    from dredge.times import parse_time

    if args.action == "stats":
        out = _stats(args)
        sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    if not args.ip:
        raise ConfigError("ip", "give an address: dredge index lookup 10.0.1.5 [--at TIME]")
    at = parse_time(args.at, "--at") if args.at else int(time.time())
    addr = parse_addresses(pa.array([args.ip]))
    if addr.fam[0] <= 0:
        raise ParseError(f"not an IP address: {args.ip}")
    if args.state:
        from dredge.index.live import IndexManager, address_history

        m = IndexManager.from_state(Path(args.state))
        snap = m.current()
        history = address_history(m.history, m.owner, args.ip)
    else:
        snap = load_snapshot(args)
        history = _file_history(args, args.ip)
    ids, _ = snap.lookup(addr, np.array([at], np.int64))
    owner = snap.owners.slice(int(ids[0]), 1).to_pylist()[0]
    sys.stdout.buffer.write(orjson.dumps({"ip": args.ip, "at": at, "owner": owner,
                                          "history": history},
                                         option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def add_index_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ix = sub.add_parser("index", help="look up the owner of an address and its history, "
                                      "or index statistics")
    ix.add_argument("action", choices=["lookup", "stats"],
                    help="lookup: the owner of IP at a time and its history; stats: sizes, "
                    "memory and per-source freshness")
    ix.add_argument("ip", nargs="?", help="lookup: the address (IPv4 or IPv6)")
    ix.add_argument("--at", help="time of the lookup, 2026-11-25T10:00Z or epoch s "
                    "(default: now)")
    add_index_args(ix)
    ix.set_defaults(func=cmd_index)
