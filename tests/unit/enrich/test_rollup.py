"""Rollup: groups and sums equal a plain-Python reference; facts + owners round trip."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.enrich.rollup import FLOWS_SCHEMA, Rolled, Rollup
from dredge.flowlog.columns import FlowColumns
from dredge.flowlog.parser import Addr
from dredge.index.snapshot import OWNER_FIELDS

OWNERS = pa.table({f: pa.array([f"{f}{i}" if f == "app" else None for i in range(5)], pa.string())
                   for f in OWNER_FIELDS})


def columns(rows: list[tuple[int, int, int, int, int, int]]) -> tuple[FlowColumns, np.ndarray, np.ndarray]:
    n = len(rows)
    a = np.array(rows, np.int64).reshape(n, 6)
    zero = Addr(np.zeros(n, np.int8), np.zeros(n, np.uint64), np.zeros(n, np.uint64))
    cols = FlowColumns(start=a[:, 0], bytes=a[:, 1], packets=a[:, 2], protocol=a[:, 3].astype(np.int16),
                       action=a[:, 4].astype(np.int8), flow_direction=np.zeros(n, np.int8),
                       traffic_path=np.zeros(n, np.int8), src=zero, dst=zero)
    return cols, a[:, 5].astype(np.int32) % 5, (a[:, 5].astype(np.int32) // 5) % 5


_row = st.tuples(st.integers(0, 600), st.integers(0, 10**9), st.integers(0, 10**6),
                 st.sampled_from([-1, 1, 6, 17]), st.sampled_from([0, 1, 2]), st.integers(0, 24))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(_row, min_size=0, max_size=50), min_size=1, max_size=4), st.sampled_from([60, 300]))
def test_rollup_equals_reference(batches: list[list[tuple[int, ...]]], window: int) -> None:
    r = Rollup(window)
    ref: dict[tuple[object, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    for rows in batches:
        if not rows:
            continue
        cols, src, dst = columns(rows)  # type: ignore[arg-type]
        r.add(cols, src, dst)
        for (start, b, p, proto, action, _), s, d in zip(rows, src, dst, strict=True):
            acc = ref[(start // window * window, f"app{s}", f"app{d}", None if proto < 0 else proto,
                       {0: None, 1: "ACCEPT", 2: "REJECT"}[action])]
            acc[0] += b
            acc[1] += p
            acc[2] += 1
    table = r.to_table(OWNERS)
    assert table.schema == FLOWS_SCHEMA
    got = {}
    for row in table.to_pylist():
        key = (int(row["window_start"].timestamp()) if row["window_start"].tzinfo else
               int(row["window_start"].replace(tzinfo=__import__("datetime").UTC).timestamp()),
               row["src_app"], row["dst_app"], row["protocol"], row["action"])
        assert key not in got
        got[key] = [row["bytes"], row["packets"], row["flows"]]
    assert got == dict(ref)


def test_rolled_round_trip_through_strings() -> None:
    cols, src, dst = columns([(0, 10, 1, 6, 1, 0), (30, 5, 1, 6, 1, 0), (70, 7, 2, 17, 2, 7)])
    r = Rollup(60)
    r.add(cols, src, dst)
    rolled = r.to_rolled(OWNERS)
    assert rolled.num_rows == 2
    assert rolled.owners.num_rows == 3  # only the owners the rows reference (of 5)
    table = rolled.materialize()
    back = Rolled.from_table(table).materialize()
    assert back.to_pylist() == table.to_pylist()
