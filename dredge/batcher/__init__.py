"""The stream daemon's hot path: shard batches -> decode -> parse -> [holdback] -> enrich ->
roll up -> one sink transaction per flush interval -> lease checkpoints. One job per module::

    loop.py      StreamBatcher: the queue from the readers, the holdback, when to flush
    batches.py   one GetRecords batch: decode + parse (ParsedBatch), enrich into Pending rows
    flusher.py   Flusher: pending rows + positions -> sink (one transaction) -> leases

Invariant: a shard's checkpoint (sink or lease) never passes data the sink has not stored.
A flush stores in the background while the next batches are processed (one at a time: the
next waits for it). A failed flush stores nothing and checkpoints nothing; its rows are
pending again, and the batcher stops taking batches (readers block) and retries with backoff
until the sink is back.
"""

from dredge.batcher.batches import ParsedBatch, enrich_batch, parse_batch
from dredge.batcher.loop import StreamBatcher

__all__ = ["ParsedBatch", "StreamBatcher", "enrich_batch", "parse_batch"]
