"""How a large file's rollup is cut into parts (``Enricher.take_part``)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dredge.enrich import rollup as rollup_mod
from dredge.flowlog.columns import FlowColumns
from dredge.index.loaders import load_index
from dredge.pipeline import Enricher


def _batch(windows: range, port: int = 443) -> pa.Table:
    n = len(windows)
    return pa.table({
        "start": pa.array([w * 60 for w in windows], pa.int64()),
        "srcaddr": ["10.0.0.1"] * n, "dstaddr": ["10.0.0.2"] * n,
        "srcport": pa.array([50000] * n, pa.int32()), "dstport": pa.array([port] * n, pa.int32()),
        "protocol": pa.array([6] * n, pa.int32()), "bytes": pa.array([100] * n, pa.int64()),
        "packets": pa.array([2] * n, pa.int64()), "action": ["ACCEPT"] * n, "log_status": ["OK"] * n,
    })


def _add(enricher: Enricher, table: pa.Table) -> None:
    cols, counts, bad, _ = FlowColumns.from_arrow(table)
    assert not bad.size
    enricher.add_columns(cols, counts)


def test_keys_that_repeat_are_not_merged_again_at_every_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """900 keys over and over in batches of 300, parts of 1,000: the held groups never reach
    a part, and they are merged once the count has doubled, not after every batch."""
    merges = []
    real = rollup_mod.Rollup._compact

    def counted(self: rollup_mod.Rollup) -> None:
        merges.append(self.groups)
        real(self)

    monkeypatch.setattr(rollup_mod.Rollup, "_compact", counted)
    snap, _ = load_index([], [])
    enricher = Enricher(snap, 60)
    for i in range(21):
        start = (i % 3) * 300
        _add(enricher, _batch(range(start, start + 300)))
        assert enricher.take_part(1000) is None
    assert enricher.rollup.groups <= 2 * 900 + 300
    assert len(merges) <= 8  # every batch from the fourth on: 18 merges
    # new keys: the held groups reach a part, of at least 1,000 rows
    _add(enricher, _batch(range(5000, 5300)))
    _add(enricher, _batch(range(6000, 6300)))
    part = enricher.take_part(1000)
    assert part is not None and part.num_rows == 1500
    assert int(part.facts.column("flows").to_numpy().sum()) == 21 * 300 + 600
    assert enricher.take_part(1000) is None and enricher.rollup.groups == 0
