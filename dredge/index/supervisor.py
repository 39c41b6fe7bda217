"""Background tasks of an index component, supervised: a crash is kept, never lost.

A component (the index manager, each provider) spawns its loops through a
:class:`Supervisor`; a loop that raises is logged and kept as the component's ``failure``.
The index manager then refuses to hand out snapshots (``current()`` raises), so the daemon
stops loudly instead of enriching with an index that silently stopped updating.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from dredge.telemetry.logging import get_logger

log = get_logger(__name__)


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
