"""``dredge replay --sink iceberg``: each file's rows appended to the ledger table exactly once.

Where the file digests live (Iceberg has no multi-table transactions):

1. **In the commit that holds the rows**: the flows table snapshot that appends a batch of
   files carries ``dredge.files`` in its summary, JSON ``[[sha256, path], ...]``, in the SAME
   atomic commit as their rows (and the carried-forward ``dredge.positions``). This is the
   truth: a file is ingested iff a snapshot of the table's history says so.
2. **In a side table** ``<table>_files`` (same namespace): one row per ingested file (hash,
   path, sizes, counts, the flows snapshot that holds it), appended right after; its snapshot
   summary carries ``dredge.files-through``, the flows table sequence number it has recorded
   up to. This is what survives expiry of the flows table's snapshots.
3. **Catch-up** (:func:`catch_up`, at every open and after every commit): flows snapshots
   newer than ``files-through`` are read for ``dredge.files`` and the missing side-table rows
   appended. A crash between 1 and 2 is repaired at the next replay. Expiring flows
   snapshots is safe for everything at or before ``files-through``; housekeeping must run
   :func:`catch_up` before it expires snapshots.

A commit is conditional on the snapshot it checked (pyiceberg's requirement, no blind
retries): when another replay committed first, the new snapshots are read for digests of
this batch (those files are reported as already stored) and the rest is committed again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dredge.errors import SinkError, SinkUnavailable
from dredge.sinks.base import IngestRecord, Rows
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.ledger import _concat, _no_blind_retries
from dredge.sinks.iceberg.positions import carried_forward
from dredge.sinks.iceberg.table import iceberg_errors, load, open_table, to_table_arrow
from dredge.sinks.metrics import flush_seconds, rows_total
from dredge.telemetry.logging import get_logger

if TYPE_CHECKING:
    from pyiceberg.table import Table

log = get_logger(__name__)

FILES_PROPERTY = "dredge.files"
THROUGH_PROPERTY = "dredge.files-through"
MAX_CONFLICTS = 8

FILES_SCHEMA = pa.schema([
    pa.field("hash", pa.string(), nullable=False), pa.field("path", pa.string()),
    pa.field("size", pa.int64()), pa.field("records", pa.int64()), pa.field("nodata", pa.int64()),
    pa.field("skipdata", pa.int64()), pa.field("malformed", pa.int64()), pa.field("truncated", pa.bool_()),
    pa.field("rows", pa.int64()), pa.field("seconds", pa.float64()),
    pa.field("ingested_at", pa.timestamp("us", tz="UTC")), pa.field("snapshot_id", pa.int64()),
])


def files_table(config: IcebergConfig, flows: Table) -> Table:
    """The side table ``<table>_files`` (created if missing, next to the flows table)."""
    from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError

    catalog = flows.catalog if hasattr(flows, "catalog") else load(config)
    ident = (config.namespace, f"{config.table}_files")
    with iceberg_errors(f"cannot open table {config.namespace}.{config.table}_files"):
        try:
            return catalog.load_table(ident)
        except NoSuchTableError:
            try:
                return catalog.create_table(ident, schema=FILES_SCHEMA, properties={"format-version": "2"})
            except TableAlreadyExistsError:
                return catalog.load_table(ident)


def _ancestry(table: Any) -> Iterable[Any]:
    snap = table.current_snapshot()
    while snap is not None:
        yield snap
        parent = snap.parent_snapshot_id
        snap = table.snapshot_by_id(parent) if parent is not None else None


def _files_of(snapshot: Any) -> list[tuple[str, str]]:
    text = snapshot.summary.additional_properties.get(FILES_PROPERTY) if snapshot.summary else None
    return [(str(h), str(p)) for h, p in json.loads(text)] if text else []


def _through(files: Table) -> int:
    snap = files.current_snapshot()
    if snap is None or snap.summary is None:
        return 0
    return int(snap.summary.additional_properties.get(THROUGH_PROPERTY, "0"))


def _seq(snapshot: Any) -> int:
    return int(snapshot.sequence_number or 0)


def catch_up(flows: Table, files: Table, records: list[dict[str, Any]] | None = None) -> int:
    """Record in the side table the files of flows snapshots newer than its watermark (a
    replay that crashed between its two commits), plus ``records`` (the full rows of the head
    snapshot's files, from the replay that just committed it); returns how many were
    recovered from summaries."""
    with iceberg_errors("cannot record ingested files"):
        flows.refresh()
        files.refresh()
        through = _through(files)
        head = flows.current_snapshot()
        if head is None or _seq(head) <= through:
            return 0
        known = {r["hash"] for r in records or []}
        missing: list[dict[str, Any]] = []
        for snap in _ancestry(flows):
            if _seq(snap) <= through:
                break
            missing.extend({"hash": h, "path": p, "snapshot_id": snap.snapshot_id}
                           for h, p in _files_of(snap) if h not in known)
        _append_files(files, missing + list(records or []), _seq(head))
    if missing:
        log.info("iceberg_files_recovered", files=len(missing), through=_seq(head))
    return len(missing)


def _append_files(files: Table, rows: list[dict[str, Any]], through: int) -> None:
    table = pa.Table.from_pylist(rows, schema=FILES_SCHEMA) if rows else FILES_SCHEMA.empty_table()
    _no_blind_retries(files)
    tx = files.transaction()
    tx.append(table, snapshot_properties={THROUGH_PROPERTY: str(through)})
    tx.commit_transaction()


class IcebergFileSink:
    """A :class:`~dredge.sinks.base.FileSink` on the ledger table (``replay --sink iceberg``)."""

    name = "iceberg"

    def __init__(self, config: IcebergConfig) -> None:
        config.validate()
        self.config = config
        self.flows = open_table(config)
        self.files = files_table(config, self.flows)
        catch_up(self.flows, self.files)
        with iceberg_errors("cannot read the ingested files"):
            self._hashes = set(self.files.scan(selected_fields=("hash",)).to_arrow().column("hash").to_pylist())
        self.snapshot_id: int | None = None

    def is_ingested(self, digest: str) -> bool:
        return digest in self._hashes

    def store_files(self, batch: list[tuple[Rows, IngestRecord]]) -> list[bool]:
        """Rows of every new file in ONE flows commit (digests in its summary), then the
        side-table rows. SinkError: nothing of the batch committed."""
        from pyiceberg.exceptions import CommitFailedException

        t0 = time.perf_counter()
        stored = [False] * len(batch)
        seen_head = self.flows.current_snapshot()
        for _ in range(MAX_CONFLICTS):
            with iceberg_errors("cannot refresh the table"):
                self.flows.refresh()
            self._learn_since(seen_head)
            seen_head = self.flows.current_snapshot()
            todo = [i for i, (_, rec) in enumerate(batch) if rec.hash not in self._hashes]
            todo = list({batch[i][1].hash: i for i in reversed(todo)}.values())[::-1]  # once each
            if not todo:
                return stored
            arrow = _concat([to_table_arrow(batch[i][0]) for i in todo if batch[i][0].num_rows])
            summary = carried_forward(self.flows)
            summary[FILES_PROPERTY] = json.dumps([[batch[i][1].hash, batch[i][1].path] for i in todo])
            _no_blind_retries(self.flows)
            try:
                with iceberg_errors("commit failed"):
                    try:
                        tx = self.flows.transaction()
                        tx.append(arrow, snapshot_properties=summary)
                        tx.commit_transaction()
                    except CommitFailedException:
                        continue  # another writer first: read its digests, try again
            except SinkError:
                rows_total.labels(self.name, "failed").inc(arrow.num_rows)
                raise
            break
        else:
            raise SinkUnavailable(
                f"Iceberg: {MAX_CONFLICTS} commits in a row lost to other writers")
        head = self.flows.current_snapshot()
        assert head is not None
        self.snapshot_id = head.snapshot_id
        now = datetime.now(UTC)
        records = []
        for i in todo:
            rec = batch[i][1]
            stored[i] = True
            self._hashes.add(rec.hash)
            records.append({**{k: getattr(rec, k) for k in FILES_SCHEMA.names[:10]},
                            "ingested_at": now, "snapshot_id": head.snapshot_id})
        rows_total.labels(self.name, "stored").inc(arrow.num_rows)
        flush_seconds.labels(self.name).observe(time.perf_counter() - t0)
        try:  # the side record; a failure here is repaired by the next catch_up
            catch_up(self.flows, self.files, records)
        except SinkError as exc:
            log.warning("iceberg_files_record_failed", error=str(exc)[:300],
                        note="the files are stored; the next replay records them")
        return stored

    def _learn_since(self, seen: Any) -> None:
        """Digests committed by others since ``seen`` (the head this sink last knew)."""
        stop = seen.snapshot_id if seen is not None else None
        for snap in _ancestry(self.flows):
            if snap.snapshot_id == stop:
                break
            self._hashes.update(h for h, _ in _files_of(snap))

    def close(self) -> None:
        pass

    def __enter__(self) -> IcebergFileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
