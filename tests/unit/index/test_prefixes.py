"""Time-versioned prefix ownership in the live index (dredge.index.prefixes): precedence
(exact address, then delegated prefix, then CIDR maps), longest prefix, late events, and
random histories checked against a brute-force scan."""

from __future__ import annotations

import ipaddress
import random

import numpy as np
import pyarrow as pa

from dredge.flowlog.parser import parse_addresses
from dredge.index.live import IndexManager
from dredge.index.prefixes import companion_of, expand_v4, prefix_source, split_keys
from dredge.index.providers.config import IndexConfig
from dredge.index.snapshot import IndexSnapshot


def owner(app: str) -> tuple[str | None, ...]:
    return (app, None, None, None, None, None, None, "pod")


def apps_at(snap: IndexSnapshot, ips: list[str], t: int) -> list[str]:
    ids, _ = snap.lookup(parse_addresses(pa.array(ips)), np.full(len(ips), t, np.int64))
    return [str(snap.owners.column("app")[int(i)]) for i in ids]


def test_names_and_keys() -> None:
    assert prefix_source("ec2/1/us-east-1", 80) == "ec2/1/us-east-1#prefix/80"
    assert companion_of("ec2/1/us-east-1#prefix/80") == ("ec2/1/us-east-1", 80)
    assert companion_of("events/file//tmp/a.jsonl") is None
    assert expand_v4("10.0.1.37/28") == [f"10.0.1.{i}" for i in range(32, 48)]
    assert expand_v4("10.0.0.0/16") is None and expand_v4("2600::/80") is None
    ips, _, nets = split_keys(["10.0.0.1", "2600:0:0:0:1:2::/80", "10.0.0.0/16"],
                              [owner("a"), None, owner("b")])
    assert ips == ["10.0.0.1"]
    assert nets == {80: (["2600::1:0:0:0"], [None]), 16: (["10.0.0.0"], [owner("b")])}


def test_precedence_and_longest_prefix() -> None:
    m = IndexManager(IndexConfig(), clock=lambda: 10_000)
    src = m.sink("ec2/1/us-east-1", "ec2")
    src.prefix_sink(80).submit(["fd00:0:0:1:2::"], [1_000], [owner("pods")])
    src.prefix_sink(64).submit(["fd00:0:0:1::"], [1_000], [owner("node")])
    src.submit(["fd00:0:0:1:2::5"], [2_000], [owner("exact")])
    m.sink("cidr/nets.csv", "cidr").set_networks(pa.table({
        "cidr": ["fd00::/16"], "app": ["corp"]}))
    snap = m.rebuild_now()
    ips = ["fd00:0:0:1:2::5", "fd00:0:0:1:2::6", "fd00:0:0:1:3::1", "fd00:0:0:2::1", "fd99::1"]
    assert apps_at(snap, ips, 999) == ["corp", "corp", "corp", "corp", "unknown"]
    assert apps_at(snap, ips, 1_000) == ["pods", "pods", "node", "corp", "unknown"]
    assert apps_at(snap, ips, 2_000) == ["exact", "pods", "node", "corp", "unknown"]
    _, stats = snap.lookup(parse_addresses(pa.array(ips)), np.full(5, 2_000, np.int64))
    assert (stats.owner, stats.cidr, stats.unknown) == (3, 1, 1)  # a prefix hit is an owner hit
    # a release that arrives late lands at its own time
    src.prefix_sink(80).submit(["fd00:0:0:1:2::"], [1_500], [None])
    snap = m.rebuild_now()
    assert apps_at(snap, ips[:2], 1_499) == ["pods", "pods"]
    assert apps_at(snap, ips[:2], 1_500) == ["node", "node"]
    assert apps_at(snap, ips[:2], 2_000) == ["exact", "node"]


def test_random_histories_match_a_brute_force_scan() -> None:
    rng = random.Random(11)
    nets = [ipaddress.ip_network(f"2600:1f18:0:{i:x}:{j:x}::/80") for i in range(3) for j in range(2)]
    apps = ["a", "b", "c", "d"]
    m = IndexManager(IndexConfig(), clock=lambda: 10_000)
    sinks = [m.sink(f"ec2/{k}/us-east-1", "ec2").prefix_sink(80) for k in range(2)]
    events: list[tuple[int, int, int, str | None]] = []  # (source, net, time, app), any order
    for t in rng.sample(range(1_000, 2_000), 300):  # distinct times: no ties to settle
        k, n = rng.randrange(2), rng.randrange(len(nets))
        app = rng.choice([*apps, None])
        sinks[k].submit([str(nets[n].network_address)], [t], [None if app is None else owner(app)])
        events.append((k, n, t, app))
    snap = m.rebuild_now()

    def brute(n: int, t: int) -> str:
        # per source: its last event at or before t; across sources the latest start wins
        best: tuple[int, str] | None = None
        for k in range(2):
            evs = sorted((e for e in events if e[0] == k and e[1] == n and e[2] <= t),
                         key=lambda e: e[2])
            if evs and evs[-1][3] is not None:
                cand = (evs[-1][2], evs[-1][3])
                if best is None or cand[0] > best[0]:
                    best = cand
        return best[1] if best else "internet"

    probes = [(rng.randrange(len(nets)), rng.randrange(900, 2_100)) for _ in range(400)]
    ips = [str(nets[n].network_address + rng.randrange(1, 1 << 48)) for n, _ in probes]
    ids, _ = snap.lookup(parse_addresses(pa.array(ips)), np.array([t for _, t in probes], np.int64))
    got = [str(snap.owners.column("app")[int(i)]) for i in ids]
    assert got == [brute(n, t) for n, t in probes]
