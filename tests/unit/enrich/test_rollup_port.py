"""The rollup key with the service port: every field survives the packing into two words, the
port is folded past ``ephemeral_from``, and rows of different ports stay apart."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.enrich.rollup import FACTS_SCHEMA, Rolled, Rollup, pack_k2, unpack_k2
from dredge.flowlog.columns import FlowColumns
from dredge.flowlog.parser import Addr
from dredge.index.snapshot import OWNER_FIELDS

_key = st.tuples(st.integers(0, 2**31 - 1), st.integers(-1, 255), st.integers(-1, 65_534),
                 st.integers(0, 2), st.integers(0, 2), st.integers(0, 8))
EDGES = [(2**31 - 1, 255, 65_534, 2, 2, 8), (0, -1, -1, 0, 0, 0), (0, 0, 0, 0, 0, 0)]


@settings(max_examples=200, deadline=None)
@given(st.lists(_key, max_size=50))
def test_packing_round_trip(keys: list[tuple[int, ...]]) -> None:
    keys = keys + EDGES
    a = np.array(keys, np.int64)
    k2 = pack_k2(a[:, 0].astype(np.int32), a[:, 1].astype(np.int16), a[:, 2].astype(np.int32),
                 a[:, 3].astype(np.int8), a[:, 4].astype(np.int8), a[:, 5].astype(np.int8))
    assert k2.dtype == np.uint64
    got = np.stack([c.astype(np.int64) for c in unpack_k2(k2)], axis=1)
    np.testing.assert_array_equal(got, a)
    # distinct keys stay distinct words (the aggregate groups by the word)
    assert len(set(k2.tolist())) == len(set(keys))


OWNERS = pa.table({f: pa.array(["a", "b"] if f == "app" else [None, None], pa.string())
                   for f in OWNER_FIELDS})


def flows(ports: list[int], protocol: int = 6) -> FlowColumns:
    n = len(ports)
    zero = Addr(np.zeros(n, np.int8), np.zeros(n, np.uint64), np.zeros(n, np.uint64))
    return FlowColumns(start=np.full(n, 1_795_572_000, np.int64), bytes=np.arange(1, n + 1, dtype=np.int64),
                       packets=np.ones(n, np.int64), protocol=np.full(n, protocol, np.int16),
                       action=np.full(n, 2, np.int8), flow_direction=np.zeros(n, np.int8),
                       traffic_path=np.zeros(n, np.int8), src=zero, dst=zero,
                       port=np.array(ports, np.int32))


def by_port(r: Rollup) -> dict[int | None, int]:
    t = r.to_table(OWNERS)
    return dict(zip(t.column("port").to_pylist(), t.column("bytes").to_pylist(), strict=True))


def test_ports_fold_past_ephemeral_from_and_group_apart() -> None:
    ports = [443, 443, 40_000, 50_000, -1, 22, 1024]
    src, dst = np.zeros(7, np.int32), np.ones(7, np.int32)
    r = Rollup(60)
    r.add(flows(ports), src, dst)
    assert by_port(r) == {443: 1 + 2, 0: 3 + 4, None: 5, 22: 6, 1024: 7}
    low = Rollup(60, ephemeral_from=1024)
    low.add(flows(ports), src, dst)
    assert by_port(low) == {443: 3, 0: 3 + 4 + 7, None: 5, 22: 6}
    top = Rollup(60, ephemeral_from=65_535)
    top.add(flows(ports), src, dst)
    assert by_port(top) == {443: 3, 40_000: 3, 50_000: 4, None: 5, 22: 6, 1024: 7}


def test_rollup_refuses_a_bad_ephemeral_from() -> None:
    with pytest.raises(ValueError, match="ephemeral_from"):
        Rollup(60, ephemeral_from=65_536)


def test_port_survives_materialize_from_table_concat() -> None:
    r = Rollup(60)
    r.add(flows([443, -1, 40_000]), np.zeros(3, np.int32), np.ones(3, np.int32))
    rolled = r.to_rolled(OWNERS)
    assert rolled.facts.schema == FACTS_SCHEMA
    table = rolled.materialize()
    back = Rolled.from_table(table)
    assert sorted(back.facts.column("port").to_pylist(), key=str) == sorted([443, None, 0], key=str)
    both = Rolled.concat([rolled, back])
    assert both.facts.column("port").null_count == 2
    # a flows table from before the port (an older sink, a test) reads as "none"
    old = Rolled.from_table(table.drop_columns(["port"]))
    assert old.facts.column("port").null_count == 3
