"""The streaming daemon, built from a DredgeConfig (``dredge run``: :mod:`dredge.commands.run`).

Components start in order and stop in reverse (an ``AsyncExitStack`` unwinds whatever
started, on any failure)::

    HTTP server (dredge.serve: /metrics, /healthz, /readyz, /api/*, the dashboards)
      -> index (static snapshot, or the live IndexManager: state loaded, providers started)
      -> DuckDB sink (behind PublishingSink when [sink.kinesis_out] is set: each flush
      published to the output stream first) -> dead-letter file
      -> [sink.iceberg]: the Iceberg ledger (opened; the flusher commits it every
         commit_interval_s, lease checkpoints follow its commits, shards resume from it)
      -> batcher (decode, parse, [holdback], enrich, roll up, flush + checkpoint)
      -> one StreamConsumer per [[streams]] table (clients, lease table, shard readers)

SIGTERM / SIGINT: readers stop, the batcher processes what was read (batches still in the
holdback are dropped, not checkpointed), flushes and checkpoints, the leases are released,
then the index stops its providers and saves its state; exit 0. A component that crashes
stops the daemon with its error and a non-zero exit; a crashed shard reader is restarted by
its consumer. A crashed index provider stops the daemon too (``OwnerIndexError``): enriching
on with an index that silently stopped updating would attribute flows wrongly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from dredge.errors import ConfigError, DredgeError
from dredge.telemetry.logging import get_logger

if TYPE_CHECKING:  # imported when the daemon runs: `dredge --help` stays quick
    from dredge.batcher import StreamBatcher
    from dredge.config import DredgeConfig
    from dredge.sinks.iceberg.ledger import IcebergLedger
    from dredge.snapshots import SnapshotSource
    from dredge.sources.kinesis.consumer import StreamConsumer

log = get_logger(__name__)


INDEX_WATCH_INTERVAL_S = 1.0


class Daemon:
    """``snapshots``, if given, replaces the index of the config (the caller starts and
    stops it); the daemon still stops if its ``current()`` raises."""

    def __init__(self, config: DredgeConfig, snapshots: SnapshotSource | None = None) -> None:
        config.validate()
        config.require_streams()
        self.config = config
        self.worker_id = config.resolved_worker_id()
        self._snapshots = snapshots
        self.batcher: StreamBatcher | None = None
        self.consumers: list[StreamConsumer] = []

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (then shut down cleanly) or a component fails (raises)."""
        from dredge.batcher import StreamBatcher
        from dredge.serve.daemon import daemon_server
        from dredge.sinks.base import BatchSink
        from dredge.sinks.deadletter import DeadLetters
        from dredge.sinks.duckdb import DuckDBSink
        from dredge.sinks.kinesis_out import KinesisPublisher
        from dredge.sinks.publishing import PublishingSink
        from dredge.snapshots import index_from_config
        from dredge.sources.kinesis.consumer import StreamConsumer

        cfg = self.config
        async with contextlib.AsyncExitStack() as stack:
            store = DuckDBSink(cfg.sink.duckdb)  # opened below; the server reads it once open
            http = stack.enter_context(daemon_server(cfg.metrics, cfg.serve, store))
            snapshots: SnapshotSource
            manager = None
            if self._snapshots is not None:
                snapshots = self._snapshots
            else:
                snapshots, manager = await index_from_config(cfg.index)
                if manager is not None:
                    await manager.start()  # state loaded, first snapshot, providers polled once
                    stack.push_async_callback(manager.stop)  # last: after consumers and sink
                    snapshots.current()  # a provider that crashed while starting stops us here
            http.watch_index(snapshots, manager)
            await asyncio.to_thread(store.open)
            stack.callback(store.close)
            await asyncio.to_thread(store.claim_window, cfg.pipeline.window_s, "pipeline.window_s")
            await asyncio.to_thread(store.claim_ephemeral_from, cfg.pipeline.ephemeral_from,
                                    "pipeline.ephemeral_from")
            stack.callback(http.close_queries)  # first: its cursors keep the file open
            sink: BatchSink = store
            if cfg.sink.kinesis_out is not None:  # publish each flush, then store it
                sink = PublishingSink(store, KinesisPublisher(cfg.sink.kinesis_out))
            dead = DeadLetters(Path(cfg.dead_letter.path) if cfg.dead_letter.path else None)
            stack.callback(dead.close)
            ledger = await self._open_ledger(stack)
            batcher = StreamBatcher(sink, dead, snapshots, cfg.decode, cfg.pipeline, ledger=ledger)
            self.batcher = batcher

            async def stored(stream: str) -> dict[str, tuple[str, int]]:
                return await asyncio.to_thread(store.checkpoints, stream)

            for stream in cfg.streams:
                consumer = StreamConsumer(stream, cfg, self.worker_id, batcher.put,
                                          batcher.discard, stored, ledger=ledger)
                await consumer.open(stack)
                batcher.register(stream.name, stream.flow_format(), consumer)
                self.consumers.append(consumer)
            http.watch_leases(self.consumers)
            log.info("daemon_started", worker=self.worker_id, streams=len(cfg.streams),
                     sink=cfg.sink.duckdb.path,
                     publish_to=cfg.sink.kinesis_out.stream if cfg.sink.kinesis_out else None,
                     live_index=self._snapshots is None and cfg.index.live,
                     holdback_s=cfg.pipeline.holdback_s,
                     ledger=cfg.sink.iceberg.describe() if cfg.sink.iceberg else None)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(batcher.run(), name="batcher")
                for c in self.consumers:
                    tg.create_task(c.run(), name=f"consumer-{c.name}")
                tg.create_task(self._shutdown_on(stop), name="shutdown")
                tg.create_task(self._watch_index(snapshots, stop), name="index-watch")
                tg.create_task(http.run(stop), name="http-ready")
                if cfg.sink.iceberg is not None and cfg.sink.iceberg.reconcile_every_s:
                    tg.create_task(self._reconcile_druid(stop), name="druid-reconcile")
                http.started()
            log.info("daemon_stopped", worker=self.worker_id, flushes=batcher.flushes)

    async def _reconcile_druid(self, stop: asyncio.Event) -> None:
        """``[sink.iceberg] reconcile_every_s``: every closed hour of Druid rebuilt from the
        ledger table, as ``dredge druid reconcile`` does, until ``stop``. Druid or the table
        away: logged, the next round redoes it. Several workers may run it: each hour's mark
        is written with its rows, so a round finding the hour unchanged does nothing."""
        from dredge.sinks.druid_reconcile import DruidReconcile
        from dredge.sinks.iceberg.table import open_table

        ice, druid = self.config.sink.iceberg, self.config.sink.druid
        assert ice is not None and druid is not None  # SinkConfig.validate
        reconcile: DruidReconcile | None = None
        while not stop.is_set():
            try:
                if reconcile is None:
                    reconcile = DruidReconcile(await asyncio.to_thread(open_table, ice), druid)
                await asyncio.to_thread(reconcile.run, grace_s=ice.reconcile_grace_s)
            except Exception as exc:  # never stops the daemon (a bug is logged with its type)
                log.error("druid_reconcile_failed",
                          error=str(exc)[:500] if isinstance(exc, DredgeError)
                          else f"{type(exc).__name__}: {exc}"[:500],
                          retry_in_s=ice.reconcile_every_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ice.reconcile_every_s)

    async def _open_ledger(self, stack: contextlib.AsyncExitStack) -> IcebergLedger | None:
        """The Iceberg ledger of [sink.iceberg] (None without it). A table whose schema does
        not match stops the start (ConfigError); a catalog that cannot be reached yet is
        retried by the consumers and the commits (logged, not fatal)."""
        ice = self.config.sink.iceberg
        if ice is None:
            return None
        from dredge.errors import SinkError
        from dredge.sinks.iceberg.ledger import IcebergLedger

        ledger = IcebergLedger(ice, self.worker_id)
        try:
            await asyncio.to_thread(ledger.open)
        except SinkError as exc:
            log.warning("iceberg_ledger_unavailable", error=str(exc)[:300])
        stack.callback(ledger.close)
        return ledger

    @staticmethod
    async def _watch_index(snapshots: SnapshotSource, stop: asyncio.Event) -> None:
        """Raise (stopping the daemon) once the index stopped updating, even with no batch
        flowing: ``current()`` raises OwnerIndexError after a provider crashed."""
        while not stop.is_set():
            snapshots.current()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), INDEX_WATCH_INTERVAL_S)

    async def _shutdown_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        log.info("daemon_stopping", worker=self.worker_id)
        for c in self.consumers:
            await c.stop_reading()
        if self.batcher is not None:
            await self.batcher.drain_and_stop()
        for c in self.consumers:
            await c.release()


def run_daemon(config: DredgeConfig) -> int:
    """Run with signal handling; the exit code of ``dredge run``."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if early_stop.is_set():  # signalled while loading the config: start, then stop cleanly
            stop.set()
        await Daemon(config).run(stop)

    try:
        asyncio.run(main())
    except BaseException as exc:  # reported below; the exit code says it
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        leaves = _leaves(exc)
        for leaf in leaves:
            kind = "error" if isinstance(leaf, DredgeError) else "crashed"
            detail = str(leaf) if isinstance(leaf, DredgeError) else f"{type(leaf).__name__}: {leaf}"
            log.error("daemon_failed", error=f"{type(leaf).__name__}: {leaf}")
            sys.stderr.write(f"dredge: {kind}: {detail}\n")
        # refused at start (a store of another rollup window, the ledger table's schema): a usage
        # error, as in commands
        return 2 if all(isinstance(leaf, ConfigError) for leaf in leaves) else 1
    return 0


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


# Set by ``dredge run``'s signal handlers while the config loads: start, then stop cleanly.
early_stop = threading.Event()
