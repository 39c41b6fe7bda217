"""The DuckDB store: flows view over facts + owners dictionary, file records, idempotence."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from dredge.enrich.rollup import FLOWS_SCHEMA
from dredge.errors import ConfigError, SinkError
from dredge.sinks.base import IngestRecord
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink


def rows(apps: list[tuple[str, str | None]], bytes_: list[int]) -> pa.Table:
    n = len(apps)
    cols: dict[str, pa.Array] = {}
    for name in FLOWS_SCHEMA.names:
        t = FLOWS_SCHEMA.field(name).type
        if name == "window_start":
            cols[name] = pa.array(np.full(n, 1795600800), t)
        elif name == "src_app":
            cols[name] = pa.array([a[0] for a in apps], t)
        elif name == "dst_app":
            cols[name] = pa.array([a[1] for a in apps], t)
        elif name == "action":
            cols[name] = pa.array(["ACCEPT"] * n, t)
        elif name == "bytes":
            cols[name] = pa.array(bytes_, t)
        elif name in ("packets", "flows"):
            cols[name] = pa.array([1] * n, t)
        else:
            cols[name] = pa.nulls(n, t)
    return pa.table(cols, schema=FLOWS_SCHEMA)


def rec(h: str, n: int) -> IngestRecord:
    return IngestRecord(h, f"/logs/{h}.log.gz", 10, n, 0, 0, 0, False, n, 0.1)


def test_store_and_view(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    with DuckDBSink(DuckDBConfig(path=str(db))) as sink:
        assert sink.store_files([(rows([("api", "db"), ("api", None)], [10, 20]), rec("a", 2)),
                                 (rows([("api", "db")], [5]), rec("b", 1))]) == [True, True]
        assert sink.is_ingested("a") and not sink.is_ingested("c")
        # the same file again, alone or in a batch with a new one: only the new one is stored
        assert sink.store_files([(rows([("x", "y")], [1]), rec("a", 1)),
                                 (rows([("x", "y")], [7]), rec("c", 1))]) == [False, True]
    con = duckdb.connect(str(db), read_only=True)
    got = con.execute("SELECT src_app, dst_app, sum(bytes) FROM flows GROUP BY ALL ORDER BY ALL").fetchall()
    assert got == [("api", "db", 15), ("api", None, 20), ("x", "y", 7)]
    # each distinct owner stored once, however many rows and files refer to it
    assert con.execute("SELECT count(*) FROM owners").fetchone() == (5,)  # api, db, all-null, x, y
    assert con.execute("SELECT action FROM flows LIMIT 1").fetchone() == ("ACCEPT",)
    assert con.execute("SELECT count(*) FROM ingested").fetchone() == (3,)


def test_failed_batch_stores_nothing(tmp_path: Path) -> None:
    with DuckDBSink(DuckDBConfig(path=str(tmp_path / "d.duckdb"))) as sink:
        bad = rows([("api", "db")], [1]).drop_columns(["bytes"])
        with pytest.raises(SinkError):
            sink.store_files([(rows([("a", "b")], [1]), rec("ok", 1)), (bad, rec("bad", 1))])
        assert not sink.is_ingested("ok")
        assert sink.query("SELECT count(*) AS n FROM flows").column("n").to_pylist() == [0]


def test_config_validation() -> None:
    DuckDBConfig().validate()
    with pytest.raises(ConfigError, match=r"sink\.duckdb\.path"):
        DuckDBConfig(path="").validate()
