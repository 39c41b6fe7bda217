"""``dredge druid reconcile``: every closed hour in Druid rebuilt from the Iceberg ledger.

The live path to Druid (``[sink.kinesis_out]`` → Druid's Kinesis supervisor) is at least once:
a worker killed between publishing a flush and committing it publishes those rows again. The
ledger table is exact. Reconciling an hour replaces it in Druid with the table's rows through
the backfill's ``REPLACE`` path (:class:`~dredge.sinks.druid_backfill.HourReplacer`: staging,
retries, waiting for the segments), so after it Druid's totals for that hour equal the table's.

**Closed hours only**: an hour is reconciled once it ended ``grace_s`` ago (default
:data:`DEFAULT_GRACE_S`, 1 h: the supervisor's ``taskDuration``, PT1H by default, so the
streaming task that took the hour's last rows has published them and released its lock on
the hour; a ``REPLACE`` meeting that lock waits, fails after its retries and is redone by the
next run; flow-log records reach the stream minutes after their window, and the daemon
commits every ``commit_interval_s``); newer hours stay live.

**What was reconciled, and from what** lives in Druid itself, in the same ``REPLACE`` as the
rows: each reconciled row carries the dimension :data:`MARK_COLUMN` (``reconciled_from``), the
fingerprint of the ledger's data files for that hour
(:func:`~dredge.sinks.iceberg.reading.fingerprint`: any commit touching the hour changes it).
An hour is skipped when every Druid row of it carries the fingerprint the table has now; it
is rebuilt when the table changed since (late rows, a compaction), when the live stream added
rows since (they carry no mark: a duplicate published after the reconcile is caught too), or
when it was never reconciled. The mark and the rows change in one atomic segment swap, so
the record cannot disagree with what Druid holds; several hosts or workers may reconcile at
once without a lock: two REPLACEs of one hour from different table states leave the later one
in place with its own mark, and a stale one is simply redone by the next run.

Hours Druid has and the table has not (``stray``: published live and never committed, e.g.
by a worker that lost its shard) are reported, not deleted: dropping a whole hour is left to
an operator (``dredge druid reconcile`` prints them; a ``REPLACE`` of the hour with no rows, or
marking its segments unused, removes them).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dredge.enrich.rollup import Rolled
from dredge.errors import SinkError
from dredge.sinks.druid import DruidAPI, DruidConfig
from dredge.sinks.druid_backfill import HourReplacer, PushSummary
from dredge.sinks.iceberg.reading import HOUR, fingerprint, hour_files, scan_flows, time_filter
from dredge.sinks.rowcodec import encode
from dredge.telemetry.logging import get_logger

if TYPE_CHECKING:
    from pyiceberg.table import Table

log = get_logger(__name__)

DEFAULT_GRACE_S = 3600.0
MARK_COLUMN = "reconciled_from"


def _ts(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Plan:
    """What a run would do: hours (epoch s) to rebuild with their fingerprints, the others."""

    snapshot_id: int | None
    end: int  # hours before this are closed (and in range)
    todo: dict[int, str] = field(default_factory=dict)  # hour -> fingerprint to write
    unchanged: list[int] = field(default_factory=list)
    stray: list[int] = field(default_factory=list)  # in Druid, not in the table


@dataclass
class ReconcileSummary:
    checked: int = 0  # closed hours the table has in the range
    reconciled: int = 0
    unchanged: int = 0
    stray: list[int] = field(default_factory=list)
    snapshot_id: int | None = None
    push: PushSummary = field(default_factory=PushSummary)

    def as_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "reconciled": self.reconciled,
                "unchanged": self.unchanged, "stray": [_ts(h) for h in self.stray],
                "snapshot_id": self.snapshot_id, **self.push.as_dict()}


class DruidReconcile(HourReplacer):
    """Rebuilds closed hours of Druid's datasource from one snapshot of the ledger table."""

    name = "druid_reconcile"

    def __init__(self, table: Table, config: DruidConfig, api: DruidAPI | None = None, *,
                 staging_path: str = "", sleep: Callable[[float], None] = time.sleep) -> None:
        # "auto" staging: for a Druid on this machine a folder in the temporary directory
        # (local:<tmp>/dredge-reconcile.druid-staging, read by its indexers), else inline
        super().__init__(config, api, staging_path or os.path.join(tempfile.gettempdir(),
                                                                   "dredge-reconcile"), sleep=sleep)
        self.table = table
        self._snapshot_id: int | None = None
        self._marks: dict[int, str] = {}

    # -- planning ---------------------------------------------------------------------------

    def druid_marks(self, start: int | None, end: int) -> dict[int, dict[str | None, int]]:
        """Per hour in Druid: how many rows carry each mark (None: rows of the live stream)."""
        ds = self.config.datasource.replace('"', '""')
        where = f"\"__time\" < TIMESTAMP '{_ts(end)}'"
        if start is not None:
            where += f" AND \"__time\" >= TIMESTAMP '{_ts(start)}'"
        query = (f"SELECT TIME_FLOOR(\"__time\", 'PT1H') AS \"hour\", \"{MARK_COLUMN}\" AS mark, "
                 f'COUNT(*) AS n FROM "{ds}" WHERE {where} GROUP BY 1, 2')
        context = {"sqlTimeZone": "Etc/UTC"}
        try:
            rows = self.api.sql(query, context)
        except SinkError as exc:
            text = str(exc)
            if f"Object '{self.config.datasource}' not found" in text:
                return {}  # no datasource yet
            if MARK_COLUMN not in text:
                raise
            # no segment has the mark yet: every row is the live stream's (or a backfill's)
            rows = self.api.sql(query.replace(f'"{MARK_COLUMN}"', "NULL", 1), context)
        out: dict[int, dict[str | None, int]] = {}
        for r in rows:
            hour = int(datetime.fromisoformat(str(r["hour"]).replace("Z", "+00:00")).timestamp())
            out.setdefault(hour, {})[r["mark"] or None] = int(r["n"])
        return out

    def plan(self, start: int | None = None, end: int | None = None, *,
             grace_s: float = DEFAULT_GRACE_S, now: float | None = None) -> Plan:
        """Closed hours in [start, end) to rebuild, from the table's current snapshot."""
        now = time.time() if now is None else now
        closed = int((now - grace_s) // HOUR * HOUR)
        end = closed if end is None else min(int(end) // HOUR * HOUR + (HOUR if end % HOUR else 0), closed)
        start = None if start is None else int(start) // HOUR * HOUR
        self.table.refresh()
        snapshot = self.table.current_snapshot()
        plan = Plan(snapshot.snapshot_id if snapshot else None, end)
        files = hour_files(self.table, snapshot.snapshot_id, start, end) if snapshot else {}
        marks = self.druid_marks(start, end)
        for hour in sorted(files):
            mark = fingerprint(files[hour])
            if set(marks.get(hour, {})) == {mark}:
                plan.unchanged.append(hour)
            else:
                plan.todo[hour] = mark
        plan.stray = sorted(h for h in marks if h not in files)
        return plan

    # -- running ----------------------------------------------------------------------------

    def run(self, start: int | None = None, end: int | None = None, *,
            grace_s: float = DEFAULT_GRACE_S, now: float | None = None, dry_run: bool = False,
            progress: Callable[[PushSummary], None] | None = None) -> ReconcileSummary:
        """Rebuild every closed hour that changed; SinkError if Druid fails (what was done stays
        done: the next run redoes only the rest)."""
        t0 = time.perf_counter()
        plan = self.plan(start, end, grace_s=grace_s, now=now)
        summary = ReconcileSummary(checked=len(plan.todo) + len(plan.unchanged),
                                   unchanged=len(plan.unchanged), stray=plan.stray,
                                   snapshot_id=plan.snapshot_id)
        for hour in plan.stray:
            log.warning("druid_reconcile_stray_hour", datasource=self.config.datasource,
                        hour=_ts(hour), reason="Druid has rows for an hour the ledger has none of")
        if dry_run or not plan.todo:
            summary.push.pending = len(plan.todo)
            return summary
        self._snapshot_id, self._marks = plan.snapshot_id, plan.todo
        try:
            for s, e, parts, rows in self._statements(sorted(plan.todo)):
                self._replace(s, e, parts, rows, summary.push)
                hours = sum(1 for h in plan.todo if s <= h < e)
                summary.push.hours += hours
                summary.reconciled += hours
                if progress is not None:
                    progress(summary.push)
        finally:
            summary.push.pending = len(plan.todo) - summary.reconciled
            summary.push.seconds = time.perf_counter() - t0
        log.info("druid_reconcile_done", datasource=self.config.datasource,
                 snapshot=plan.snapshot_id, reconciled=summary.reconciled,
                 unchanged=summary.unchanged, stray=len(plan.stray), rows=summary.push.rows)
        return summary

    def _hour_lines(self, hour: int) -> tuple[bytes, int]:
        flows = scan_flows(self.table, time_filter(hour, hour + HOUR), self._snapshot_id)
        if flows.num_rows == 0:
            return b"", 0
        lines, _ = encode(Rolled.from_table(flows))
        return b"\n".join(lines) + b"\n", flows.num_rows

    def _visible(self, start: int, end: int, hours: list[int]) -> str:
        """Each rebuilt hour carries its new mark, and only it, in what the Broker answers
        (else the next plan would rebuild it again)."""
        marks = self.druid_marks(start, end)
        for hour in hours:
            if set(marks.get(hour, {})) != {self._marks[hour]}:
                return f"{_ts(hour)}: marks {sorted(map(str, marks.get(hour, {})))}"
        return ""

    def _extra(self, start: int, end: int) -> list[tuple[str, str]]:
        """The mark: each hour's fingerprint, chosen by the row's hour."""
        cases = " ".join(f"WHEN TIMESTAMP '{_ts(h)}' THEN '{self._marks[h]}'"
                         for h in sorted(self._marks) if start <= h < end)
        return [(MARK_COLUMN, f"CASE TIME_FLOOR(TIME_PARSE(\"window_start\"), 'PT1H') {cases} END")]
