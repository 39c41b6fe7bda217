"""dredge.generate: determinism, layout, and a manifest that matches an independent count."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import ipaddress
import itertools
import json
import re
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.errors import ConfigError
from dredge.generate import _native, generate
from dredge.generate.lines import FORMATS, StringPool, format_lines

FLOWS = 20_000
V2_HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
)
INT_FIELDS = {"version", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end",
              "tcp-flags", "traffic-path"}  # fmt: skip
ADDR_FIELDS = {"srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr"}
TEXT_PATH = re.compile(
    r"logs/AWSLogs/(\d{12})/vpcflowlogs/([a-z]{2}-[a-z]+-\d)/(\d{4})/(\d{2})/(\d{2})/"
    r"\1_vpcflowlogs_\2_fl-[0-9a-f]{17}_\3\4\5T(\d{2})\d{2}Z_[0-9a-f]{8}\.log\.gz"
)
PARQUET_PATH = re.compile(
    r"logs/AWSLogs/aws-account-id=(\d{12})/aws-service=vpcflowlogs/aws-region=([a-z]{2}-[a-z]+-\d)/"
    r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/"
    r"\1_vpcflowlogs_\2_fl-[0-9a-f]{17}_\3\4\5T\6\d{2}Z_[0-9a-f]{8}\.log\.parquet"
)


@dataclass
class Seen:
    """What a reader independent of the generator finds in the files."""

    files: int = 0
    text_files: int = 0
    parquet_files: int = 0
    headers: Counter[str] = field(default_factory=Counter)
    status: Counter[str] = field(default_factory=Counter)
    text_flows: int = 0
    parquet_flows: int = 0
    malformed: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # OK rows, all files


def _valid(name: str, value: str) -> bool:
    if value == "-":
        return True
    if name in INT_FIELDS:
        return value.isdigit()
    if name in ADDR_FIELDS:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
    return True


def _read_all(out: Path, manifest: dict[str, Any]) -> Seen:
    seen = Seen()
    odd = {manifest["truncated"]["path"]}
    for path in sorted((out / "logs").rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(out).as_posix()
        seen.files += 1
        if rel in odd:
            continue
        if path.suffix == ".parquet":
            seen.parquet_files += 1
            table = pq.read_table(path)
            for row in table.to_pylist():
                status = row["log_status"]
                seen.status[status] += 1
                if status == "OK":
                    seen.parquet_flows += 1
                    seen.rows.append({k.replace("_", "-"): v for k, v in row.items()})
            continue
        seen.text_files += 1
        lines = gzip.decompress(path.read_bytes()).decode().split("\n")
        assert lines[-1] == ""
        header = lines[0].split(" ")
        seen.headers[lines[0]] += 1
        for line in lines[1:-1]:
            parts = line.split(" ")
            if len(parts) != len(header) or not all(
                _valid(n, v) for n, v in zip(header, parts, strict=True)
            ):
                seen.malformed += 1
                continue
            row = dict(zip(header, parts, strict=True))
            seen.status[row["log-status"]] += 1
            if row["log-status"] == "OK":
                seen.text_flows += 1
                row["_file"] = rel
                seen.rows.append(row)
    return seen


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[int]]:
    out = tmp_path_factory.mktemp("sample")
    calls: list[int] = []
    manifest = generate(out, flows=FLOWS, seed=7, progress=calls.append)
    return out, manifest, calls


@pytest.fixture(scope="module")
def seen(sample: tuple[Path, dict[str, Any], list[int]]) -> Seen:
    return _read_all(sample[0], sample[1])


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(
    sample: tuple[Path, dict[str, Any], list[int]], tmp_path: Path
) -> None:
    generate(tmp_path / "again", flows=FLOWS, seed=7)
    first, again = _tree(sample[0]), _tree(tmp_path / "again")
    assert first.keys() == again.keys()
    assert [k for k in first if first[k] != again[k]] == []
    generate(tmp_path / "other", flows=FLOWS, seed=8)
    other = _tree(tmp_path / "other")
    assert other["owners.jsonl"] != first["owners.jsonl"]
    assert other.keys() != first.keys()


def test_files_lie_where_aws_delivers_them(
    sample: tuple[Path, dict[str, Any], list[int]], seen: Seen
) -> None:
    out, manifest, _ = sample
    paths = [p.relative_to(out).as_posix() for p in (out / "logs").rglob("*") if p.is_file()]
    text = [p for p in paths if TEXT_PATH.fullmatch(p)]
    parquet = [p for p in paths if PARQUET_PATH.fullmatch(p)]
    assert sorted(text + parquet) == sorted(paths)
    assert len(paths) == manifest["files"] == seen.files
    assert len(parquet) == manifest["files_parquet"] > 0
    assert len(text) == manifest["files_text"]
    assert (out / "owners.jsonl").is_file() and (out / "networks.csv").is_file()
    assert json.loads((out / "manifest.json").read_text()) == manifest
    on_disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert manifest["bytes"] == on_disk - (out / "manifest.json").stat().st_size
    assert {m.group(2) for p in text if (m := TEXT_PATH.fullmatch(p))} >= {"us-east-1", "eu-west-1"}


def test_headers_name_the_fields_v2_half_the_time(seen: Seen) -> None:
    v5 = [h for h in seen.headers if h != V2_HEADER]
    assert V2_HEADER in seen.headers
    assert 0.35 < seen.headers[V2_HEADER] / seen.text_files < 0.65
    assert len(v5) == 2  # AWS's v5 order and a shuffled custom order
    for header in v5:
        names = header.split(" ")
        assert {"pkt-srcaddr", "flow-direction", "traffic-path", "az-id"} <= set(names)
    assert any(h.startswith("start end") for h in v5)


def test_manifest_counts_match_the_files(
    sample: tuple[Path, dict[str, Any], list[int]], seen: Seen
) -> None:
    manifest = sample[1]
    assert manifest["flows"] == FLOWS == seen.text_flows + seen.parquet_flows
    assert manifest["flows_text"] == seen.text_flows
    assert manifest["flows_parquet"] == seen.parquet_flows > 0
    assert manifest["nodata"] == seen.status["NODATA"] > 0
    assert manifest["skipdata"] == seen.status["SKIPDATA"] > 0
    assert manifest["malformed"] == seen.malformed > 0
    assert set(seen.status) == {"OK", "NODATA", "SKIPDATA"}
    v6 = sum(":" in r["srcaddr"] for r in seen.rows)
    assert manifest["flows_ipv6"] == v6 > 0
    owners = (sample[0] / "owners.jsonl").read_text().splitlines()
    assert manifest["intervals"] == len(owners)
    assert manifest["cidrs"] == len((sample[0] / "networks.csv").read_text().splitlines()) - 1


def test_progress_reports_flows_written(sample: tuple[Path, dict[str, Any], list[int]]) -> None:
    calls = sample[2]
    assert calls == sorted(calls) and calls[-1] == FLOWS


def _owners(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "owners.jsonl").read_text().splitlines()]


def _epoch(value: int | str) -> int:
    if isinstance(value, int):
        return value
    return int(dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp())


def test_owners_reassign_overlap_and_mix_time_forms(
    sample: tuple[Path, dict[str, Any], list[int]],
) -> None:
    owners = _owners(sample[0])
    keys = ["ip", "start", "end", "app", "cluster", "account", "region", "az", "vpc", "subnet",
            "type"]  # fmt: skip
    assert all(list(o) == keys for o in owners)
    assert {o["type"] for o in owners} == {
        "instance", "eks-pod", "ecs-task", "lambda", "nat-gateway", "load-balancer"
    }  # fmt: skip
    assert any(isinstance(o["start"], str) for o in owners)
    assert any(isinstance(o["end"], str) for o in owners)
    assert any(o["end"] is None for o in owners)
    assert any(o["cluster"].endswith("-canary") for o in owners)
    assert all(re.fullmatch(r"\d{12}", o["account"]) for o in owners)
    by_ip: dict[str, list[tuple[int, float, str]]] = defaultdict(list)
    for o in owners:
        end = float("inf") if o["end"] is None else _epoch(o["end"])
        assert _epoch(o["start"]) < end
        by_ip[o["ip"]].append((_epoch(o["start"]), end, o["app"]))
    reassigned = [ip for ip, iv in by_ip.items() if len({app for _, _, app in iv}) >= 2]
    assert len(reassigned) > len(by_ip) // 2
    overlaps = 0
    for iv in by_ip.values():
        iv.sort()
        overlaps += sum(b[0] < a[1] for a, b in itertools.pairwise(iv))
    assert 0 < overlaps < len(owners) * 0.01
    assert any(ipaddress.ip_address(ip).version == 6 for ip in by_ip)


def test_owner_depends_on_the_flows_time(
    sample: tuple[Path, dict[str, Any], list[int]], seen: Seen
) -> None:
    """Looked up at each flow's start (latest start wins), one IP serves several apps."""
    by_ip: dict[str, list[tuple[int, float, str]]] = defaultdict(list)
    for o in _owners(sample[0]):
        end = float("inf") if o["end"] is None else _epoch(o["end"])
        by_ip[o["ip"]].append((_epoch(o["start"]), end, o["app"]))
    for iv in by_ip.values():
        iv.sort()
    apps_seen: dict[str, set[str]] = defaultdict(set)
    for row in seen.rows:
        t = int(row["start"])
        for side in ("srcaddr", "dstaddr"):
            if row[side] not in by_ip:
                continue
            live = [(s, app) for s, e, app in by_ip[row[side]] if s <= t < e]
            apps_seen[row[side]].add(max(live)[1] if live else "unknown")
    several = [ip for ip, apps in apps_seen.items() if len(apps - {"unknown"}) >= 2]
    assert len(several) > 10
    assert any("unknown" in apps for apps in apps_seen.values())  # in a gap between owners


def test_networks_nest_and_cover_ipv6(sample: tuple[Path, dict[str, Any], list[int]]) -> None:
    with (sample[0] / "networks.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["cidr", "app", "type", "region", "account", "vpc"]
    nets = [(ipaddress.ip_network(r["cidr"]), r["app"]) for r in rows]
    assert any(
        inner.prefixlen > outer.prefixlen and inner.network_address in outer and a != b
        for inner, a in nets
        for outer, b in nets
    )
    assert any(n.version == 6 and n.prefixlen == 48 for n, _ in nets)


def test_flows_mix_owned_unowned_cidr_and_internet(
    sample: tuple[Path, dict[str, Any], list[int]], seen: Seen
) -> None:
    out = sample[0]
    owned = {o["ip"] for o in _owners(out)}
    with (out / "networks.csv").open() as f:
        nets = [ipaddress.ip_network(r["cidr"]) for r in csv.DictReader(f)]
    kinds: Counter[str] = Counter()
    for row in seen.rows:
        for side in ("srcaddr", "dstaddr"):
            ip = ipaddress.ip_address(row[side])
            if row[side] in owned:
                kinds["owned"] += 1
            elif any(ip in n for n in nets):
                kinds["cidr"] += 1
            elif ip.is_private:
                kinds["unowned_private"] += 1
            else:
                kinds["internet"] += 1
    total = sum(kinds.values())
    assert kinds["owned"] > total * 0.5
    assert all(kinds[k] > total * 0.01 for k in ("cidr", "unowned_private", "internet"))


def test_records_are_plausible(sample: tuple[Path, dict[str, Any], list[int]], seen: Seen) -> None:
    window = sample[1]["window"]
    actions = Counter(r["action"] for r in seen.rows)
    assert 0.03 < actions["REJECT"] / len(seen.rows) < 0.07
    protocols = Counter(int(r["protocol"]) for r in seen.rows)
    assert protocols.most_common(1)[0][0] == 6 and {6, 17, 1} <= set(protocols)
    for r in seen.rows:
        start, end = int(r["start"]), int(r["end"])
        assert window["start"] <= start < window["end"] and 0 <= end - start <= 60
    for r in seen.rows:  # a text file's flows start within its hour
        if "_file" in r:
            m = TEXT_PATH.search(r["_file"])
            assert m is not None
            assert int(m.group(6)) == dt.datetime.fromtimestamp(int(r["start"]), dt.UTC).hour
    sizes = sorted(int(r["bytes"]) for r in seen.rows)
    assert sizes[-1] > 100 * sizes[len(sizes) // 2]  # heavy-tailed
    azs = {r["az-id"] for r in seen.rows if "az-id" in r}
    assert {"use1-az1", "use1-az2", "use1-az4"} <= azs


def test_nat_and_ipv6_rows_in_v5(
    sample: tuple[Path, dict[str, Any], list[int]], seen: Seen
) -> None:
    v5 = [r for r in seen.rows if "pkt-srcaddr" in r]
    nat = [r for r in v5 if (r["pkt-srcaddr"], r["pkt-dstaddr"]) != (r["srcaddr"], r["dstaddr"])]
    assert sample[1]["nat_rows"] == len(nat) > 0
    assert any(r["pkt-srcaddr"] != r["srcaddr"] for r in nat)
    v6 = [r for r in v5 if r["type"] == "IPv6"]
    assert v6 and all(":" in r["srcaddr"] and ":" in r["dstaddr"] for r in v6)
    assert all(r["type"] == "IPv4" for r in v5 if ":" not in r["srcaddr"])


def test_nodata_and_skipdata_keep_only_times_and_interface(
    sample: tuple[Path, dict[str, Any], list[int]],
) -> None:
    out, manifest = sample[0], sample[1]
    found = 0
    for entry in manifest["file_list"]:
        if entry["kind"] != "text" or entry["format"] != "v2" or not entry["nodata"]:
            continue
        for line in gzip.decompress((out / entry["path"]).read_bytes()).decode().splitlines():
            parts = line.split(" ")
            if parts[-1] in ("NODATA", "SKIPDATA") and len(parts) == 14:
                assert parts[3:10] == ["-"] * 7 and parts[12] == "-"
                assert parts[10].isdigit() and parts[11].isdigit() and parts[0] == "2"
                found += 1
    assert found


def test_parquet_columns_are_aws_snake_case(
    sample: tuple[Path, dict[str, Any], list[int]],
) -> None:
    out, manifest = sample[0], sample[1]
    schemas = [
        pq.read_schema(out / e["path"]) for e in manifest["file_list"] if e["kind"] == "parquet"
    ]
    assert schemas
    types = {"version": pa.int32(), "account_id": pa.string(), "srcaddr": pa.string(),
             "srcport": pa.int32(), "protocol": pa.int32(), "packets": pa.int64(),
             "bytes": pa.int64(), "start": pa.int64(), "end": pa.int64(),
             "action": pa.string(), "log_status": pa.string()}  # fmt: skip
    for schema in schemas:
        for name, typ in types.items():
            assert schema.field(name).type == typ
        assert all("-" not in name for name in schema.names)
        if "pkt_srcaddr" in schema.names:
            assert schema.field("traffic_path").type == pa.int32()
            assert schema.field("flow_direction").type == pa.string()


def test_truncated_file_is_cut_and_empty_file_has_only_a_header(
    sample: tuple[Path, dict[str, Any], list[int]],
) -> None:
    out, manifest = sample[0], sample[1]
    path = out / manifest["truncated"]["path"]
    with pytest.raises(EOFError):
        gzip.decompress(path.read_bytes())
    complete = 0
    with gzip.open(path, "rt") as f, pytest.raises(EOFError):
        assert f.readline().rstrip("\n") == V2_HEADER
        for line in f:
            complete += line.endswith("\n")
    assert 0 < manifest["flows_in_truncated"] == complete < manifest["truncated"]["records_written"]
    prefix = zlib.decompressobj(31).decompress(path.read_bytes())
    assert prefix.count(b"\n") == complete + 1
    empty = gzip.decompress((out / manifest["empty"]).read_bytes()).decode()
    assert empty.count("\n") == 1 and empty.startswith("version account-id")


def test_small_odd_arguments(tmp_path: Path) -> None:
    m = generate(tmp_path, flows=500, hours=0.5, accounts=1, apps=3, parquet_share=0.0)
    assert m["flows"] == 500 and m["files_parquet"] == 0
    assert m["window"]["end"] - m["window"]["start"] == 1800
    with pytest.raises(ConfigError, match="ipv6_share"):
        generate(tmp_path / "bad", ipv6_share=1.5)


def test_counts_hold_at_extreme_shares(tmp_path: Path) -> None:
    m = generate(tmp_path, flows=1000, malformed_share=1.0, ipv6_share=1.0, apps=1)
    seen = _read_all(tmp_path, m)
    assert m["malformed"] == seen.malformed == m["flows_text"]
    assert m["flows"] == seen.text_flows + seen.parquet_flows == m["flows_ipv6"]


@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(sorted(FORMATS)), rows=st.integers(0, 12), data=st.data())
def test_the_line_writer_agrees_with_python(fmt: str, rows: int, data: st.DataObject) -> None:
    """format_lines (compiled) against str.join: nulls, zeros, int64's extremes, UTF-8 strings."""
    fields = FORMATS[fmt]
    pool = StringPool()
    texts = data.draw(st.lists(st.text(max_size=5), min_size=1, max_size=6, unique=True))
    pool.add_many(texts)
    ints = st.integers(-1, 99) | st.integers(-(2**63), 2**63 - 1)
    cols = {f: np.array(data.draw(st.lists(ints if f in INT_FIELDS else st.integers(-1, len(texts) - 1),
                                           min_size=rows, max_size=rows)), np.int64) for f in fields}

    def text(f: str, v: int) -> str:
        return "-" if v < 0 else str(v) if f in INT_FIELDS else texts[v]

    want = [" ".join(text(f, int(cols[f][r])) for f in fields).encode() + b"\n" for r in range(rows)]
    body, ends = format_lines(fields, cols, pool)
    assert body == b"".join(want)
    assert ends.tolist() == list(itertools.accumulate(len(w) for w in want))


def _i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def test_format_rows_refuses_ids_outside_the_pool_and_short_outputs() -> None:
    pool, offsets, lengths = np.frombuffer(b"abcd", np.uint8), _i64(0, 2), _i64(2, 2)
    is_str = np.array([True, False])

    def fmt(table: tuple[int, ...], out: int, lens: np.ndarray = lengths) -> int:
        return _native.format_rows(_i64(*table), len(table) // 2, 2, is_str, pool, offsets, lens,
                                   np.empty(out, np.uint8), np.empty(len(table) // 2, np.int64))

    assert fmt((1, 0, -1, 12), 10) == 10  # b"cd 0\n- 12\n"
    with pytest.raises(ValueError, match="pool"):
        fmt((2, 0), 50)  # string id 2 of a pool of 2
    with pytest.raises(ValueError, match="pool"):
        fmt((1, 0), 50, _i64(2, 3))  # a string running past the pool's bytes
    with pytest.raises(ValueError, match="too small"):
        fmt((1, 0, -1, 12), 9)
    with pytest.raises(ValueError, match="table"):
        _native.format_rows(_i64(1), 1, 2, is_str, pool, offsets, lengths, np.empty(9, np.uint8),
                            np.empty(1, np.int64))
