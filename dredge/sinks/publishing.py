"""PublishingSink: the daemon's sink when ``[sink.kinesis_out]`` is set: publish a flush's
rows to the output stream, then store them and the shard positions in the local store.

A publish that fails raises :class:`SinkError` before the store is touched: no checkpoint
moves, the daemon retries the flush (same positions, same token: acknowledged records are not
sent twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dredge.sinks.base import CheckpointStore, Rows, ShardCheckpoint
from dredge.sinks.kinesis_out import KinesisPublisher


class PublishingSink:
    """A :class:`~dredge.sinks.base.CheckpointStore`: the publisher in front of the store."""

    def __init__(self, store: CheckpointStore, publisher: KinesisPublisher) -> None:
        self.store = store
        self.publisher = publisher

    def store_batch(self, rows: Rows | Sequence[Rows], checkpoints: list[ShardCheckpoint]) -> None:
        token = repr(sorted(
            (c.stream, c.shard_id, c.sequence, c.sub_sequence) for c in checkpoints))
        self.publisher.publish(rows, token=token)
        self.store.store_batch(rows, checkpoints)

    def checkpoints(self, stream: str) -> dict[str, tuple[str, int]]:
        return self.store.checkpoints(stream)

    def __getattr__(self, name: str) -> Any:  # open(), close() of the store
        return getattr(self.store, name)
