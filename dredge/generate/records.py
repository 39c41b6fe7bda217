"""The records of one file (an account's VPC in a region, for one hour), as columns.

Each data record has a *local* side, the interface the flow log watches (an address of the
file's own VPC), and a *remote* side: another address of the same VPC (often in another AZ),
of another VPC (other accounts and regions), the internet, a networks.csv range, or a VPC
address nobody owns. Some records go through a NAT gateway: on the gateway's interface,
``pkt-srcaddr``/``pkt-dstaddr`` show the host behind the translation (AWS's documented NAT
example). NODATA and SKIPDATA records keep only the interface's own fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dredge.generate.estate import REGIONS, SLOT, UNOWNED, Estate, Picker
from dredge.generate.lines import I64, StringPool

# Remote side: same VPC, another VPC, internet, networks.csv range, unowned, via NAT gateway.
_REMOTE_V4 = (0.42, 0.16, 0.24, 0.10, 0.04, 0.04)
_REMOTE_V6 = (0.50, 0.10, 0.35, 0.05, 0.0, 0.0)
_UNOWNED_LOCAL = 0.03
_REJECT = 0.05
_TCP_PORTS = np.array([443, 80, 5432, 6379, 9092, 8080, 3306, 22, 9200, 27017, 2049, 8443])
_UDP_PORTS = np.array([53, 123, 443, 514, 161, 4789, 5353])
_PROBED_PORTS = np.array([22, 3389, 23, 445, 1433, 3306, 5900, 8080])  # what scanners knock on
_TCP_FLAGS = (np.array([0, 1, 2, 3, 4, 18, 19]), (0.3, 0.1, 0.15, 0.2, 0.05, 0.1, 0.1))


@dataclass(frozen=True)
class Unit:
    """One flow-log file to write, and what goes in it."""

    site: int
    hour_start: int
    span: int  # seconds of the window inside this hour
    fmt: str
    version: int
    parquet: bool
    flow_log: str
    data: int
    nodata: int
    skipdata: int
    malformed: int
    name_hash: str
    role: str = "hourly"  # or "truncated", "empty"


@dataclass(frozen=True)
class Words:
    """Pool ids of the fixed words records use."""

    accept: int
    reject: int
    ok: int
    nodata: int
    skipdata: int
    ipv4: int
    ipv6: int
    ingress: int
    egress: int

    @staticmethod
    def of(pool: StringPool) -> Words:
        return Words(
            *(
                pool.add(w)
                for w in (
                    "ACCEPT",
                    "REJECT",
                    "OK",
                    "NODATA",
                    "SKIPDATA",
                    "IPv4",
                    "IPv6",
                    "ingress",
                    "egress",
                )
            )
        )


def _weighted(rng: np.random.Generator, values: I64, n: int, zipf: float = 1.0) -> I64:
    w = 1.0 / np.arange(1, len(values) + 1) ** zipf
    out: I64 = rng.choice(values, size=n, p=w / w.sum())
    return out


def unit_columns(
    rng: np.random.Generator, estate: Estate, words: Words, unit: Unit, ipv6_share: float
) -> tuple[dict[str, I64], dict[str, int]]:
    """Every v5 field of the unit's records (pool ids or values, -1 null), and counts."""
    ep, s, n = estate.ep, unit.site, unit.data
    m = n + unit.nodata + unit.skipdata
    v6 = rng.random(n) < ipv6_share
    cat = np.where(v6, rng.choice(6, n, p=_REMOTE_V6), rng.choice(6, n, p=_REMOTE_V4))
    local = np.full(m, -1, dtype=np.int64)
    remote = np.full(n, -1, dtype=np.int64)  # set before use: draws must not depend on garbage

    def fill(out: I64, mask: np.ndarray, picker: Picker) -> None:
        rows = np.flatnonzero(mask)
        out[rows] = picker.pick(rng, len(rows))

    fill(local, np.r_[~v6, np.ones(m - n, dtype=bool)], estate.local4[s])
    fill(
        local,
        np.r_[~v6 & (rng.random(n) < _UNOWNED_LOCAL), np.zeros(m - n, bool)],
        estate.unowned[s],
    )
    fill(local, np.r_[v6, np.zeros(m - n, dtype=bool)], estate.local6[s])
    for c, (p4, p6) in enumerate(
        (
            (estate.local4[s], estate.local6[s]),
            (estate.slots4, estate.slots6),
            (estate.internet4, estate.internet6),
            (estate.cidr4, estate.cidr6),
        )
    ):
        fill(remote, (cat == c) & ~v6, p4)
        fill(remote, (cat == c) & v6, p6)
    fill(remote, cat == 4, estate.unowned[s])
    itself = remote == local[:n]  # no talking to itself: talk to the internet instead
    fill(remote, itself & ~v6, estate.internet4)
    fill(remote, itself & v6, estate.internet6)
    local_is_src = rng.random(n) < 0.5
    local_is_server = rng.random(n) < 0.3

    # Through a NAT gateway (local = the gateway): 0 host -> gateway, 1 gateway -> host (the
    # reply, pkt-srcaddr = internet), 2 gateway -> internet.
    nat = np.flatnonzero(cat == 5)
    pattern = rng.integers(0, 3, len(nat))
    local[nat] = estate.nat[s].pick(rng, len(nat))
    host = estate.local4[s].pick(rng, len(nat))
    outside = estate.internet4.pick(rng, len(nat))
    remote[nat] = np.where(pattern == 2, outside, host)
    local_is_src[nat] = pattern != 0
    local_is_server[nat] = pattern == 1
    loc = local[:n]
    src = np.where(local_is_src, loc, remote)
    dst = np.where(local_is_src, remote, loc)
    psrc, pdst = src.copy(), dst.copy()
    pdst[nat[pattern == 0]] = outside[pattern == 0]
    psrc[nat[pattern == 1]] = outside[pattern == 1]

    site_region = np.array([list(REGIONS).index(x.region) for x in estate.sites])
    rsite, rkind = ep["site"][remote], ep["kind"][remote]
    # traffic-path: 1 same VPC, 4 intra-region peering, 5 inter-region peering; outside, the
    # endpoint's own (3 virtual private gateway, 7 gateway endpoint, 8 internet gateway).
    peering = np.where(site_region[np.maximum(rsite, 0)] == site_region[s], 4, 5)
    path = np.where(
        (rkind == SLOT) | (rkind == UNOWNED), np.where(rsite == s, 1, peering), ep["path"][remote]
    )
    path = np.where(local_is_src, path, -1)

    proto = np.where(
        v6,
        _weighted(rng, np.array([6, 17, 58]), n, 2.0),
        _weighted(rng, np.array([6, 17, 1, 50, 47]), n, 2.5),
    )
    tcp, udp = proto == 6, proto == 17
    server = np.where(tcp, _weighted(rng, _TCP_PORTS, n), _weighted(rng, _UDP_PORTS, n))
    ephemeral = rng.integers(32768, 61000, n)
    src_is_server = local_is_src == local_is_server
    ported = tcp | udp
    packets = np.minimum(1 + (rng.pareto(1.1, n) * 3).astype(np.int64), 5_000_000)
    size = np.where(ported, rng.integers(40, 1501, n), 84)
    reject = rng.random(n) < _REJECT
    # half the rejected TCP flows knock on the ports scanners try (the service-port panel shows
    # them); drawn from a child stream, so every other column is what the seed always gave
    probe = rng.spawn(1)[0]
    server = np.where(reject & tcp & (probe.random(n) < 0.5), _weighted(probe, _PROBED_PORTS, n),
                      server)
    srcport = np.where(ported, np.where(src_is_server, server, ephemeral), 0)
    dstport = np.where(ported, np.where(src_is_server, ephemeral, server), 0)
    packets = np.where(reject, rng.integers(1, 4, n), packets)
    size = np.where(reject, rng.integers(40, 61, n), size)
    flags = np.where(tcp, np.where(reject, 2, rng.choice(_TCP_FLAGS[0], n, p=_TCP_FLAGS[1])), 0)

    start = unit.hour_start + rng.integers(0, unit.span, m)
    end = start + rng.integers(0, 61, m)
    status = np.r_[
        np.full(n, words.ok),
        np.full(unit.nodata, words.nodata),
        np.full(unit.skipdata, words.skipdata),
    ]
    site = estate.sites[s]
    pool = estate.pool

    def flow(col: I64) -> I64:
        """A data-only column, null on NODATA/SKIPDATA records."""
        return np.concatenate([col.astype(np.int64), np.full(m - n, -1, dtype=np.int64)])

    def const(value: int) -> I64:
        return np.full(m, value, dtype=np.int64)

    cols = {
        "version": const(unit.version),
        "account-id": const(pool.add(site.account)),
        "interface-id": ep["eni"][local],
        "srcaddr": flow(ep["addr"][src]),
        "dstaddr": flow(ep["addr"][dst]),
        "pkt-srcaddr": flow(ep["addr"][psrc]),
        "pkt-dstaddr": flow(ep["addr"][pdst]),
        "srcport": flow(srcport),
        "dstport": flow(dstport),
        "protocol": flow(proto),
        "packets": flow(packets),
        "bytes": flow(packets * size),
        "start": start,
        "end": end,
        "action": flow(np.where(reject, words.reject, words.accept)),
        "log-status": status,
        "vpc-id": const(pool.add(site.vpc)),
        "subnet-id": ep["subnet"][local],
        "instance-id": ep["instance"][local],
        "tcp-flags": flow(flags),
        "type": flow(np.where(v6, words.ipv6, words.ipv4)),
        "region": const(pool.add(site.region)),
        "az-id": ep["az"][local],
        "flow-direction": flow(np.where(local_is_src, words.egress, words.ingress)),
        "traffic-path": flow(path),
        "pkt-src-aws-service": flow(ep["service"][psrc]),
        "pkt-dst-aws-service": flow(ep["service"][pdst]),
        "sublocation-type": ep["subloc_type"][local],
        "sublocation-id": ep["subloc_id"][local],
    }
    order = rng.permutation(m)
    stats = {"ipv6": int(v6.sum()), "nat": int(((psrc != src) | (pdst != dst)).sum())}
    return {k: v[order] for k, v in cols.items()}, stats
