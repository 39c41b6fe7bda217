"""The sink protocols, defined once: what the runtime hands a sink and what it may ask back.

Two callers, two shapes (Bytewax's ``outputs.py`` is the model: one definition per kind of
sink partition, every implementation matches it structurally)::

    replay (files)        -> FileSink:    is_ingested(digest); store_files([(rows, IngestRecord)])
    stream daemon (flush) -> BatchSink:   store_batch(rows, [ShardCheckpoint])
                             CheckpointStore: a BatchSink that reads its positions back

Implementations: :class:`dredge.sinks.duckdb.DuckDBSink` (all three),
:class:`dredge.sinks.druid_backfill.DruidBackfill` (FileSink, DuckDB as its ledger),
:class:`dredge.sinks.publishing.PublishingSink` (BatchSink: publish, then store).

The records that cross these protocols are declared here too: :class:`IngestRecord` (one
replayed file, committed with its rows) and :class:`ShardCheckpoint` (one shard's position,
committed with the rows of the flush that reached it). A sink never imports its callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias

from dredge.sources.kinesis.shards import ShardCheckpoint as ShardCheckpoint  # re-exported

if TYPE_CHECKING:  # types only: the rollup loads numpy and pyarrow
    import pyarrow as pa

    from dredge.enrich.rollup import Rolled

# Rolled-up rows: facts + owner dictionary (what the stream and replay produce), or a table in
# the ``flows`` schema with the owners spelled out (tests, backfill).
Rows: TypeAlias = "Rolled | pa.Table"


@dataclass(frozen=True)
class IngestRecord:
    """One replayed file, stored in the same transaction as its rows."""

    hash: str
    path: str
    size: int
    records: int
    nodata: int
    skipdata: int
    malformed: int
    truncated: bool
    rows: int
    seconds: float
    replace: bool = False  # `replay --force`: the file's earlier rows are replaced, not kept


class FileSink(Protocol):
    """Where replay commits files: rows and their ``ingested`` record together, once each."""

    def is_ingested(self, digest: str) -> bool: ...

    def store_files(self, batch: list[tuple[Rows, IngestRecord]]) -> list[bool]:
        """Store each file's rows with its record in one transaction; False for a file some
        other run stored meanwhile (nothing added for it)."""
        ...


class BatchSink(Protocol):
    """Where the stream daemon flushes: rows and shard positions, both or neither."""

    def store_batch(self, rows: Rows | Sequence[Rows], checkpoints: list[ShardCheckpoint]) -> None:
        """Store every row and every position in one transaction, or raise SinkError having
        stored nothing."""
        ...


class CheckpointStore(BatchSink, Protocol):
    """A BatchSink that also holds the positions it stored (the daemon resumes from them)."""

    def checkpoints(self, stream: str) -> dict[str, tuple[str, int]]:
        """shard id -> (sequence or SHARD_END, sub-sequence) stored for ``stream``."""
        ...
