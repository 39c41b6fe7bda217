"""Query output: protocols by name and times with their zone in table and CSV (RFC 4180),
typed values in JSON; protocol names and code words in any case accepted by ``--where``."""

from __future__ import annotations

import csv
import datetime as dt
import io

import orjson
import pyarrow as pa
import pytest

from dredge.errors import ConfigError
from dredge.query import protocols, render
from dredge.query.spec import DUCKDB, Filter, QuerySpec


def result() -> pa.Table:
    return pa.table({
        "t": pa.array([dt.datetime(2026, 11, 25, 10, 0), dt.datetime(2026, 11, 25, 10, 5, 30), None],
                      pa.timestamp("us")),
        "src_app": pa.array(['api, "v2"', "line\nbreak", None]),
        "protocol": pa.array([6, 200, None], pa.int16()),
        "bytes": pa.array([1_234_567, 0, 5], pa.int64()),
        "cost_usd": pa.array([0.5, 12.25, None], pa.float64()),
    })


def test_protocol_table_is_ianas() -> None:
    assert [protocols.name(n) for n in (1, 6, 17, 47, 50, 58, 132)] == [
        "icmp", "tcp", "udp", "gre", "esp", "ipv6-icmp", "sctp"]
    assert protocols.name(200) == "200" and protocols.name(None) is None
    assert all(protocols.number(k) == n for n, k in protocols.NAMES.items())  # one way back
    assert protocols.number("TCP") == 6 and protocols.number("icmpv6") == 58
    assert protocols.number("17") == 17 and protocols.number("nope") is None


def test_table_shows_names_and_utc_times() -> None:
    text = render.table_text(result())
    lines = text.splitlines()
    assert lines[0].split() == ["t", "src_app", "protocol", "bytes", "cost_usd"]
    assert lines[2].startswith("2026-11-25T10:00:00Z") and " tcp " in lines[2]
    assert "2026-11-25T10:05:30Z  line\\nbreak" in lines[3] and " 200 " in lines[3]
    assert "1.2 MB" in lines[2] and "$12.25" in text


def test_csv_is_rfc4180_with_whole_numbers() -> None:
    text = render.csv_text(result())
    assert text.startswith("t,src_app,protocol,bytes,cost_usd\r\n")
    assert text.count("\r\n") == 4  # header and three rows; the quoted break stays a bare \n
    assert '"api, ""v2"""' in text and '"line\nbreak"' in text
    got = list(csv.reader(io.StringIO(text, newline="")))
    assert got[1:] == [["2026-11-25T10:00:00Z", 'api, "v2"', "tcp", "1234567", "0.5"],
                       ["2026-11-25T10:05:30Z", "line\nbreak", "200", "0", "12.25"],
                       ["", "", "", "5", ""]]


def test_json_keeps_types() -> None:
    first = orjson.loads(render.json_lines(result()).splitlines()[0])
    assert first == {"t": "2026-11-25T10:00:00Z", "src_app": 'api, "v2"', "protocol": 6,
                     "bytes": 1234567, "cost_usd": 0.5}


@pytest.mark.parametrize(("text", "want"), [
    ("protocol=tcp", Filter("protocol", ("6",))),
    ("protocol=TCP|Udp|1", Filter("protocol", ("6", "17", "1"))),
    ("protocol!=icmpv6", Filter("protocol", ("58",), True)),
    ("action=reject", Filter("action", ("REJECT",))),
    ("action=Accept|REJECT", Filter("action", ("ACCEPT", "REJECT"))),
    ("flow_direction=INGRESS", Filter("flow_direction", ("ingress",))),
    ("src_app=API", Filter("src_app", ("API",))),  # owner names are data: case kept
])
def test_where_takes_names_in_any_case(text: str, want: Filter) -> None:
    assert Filter.parse(text) == want


@pytest.mark.parametrize(("text", "error"), [
    ("protocol=tcpx", "IANA name"), ("protocol=256", "0-255"),
    ("action=DROP", "action is one of ACCEPT, REJECT"), ("flow_direction=up", "ingress, egress"),
    ("traffic_path=x", "integers"),
])
def test_where_refuses_what_a_dimension_cannot_hold(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        Filter.parse(text)


def test_protocol_names_become_integer_parameters() -> None:
    sql, params = QuerySpec("top", by=("protocol",), filters=(Filter.parse("protocol=tcp|udp"),)
                            ).sql(DUCKDB)
    assert "protocol IN (?, ?)" in sql and params == [6, 17]
