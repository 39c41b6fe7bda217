"""End-to-end check of the local Druid (infra/druid/druid.sh up): Kinesis and SQL ingestion.

Run with the project's venv: ``.venv/bin/python infra/druid/smoke.py [kinesis|msq|all]``.
It talks only to 127.0.0.1, at the ports druid.sh uses (same environment variables).

kinesis: create a stream in kinesis-local, put rolled-up rows shaped like Dredge's output, start
         a Kinesis supervisor on the Overlord, wait until Druid SQL sums to what was put.
msq:     REPLACE INTO a datasource from inline rows (SQL-based ingestion, /druid/v2/sql/task),
         wait for the task, then query the sums.

tests/integration/test_druid_infra.py imports these functions.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Endpoints:
    coordinator: str  # the Coordinator is also the Overlord
    broker: str
    router: str
    kinesis: str

    @classmethod
    def from_env(cls) -> Endpoints:
        def url(var: str, default: int) -> str:
            return f"http://127.0.0.1:{os.environ.get(var, default)}"

        return cls(
            coordinator=url("DRUID_COORDINATOR_PORT", 18081),
            broker=url("DRUID_BROKER_PORT", 18082),
            router=url("DRUID_ROUTER_PORT", 18888),
            kinesis=url("KINESIS_LOCAL_PORT", 14568),
        )

    @property
    def overlord(self) -> str:
        return self.coordinator


def http(method: str, url: str, body: Any = None, timeout: float = 30.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise RuntimeError(f"{method} {url} -> HTTP {exc.code}: {detail}") from exc
    return json.loads(raw) if raw else None


def healthy(url: str) -> bool:
    try:
        return http("GET", url + "/status/health", timeout=3) is True
    except (OSError, RuntimeError):
        return False


def unreachable(ep: Endpoints) -> str | None:
    """Why the cluster cannot be used, or None when every endpoint answers."""
    for name, url in (
        ("coordinator/overlord", ep.coordinator),
        ("broker", ep.broker),
        ("router", ep.router),
    ):
        if not healthy(url):
            return f"Druid {name} not healthy at {url} (make druid-up)"
    try:
        urllib.request.urlopen(ep.kinesis, timeout=3).close()
    except urllib.error.HTTPError:
        pass  # it answered
    except OSError:
        return f"kinesis-local not answering at {ep.kinesis} (make druid-up)"
    return None


def sql(ep: Endpoints, query: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = http("POST", ep.broker + "/druid/v2/sql", {"query": query})
    return rows


def rollup_rows(n: int) -> list[dict[str, Any]]:
    """Rows shaped like Dredge's rolled-up output, spread over a few minutes and app pairs."""
    apps = [("api", "db"), ("web", "api"), ("batch", "s3")]
    rows = []
    for i in range(n):
        src, dst = apps[i % len(apps)]
        rows.append(
            {
                "window_start": f"2026-11-25T10:{i % 5:02d}:00Z",
                "src_app": src,
                "dst_app": dst,
                "bytes": 100 + i,
                "packets": 2 + i % 3,
                "flows": 1,
            }
        )
    return rows


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {k: sum(int(r[k]) for r in rows) for k in ("bytes", "packets", "flows")}


def kinesis_client(ep: Endpoints) -> Any:
    import boto3

    return boto3.client(
        "kinesis",
        endpoint_url=ep.kinesis,
        region_name="us-east-1",
        aws_access_key_id="dredge",
        aws_secret_access_key="dredge",
    )


def create_stream(client: Any, stream: str, shards: int = 1) -> None:
    client.create_stream(StreamName=stream, ShardCount=shards)
    client.get_waiter("stream_exists").wait(
        StreamName=stream, WaiterConfig={"Delay": 0.5, "MaxAttempts": 60}
    )


def put_rows(client: Any, stream: str, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 100):
        batch = rows[start : start + 100]
        out = client.put_records(
            StreamName=stream,
            Records=[
                {"Data": json.dumps(r).encode(), "PartitionKey": f"{r['src_app']}|{r['dst_app']}"}
                for r in batch
            ],
        )
        if out.get("FailedRecordCount"):
            raise RuntimeError(f"put_records failed for {out['FailedRecordCount']} records")


def kinesis_supervisor_spec(datasource: str, stream: str, endpoint: str) -> dict[str, Any]:
    return {
        "type": "kinesis",
        "spec": {
            "dataSchema": {
                "dataSource": datasource,
                "timestampSpec": {"column": "window_start", "format": "iso"},
                "dimensionsSpec": {"dimensions": ["src_app", "dst_app"]},
                "metricsSpec": [
                    {"type": "count", "name": "rows"},
                    {"type": "longSum", "name": "bytes", "fieldName": "bytes"},
                    {"type": "longSum", "name": "packets", "fieldName": "packets"},
                    {"type": "longSum", "name": "flows", "fieldName": "flows"},
                ],
                "granularitySpec": {
                    "type": "uniform",
                    "segmentGranularity": "hour",
                    "queryGranularity": "minute",
                    "rollup": True,
                },
            },
            "ioConfig": {
                "type": "kinesis",
                "stream": stream,
                "endpoint": endpoint,
                "inputFormat": {"type": "json"},
                "useEarliestSequenceNumber": True,
                "taskCount": 1,
                "replicas": 1,
                "taskDuration": "PT10M",
                "period": "PT5S",
                "startDelay": "PT1S",
            },
            "tuningConfig": {"type": "kinesis", "maxRowsInMemory": 100000},
        },
    }


def submit_supervisor(ep: Endpoints, spec: dict[str, Any]) -> str:
    out = http("POST", ep.overlord + "/druid/indexer/v1/supervisor", spec, timeout=60)
    supervisor_id: str = out["id"]
    return supervisor_id


def terminate_supervisor(ep: Endpoints, supervisor_id: str) -> None:
    http("POST", f"{ep.overlord}/druid/indexer/v1/supervisor/{supervisor_id}/terminate", timeout=60)


def datasource_tasks(ep: Endpoints, datasource: str, state: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = http(
        "GET", f"{ep.overlord}/druid/indexer/v1/tasks?state={state}&datasource={datasource}"
    )
    return tasks


def shutdown_tasks(ep: Endpoints, datasource: str) -> list[str]:
    """Kill a datasource's running tasks (what a graceful stop left behind); return their ids."""
    ids = [t["id"] for t in datasource_tasks(ep, datasource, "running")]
    for task_id in ids:
        http("POST", f"{ep.overlord}/druid/indexer/v1/task/{task_id}/shutdown")
    return ids


def wait_tasks_done(ep: Endpoints, datasource: str, timeout: float) -> list[dict[str, Any]]:
    """Wait until the datasource has no running task; return its completed tasks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and datasource_tasks(ep, datasource, "running"):
        time.sleep(1)
    return datasource_tasks(ep, datasource, "complete")


def supervisor_status(ep: Endpoints, supervisor_id: str) -> dict[str, Any]:
    status: dict[str, Any] = http(
        "GET", f"{ep.overlord}/druid/indexer/v1/supervisor/{supervisor_id}/status"
    )
    return status


def datasource_sums(ep: Endpoints, datasource: str) -> dict[str, int]:
    rows = sql(
        ep,
        f'SELECT COUNT(*) AS "rows", SUM("bytes") AS "bytes", SUM("packets") AS "packets", '
        f'SUM("flows") AS "flows" FROM "{datasource}"',
    )
    if not rows:
        return {}
    return {k: int(v or 0) for k, v in rows[0].items()}


def wait_sums(
    ep: Endpoints, datasource: str, expected: dict[str, int], timeout: float
) -> tuple[dict[str, int], float]:
    """Poll Druid SQL until the sums match (or time runs out); return the last sums, elapsed s."""
    t0 = time.monotonic()
    last: dict[str, int] = {}
    while time.monotonic() - t0 < timeout:
        try:
            last = datasource_sums(ep, datasource)
        except RuntimeError:
            last = {}  # the datasource does not exist yet: the SQL planner says "not found"
        if last and all(last.get(k) == v for k, v in expected.items()):
            break
        time.sleep(0.5)
    return last, time.monotonic() - t0


def wait_supervisor_reading(ep: Endpoints, supervisor_id: str, timeout: float) -> None:
    """Wait until the supervisor tracks a task with offsets. Terminating it sooner (a few seconds
    after the task starts) can leave that task READING forever, outside any supervisor."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = supervisor_status(ep, supervisor_id)["payload"].get("activeTasks") or []
        if any(t.get("currentOffsets") for t in active):
            return
        time.sleep(0.5)


def segments(ep: Endpoints, datasource: str) -> list[dict[str, Any]]:
    return sql(
        ep,
        "SELECT segment_id, is_published, is_available, is_realtime, num_rows "
        f"FROM sys.segments WHERE datasource = '{datasource}'",
    )


def run_kinesis(ep: Endpoints, n: int = 100, timeout: float = 180.0) -> dict[str, Any]:
    """Two batches of n rows: the first also waits for the supervisor to start its task; the
    second lands in a running task, which is the steady state (put -> queryable latency).
    Then the supervisor is terminated: its task publishes and hands off to the Historical."""
    suffix = uuid.uuid4().hex[:8]
    stream, datasource = f"dredge-smoke-{suffix}", f"dredge_smoke_kinesis_{suffix}"
    client = kinesis_client(ep)
    create_stream(client, stream)
    first, second = rollup_rows(n), rollup_rows(n)
    supervisor_id = submit_supervisor(ep, kinesis_supervisor_spec(datasource, stream, ep.kinesis))
    killed: list[str] = []
    try:
        t0 = time.monotonic()
        put_rows(client, stream, first)
        got_first, _ = wait_sums(ep, datasource, totals(first), timeout)
        cold = time.monotonic() - t0
        expected = totals(first + second)
        t1 = time.monotonic()
        put_rows(client, stream, second)
        got, _ = wait_sums(ep, datasource, expected, timeout)
        warm = time.monotonic() - t1
        status = supervisor_status(ep, supervisor_id)["payload"]
        wait_supervisor_reading(ep, supervisor_id, 30)
    finally:
        terminate_supervisor(ep, supervisor_id)
        t2 = time.monotonic()
        done = wait_tasks_done(ep, datasource, timeout)
        handoff = time.monotonic() - t2
        killed = shutdown_tasks(ep, datasource)
    got_after_handoff = datasource_sums(ep, datasource)
    return {
        "stream": stream,
        "datasource": datasource,
        "supervisor": supervisor_id,
        "supervisor_state": status.get("detailedState"),
        "expected": expected,
        "got_after_first_batch": got_first,
        "got": got,
        "first_put_to_queryable_s": round(cold, 1),
        "put_to_queryable_s": round(warm, 1),
        "tasks": {t["id"]: t["status"] for t in done},
        "tasks_killed": killed,
        "terminate_to_handoff_s": round(handoff, 1),
        "segments": segments(ep, datasource),
        "got_after_handoff": got_after_handoff,
    }


def run_msq(ep: Endpoints, n: int = 100, timeout: float = 300.0) -> dict[str, Any]:
    datasource = f"dredge_smoke_msq_{uuid.uuid4().hex[:8]}"
    rows = rollup_rows(n)
    expected = totals(rows)
    inline = "\n".join(json.dumps(r) for r in rows)
    query = f"""
REPLACE INTO "{datasource}" OVERWRITE ALL
SELECT
  TIME_FLOOR(TIME_PARSE("window_start"), 'PT1M') AS __time,
  "src_app", "dst_app",
  SUM("bytes") AS "bytes", SUM("packets") AS "packets", SUM("flows") AS "flows"
FROM TABLE(
  EXTERN(
    '{json.dumps({"type": "inline", "data": inline})}',
    '{json.dumps({"type": "json"})}'
  )
) EXTEND ("window_start" VARCHAR, "src_app" VARCHAR, "dst_app" VARCHAR,
          "bytes" BIGINT, "packets" BIGINT, "flows" BIGINT)
GROUP BY 1, 2, 3
PARTITIONED BY HOUR
"""
    t0 = time.monotonic()
    out = http(
        "POST", ep.broker + "/druid/v2/sql/task", {"query": query, "context": {"maxNumTasks": 2}}
    )
    task_id = out["taskId"]
    state = "RUNNING"
    status: dict[str, Any] = {}
    while time.monotonic() - t0 < timeout:
        status = http("GET", f"{ep.overlord}/druid/indexer/v1/task/{task_id}/status")["status"]
        state = status.get("statusCode") or status.get("status")
        if state in ("SUCCESS", "FAILED"):
            break
        time.sleep(1)
    task_s = time.monotonic() - t0
    got: dict[str, int] = {}
    if state == "SUCCESS":
        # Segments are queryable once a Historical loads them (the Coordinator assigns them).
        got, _ = wait_sums(ep, datasource, expected, timeout=120)
    return {
        "datasource": datasource,
        "task": task_id,
        "state": state,
        "error": status.get("errorMsg"),
        "expected": expected,
        "got": got,
        "task_s": round(task_s, 1),
        "queryable_s": round(time.monotonic() - t0, 1),
    }


def main(argv: list[str]) -> int:
    what = argv[1] if len(argv) > 1 else "all"
    ep = Endpoints.from_env()
    why = unreachable(ep)
    if why:
        print(why, file=sys.stderr)
        return 2
    ok = True
    if what in ("kinesis", "all"):
        res = run_kinesis(ep)
        print("kinesis:", json.dumps(res))
        ok &= all(res["got"].get(k) == v for k, v in res["expected"].items())
        ok &= all(res["got_after_handoff"].get(k) == v for k, v in res["expected"].items())
        ok &= not res["tasks_killed"] and set(res["tasks"].values()) == {"SUCCESS"}
    if what in ("msq", "all"):
        res = run_msq(ep)
        print("msq:", json.dumps(res))
        ok &= res["state"] == "SUCCESS" and all(
            res["got"].get(k) == v for k, v in res["expected"].items()
        )
    print("smoke:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
