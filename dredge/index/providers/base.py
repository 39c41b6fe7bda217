"""The one interface of the live index's providers, and the base the built-in ones share.

A provider is anything that follows :class:`~dredge.index.intake.Provider`: ``name`` (its
kind, a bounded metric label), ``async start()``, ``async stop()`` (idempotent) and
``failure``. It is built inert (no I/O in ``__init__``) from its settings and the index it
feeds (:class:`IndexFeed`: where it gets one :class:`~dredge.index.intake.SourceSink` per
source), and the index manager starts the providers in order and stops them in reverse.

:class:`PollingProvider` is the start / poll loop / stop / error-reporting scaffolding of
EC2 inventory, assignment events and CIDR maps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, Protocol

from dredge.index import metrics
from dredge.index.intake import Provider, SourceSink
from dredge.index.supervisor import Supervisor
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)


class IndexFeed(Protocol):
    """What a provider is given: the live index as its providers see it
    (:class:`~dredge.index.live.IndexManager` is one)."""

    clock: Callable[[], float]

    def sink(self, source: str, provider: str) -> SourceSink: ...

    def cutoff(self) -> int: ...


class PollingProvider:
    """The scaffolding every built-in provider shares: start once, poll on a fixed interval
    in a supervised task, stop by cancelling it, report failed calls the same way.

    ``start()`` runs :meth:`on_start` (restore a position, open a client) and then
    :meth:`first_poll` *before* returning, so what a provider reads while starting is in the
    index's first snapshot; then :meth:`poll` runs every ``interval_s`` until ``stop()``.
    A poll that raises crashes the provider (see :class:`Supervisor`); a call that fails and
    will be retried is reported with :meth:`report_error` and returns normally.
    """

    name: str = "provider"  # the metric label: a provider kind, bounded
    task_name: ClassVar[str] = "poll"

    def __init__(self, interval_s: float, supervisor: str = "") -> None:
        self.interval_s = interval_s
        self._tasks = Supervisor(supervisor or self.name)
        self._started = False

    @property
    def failure(self) -> BaseException | None:
        return self._tasks.failure

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self.on_start()
        await self.first_poll()
        self._tasks.spawn(self._loop(), self.task_name)

    async def stop(self) -> None:
        """Cancel the loop and every task spawned, then :meth:`on_stop` (idempotent)."""
        await self._tasks.close()
        await self.on_stop()

    async def on_start(self) -> None:
        """Before the first poll (no I/O happens in ``__init__``)."""

    async def first_poll(self) -> None:
        await self.poll()

    async def poll(self) -> object:
        raise NotImplementedError

    async def on_stop(self) -> None:
        """After the tasks are gone: release clients (must be idempotent)."""

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Another supervised task (a shard reader): a crash crashes the provider."""
        return self._tasks.spawn(coro, name)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.poll()

    def report_error(self, sink: SourceSink, error: BaseException | str, event: str = "",
                     **context: object) -> None:
        """A call that failed and will be retried: counted
        (``dredge_index_provider_errors_total{provider}``), kept as the source's last error
        (``dredge index stats``) and, with an ``event`` name, logged."""
        metrics.provider_errors_total.labels(self.name).inc()
        sink.touch(error=str(error))
        if event:
            log.warning(event, error=str(error), **context)


__all__ = ["IndexFeed", "PollingProvider", "Provider", "SourceSink"]
