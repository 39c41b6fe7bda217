"""The ledger against S3 (moto server) through a SQL catalog and moto's Glue: rows and
positions in one snapshot; a zombie's rows dropped; the table read back by a second client."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.ledger import IcebergLedger
from dredge.sinks.iceberg.positions import committed_positions
from dredge.sinks.iceberg.table import open_table
from tests.unit.sinks.iceberg.test_ledger import rows

pytestmark = pytest.mark.integration

A, B = ("s", "shardId-0"), ("s", "shardId-1")


def test_ledger_on_s3(iceberg_catalog: dict[str, str]) -> None:
    cfg = IcebergConfig(catalog=iceberg_catalog, namespace="ns1", table="flows")
    w1, w2 = IcebergLedger(cfg, "w1"), IcebergLedger(cfg, "w2")
    w1.expect(A, 1, None)
    w1.expect(B, 1, None)
    w1.add(A, 1, [rows(3, 7)], ("10", 0))
    w1.add(B, 1, [rows(2, 7)], ("11", 3))
    assert w1.commit().rows == 3  # the shards' first two keys are the same: summed
    # w2 takes shard A over from the table's position; w1 is now a zombie for A
    w2.expect(A, 1, w2.positions("s")["shardId-0"])
    w2.add(A, 1, [rows(1, 100)], ("12", 0))
    w1.add(A, 1, [rows(4, 1000)], ("13", 0))
    w1.add(B, 1, [rows(1, 7)], ("14", 0))
    assert w2.commit().rows == 1
    res = w1.commit()
    assert res.moved == [(A, 1)] and [k for k, _, _ in res.committed] == [B]
    table = open_table(cfg, create=False)
    assert committed_positions(table) == {A: ("12", 0), B: ("14", 0)}
    data = table.scan().to_arrow()
    assert pc.sum(data.column("bytes")).as_py() == 6 * 7 + 100
    assert [f.name for f in table.spec().fields] == ["window_start_hour"]
    assert table.location().startswith(iceberg_catalog["warehouse"])
