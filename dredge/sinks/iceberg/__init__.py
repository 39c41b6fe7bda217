"""The Iceberg ledger: one exact copy of the rolled-up flows for the whole fleet, on S3.

Apache Iceberg tables take atomic commits; each Dredge commit appends rows AND records, in its
snapshot summary, the Kinesis position of every shard ever committed (the model is Flink's
Iceberg sink, which keeps its source positions the same way). The package map::

    config.py     IcebergConfig: [sink.iceberg] (catalog properties, namespace, table, interval)
    table.py      open_table (catalog, namespace, table created if missing, schema checked),
                  the table's schema and partitioning, to_table_arrow (rows -> the table's Arrow)
    positions.py  the contract for source positions in snapshot summaries (dredge.positions):
                  read them, carry them forward (every commit by anyone must)
    ledger.py     IcebergLedger: the daemon's buffered, exactly-once commits across workers
    fileio.py     DredgeFileIO: pyarrow's FileIO, small S3 files in one PutObject
    files.py      IcebergFileSink: replay --sink iceberg, each file once (digests in the table)

Imports are heavy (pyiceberg, pyarrow): callers import the submodules they need, lazily.
"""
