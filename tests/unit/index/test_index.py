"""Index tests: lookups at flow time, overlap rules, CIDR longest prefix, unknown/internet,
and hypothesis properties against a brute-force scan."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.flowlog.parser import parse_addresses
from dredge.index.build import build_snapshot
from dredge.index.loaders import load_index, load_ip_ranges
from dredge.index.snapshot import OWNER_FIELDS

FOREVER = None


def intervals(rows: list[tuple[str, int, int | None, str]]) -> pa.Table:
    cols: dict[str, list[object]] = {"ip": [], "start": [], "end": [], "app": []}
    for ip, s, e, app in rows:
        cols["ip"].append(ip)
        cols["start"].append(s)
        cols["end"].append(e)
        cols["app"].append(app)
    return pa.table(cols, schema=pa.schema([("ip", pa.string()), ("start", pa.int64()),
                                            ("end", pa.int64()), ("app", pa.string())]))


def apps(snap, ips: list[str | None], times: list[int]) -> list[str]:  # type: ignore[no-untyped-def]
    ids, _ = snap.lookup(parse_addresses(pa.array(ips, pa.string())), np.array(times, np.int64))
    return [snap.owners.column("app")[int(i)].as_py() for i in ids]


def test_owner_at_flow_time_and_reassignment() -> None:
    snap, report = build_snapshot(intervals([
        ("10.0.1.5", 100, 200, "api"), ("10.0.1.5", 200, None, "db"), ("10.0.1.6", 150, 160, "x"),
    ]))
    assert report.intervals == 3
    got = apps(snap, ["10.0.1.5"] * 5 + ["10.0.1.6"] * 3, [99, 100, 199, 200, 10**9, 149, 155, 160])
    assert got == ["unknown", "api", "api", "db", "db", "unknown", "x", "unknown"]


def test_overlap_latest_start_wins_then_earlier_resumes() -> None:
    snap, _ = build_snapshot(intervals([
        ("10.0.0.1", 0, 1000, "big"), ("10.0.0.1", 100, 200, "small"), ("10.0.0.1", 100, 150, "tie-later"),
    ]))
    assert apps(snap, ["10.0.0.1"] * 5, [50, 120, 170, 250, 999]) == ["big", "tie-later", "small", "big", "big"]


def test_cidr_longest_prefix_and_unknown_vs_internet() -> None:
    nets = pa.table({"cidr": ["10.1.0.0/16", "10.1.2.0/24", "2600:1f18::/32", "2600:1f18:aa::/48", "bad"],
                     "app": ["wide", "narrow", "v6wide", "v6narrow", "x"]})
    snap, report = build_snapshot(intervals([("10.1.2.3", 0, 10, "owned")]), nets)
    assert report.invalid_networks == 1
    got = apps(snap, ["10.1.2.3", "10.1.2.3", "10.1.9.9", "2600:1f18:aa::1", "2600:1f18:bb::1",
                      "172.20.0.1", "100.64.0.1", "fd00::1", "8.8.8.8", "2a00::1", None],
               [5, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    assert got == ["owned", "narrow", "wide", "v6narrow", "v6wide", "unknown", "unknown", "unknown",
                   "internet", "internet", "unknown"]


def test_ipv6_owner_and_ipv4_do_not_collide() -> None:
    snap, _ = build_snapshot(intervals([("::a00:1", 0, None, "v6"), ("10.0.0.1", 0, None, "v4")]))
    assert apps(snap, ["10.0.0.1", "::a00:1", "0:0::a00:1"], [1, 1, 1]) == ["v4", "v6", "v6"]


def test_owner_fields_are_carried() -> None:
    t = pa.table({"ip": ["10.0.0.1"], "start": [0], "end": [None], "app": ["api"], "cluster": ["api-prod"],
                  "account": ["123456789012"], "region": ["us-east-1"], "az": ["use1-az1"],
                  "vpc": ["vpc-1"], "subnet": ["subnet-1"], "type": ["instance"]})
    snap, _ = build_snapshot(t.cast(pa.schema([(n, pa.int64() if n in ("start", "end") else pa.string())
                                               for n in t.column_names])))
    ids, _ = snap.lookup(parse_addresses(pa.array(["10.0.0.1"])), np.array([5]))
    row = snap.owners.slice(int(ids[0]), 1).to_pylist()[0]
    assert row == {"app": "api", "cluster": "api-prod", "account": "123456789012", "region": "us-east-1",
                   "az": "use1-az1", "vpc": "vpc-1", "subnet": "subnet-1", "type": "instance"}
    assert set(row) == set(OWNER_FIELDS)


def test_loaders(tmp_path: Path) -> None:
    (tmp_path / "o.jsonl").write_text(
        '{"ip": "10.0.1.5", "start": 1764000000, "end": 1764003600, "app": "api"}\n'
        '{"ip": "10.0.1.5", "start": "2025-11-24T17:00:00Z", "end": null, "app": "db"}\n'
    )
    (tmp_path / "n.csv").write_text("cidr,app,type,region\n172.16.0.0/12,on-prem,on-prem,\n")
    (tmp_path / "ip-ranges.json").write_text(
        '{"prefixes": [{"ip_prefix": "52.95.0.0/16", "region": "us-east-1", "service": "AMAZON"},'
        '{"ip_prefix": "52.95.0.0/16", "region": "us-east-1", "service": "S3"}],'
        '"ipv6_prefixes": [{"ipv6_prefix": "2600:1f00::/24", "region": "us-east-1", "service": "EC2"}]}'
    )
    assert load_ip_ranges(tmp_path / "ip-ranges.json").column("app").to_pylist() == ["AMAZON", "S3", "EC2"]
    snap, report = load_index([tmp_path / "o.jsonl"], [tmp_path / "n.csv", tmp_path / "ip-ranges.json"])
    assert report.intervals == 2 and report.networks == 4
    # 2025-11-24T17:00:00Z == 1764003600
    got = apps(snap, ["10.0.1.5", "10.0.1.5", "172.16.5.5", "52.95.1.1", "2600:1f00::1"],
               [1764000000, 1764003600, 0, 0, 0])
    assert got == ["api", "db", "on-prem", "S3", "EC2"]


def test_loader_skips_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "o.jsonl").write_text(
        '{"ip": "10.0.1.5", "start": 0, "app": "api"}\nnot json\n{"ip": "10.0.1.6", "start": 0, "app": "b"}\n'
    )
    snap, report = load_index([tmp_path / "o.jsonl"], [])
    assert report.intervals == 2
    assert apps(snap, ["10.0.1.6"], [1]) == ["b"]


# -- property: lookups equal a brute-force scan --------------------------------------------

_ips = ["10.0.0.1", "10.0.0.2", "192.168.1.1", "8.8.8.8", "2001:db8::1", "fd00::2"]


@st.composite
def _intervals(draw: st.DrawFn) -> list[tuple[str, int, int | None, str]]:
    n = draw(st.integers(0, 30))
    out = []
    for _ in range(n):
        ip = draw(st.sampled_from(_ips))
        s = draw(st.integers(0, 100))
        e = draw(st.one_of(st.none(), st.integers(0, 120)))
        out.append((ip, s, e, draw(st.sampled_from(["a", "b", "c", "d"]))))
    return out


def _brute(rows: list[tuple[str, int, int | None, str]], ip: str, t: int) -> str:
    best = None
    for k, (rip, s, e, app) in enumerate(rows):
        end = float("inf") if e is None else e
        if ipaddress.ip_address(rip) == ipaddress.ip_address(ip) and s <= t < end and e != s:
            if e is not None and e < s:
                continue
            if best is None or (s, k) >= (best[0], best[1]):
                best = (s, k, app)
    if best is not None:
        return best[2]
    a = ipaddress.ip_address(ip)
    return "unknown" if any(a in ipaddress.ip_network(n) for n in _PRIVATE if ipaddress.ip_network(n).version == a.version) \
        else "internet"


_PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")


@settings(max_examples=150, deadline=None)
@given(_intervals(), st.lists(st.tuples(st.sampled_from(_ips), st.integers(-5, 130)), min_size=1, max_size=40))
def test_property_lookup_equals_brute_force(rows: list[tuple[str, int, int | None, str]],
                                            queries: list[tuple[str, int]]) -> None:
    snap, _ = build_snapshot(intervals(rows))
    got = apps(snap, [q[0] for q in queries], [q[1] for q in queries])
    assert got == [_brute(rows, ip, t) for ip, t in queries]
