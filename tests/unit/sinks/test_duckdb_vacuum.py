"""A batch writer's store (``DuckDBSink(batch=True)``, what replay opens): DuckDB's
checkpoints leave the partly filled row groups of each commit as they are, unless rows were
deleted since the store opened (``replay --force``, a failed large file's parts): then the
closing checkpoint merges and reclaims as usual. Counted in row groups, never in time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from dredge.enrich.rollup import FACTS_SCHEMA, Rolled
from dredge.index.snapshot import OWNER_FIELDS
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink
from tests.unit.sinks.test_duckdb import rec

ROWS = 130_000  # a commit: one full row group of DuckDB's (122,880 rows) and a partial one


def rolled(n: int, bytes_: int) -> Rolled:
    cols = {f.name: pa.array(np.zeros(n, f.type.to_pandas_dtype()), f.type) for f in FACTS_SCHEMA}
    cols["window_start"] = pa.array(np.arange(n, dtype=np.int64) * 60, pa.int64()).cast(pa.timestamp("s"))
    cols["bytes"] = pa.array(np.full(n, bytes_, np.int64))
    owners = pa.table({f: pa.array(["x"], pa.string()) for f in OWNER_FIELDS})
    return Rolled(pa.table(cols, schema=FACTS_SCHEMA), owners)


def row_groups(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return int(con.execute("SELECT count(DISTINCT row_group_id) FROM "
                               "pragma_storage_info('flow_facts')").fetchall()[0][0])


def store(db: Path, batch: bool, replace: bool = False) -> tuple[int, int]:
    """Four files in four commits, then with ``replace`` the first again (--force); the row
    groups after the close and the bytes stored."""
    with DuckDBSink(DuckDBConfig(path=str(db)), batch=batch) as sink:
        for h in "abcd":
            assert sink.store_files([(rolled(ROWS, 1), rec(h, ROWS))]) == [True]
        if replace:
            again = dataclasses.replace(rec("a", ROWS), replace=True)
            assert sink.store_files([(rolled(ROWS, 2), again)]) == [True]
    with duckdb.connect(str(db), read_only=True) as con:
        total = int(con.execute("SELECT sum(bytes) FROM flows").fetchall()[0][0])
    return row_groups(db), total


@pytest.mark.parametrize("replace", [False, True])
def test_a_batch_writer_merges_row_groups_only_after_a_delete(tmp_path: Path, replace: bool) -> None:
    merged, total = store(tmp_path / "default.duckdb", batch=False, replace=replace)
    as_is, same = store(tmp_path / "batch.duckdb", batch=True, replace=replace)
    assert same == total == ROWS * (5 if replace else 4)  # the same rows either way
    if replace:  # the closing checkpoint vacuumed: as the default store does
        assert as_is == merged
    else:  # each commit's partial row group left as it is
        assert as_is > merged


def test_replay_opens_its_store_as_a_batch_writer(tmp_path: Path) -> None:
    import argparse

    from dredge.commands.replay import open_sink
    from dredge.replay import STORE_MEMORY_LIMIT

    sink = open_sink(argparse.Namespace(sink="duckdb", db=str(tmp_path / "d.duckdb")))
    assert sink.batch and sink.config.memory_limit == STORE_MEMORY_LIMIT
    with sink:  # and its inserts run on all of DuckDB's threads: the rows need no order
        got = sink.con.execute("SELECT current_setting('preserve_insertion_order'), "
                               "current_setting('max_vacuum_tasks')").fetchall()
    assert got == [(False, 0)]
