"""Background tasks of an index component, the protocol its providers follow, and the
base the built-in providers share.

A component spawns its loops through a :class:`Supervisor`; a loop that raises is logged
and kept as the component's ``failure``. The index manager then refuses to hand out
snapshots (``current()`` raises), so the daemon stops loudly instead of enriching with an
index that silently stopped updating. :class:`PollingProvider` is the start / poll loop /
stop / error-reporting scaffolding of EC2 inventory, assignment events and CIDR maps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from dredge.index import metrics
from dredge.telemetry.logging import get_logger

if TYPE_CHECKING:
    from dredge.index.live import SourceSink

log = get_logger(__name__)


class Provider(Protocol):
    """What the index manager starts and stops: EC2 inventory, assignment events, CIDR maps."""

    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    @property
    def failure(self) -> BaseException | None: ...


class Supervisor:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()
        self.failure: BaseException | None = None

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and self.failure is None:
            self.failure = exc
            log.error("index_task_crashed", component=self.owner, task=task.get_name(),
                      error=repr(exc))

    async def close(self) -> None:
        """Cancel every task and wait for them (idempotent)."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()


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
