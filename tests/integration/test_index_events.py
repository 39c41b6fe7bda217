"""Assignment events from a real Kinesis API (moto in server mode) and from an appended
file: late and out-of-order events land at their own time; positions survive a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import orjson
import pyarrow as pa
import pytest

from dredge.flowlog.parser import parse_addresses
from dredge.index.live import IndexManager
from dredge.index.providers.config import EventFileConfig, EventStreamConfig, IndexConfig
from dredge.index.providers.events import AssignmentFile, AssignmentStream
from dredge.index.snapshot import IndexSnapshot
from dredge.testing import FakeClock, MotoServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def apps(snap: IndexSnapshot, ips: list[str], times: list[int]) -> list[str]:
    ids, _ = snap.lookup(parse_addresses(pa.array(ips)), np.array(times, np.int64))
    return [snap.owners.column("app")[int(i)].as_py() for i in ids]


def line(ip: str, at: int | str, app: str | None = None) -> bytes:
    rec: dict[str, Any] = {"ip": ip}
    if app is None:
        rec["unassigned_at"] = at
    else:
        rec |= {"app": app, "cluster": f"{app}-prod", "type": "ecs-task", "assigned_at": at}
    return orjson.dumps(rec) + b"\n"


async def until(cond: Any, m: IndexManager, tries: int = 600) -> None:
    """Wait (in event-loop turns, not wall-clock thresholds) until the index shows cond."""
    for _ in range(tries):
        m.rebuild_now()
        if cond(m.current()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the index never showed the expected owners")


def test_kinesis_events_out_of_order_and_restart(moto: MotoServer, tmp_path: Path) -> None:
    moto.reset()
    kin = boto3.client("kinesis", region_name="us-east-1", endpoint_url=moto.endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    kin.create_stream(StreamName="assignments", ShardCount=2)
    kin.get_waiter("stream_exists").wait(StreamName="assignments", WaiterConfig={"Delay": 0.2})

    def put(*lines: bytes, key: str = "k") -> None:
        kin.put_record(StreamName="assignments", Data=b"".join(lines), PartitionKey=key)

    state = tmp_path / "index.arrow"
    clock = FakeClock(10_000)  # retention 24 h: every event here is recent enough
    cfg = EventStreamConfig(stream="assignments", poll_interval_s=0.05)
    # arrival order: B at 2000, release at 3000 (other shard), then A at 1000 (late), garbage
    put(line("10.0.5.1", 2000, "b"), key="a")
    put(line("10.0.5.1", 3000), key="zz")
    put(line("10.0.5.1", "1970-01-01T00:16:40Z", "a"), b"not json\n", key="b")

    async def first() -> None:
        m = IndexManager(IndexConfig(state_path=str(state)), clock=clock)
        m.add(AssignmentStream(cfg, m))
        await m.start()
        await until(lambda s: apps(s, ["10.0.5.1"] * 4, [999, 1000, 2000, 3000])
                    == ["unknown", "a", "b", "unknown"], m)
        st = m.status()["events/kinesis/assignments"]
        assert (st.accepted, st.invalid) == (3, 0)  # a bad line is counted by the metric
        await m.stop()

    asyncio.run(first())
    put(line("10.0.5.2", 5000, "c"))

    async def restart() -> None:
        m = IndexManager(IndexConfig(state_path=str(state)), clock=clock)
        m.add(AssignmentStream(cfg, m))
        await m.start()
        await until(lambda s: apps(s, ["10.0.5.2"], [5000]) == ["c"], m)
        # history from before the restart is there, and nothing was read twice
        assert apps(m.current(), ["10.0.5.1"] * 3, [1500, 2500, 3500]) == ["a", "b", "unknown"]
        assert m.status()["events/kinesis/assignments"].accepted == 4
        assert len(m.history) == 4
        await m.stop()

    asyncio.run(restart())


def test_appended_file_is_followed_and_resumed(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    state = tmp_path / "index.arrow"
    path.write_bytes(line("10.0.6.1", 100, "api") + line("10.0.6.1", 50, "early"))
    clock = FakeClock(10_000)  # retention 24 h: every event here is recent enough
    cfg = EventFileConfig(path=str(path), poll_interval_s=0.02)

    async def first() -> None:
        m = IndexManager(IndexConfig(state_path=str(state)), clock=clock)
        f = AssignmentFile(cfg, m)
        m.add(f)
        await m.start()
        await until(lambda s: apps(s, ["10.0.6.1"] * 2, [60, 100]) == ["early", "api"], m)
        with path.open("ab") as fh:  # half a line: not read until it is complete
            fh.write(line("10.0.6.1", 200)[:10])
        assert f.read_once() == 0
        with path.open("ab") as fh:
            fh.write(line("10.0.6.1", 200)[10:])
        await until(lambda s: apps(s, ["10.0.6.1"], [200]) == ["unknown"], m)
        await m.stop()

    asyncio.run(first())
    with path.open("ab") as fh:
        fh.write(line("10.0.6.2", 300, "web"))

    async def restart() -> None:
        m = IndexManager(IndexConfig(state_path=str(state)), clock=clock)
        m.add(AssignmentFile(cfg, m))
        await m.start()
        await until(lambda s: apps(s, ["10.0.6.2"], [300]) == ["web"], m)
        assert m.status()[f"events/file/{path}"].accepted == 4  # 3 before, 1 after: no re-read
        await m.stop()

    asyncio.run(restart())

    # rotation: a new file at the same path is read from its start
    path.unlink()
    path.write_bytes(line("10.0.6.3", 400, "new"))

    async def rotated() -> None:
        m = IndexManager(IndexConfig(state_path=str(state)), clock=clock)
        m.add(AssignmentFile(cfg, m))
        await m.start()
        await until(lambda s: apps(s, ["10.0.6.3", "10.0.6.2"], [400, 400]) == ["new", "web"], m)
        await m.stop()

    asyncio.run(rotated())
