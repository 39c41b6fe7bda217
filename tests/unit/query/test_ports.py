"""The service port in queries: shown with its IANA name, accepted by number, name or
``ephemeral`` in ``--where``, kept a number in JSON and in the SQL parameters."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest

from dredge.errors import ConfigError
from dredge.query import ports, render
from dredge.query.spec import DUCKDB, Filter, QuerySpec


def test_labels() -> None:
    assert ports.label(443) == "443 (https)" and ports.label(0) == "ephemeral"
    assert ports.label(9092) == "9092" and ports.label(None) is None
    assert all(ports.number(name) == p for p, name in ports.NAMES.items())  # names are unique


@pytest.mark.parametrize(("text", "want"), [
    ("port=443", ("443",)), ("port=HTTPS", ("443",)), ("port=ssh|53|ephemeral", ("22", "53", "0")),
    ("port=postgres", ("5432",)), ("port = 65535", ("65535",)),
])
def test_where_takes_numbers_and_names(text: str, want: tuple[str, ...]) -> None:
    assert Filter.parse(text) == Filter("port", want)


@pytest.mark.parametrize("text", ["port=65536", "port=-1", "port=nosuchservice", "port=4.5",
                                  "port=", "port=٤٤٣"])
def test_where_refuses_what_a_port_cannot_be(text: str) -> None:
    with pytest.raises(ConfigError, match="port takes a number 0-65535"):
        Filter.parse(text)


def test_port_filters_are_integer_parameters() -> None:
    spec = QuerySpec(kind="top", by=("port",), filters=(Filter.parse("port!=https|ephemeral"),))
    sql, params = spec.sql(DUCKDB)
    assert "(port IS NULL OR port NOT IN (?, ?))" in sql and params == [443, 0]


def test_rendering() -> None:
    t = pa.table({"port": pa.array([443, 0, None, 9092], pa.int32()),
                  "flows": pa.array([4, 3, 2, 1], pa.int64())})
    text = render.table_text(t).splitlines()
    assert text[2].startswith("443 (https)") and text[3].startswith("ephemeral")
    assert text[4].startswith("-") and text[5].startswith("9092 ")  # left-aligned like a name
    assert render.csv_text(t).splitlines()[1:] == ["443 (https),4", "ephemeral,3", ",2", "9092,1"]
    assert [orjson.loads(line)["port"] for line in render.json_lines(t).splitlines()] == [443, 0, None, 9092]
