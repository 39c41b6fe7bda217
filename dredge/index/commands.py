"""`dredge index`: look up who owned an address at a time; index statistics."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from dredge.errors import ConfigError, ParseError
from dredge.flowlog.parser import parse_addresses
from dredge.index.snapshot import IndexSnapshot
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)


def add_index_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", action="append", default=[], metavar="FILE",
                   help="ownership history, JSON lines (repeatable)")
    p.add_argument("--cidrs", action="append", default=[], metavar="FILE",
                   help="CIDR map: CSV (cidr,app,type,region,...) or AWS ip-ranges.json (repeatable)")


def load_snapshot(args: argparse.Namespace) -> IndexSnapshot:
    from dredge.index.loaders import load_index

    snap, report = load_index([Path(p) for p in args.index], [Path(p) for p in args.cidrs])
    log.info("index_loaded", intervals=report.intervals, segments=report.segments,
             networks=report.networks, invalid_intervals=report.invalid_intervals,
             invalid_networks=report.invalid_networks)
    return snap


def cmd_index(args: argparse.Namespace) -> int:
    from dredge.query.spec import parse_time

    snap = load_snapshot(args)
    if args.action == "stats":
        out = {"intervals": snap.intervals, "segments": snap.addrs.segments,
               "networks": sum(c.table.segments for c in snap.cidrs),
               "owners": snap.owners.num_rows, "memory_bytes": snap.nbytes}
        sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    if not args.ip:
        raise ConfigError("ip", "give an address: dredge index lookup 10.0.1.5 [--at TIME]")
    at = parse_time(args.at) if args.at else int(time.time())
    addr = parse_addresses(pa.array([args.ip]))
    if addr.fam[0] <= 0:
        raise ParseError(f"not an IP address: {args.ip}")
    ids, _ = snap.lookup(addr, np.array([at], np.int64))
    owner = snap.owners.slice(int(ids[0]), 1).to_pylist()[0]
    sys.stdout.buffer.write(orjson.dumps({"ip": args.ip, "at": at, "owner": owner},
                                         option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def add_index_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ix = sub.add_parser("index", help="look up the owner of an address, or index statistics")
    ix.add_argument("action", choices=["lookup", "stats"])
    ix.add_argument("ip", nargs="?")
    ix.add_argument("--at", help="time of the lookup (default: now)")
    add_index_args(ix)
    ix.set_defaults(func=cmd_index)
