"""The ledger on a real SQL catalog (SQLite, local warehouse): positions travel with the rows,
a conflicting commit is retried on the new table, a shard another worker committed is dropped."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dredge.enrich.rollup import Rolled
from dredge.errors import SinkError
from dredge.sinks.iceberg import ledger as ledger_mod
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.ledger import IcebergLedger
from dredge.sinks.iceberg.positions import POSITIONS_PROPERTY, committed_positions
from dredge.sinks.iceberg.table import open_table
from tests.unit.sinks.iceberg.test_table import flows

A, B = ("s", "shardId-a"), ("s", "shardId-b")


def rows(n: int, bytes_each: int = 1) -> Rolled:
    t = flows(n)
    return Rolled.from_table(t.set_column(t.schema.get_field_index("bytes"), "bytes",
                                          pa.array([bytes_each] * n, pa.int64())))


def total_bytes(config: IcebergConfig) -> int:
    return int(pc.sum(open_table(config).scan().to_arrow().column("bytes")).as_py() or 0)


def test_commit_carries_every_position(iceberg_config: IcebergConfig) -> None:
    led = IcebergLedger(iceberg_config, "w1")
    led.open()
    led.expect(A, 1, None)
    led.expect(B, 1, None)
    led.add(A, 1, [rows(3)], ("100", 0))
    led.add(B, 1, [rows(2)], ("7", 2))
    first = led.commit()
    # the two shards' rows share their first two keys: summed into one row each (combine)
    assert first.rows == 3 and sorted(k for k, _, _ in first.committed) == [A, B]
    assert total_bytes(iceberg_config) == 5
    led.add(A, 1, [rows(1)], ("120", 0))
    led.commit()
    table = open_table(iceberg_config)
    assert committed_positions(table) == {A: ("120", 0), B: ("7", 2)}  # B carried forward
    assert POSITIONS_PROPERTY in table.current_snapshot().summary.additional_properties
    assert table.scan().to_arrow().num_rows == 4 and total_bytes(iceberg_config) == 6
    assert sorted(led.take_committed()) == sorted([(A, 1, ("100", 0)), (B, 1, ("7", 2)), (A, 1, ("120", 0))])
    assert led.take_committed() == [] and led.commit().snapshot_id is None  # nothing buffered


def test_commit_sums_rows_of_one_key_unless_a_sum_could_overflow(iceberg_config: IcebergConfig) -> None:
    led = IcebergLedger(iceberg_config, "w1")
    led.expect(A, 1, None)
    for i in range(4):  # four local flushes of the same minute and pair
        led.add(A, 1, [rows(1, 10)], (str(100 + i), 0))
    assert led.commit().rows == 1 and total_bytes(iceberg_config) == 40
    big = 2**62  # two such rows would pass int64 when summed: kept apart, exact
    led.add(A, 1, [rows(1, big), rows(1, big)], ("200", 0))
    assert led.commit().rows == 2
    table = open_table(iceberg_config).scan().to_arrow()
    assert sorted(table.column("bytes").to_pylist()) == [40, big, big]


def test_positions_only_commit_moves_shard_end(iceberg_config: IcebergConfig) -> None:
    led = IcebergLedger(iceberg_config, "w1")
    led.expect(A, 1, None)
    led.add(A, 1, [], ("SHARD_END", 0))
    assert led.commit().snapshot_id is not None
    assert led.positions("s") == {"shardId-a": ("SHARD_END", 0)}


def test_zombie_rows_are_dropped(iceberg_config: IcebergConfig) -> None:
    old, new = IcebergLedger(iceberg_config, "old"), IcebergLedger(iceberg_config, "new")
    old.expect(A, 1, None)
    old.add(A, 1, [rows(4, 10)], ("50", 0))
    new.expect(A, 7, None)  # took the shard over: read it again from the start
    new.add(A, 7, [rows(5, 10)], ("60", 0))
    assert new.commit().rows == 5
    res = old.commit()  # the zombie: the table moved past what it expected
    assert res.moved == [(A, 1)] and res.committed == [] and res.snapshot_id is None
    assert total_bytes(iceberg_config) == 50
    assert committed_positions(open_table(iceberg_config)) == {A: ("60", 0)}
    old.add(A, 1, [rows(1)], ("70", 0))  # the tenure is fenced: nothing more is buffered
    assert old.rows == 0


def test_conflicting_commit_is_retried_on_the_new_table(iceberg_config: IcebergConfig,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from pyiceberg.table import Transaction

    w1, w2 = IcebergLedger(iceberg_config, "w1"), IcebergLedger(iceberg_config, "w2")
    w1.expect(A, 1, None)
    w2.expect(B, 1, None)
    w1.add(A, 1, [rows(2, 3)], ("10", 0))
    w2.add(B, 1, [rows(3, 5)], ("20", 0))
    real = Transaction.commit_transaction
    raced: list[int] = []

    def racing(self: Any) -> Any:
        if not raced:  # w2 commits between w1's check and w1's commit
            raced.append(1)
            w2.commit()
        return real(self)

    monkeypatch.setattr(Transaction, "commit_transaction", racing)
    before = ledger_mod.commits_total.labels("conflict").value
    res = w1.commit()
    assert ledger_mod.commits_total.labels("conflict").value == before + 1
    assert res.rows == 2 and res.moved == []
    assert committed_positions(open_table(iceberg_config)) == {A: ("10", 0), B: ("20", 0)}
    assert total_bytes(iceberg_config) == 2 * 3 + 3 * 5  # each once


def test_unreachable_table_keeps_the_buffer(iceberg_config: IcebergConfig, tmp_path: Any) -> None:
    led = IcebergLedger(iceberg_config, "w1")
    led.open()
    led.expect(A, 1, None)
    led.add(A, 1, [rows(2)], ("10", 0))
    (tmp_path / "catalog.db").rename(tmp_path / "gone.db")
    with pytest.raises(SinkError):
        led.commit()
    assert led.rows == 2 and led.take_committed() == []
    (tmp_path / "gone.db").rename(tmp_path / "catalog.db")
    assert led.commit().rows == 2


def test_lost_lease_discards(iceberg_config: IcebergConfig) -> None:
    led = IcebergLedger(iceberg_config, "w1")
    led.expect(A, 1, None)
    led.add(A, 1, [rows(2)], ("10", 0))
    assert led.discard(A) == 2 and not led.has_pending()
    assert led.commit().snapshot_id is None


def test_rows_added_during_a_commit_wait_for_the_next(iceberg_config: IcebergConfig,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit runs in a thread while the loop keeps adding flushes: what it reports as
    committed (the lease checkpoint) is only what it appended; the rest is kept."""
    from pyiceberg.table import Transaction

    led = IcebergLedger(iceberg_config, "w1")
    led.expect(A, 1, None)
    led.add(A, 1, [rows(2, 1)], ("10", 0))
    real = Transaction.commit_transaction

    def flush_meanwhile(self: Any) -> Any:
        monkeypatch.setattr(Transaction, "commit_transaction", real)
        led.add(A, 1, [rows(3, 100)], ("20", 0))  # the loop's next flush
        return real(self)

    monkeypatch.setattr(Transaction, "commit_transaction", flush_meanwhile)
    first = led.commit()
    assert first.committed == [(A, 1, ("10", 0))] and first.rows == 2
    assert committed_positions(open_table(iceberg_config)) == {A: ("10", 0)}
    assert led.rows == 3
    assert led.commit().committed == [(A, 1, ("20", 0))]
    assert total_bytes(iceberg_config) == 2 + 300


def test_failed_commit_puts_its_rows_back_before_newer_ones(iceberg_config: IcebergConfig,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from pyiceberg.table import Transaction

    led = IcebergLedger(iceberg_config, "w1")
    led.expect(A, 1, None)
    led.add(A, 1, [rows(2, 1)], ("10", 0))

    def fail(self: Any) -> Any:
        led.add(A, 1, [rows(1, 100)], ("20", 0))
        raise OSError("S3 is down (injected)")

    monkeypatch.setattr(Transaction, "commit_transaction", fail)
    with pytest.raises(SinkError, match="S3 is down"):
        led.commit()
    monkeypatch.undo()
    assert led.rows == 3 and led.take_committed() == []
    assert led.commit().committed == [(A, 1, ("20", 0))]
    assert total_bytes(iceberg_config) == 102
