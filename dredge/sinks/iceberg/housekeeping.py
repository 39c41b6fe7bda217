"""Housekeeping of the ledger table (``dredge iceberg maintain``): compaction, snapshot expiry,
orphan files. Settings: :class:`HousekeepingConfig` (its defaults are the documented ones).

What pyiceberg 0.12 offers and what is written here:

- **Compaction** (pyiceberg has none): each hour partition that ended ``compact_after_s`` ago
  and holds at least ``min_files`` data files (one per commit: a commit every 60 s leaves 60
  an hour) is rewritten as ONE ``overwrite`` snapshot that deletes exactly the files read and
  adds their rows in as few files as the table's target size gives. The snapshot carries the
  source positions forward (:func:`~dredge.sinks.iceberg.positions.carried_forward`: every
  commit must). A concurrent append is never lost: pyiceberg's overwrite requires the branch
  head it was built on (``AssertRefSnapshotId``), so if a worker committed meanwhile the
  catalog refuses it (``CommitFailedException``) and the hour is read and rewritten again
  from the new head, up to ``max_attempts`` times (then left for the next run). pyiceberg's
  own retry (which would rebuild the snapshot on the new head with the positions read from
  the old one) is switched off for the table object, as the ledger does.
- **Snapshot expiry**: pyiceberg's ``table.maintenance.expire_snapshots()`` removes snapshots
  by id or age; "keep the newest N" is written here: a snapshot is expired when it is older
  than ``expire_after_s`` and not among the ``keep_snapshots`` newest (the current one and
  branch or tag heads always stay). Positions live in the current snapshot: nothing is lost.
  Replayed files' digests first go to the side table (``files.catch_up``), and a snapshot it
  has not recorded is never expired. Expiry removes metadata only; the files it frees become
  orphans (below).
- **Orphan files** (pyiceberg has none): files under the table's location that no live
  snapshot references (manifest lists, manifests, live data files, the metadata files in the
  log, statistics) and that are older than ``orphan_age_s`` (3 days: a commit in flight or a
  failed one wrote files it does not reference yet) are deleted, through the table's own
  FileIO filesystem (S3 or local).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dredge.errors import ConfigError
from dredge.sinks.iceberg.ledger import _no_blind_retries
from dredge.sinks.iceberg.positions import carried_forward
from dredge.sinks.iceberg.reading import HOUR, hour_files, time_filter
from dredge.sinks.iceberg.table import iceberg_errors, to_table_arrow
from dredge.telemetry.logging import get_logger

if TYPE_CHECKING:
    from pyiceberg.table import Table

log = get_logger(__name__)


@dataclass(frozen=True)
class HousekeepingConfig:
    compact: bool = True
    expire: bool = True
    orphans: bool = True
    min_files: int = 8  # compact an hour partition holding at least this many data files
    compact_after_s: float = 3600.0  # ... once it ended this long ago (workers append no more)
    keep_snapshots: int = 20  # the newest snapshots always kept (time travel, readers)
    expire_after_s: float = 86400.0  # expire snapshots older than this
    orphan_age_s: float = 3 * 86400.0  # only unreferenced files older than this are deleted
    max_attempts: int = 5  # commits refused by a concurrent commit: read again, retry
    dry_run: bool = False

    def validate(self) -> None:
        if self.min_files < 2:
            raise ConfigError("min_files", "at least 2 (one file is already compact)")
        if self.keep_snapshots < 1:
            raise ConfigError("keep_snapshots", "at least 1 (the current snapshot)")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts", "at least 1")
        for key in ("compact_after_s", "expire_after_s", "orphan_age_s"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(key, "a finite number of seconds >= 0")
        if self.orphan_age_s < 3600:
            raise ConfigError("orphan_age_s", "at least 1h: younger files may belong to a "
                              "commit in flight")


@dataclass
class Report:
    compacted: dict[int, tuple[int, int]] = field(default_factory=dict)  # hour -> files before, after
    compact_rows: int = 0
    conflicts: int = 0  # compaction commits refused because another commit came first
    skipped: list[int] = field(default_factory=list)  # hours left after max_attempts conflicts
    expired: list[int] = field(default_factory=list)  # snapshot ids
    orphans: list[str] = field(default_factory=list)  # paths deleted (or, dry run, to delete)
    orphan_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"compacted_hours": len(self.compacted),
                "files_before": sum(b for b, _ in self.compacted.values()),
                "files_after": sum(a for _, a in self.compacted.values()),
                "rows_rewritten": self.compact_rows, "conflicts": self.conflicts,
                "hours_left": len(self.skipped), "snapshots_expired": len(self.expired),
                "orphans_deleted": len(self.orphans), "orphan_bytes": self.orphan_bytes}

    def lines(self) -> list[str]:
        d = self.as_dict()
        return [f"compaction   {d['compacted_hours']} hour(s): {d['files_before']} files -> "
                f"{d['files_after']} ({d['rows_rewritten']:,} rows; {d['conflicts']} "
                f"conflict(s) retried, {d['hours_left']} hour(s) left for the next run)",
                f"expiry       {d['snapshots_expired']} snapshot(s) expired",
                f"orphans      {d['orphans_deleted']} file(s) deleted ({d['orphan_bytes']:,} bytes)"]


def maintain(table: Table, config: HousekeepingConfig, now: float | None = None) -> Report:
    """Compact, then expire, then delete orphans (what expiry freed is an orphan only after
    ``orphan_age_s``: the files' own age counts, not the expiry's)."""
    config.validate()
    now = time.time() if now is None else now
    report = Report()
    with iceberg_errors(f"housekeeping of {table.name()}"):
        if config.compact:
            compact(table, config, now, report)
        if config.expire:
            expire(table, config, now, report)
        if config.orphans:
            delete_orphans(table, config, now, report)
    log.info("iceberg_housekeeping_done", table=".".join(table.name()), **report.as_dict())
    return report


# -- compaction --------------------------------------------------------------------------------


def compact(table: Table, config: HousekeepingConfig, now: float, report: Report) -> None:
    table.refresh()
    snapshot = table.current_snapshot()
    if snapshot is None:
        return
    end = int((now - config.compact_after_s) // HOUR * HOUR)
    for hour, files in sorted(hour_files(table, snapshot.snapshot_id, None, end).items()):
        if len(files) >= config.min_files:
            _compact_hour(table, hour, config, report)


def _compact_hour(table: Table, hour: int, config: HousekeepingConfig, report: Report) -> None:
    from pyiceberg.exceptions import CommitFailedException, ValidationException
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    for _ in range(config.max_attempts):
        table.refresh()
        snapshot = table.current_snapshot()
        assert snapshot is not None  # it had files a moment ago; tables are never emptied
        files = hour_files(table, snapshot.snapshot_id, hour, hour + HOUR).get(hour, [])
        if len(files) < config.min_files:
            return  # compacted by someone else meanwhile
        rows = to_table_arrow(table.scan(row_filter=time_filter(hour, hour + HOUR),
                                         snapshot_id=snapshot.snapshot_id).to_arrow())
        rows = rows.sort_by([("window_start", "ascending")])
        if config.dry_run:
            report.compacted[hour] = (len(files), 0)
            report.compact_rows += rows.num_rows
            return
        try:
            _no_blind_retries(table)  # the ledger's: stale positions must never be retried in
            with table.transaction() as tx:
                update = tx.update_snapshot(snapshot_properties=carried_forward(table))
                with update.overwrite() as rewrite:
                    for f in files:
                        rewrite.delete_data_file(f)
                    added = list(_dataframe_to_data_files(tx.table_metadata, rows, table.io,
                                                          write_uuid=rewrite.commit_uuid))
                    for f in added:
                        rewrite.append_data_file(f)
        except (CommitFailedException, ValidationException) as exc:
            report.conflicts += 1
            log.info("iceberg_compaction_conflict", hour=hour, error=str(exc)[:200])
            continue
        report.compacted[hour] = (len(files), len(added))
        report.compact_rows += rows.num_rows
        return
    report.skipped.append(hour)
    log.warning("iceberg_compaction_gave_up", hour=hour, attempts=config.max_attempts)


# -- snapshot expiry ---------------------------------------------------------------------------


def expirable(table: Table, config: HousekeepingConfig, now: float,
              recorded_through: int | None = None) -> list[int]:
    """Snapshot ids older than ``expire_after_s`` and not among the newest ``keep_snapshots``,
    never the current one nor a branch or tag head, nor (``recorded_through``) one whose
    replayed-file digests the side table has not recorded yet."""
    snapshots = sorted(table.metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number))
    keep = {s.snapshot_id for s in snapshots[-config.keep_snapshots:]}
    keep |= {ref.snapshot_id for ref in table.metadata.refs.values()}
    cutoff_ms = (now - config.expire_after_s) * 1000
    return [s.snapshot_id for s in snapshots
            if s.snapshot_id not in keep and s.timestamp_ms < cutoff_ms
            and (recorded_through is None or (s.sequence_number or 0) <= recorded_through)]


def files_recorded_through(table: Table) -> int | None:
    """``replay --sink iceberg`` keeps each file's digest in the summary of the snapshot that
    holds its rows, then in the side table ``<table>_files``
    (:mod:`dredge.sinks.iceberg.files`): bring the side table up to date (``catch_up``) and
    return the sequence number it records through (None: no replay ever wrote the table)."""
    from dredge.sinks.iceberg.files import THROUGH_PROPERTY, catch_up

    *namespace, name = table.name()
    ident = (*namespace, f"{name}_files")
    if not table.catalog.table_exists(ident):
        return None
    files = table.catalog.load_table(ident)
    catch_up(table, files)
    files.refresh()
    head = files.current_snapshot()
    summary = head.summary.additional_properties if head is not None and head.summary else {}
    return int(summary.get(THROUGH_PROPERTY, "0"))


def expire(table: Table, config: HousekeepingConfig, now: float, report: Report) -> None:
    from pyiceberg.exceptions import CommitFailedException

    for _ in range(config.max_attempts):
        through = files_recorded_through(table)
        table.refresh()
        ids = expirable(table, config, now, through)
        if not ids or config.dry_run:
            report.expired = ids
            return
        try:
            table.maintenance.expire_snapshots().by_ids(ids).commit()
        except CommitFailedException:
            report.conflicts += 1
            continue
        report.expired = ids
        return


# -- orphan files ------------------------------------------------------------------------------


def referenced(table: Table) -> set[str]:
    """Every file a live snapshot or the metadata log needs, as its filesystem path."""
    from pyiceberg.io.pyarrow import PyArrowFileIO

    meta = table.metadata
    uris = {table.metadata_location, *(e.metadata_file for e in meta.metadata_log)}
    uris |= {s.statistics_path for s in meta.statistics}
    uris |= {s.statistics_path for s in meta.partition_statistics}
    seen: set[str] = set()
    for snapshot in meta.snapshots:
        uris.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            if manifest.manifest_path in seen:
                continue
            seen.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                uris.add(entry.data_file.file_path)
    uris |= seen
    return {PyArrowFileIO.parse_location(u)[2] for u in uris}


def delete_orphans(table: Table, config: HousekeepingConfig, now: float, report: Report) -> None:
    from pyarrow import fs as pafs
    from pyiceberg.io.pyarrow import PyArrowFileIO

    if not isinstance(table.io, PyArrowFileIO):
        log.warning("iceberg_orphans_skipped", reason="the table's FileIO is not pyarrow's")
        return
    scheme, netloc, root = PyArrowFileIO.parse_location(table.location())
    filesystem = table.io.fs_by_scheme(scheme, netloc)
    listed = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    table.refresh()  # after listing: what a commit landing meanwhile references is kept
    keep = referenced(table)
    cutoff = now - config.orphan_age_s
    inside = root.rstrip("/") + "/"  # not a sibling sharing the prefix (<table>_files/)
    for info in listed:
        if (info.type != pafs.FileType.File or not info.path.startswith(inside)
                or info.path in keep or info.mtime is None
                or info.mtime.timestamp() >= cutoff or info.base_name == "version-hint.text"):
            continue
        if not config.dry_run:
            filesystem.delete_file(info.path)
        report.orphans.append(info.path)
        report.orphan_bytes += int(info.size or 0)
    if report.orphans:
        log.info("iceberg_orphans_deleted", files=len(report.orphans), bytes=report.orphan_bytes,
                 dry_run=config.dry_run)
