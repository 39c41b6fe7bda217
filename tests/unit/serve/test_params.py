"""/api/query parameters: the same QuerySpec as `dredge query`, every problem a 400 with one
line; what `dredge query --server` sends parses back to the same spec."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dredge.query.spec import FILTERABLE, NUMERIC, WORDS, Filter, QuerySpec
from dredge.serve.params import ApiError, parse_spec, spec_params


def qs(text: str) -> dict[str, list[str]]:
    return parse_qs(text, keep_blank_values=True)


def test_defaults_are_the_command_lines() -> None:
    assert parse_spec({}) == QuerySpec(kind="top")
    ts = parse_spec({"kind": "timeseries"})
    assert ts.by == () and ts.interval_s == 300 and ts.limit == 20
    assert parse_spec({"kind": "cross-az"}).by == ("src_app", "dst_app")


def test_query_string_and_json_give_the_same_spec() -> None:
    get = parse_spec(qs("kind=top&by=src_app,dst_az&where=src_region=us-east-1&where=action!=REJECT"
                        "&from=2026-11-25T10:00Z&to=1795604400&metric=packets&limit=5&interval=60"
                        "&nat_price=0.05"))
    post = parse_spec({"kind": "top", "by": ["src_app", "dst_az"],
                       "where": ["src_region=us-east-1", "action!=REJECT"],
                       "from": "2026-11-25T10:00Z", "to": 1795604400, "metric": "packets",
                       "limit": 5, "interval": 60, "nat_price": 0.05})
    assert get == post
    assert get.filters == (Filter("src_region", ("us-east-1",)), Filter("action", ("REJECT",), True))
    assert (get.start, get.end, get.limit, get.interval_s) == (1795600800, 1795604400, 5, 60)
    assert get.nat_price == 0.05 and get.internet_price == 0.09


@pytest.mark.parametrize(("raw", "message"), [
    ({"kind": "pie"}, "kind: one of top, timeseries, cross-az"),
    ({"by": "src_app,nope"}, "unknown dimension 'nope'"),
    ({"by": ""}, "top needs at least one dimension"),
    ({"where": "nope=1"}, "unknown dimension 'nope'"),
    ({"where": "src_app"}, "expected dim=value"),
    ({"where": "protocol=tcpx"}, "protocol takes a number 0-255 or an IANA name"),
    ({"where": "traffic_path!=1|x"}, "traffic_path takes integers"),
    ({"from": "yesterday"}, "not a time"),
    ({"from": "2026-11-25T11:00Z", "to": "2026-11-25T10:00Z"}, "must be after"),
    ({"metric": "dollars"}, "metric: one of bytes, packets, flows"),
    ({"limit": "ten"}, "limit: not an integer"),
    ({"limit": 0}, "limit: between 1 and"),
    ({"interval": "5 minutes"}, "not a duration"),
    ({"az_price": "cheap"}, "az_price: not a number"),
    ({"nat_price": -1}, "nat_price: must be >= 0"),
    ({"kind": ["top", "timeseries"]}, "kind: given 2 times"),
    ({"colour": "red"}, "unknown parameter 'colour'"),
    ({"where": [{"src_app": "api"}]}, "where: expected text or a number"),
    ({"limit": True}, "limit: expected text or a number"),
])
def test_bad_parameters_are_400_with_one_line(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_spec(raw)
    assert err.value.status == 400
    assert message in str(err.value)
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)


dims = st.sampled_from(FILTERABLE)
text_dims = st.sampled_from([d for d in FILTERABLE if d not in NUMERIC])
values = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=12)


@st.composite
def specs(draw: st.DrawFn) -> QuerySpec:
    kind = draw(st.sampled_from(["top", "timeseries", "cross-az"]))
    by = tuple(draw(st.lists(dims, min_size=0 if kind == "timeseries" else 1, max_size=3,
                             unique=True)))
    filters = tuple(Filter(d, tuple(draw(st.lists(st.sampled_from(WORDS[d]) if d in WORDS else values,
                                                  min_size=1, max_size=3))), draw(st.booleans()))
                    for d in draw(st.lists(text_dims, max_size=3)))
    start = draw(st.none() | st.integers(1_700_000_000, 1_800_000_000))
    end = None if start is None else start + draw(st.integers(1, 86400 * 3))
    prices = st.floats(0, 1, allow_nan=False)
    return QuerySpec(kind=kind, by=by, filters=filters, start=start, end=end,
                     metric=draw(st.sampled_from(["bytes", "packets", "flows"])),
                     limit=draw(st.integers(1, 1000)), interval_s=draw(st.integers(1, 86400)),
                     az_price=draw(prices), region_price=draw(prices),
                     internet_price=draw(prices), nat_price=draw(prices))


@given(specs())
def test_what_the_client_sends_parses_back_to_the_same_spec(spec: QuerySpec) -> None:
    assert parse_spec(spec_params(spec)) == spec
