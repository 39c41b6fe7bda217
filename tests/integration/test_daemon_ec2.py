"""`dredge run` with an `[[index.ec2]]` provider: addresses move between apps while the
daemon runs, and every flow is attributed to the owner at the flow's own time.

Real servers: moto in server mode (EC2, Kinesis, DynamoDB); the daemon runs as a process
polling EC2 every 0.3 s. Phase 1 puts flows that start at T1 while the first owners hold
the addresses. Then the instance of app ``api`` is terminated and its address comes back
on an interface of app ``web``, and the interface of app ``batch`` is retagged ``etl``. Once
the daemon's saved index shows the move (its state file, saved every 0.3 s), phase 2 puts
more flows starting at T1 (arriving late, after the move) and flows starting at T2 (after
the move), plus flows of an address released with its instance. The DuckDB store must
attribute T1 flows to the old owners, T2 flows to the new ones.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyarrow as pa
import pytest

from dredge.flowlog.parser import parse_addresses
from dredge.index.live import IndexManager
from dredge.testing import MotoServer
from tests.integration.streams import (
    REGION,
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
)
from tests.integration.test_daemon_index import flow_lines, store_by_source, write_index_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
AMI = "ami-12c6146b"
MOVED, RETAGGED, GONE = "10.0.1.5", "10.0.1.30", "10.0.1.7"


def _ec2(moto: MotoServer) -> Any:
    return boto3.client("ec2", region_name=REGION, endpoint_url=moto.endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _instance(ec2: Any, subnet: str, ip: str, app: str) -> str:
    r = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=subnet, PrivateIpAddress=ip,
                          TagSpecifications=[{"ResourceType": "instance",
                                              "Tags": [{"Key": "app", "Value": app}]}])
    return str(r["Instances"][0]["InstanceId"])


def _eni_tags(app: str) -> list[dict[str, Any]]:
    return [{"ResourceType": "network-interface", "Tags": [{"Key": "app", "Value": app}]}]


def _eni_of(ec2: Any, instance: str) -> str:
    for e in ec2.describe_network_interfaces()["NetworkInterfaces"]:
        if (e.get("Attachment") or {}).get("InstanceId") == instance:
            return str(e["NetworkInterfaceId"])
    raise AssertionError(f"no interface for {instance}")


def _saved_apps(state: Path, ips: list[str], t: int) -> list[str]:
    """Owners at t in the daemon's saved index (what `dredge index lookup --state` reads)."""
    if not state.exists():
        return []
    snap = IndexManager.from_state(state).current()
    ids, _ = snap.lookup(parse_addresses(pa.array(ips)), np.full(len(ips), t, np.int64))
    return [str(snap.owners.column("app")[int(i)]) for i in ids]


def test_flows_attributed_to_the_owner_at_their_time(moto: MotoServer, tmp_path: Path) -> None:
    moto.reset()
    ec2 = _ec2(moto)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    api = _instance(ec2, subnet, MOVED, "api")
    cache = _instance(ec2, subnet, GONE, "cache")
    batch = ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress=RETAGGED,
                                         TagSpecifications=_eni_tags("batch"))["NetworkInterface"]

    stream = f"flows-{uuid.uuid4().hex[:8]}"
    kin, ddb = kinesis(moto.endpoint), dynamodb(moto.endpoint)
    create_stream(kin, stream, 2)
    db, state = tmp_path / "w.duckdb", tmp_path / "index.arrow"
    cfg = write_index_config(tmp_path / "dredge.toml", stream=stream, db=db, worker_id="w1", index=f"""
state_path = "{state}"
save_interval_s = 0.3

[[index.ec2]]
regions = ["{REGION}"]
endpoint_url = "{moto.endpoint}"
poll_interval_s = 0.3
""")
    rng = random.Random(5)
    log = PutLog()
    ips = [MOVED, RETAGGED, GONE]
    worker = Worker(cfg, moto.env(), tmp_path / "w.log").start().wait_started()
    try:
        t1 = int(time.time())  # the daemon's first poll (at start) owns the addresses from before
        early = flow_lines(ips, t1, 600, seed=1)
        put_payloads(kin, stream, encode_mixed(early, rng), rng, log)
        wait_for(lambda: int(time.time()) > t1 + 1, 5, "the clock to pass T1")

        # the move, while the daemon runs
        ec2.terminate_instances(InstanceIds=[api, cache])
        ec2.delete_network_interface(NetworkInterfaceId=_eni_of(ec2, api))
        ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress=MOVED,
                                     TagSpecifications=_eni_tags("web"))
        ec2.create_tags(Resources=[batch["NetworkInterfaceId"]], Tags=[{"Key": "app", "Value": "etl"}])
        wait_for(lambda: _saved_apps(state, ips, int(time.time())) == ["web", "etl", "unknown"],
                 30, "the daemon's index to see the move", poll=0.3, alive=worker.check_alive)
        t2 = int(time.time()) + 1  # after the poll that saw the move

        late = flow_lines(ips, t1, 600, seed=2)  # old flows arriving after the move
        after = flow_lines(ips, t2, 600, seed=3)
        put_payloads(kin, stream, encode_mixed(late + after, rng), rng, log)
        wait_for(lambda: caught_up(lease_checkpoints(ddb, f"leases-{stream}-{stream}"),
                                   log.last_sequence()),
                 60, "checkpoints to reach the last records put", alive=worker.check_alive)
    finally:
        rc = worker.terminate()
    assert rc == 0, worker.tail()
    assert "index_started providers=1 events=3 intervals=3" in (tmp_path / "w.log").read_text()

    before = {MOVED: "api", RETAGGED: "batch", GONE: "cache"}
    now = {MOVED: "web", RETAGGED: "etl", GONE: "unknown"}
    truth: Counter[str] = Counter()
    for line in log.lines():  # independent of Dredge: split each line put
        f = line.split(b" ")
        truth[(before if int(f[10]) == t1 else now)[f[3].decode()]] += 1
    assert (truth["api"], truth["web"], truth["batch"], truth["etl"], truth["unknown"]) == \
        (400, 200, 400, 200, 200)
    assert store_by_source(db) == truth
