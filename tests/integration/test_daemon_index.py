"""`dredge run` with the live index from [index]: assignment events that arrive late are
attributed right with a holdback (and wrong without one); a crashed index provider stops the
daemon with its error instead of enriching on with a frozen index.

Real servers: moto (Kinesis, DynamoDB) in server mode; the daemon runs as a process, except
the crash test, which runs the Daemon in-process to inject a provider that crashes.
Helpers here are also used by test_daemon_index_restart.py.
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import duckdb
import orjson
import pytest

from dredge.app import Daemon
from dredge.config import load_config
from dredge.errors import OwnerIndexError
from dredge.index.live import IndexManager
from dredge.index.supervisor import Supervisor
from dredge.testing import MotoServer
from tests.integration.streams import (
    PutLog,
    Worker,
    caught_up,
    create_stream,
    dynamodb,
    encode_mixed,
    kinesis,
    lease_checkpoints,
    put_payloads,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

X, Y = "10.1.0.7", "10.1.0.8"  # X's owner changes (the event arrives late); Y's does not


def flow_lines(ips: list[str], start: int, n: int, seed: int) -> list[bytes]:
    """``n`` v2 lines from ``ips`` (round robin) to private peers, all starting at ``start``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            f"2 123456789012 eni-0abc{i % 5:04d} {ips[i % len(ips)]} 10.200.{rng.randrange(4)}."
            f"{rng.randint(1, 250)} {rng.randint(1024, 65535)} 443 6 {rng.randint(1, 50)}"
            f" {rng.randint(40, 9000)} {start} {start + 60} ACCEPT OK".encode())
    return out


def by_source(lines: list[bytes], owners: dict[str, str]) -> Counter[str]:
    """Expected flows per source app: each line's srcaddr looked up in ``owners``."""
    return Counter(owners[line.split(b" ")[3].decode()] for line in lines)


def assignment(ip: str, app: str, at: int) -> bytes:
    return orjson.dumps({"ip": ip, "app": app, "type": "ecs-task", "assigned_at": at}) + b"\n"


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def store_by_source(db: Path) -> Counter[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT src_app, sum(flows) FROM flows GROUP BY ALL").fetchall()
    finally:
        con.close()
    return Counter({str(app): int(n) for app, n in rows})


def held_batches(port: int) -> float:
    """The daemon's ``dredge_holdback_held_batches`` gauge (0 while /metrics is not up)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("dredge_holdback_held_batches "):
            return float(line.split()[1])
    return 0.0


def write_index_config(path: Path, *, stream: str, db: Path, worker_id: str, index: str,
                       holdback_s: float = 0.0, flush_interval_s: float = 0.3,
                       metrics_port: int = 0) -> Path:
    """A `dredge run` config whose ``[index]`` section is ``index`` (keys and sub-tables)."""
    return write_config(path, stream=stream, db=db, worker_id=worker_id,
                        index=f"debounce_s = 0.1\n{index}", holdback_s=holdback_s,
                        flush_interval_s=flush_interval_s, metrics_port=metrics_port)


# -- tests -----------------------------------------------------------------------------


def _run_late_event(moto: MotoServer, tmp_path: Path, holdback_s: float) -> tuple[Counter[str], Counter[str]]:
    """Flows of X and Y put to Kinesis; X's new owner (since an hour ago) is appended to the
    events file after the flows were put: with a holdback, while they are held; without,
    after they were stored. Returns (stored per source app, expected with the late event)."""
    stream = f"flows-{uuid.uuid4().hex[:8]}"
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 2)
    now = int(time.time())
    events = tmp_path / "assignments.jsonl"
    events.write_bytes(assignment(X, "old-app", now - 7200) + assignment(Y, "steady", now - 7200))
    db = tmp_path / "w.duckdb"
    cfg = write_index_config(tmp_path / "dredge.toml", stream=stream, db=db, worker_id="w1",
                             holdback_s=holdback_s, index=f"""
[[index.events]]
kind = "file"
path = "{events}"
poll_interval_s = 0.2
""")
    rng = random.Random(7)
    lines = flow_lines([X, Y], now - 300, 3000, seed=3)
    log = PutLog()
    worker = Worker(cfg, moto.env(), tmp_path / "w.log").start().wait_started()
    try:
        put_payloads(kin, stream, encode_mixed(lines, rng), rng, log)
        if holdback_s:
            append(events, assignment(X, "new-app", now - 3600))  # late, but within the holdback
        wait_for(lambda: caught_up(lease_checkpoints(ddb, f"leases-{stream}-{stream}"),
                                   log.last_sequence()),
                 120, "checkpoints to reach the last records put", alive=worker.check_alive)
        if not holdback_s:
            append(events, assignment(X, "new-app", now - 3600))  # the flows are stored already
    finally:
        rc = worker.terminate()
    assert rc == 0, worker.tail()
    # The events read while the index started were in its first snapshot (before any batch).
    assert "index_started providers=1 events=2 intervals=2" in (tmp_path / "w.log").read_text()
    return store_by_source(db), by_source(log.lines(), {X: "new-app", Y: "steady"})


def test_late_assignment_attributed_with_holdback(moto: MotoServer, tmp_path: Path) -> None:
    stored, truth = _run_late_event(moto, tmp_path, holdback_s=8.0)
    assert truth["new-app"] > 1000 and truth["steady"] > 1000
    assert stored == truth


def test_late_assignment_missed_without_holdback(moto: MotoServer, tmp_path: Path) -> None:
    stored, truth = _run_late_event(moto, tmp_path, holdback_s=0.0)
    # What a lookup at processing time knew: X still belonged to its previous owner.
    assert stored == Counter({"old-app": truth["new-app"], "steady": truth["steady"]})


class CrashingProvider:
    """An index provider whose loop raises once ``trigger`` is set (a bug, an unhandled error)."""

    name = "crashing"

    def __init__(self, trigger: asyncio.Event) -> None:
        self._trigger = trigger
        self._tasks = Supervisor(self.name)

    @property
    def failure(self) -> BaseException | None:
        return self._tasks.failure

    async def start(self) -> None:
        self._tasks.spawn(self._run(), "poll")

    async def stop(self) -> None:
        await self._tasks.close()

    async def _run(self) -> None:
        await self._trigger.wait()
        raise RuntimeError("provider bug (injected)")


def test_crashed_provider_stops_the_daemon(moto: MotoServer, tmp_path: Path) -> None:
    stream = f"flows-{uuid.uuid4().hex[:8]}"
    create_stream(kinesis(moto.endpoint), stream, 1)
    cfg = load_config(write_index_config(tmp_path / "dredge.toml", stream=stream,
                                         db=tmp_path / "w.duckdb", worker_id="w1", index=""),
                      env={})

    async def main() -> None:
        trigger, stop = asyncio.Event(), asyncio.Event()
        index = IndexManager(cfg.index.live_config())
        index.add(CrashingProvider(trigger))
        await index.start()
        daemon = Daemon(cfg, snapshots=index)
        try:
            run = asyncio.create_task(daemon.run(stop))
            async with asyncio.timeout(60):
                while not daemon.consumers and not run.done():
                    await asyncio.sleep(0.05)
            trigger.set()  # the daemon is up, idle: no batch would notice
            async with asyncio.timeout(60):  # stops by itself: `stop` is never set
                await run
        finally:
            await index.stop()

    with pytest.raises(BaseExceptionGroup) as info:
        asyncio.run(main())
    leaves = info.value.exceptions
    assert any(isinstance(e, OwnerIndexError) and "provider bug (injected)" in str(e) for e in leaves)
