"""Parser tests: golden records from the AWS VPC flow-log documentation, edge cases, and
hypothesis properties against an independent reference (str.split + ipaddress)."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.errors import ParseError
from dredge.flowlog import kernels
from dredge.flowlog.columns import FlowColumns
from dredge.flowlog.fields import DEFAULT_FORMAT, FIELDS, FlowFormat, looks_like_header
from dredge.flowlog.parser import FlowParser, parse_addresses

# Examples published in the AWS VPC User Guide, "Flow log record examples".
AWS_ACCEPT = b"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"
AWS_REJECT = b"2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK"
AWS_NODATA = b"2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA"
AWS_SKIPDATA = b"2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA"
AWS_IPV6 = (b"2 123456789010 eni-1235b8ca123456789 2001:db8:1234:a100:8d6e:3477:df66:f105 "
            b"2001:db8:1234:a102:3304:8879:34cf:4071 34892 22 6 54 8855 1477913708 1477913820 ACCEPT OK")
# TCP flag sequence example (custom v3 format)
AWS_TCP_FORMAT = ("version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr "
                  "srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action "
                  "tcp-flags log-status")
AWS_TCP = (b"3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 "
           b"123456789010 IPv4 52.213.180.42 10.0.0.62 43416 5001 52.213.180.42 10.0.0.62 6 568 8 "
           b"1566848875 1566848933 ACCEPT 2 OK")
# NAT gateway example: pkt-srcaddr differs from srcaddr
AWS_NAT_FORMAT = "${version} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr}"
AWS_NAT = b"3 eni-33333333333333333 10.0.1.5 10.0.0.220 10.0.1.5 203.0.113.5"


def parse(fmt: FlowFormat, *lines: bytes, keep_text: bool = True):  # type: ignore[no-untyped-def]
    chunk = FlowParser(fmt, keep_text=keep_text).parse(b"\n".join(lines) + b"\n")
    return chunk, chunk.to_arrow().to_pylist()


def test_default_format_golden_records() -> None:
    chunk, rows = parse(DEFAULT_FORMAT, AWS_ACCEPT, AWS_REJECT, AWS_NODATA, AWS_SKIPDATA, AWS_IPV6)
    assert list(chunk.status) == [0, 0, 0, 0, 0]
    assert rows[0] == {
        "version": 2, "account_id": "123456789010", "interface_id": "eni-1235b8ca123456789",
        "srcaddr": "172.31.16.139", "dstaddr": "172.31.16.21", "srcport": 20641, "dstport": 22,
        "protocol": 6, "packets": 20, "bytes": 4249, "start": 1418530010, "end": 1418530070,
        "action": "ACCEPT", "log_status": "OK",
    }
    assert rows[1]["action"] == "REJECT"
    assert rows[2]["srcaddr"] is None and rows[2]["packets"] is None and rows[2]["log_status"] == "NODATA"
    assert rows[3]["log_status"] == "SKIPDATA"
    assert rows[4]["srcaddr"] == "2001:db8:1234:a100:8d6e:3477:df66:f105"
    src = chunk.addr("srcaddr")
    assert int(src.fam[4]) == 6
    assert (int(src.hi[4]) << 64 | int(src.lo[4])) == int(ipaddress.ip_address("2001:db8:1234:a100:8d6e:3477:df66:f105"))
    assert int(src.lo[0]) == int(ipaddress.ip_address("172.31.16.139"))


def test_counts_nodata_and_skipdata_not_enriched() -> None:
    chunk, _ = parse(DEFAULT_FORMAT, AWS_ACCEPT, AWS_NODATA, AWS_SKIPDATA, b"2 1 eni x 10.0.0.1")
    cols, counts = FlowColumns.from_parsed(chunk)
    assert (counts.data, counts.nodata, counts.skipdata, counts.malformed) == (1, 1, 1, 1)
    assert cols.n == 1 and int(cols.bytes[0]) == 4249


def test_custom_tcp_flags_format() -> None:
    fmt = FlowFormat.parse(AWS_TCP_FORMAT)
    assert fmt.version == 3
    _, rows = parse(fmt, AWS_TCP)
    assert rows[0]["tcp_flags"] == 2 and rows[0]["type"] == "IPv4" and rows[0]["bytes"] == 568
    assert rows[0]["pkt_srcaddr"] == "52.213.180.42" and rows[0]["vpc_id"] == "vpc-abcdefab012345678"


def test_aws_log_format_syntax_and_nat_address() -> None:
    fmt = FlowFormat.parse(AWS_NAT_FORMAT)
    assert fmt.fields == ("version", "interface-id", "srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr")
    _, rows = parse(fmt, AWS_NAT)
    assert rows[0]["pkt_dstaddr"] == "203.0.113.5" and rows[0]["dstaddr"] == "10.0.0.220"


def test_pkt_address_preferred_for_enrichment() -> None:
    fmt = FlowFormat.parse("version srcaddr dstaddr pkt-srcaddr pkt-dstaddr start bytes packets")
    chunk, _ = parse(fmt, b"5 10.0.0.1 10.0.0.2 192.168.7.7 - 100 10 1")
    cols, _ = FlowColumns.from_parsed(chunk)
    assert int(cols.src.lo[0]) == int(ipaddress.ip_address("192.168.7.7"))
    assert int(cols.dst.lo[0]) == int(ipaddress.ip_address("10.0.0.2"))  # pkt-dstaddr null -> dstaddr


def test_v5_fields_and_v8_reject_reason() -> None:
    fmt = FlowFormat.parse("version srcaddr dstaddr start bytes packets flow-direction traffic-path "
                           "pkt-src-aws-service ecs-cluster-name reject-reason action")
    assert fmt.version == 8
    _, rows = parse(fmt, b"8 10.0.0.1 52.95.128.179 100 1500 3 egress 8 S3 prod-cluster BPA REJECT")
    r = rows[0]
    assert r["flow_direction"] == "egress" and r["traffic_path"] == 8 and r["pkt_src_aws_service"] == "S3"
    assert r["ecs_cluster_name"] == "prod-cluster" and r["reject_reason"] == "BPA"


@pytest.mark.parametrize(
    ("line", "reason", "field"),
    [
        (b"2 1 eni-1 10.0.0.999 10.0.0.1 1 2 6 1 1 100 160 ACCEPT OK", kernels.BAD_ADDRESS, "srcaddr"),
        (b"2 1 eni-1 10.0.0.9 10.0.0.1 1 2 6 x 1 100 160 ACCEPT OK", kernels.BAD_INTEGER, "packets"),
        (b"2 1 eni-1 10.0.0.9 10.0.0.1 1 2 6 1 1 100 160 ACCEPT", kernels.WRONG_FIELD_COUNT, None),
        (b"2 1 eni-1 10.0.0.9 10.0.0.1 1 2 6 1 1 100 160 ACCEPT OK extra", kernels.WRONG_FIELD_COUNT, None),
        (b"2 1 eni-1 10.0.0.9 10.0.0.1 1 2 6 1 1 100 160 ALLOW OK", kernels.BAD_WORD, "action"),
        (b"2 1 eni-1 1::2::3 10.0.0.1 1 2 6 1 1 100 160 ACCEPT OK", kernels.BAD_ADDRESS, "srcaddr"),
        (b"2 1 eni-1 10.0.0.9 10.0.0.1 1 2 6 1 99999999999999999999 100 160 ACCEPT OK", kernels.BAD_INTEGER, "bytes"),
    ],
)
def test_malformed_lines_are_flagged_not_raised(line: bytes, reason: int, field: str | None) -> None:
    chunk = FlowParser(DEFAULT_FORMAT).parse(AWS_ACCEPT + b"\n" + line + b"\n" + AWS_REJECT + b"\n")
    assert chunk.n == 3
    assert list(chunk.status) == [0, reason, 0]
    bf = int(chunk.bad_field[1])
    assert (DEFAULT_FORMAT.fields[bf].replace("-", "_") if bf >= 0 else None) == field


def test_whitespace_blank_lines_crlf_and_no_trailing_newline() -> None:
    text = b"\n" + AWS_ACCEPT.replace(b" ", b"   ") + b"\r\n\n  \n" + AWS_REJECT
    chunk = FlowParser(DEFAULT_FORMAT).parse(text)
    assert chunk.n == 2 and list(chunk.status) == [0, 0]
    assert list(chunk.line_no) == [1, 4]  # physical lines (0-based), blanks counted
    assert chunk.code("action").tolist() == [1, 2]


def test_format_errors_are_clear() -> None:
    with pytest.raises(ParseError, match="unknown flow-log field"):
        FlowFormat.parse("version srcaddr bogus-field")
    with pytest.raises(ParseError, match="twice"):
        FlowFormat.parse("srcaddr srcaddr")
    with pytest.raises(ParseError, match="needed to enrich"):
        FlowFormat.parse("version srcaddr").check_enrichable()
    assert FlowFormat.parse("account_id srcaddr").fields == ("account-id", "srcaddr")


def test_header_detection() -> None:
    assert looks_like_header(b"version account-id interface-id srcaddr")
    assert not looks_like_header(AWS_ACCEPT)
    assert not looks_like_header(b"")


def test_parse_addresses_from_arrow_strings() -> None:
    import pyarrow as pa

    addr = parse_addresses(pa.array(["10.1.2.3", None, "-", "::1", "bad", "fe80::1%eth0"]))
    assert addr.fam.tolist() == [4, 0, 0, 6, -1, -1]
    assert int(addr.lo[3]) == 1


# -- properties: the parser agrees with a plain reference on random records --------------

_ipv4 = st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v)))
_ipv6 = st.integers(0, 2**128 - 1).map(lambda v: str(ipaddress.IPv6Address(v)))
_addr = st.one_of(_ipv4, _ipv6, st.just("-"))
_num = st.one_of(st.integers(0, 10**15).map(str), st.just("-"))
_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=2, max_size=12)


@st.composite
def _record(draw: st.DrawFn) -> list[str]:
    return [
        draw(st.sampled_from(["2", "5"])), draw(_word), draw(_word), draw(_addr), draw(_addr),
        draw(_num), draw(_num), draw(_num), draw(_num), draw(_num), draw(_num), draw(_num),
        draw(st.sampled_from(["ACCEPT", "REJECT", "-"])), draw(st.sampled_from(["OK", "NODATA", "SKIPDATA"])),
    ]


def _reference(fields: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, v in zip(DEFAULT_FORMAT.fields, fields, strict=True):
        f = FIELDS[name]
        if v == "-":
            out[f.column] = None
        elif f.kind == 0:
            out[f.column] = int(v)
        else:
            out[f.column] = v
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(_record(), min_size=1, max_size=40), st.sampled_from([" ", "  ", "\t"]))
def test_property_matches_reference(records: list[list[str]], sep: str) -> None:
    text = "\n".join(sep.join(r) for r in records).encode()
    chunk, rows = parse(DEFAULT_FORMAT, text)
    assert chunk.n == len(records)
    assert list(chunk.status) == [0] * len(records)
    assert rows == [_reference(r) for r in records]
    src = chunk.addr("srcaddr")
    for i, r in enumerate(records):
        if r[3] != "-":
            a = ipaddress.ip_address(r[3])
            assert int(src.fam[i]) == a.version
            assert (int(src.hi[i]) << 64 | int(src.lo[i])) == int(a)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_property_garbage_never_crashes(data: bytes) -> None:
    chunk = FlowParser(DEFAULT_FORMAT, keep_text=True).parse(data)
    assert chunk.n <= data.count(b"\n") + 1
    assert set(np.unique(chunk.status).tolist()) <= {0, 1, 2, 3, 4}
    table = chunk.to_arrow()  # every slot set, even for short lines
    assert table.num_rows == chunk.n
