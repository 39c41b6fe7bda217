"""enrich(): both sides of every flow get the owner of their address at the flow's own start.

The expected owners are worked out by hand from the small ownership history and CIDR map
below (the lookup rule of the README), not by any Dredge code.
"""

from __future__ import annotations

import pytest

from dredge.enrich.join import enrich
from dredge.flowlog.columns import FlowColumns
from dredge.flowlog.fields import FlowFormat
from dredge.flowlog.parser import FlowParser
from dredge.index.loaders import load_index
from dredge.index.snapshot import IndexSnapshot, LookupStats
from dredge.telemetry.metrics import REGISTRY

T = 1_795_600_800  # 2026-11-25T10:00:00Z

OWNERS = f"""\
{{"ip": "10.0.1.5", "start": {T - 3600}, "end": {T + 600}, "app": "api", "type": "instance"}}
{{"ip": "10.0.1.5", "start": {T + 600}, "end": null, "app": "billing", "type": "instance"}}
{{"ip": "10.0.2.7", "start": {T - 3600}, "end": null, "app": "db", "type": "instance"}}
{{"ip": "10.0.2.7", "start": {T + 300}, "end": {T + 900}, "app": "db-migration", "type": "instance"}}
{{"ip": "2600:1f18::10", "start": {T - 3600}, "end": null, "app": "edge6", "type": "instance"}}
{{"ip": "10.0.9.9", "start": {T}, "end": null, "app": "natgw", "type": "nat"}}
"""
NETWORKS = """\
cidr,app,type,region
10.0.0.0/16,corp-vpc,vpc,us-east-1
10.0.3.0/24,batch,subnet,us-east-1
52.94.0.0/16,dynamodb,aws-service,us-east-1
"""
FORMAT = "version srcaddr dstaddr pkt-srcaddr pkt-dstaddr start end bytes packets action log-status"


def line(src: str, dst: str, start: int, pkt_src: str = "-", pkt_dst: str = "-") -> str:
    return f"5 {src} {dst} {pkt_src} {pkt_dst} {start} {start + 60} 100 2 ACCEPT OK"


# (flow line, expected src app, expected dst app), each side by the rule:
# pkt- address if present; ownership interval covering `start` (latest start wins); else the
# longest CIDR prefix; else unknown (private) / internet (public).
CASES = [
    (line("10.0.1.5", "10.0.2.7", T), "api", "db"),
    (line("10.0.1.5", "10.0.2.7", T + 600), "billing", "db-migration"),  # reassigned; overlap
    (line("10.0.1.5", "10.0.2.7", T + 900), "billing", "db"),  # the overlap ended: db again
    (line("10.0.1.5", "10.0.2.7", T - 7200), "corp-vpc", "corp-vpc"),  # before any interval
    (line("10.0.3.4", "52.94.1.1", T), "batch", "dynamodb"),  # longest prefix wins
    (line("192.168.1.1", "8.8.8.8", T), "unknown", "internet"),
    (line("2600:1f18::10", "fd00::1", T), "edge6", "unknown"),
    (line("10.0.9.9", "10.0.2.7", T, pkt_src="10.0.1.5", pkt_dst="1.1.1.1"), "api", "internet"),
]
# lookups by result, counted by hand from CASES (two per flow)
EXPECTED = LookupStats(owner=8, cidr=4, unknown=2, internet=2)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> IndexSnapshot:
    d = tmp_path_factory.mktemp("join")
    (d / "owners.jsonl").write_text(OWNERS)
    (d / "networks.csv").write_text(NETWORKS)
    snap, _ = load_index([d / "owners.jsonl"], [d / "networks.csv"])
    return snap


def columns(lines: list[str]) -> FlowColumns:
    parsed = FlowParser(FlowFormat.parse(FORMAT)).parse("\n".join(lines).encode() + b"\n")
    cols, counts = FlowColumns.from_parsed(parsed)
    assert counts.malformed == 0 and cols.n == len(lines)
    return cols


def lookups(result: str) -> float:
    return REGISTRY.get_sample_value("dredge_enrich_lookups_total", {"result": result}) or 0.0


def test_each_side_gets_the_owner_at_the_flows_start(snapshot: IndexSnapshot) -> None:
    src, dst, _ = enrich(columns([c[0] for c in CASES]), snapshot)
    apps = snapshot.owners.column("app")
    assert apps.take(src).to_pylist() == [c[1] for c in CASES]
    assert apps.take(dst).to_pylist() == [c[2] for c in CASES]


def test_counts_by_result_and_the_metric(snapshot: IndexSnapshot) -> None:
    before = {r: lookups(r) for r in ("owner", "cidr", "unknown", "internet")}
    _, _, stats = enrich(columns([c[0] for c in CASES]), snapshot)
    assert stats == EXPECTED
    assert stats.lookups == 2 * len(CASES)
    assert {r: lookups(r) - before[r] for r in before} == {
        "owner": 8, "cidr": 4, "unknown": 2, "internet": 2}


def test_counts_add_up_over_batches(snapshot: IndexSnapshot) -> None:
    total = LookupStats()
    for case in CASES:  # one flow per batch: the same totals as one batch
        total += enrich(columns([case[0]]), snapshot)[2]
    assert total == EXPECTED
