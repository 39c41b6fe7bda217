"""`dredge run` with the live index across restarts: the index state (history, not only
current owners) survives a restart; with a holdback, `kill -9` or SIGTERM while batches are
held loses and duplicates nothing (a held batch is never checkpointed: read again next run).

Real servers: moto (Kinesis, DynamoDB) in server mode; the daemon runs as a process. The
moment to stop is chosen by the daemon's own gauge (`dredge_holdback_held_batches` > 0 on
its /metrics), not by a sleep.
"""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

import orjson
import pytest

from dredge.cli import main
from dredge.testing import MotoServer, free_port
from tests.integration.streams import (
    PutLog,
    Worker,
    caught_up,
    create_stream,
    dynamodb,
    encode_mixed,
    kinesis,
    lease_checkpoints,
    line_totals,
    lines_upto,
    put_payloads,
    store_checkpoints,
    store_totals,
    wait_for,
)
from tests.integration.test_daemon_index import (
    X,
    Y,
    assignment,
    by_source,
    flow_lines,
    held_batches,
    store_by_source,
    write_index_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _release(ip: str, at: int) -> bytes:
    return orjson.dumps({"ip": ip, "unassigned_at": at}) + b"\n"


def test_index_history_survives_restart(moto: MotoServer, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    stream = f"flows-{uuid.uuid4().hex[:8]}"
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 2)
    table = f"leases-{stream}-{stream}"
    now = int(time.time())
    moved = now - 1000  # X: app-a until here, then app-c
    events = tmp_path / "assignments.jsonl"
    events.write_bytes(assignment(X, "app-a", now - 7200) + assignment(Y, "app-b", now - 7200)
                       + _release(X, moved) + assignment(X, "app-c", moved))
    state = tmp_path / "index.arrow"
    db = tmp_path / "w.duckdb"
    rng = random.Random(11)
    log = PutLog()
    # Run 1: the events file feeds the index; the state is saved periodically and on stop.
    cfg1 = write_index_config(tmp_path / "run1.toml", stream=stream, db=db, worker_id="w1", index=f"""
state_path = "{state}"
save_interval_s = 0.5
[[index.events]]
path = "{events}"
poll_interval_s = 0.2
""")
    first = flow_lines([X, Y], now - 3000, 1000, seed=1)
    worker = Worker(cfg1, moto.env(), tmp_path / "w.log").start().wait_started()
    try:
        put_payloads(kin, stream, encode_mixed(first, rng), rng, log)
        wait_for(lambda: caught_up(lease_checkpoints(ddb, table), log.last_sequence()), 120,
                 "run 1 to store its flows", alive=worker.check_alive)
        wait_for(state.exists, 60, "a periodic save of the index state", alive=worker.check_alive)
    finally:
        rc = worker.terminate()
    assert rc == 0, worker.tail()
    # Run 2: no provider at all, only the saved state: history from run 1 is what it knows.
    cfg2 = write_index_config(tmp_path / "run2.toml", stream=stream, db=db, worker_id="w1",
                              index=f'state_path = "{state}"\n')
    before, after = flow_lines([X, Y], now - 3000, 800, seed=2), flow_lines([X, Y], now - 300, 800, seed=3)
    worker = Worker(cfg2, moto.env(), tmp_path / "w.log").start().wait_started()
    try:
        put_payloads(kin, stream, encode_mixed(before + after, rng), rng, log)
        wait_for(lambda: caught_up(lease_checkpoints(ddb, table), log.last_sequence()), 120,
                 "run 2 to store its flows", alive=worker.check_alive)
    finally:
        rc = worker.terminate()
    assert rc == 0, worker.tail()
    expected = (by_source(first + before, {X: "app-a", Y: "app-b"})
                + by_source(after, {X: "app-c", Y: "app-b"}))
    assert store_by_source(db) == expected
    # `dredge index lookup --state`: the owner at a past time, and every interval of X.
    capsys.readouterr()
    assert main(["index", "lookup", X, "--state", str(state), "--at", str(now - 3000)]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["owner"]["app"] == "app-a"
    assert [(h["app"], h["start"], h["end"]) for h in out["history"]] == [
        ("app-a", now - 7200, moved), ("app-c", moved, None)]
    assert {h["source"] for h in out["history"]} == {f"events/file/{events}"}
    log_text = (tmp_path / "w.log").read_text()
    assert log_text.count("index_state_loaded") == 1 and log_text.count("daemon_started") == 2


def test_stops_while_batches_are_held_lose_and_duplicate_nothing(moto: MotoServer,
                                                                 tmp_path: Path) -> None:
    stream = f"flows-{uuid.uuid4().hex[:8]}"
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 2)
    now = int(time.time())
    ips = [X, Y, "10.1.0.9", "10.1.0.10"]
    owners = {ip: f"app-{i}" for i, ip in enumerate(ips)}
    events = tmp_path / "assignments.jsonl"
    events.write_bytes(b"".join(assignment(ip, app, now - 7200) for ip, app in owners.items()))
    db = tmp_path / "w.duckdb"
    port = free_port()
    # A fixed worker id: the restarted process adopts its own leases at once.
    cfg = write_index_config(tmp_path / "dredge.toml", stream=stream, db=db, worker_id="single",
                             holdback_s=3.0, flush_interval_s=0.2, metrics_port=port, index=f"""
[[index.events]]
path = "{events}"
poll_interval_s = 0.2
""")
    rng = random.Random(5)
    lines = flow_lines(ips, now - 600, 8000, seed=9)
    payloads = encode_mixed(lines, rng)
    chunks = [payloads[len(payloads) * k // 4: len(payloads) * (k + 1) // 4] for k in range(4)]
    log = PutLog()
    for chunk, stop in zip(chunks[:3], ("kill9", "sigterm", "kill9"), strict=True):
        worker = Worker(cfg, moto.env(), tmp_path / "w.log").start().wait_started()
        put_payloads(kin, stream, chunk, rng, log)
        wait_for(lambda: held_batches(port) > 0, 60, "batches in the holdback",
                 poll=0.05, alive=worker.check_alive)
        if stop == "kill9":
            worker.kill9()
        else:
            assert worker.terminate() == 0, worker.tail()
        # The store holds exactly the records up to its checkpoints, and those stop short of
        # what was put: the held batches were not stored, nor checkpointed.
        stored = line_totals(lines_upto(log, store_checkpoints(db)))
        assert store_totals(db).as_tuple() == stored.as_tuple()
        assert stored.flows < line_totals(log.lines()).flows
    assert "holdback_dropped" in (tmp_path / "w.log").read_text()  # the SIGTERM round
    worker = Worker(cfg, moto.env(), tmp_path / "w.log").start().wait_started()
    try:
        put_payloads(kin, stream, chunks[3], rng, log)
        wait_for(lambda: caught_up(lease_checkpoints(ddb, f"leases-{stream}-{stream}"),
                                   log.last_sequence()),
                 120, "checkpoints to reach the last records put", alive=worker.check_alive)
    finally:
        rc = worker.terminate()
    assert rc == 0, worker.tail()
    assert store_totals(db).as_tuple() == line_totals(log.lines()).as_tuple()
    assert store_by_source(db) == by_source(log.lines(), owners)
