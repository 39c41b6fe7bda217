"""The Kinesis source: shards of one or more streams, read under KCL-compatible leases.

Following the data::

    config.py     StreamConfig ([[streams]]), KinesisConfig ([kinesis]), LeaseConfig ([lease])
    shards.py     shared types: Position, ShardInfo, ShardCheckpoint, position constants
    clients.py    the stream's Kinesis client (assumed role) and the lease table's DynamoDB client
    discovery.py  ListShards -> shards, open or closed; the catalog readers consult
    limits.py     per-shard read limits (calls/s, bytes/s)
    reader.py     ShardReader: GetRecords in a loop -> ReadBatch, faults retried
    leases/       the lease table, split by job as in KCL (see leases/__init__.py)
    balance.py    the lease taker's and lineage's pure decisions
    consumer.py   StreamConsumer: discovery, the lease loop, one reader per held shard
    metrics.py    dredge_kinesis_* metrics

AWS plumbing shared with other components (error codes, retries, regions, roles,
backoff) is in ``dredge.aws``.
"""
