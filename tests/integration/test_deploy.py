"""The CloudFormation templates of infra/aws deployed to moto, and `dredge run` configured from
their outputs, running with credentials that hold only the worker stack's policy.

Real servers: moto in server mode (CloudFormation, IAM, STS, Kinesis, DynamoDB, EC2), its own
process for this module because IAM enforcement (``/moto-api/reset-auth``, the runtime form of
``INITIAL_NO_AUTH_ACTION_COUNT``) is server-wide. The stacks are deployed first; then every
request is checked against the caller's IAM policies: the test's own calls use an operator
user allowed everything, the daemon a user holding copies of the worker role's policies.

What moto does not do, and how the test deals with it:

- ``AWS::Logs::SubscriptionFilter`` and ``AWS::S3::BucketPolicy`` are not supported by moto's
  CloudFormation (skipped with a warning; cfn-lint still checks them, tests/unit/infra). The
  test puts what the subscription filter would: CloudWatch Logs envelopes of flow-log lines in
  the stack's custom format, and a control message.
- moto ignores the streams' ``StreamModeDetails`` and ``StreamEncryption`` (no KMS calls), so
  the ``DecryptFlowLogStream`` statement is not exercised here.
- moto authorizes Kinesis, DynamoDB, EC2 and KMS calls against the resource ``*`` (it does not
  derive the ARN a call touches), where a statement scoped to an ARN never matches. The
  daemon's copy of the policy keeps every statement's actions and conditions and widens the
  resources of those services to ``*``; S3 and ``sts:AssumeRole`` are checked against their
  ARNs as shipped. The ARNs themselves are checked in tests/unit/infra/test_templates.py.
"""

from __future__ import annotations

import copy
import gzip
import json
import random
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from dredge.config import load_config
from dredge.decode import encode_cloudwatch
from dredge.testing import MotoServer, service_unavailable
from tests.integration.streams import (
    REGION,
    PutLog,
    Totals,
    Worker,
    caught_up,
    lease_checkpoints,
    put_control_message,
    store_totals,
    wait_for,
)
from tests.integration.test_daemon_index import flow_lines, store_by_source
from tests.integration.test_daemon_publish import published_rows, row_totals

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

INFRA = Path(__file__).resolve().parents[2] / "infra" / "aws"
ACCOUNT = "123456789012"
MOTO_UNSUPPORTED = {"AWS::Logs::SubscriptionFilter", "AWS::S3::BucketPolicy"}
RESOURCE_STAR_SERVICES = ("kinesis:", "dynamodb:", "ec2:", "kms:")  # see the module docstring
ENI_IP, ENI_APP = "10.9.0.5", "deploy-probe"  # an interface the EC2 provider must find
EXTERNAL_ID = "dredge-test-external-id"


class Aws:
    """The module's moto server, with an operator user and IAM enforcement switched on."""

    def __init__(self, server: MotoServer) -> None:
        self.server = server
        iam = self.client("iam", ("testing", "testing"))
        iam.create_user(UserName="operator")
        iam.put_user_policy(UserName="operator", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="operator")["AccessKey"]
        self.operator = (key["AccessKeyId"], key["SecretAccessKey"])
        req = urllib.request.Request(server.endpoint + "/moto-api/reset-auth", data=b"0",
                                     method="POST", headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(req, timeout=5).close()  # from now on every call is authorized

    def client(self, service: str, key: tuple[str, str] | None = None) -> Any:
        key = key or self.operator
        return boto3.client(service, region_name=REGION, endpoint_url=self.server.endpoint,
                            aws_access_key_id=key[0], aws_secret_access_key=key[1])

    def deploy(self, name: str, template: str, params: dict[str, str]) -> dict[str, str]:
        cfn = self.client("cloudformation")
        cfn.create_stack(StackName=name, TemplateBody=(INFRA / template).read_text(),
                         Capabilities=["CAPABILITY_NAMED_IAM"],
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
        cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1})
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def created_types(self, name: str) -> set[str]:
        rows = self.client("cloudformation").list_stack_resources(StackName=name)["StackResourceSummaries"]
        return {r["ResourceType"] for r in rows if r.get("ResourceType")}


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    server = MotoServer(tmp_path_factory.mktemp("moto-deploy"))
    try:
        server.start()
    except RuntimeError as exc:
        service_unavailable(str(exc))
    try:
        yield Aws(server)
    finally:
        server.stop()


@dataclass
class Deployment:
    tag: str
    vpc: str
    delivery: dict[str, str]
    worker: dict[str, str]
    reader: dict[str, str]
    key: tuple[str, str]  # the daemon's credentials (the IAM user "worker-<tag>")
    policies: dict[str, dict[str, Any]]  # the worker role's inline policies, as deployed

    @property
    def user(self) -> str:
        return f"worker-{self.tag}"


def deploy_all(aws: Aws) -> Deployment:
    """delivery, index-reader (trusting the daemon's user), worker; the user gets the role's policies."""
    tag = uuid.uuid4().hex[:8]
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
    ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress=ENI_IP, TagSpecifications=[
        {"ResourceType": "network-interface", "Tags": [{"Key": "app", "Value": ENI_APP}]}])
    iam = aws.client("iam")
    user = iam.create_user(UserName=f"worker-{tag}")["User"]
    key = iam.create_access_key(UserName=f"worker-{tag}")["AccessKey"]

    delivery = aws.deploy(f"delivery-{tag}", "delivery.yaml",
                          {"VpcId": vpc, "Delivery": "both", "StreamName": f"flows-{tag}"})
    reader = aws.deploy(f"reader-{tag}", "index-reader.yaml", {
        "WorkerPrincipalArn": user["Arn"], "ExternalId": EXTERNAL_ID, "RoleName": f"reader-{tag}"})
    worker = aws.deploy(f"worker-{tag}", "worker.yaml", {
        "InputStreamArn": delivery["StreamArn"], "InputKmsKeyArn": delivery["KmsKeyArn"],
        "LeaseTablePrefix": f"leases-{tag}", "OutputStreamName": f"out-{tag}",
        "Ec2Inventory": "false", "IndexReaderRoleArns": reader["RoleArn"],
        "ReplayBucketName": delivery["BucketName"], "RoleName": f"worker-{tag}"})
    role = f"worker-{tag}"
    policies = {name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                for name in iam.list_role_policies(RoleName=role)["PolicyNames"]}
    dep = Deployment(tag, vpc, delivery, worker, reader, (key["AccessKeyId"], key["SecretAccessKey"]), policies)
    grant(aws, dep)
    return dep


def for_moto(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy as moto can evaluate it: see the module docstring."""
    out = copy.deepcopy(policy)
    for st in out["Statement"]:
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        if all(a.startswith(RESOURCE_STAR_SERVICES) for a in actions):
            st["Resource"] = "*"
    return out


def grant(aws: Aws, dep: Deployment, without: str = "") -> None:
    """Give the daemon's user the worker role's policies, less the statement with Sid ``without``."""
    iam = aws.client("iam")
    for name in iam.list_user_policies(UserName=dep.user)["PolicyNames"]:
        iam.delete_user_policy(UserName=dep.user, PolicyName=name)
    for name, doc in dep.policies.items():
        kept = [st for st in doc["Statement"] if st.get("Sid") != without]
        if kept:
            iam.put_user_policy(UserName=dep.user, PolicyName=name,
                                PolicyDocument=json.dumps(for_moto({**doc, "Statement": kept})))


def custom_lines(start: int, n: int, seed: int) -> list[bytes]:
    """Lines in the delivery stack's format: v2 fields, then vpc-id ... traffic-path."""
    ips = [ENI_IP, "10.9.0.6", "10.9.0.7"]
    out = []
    for line in flow_lines(ips, start, n, seed):
        f = line.decode().split(" ")
        out.append(f"{line.decode()} vpc-0abc subnet-0abc use1-az1 {f[3]} {f[4]} egress 1".encode())
    return out


def line_totals(lines: list[bytes]) -> Totals:
    """Independent of Dredge: the data records' v2 fields by plain splitting."""
    t = Totals()
    for f in (line.split(b" ") for line in lines):
        if f[13] == b"OK":
            t.flows, t.packets, t.bytes = t.flows + 1, t.packets + int(f[8]), t.bytes + int(f[9])
    return t


def put_as_subscription(kin: Any, stream: str, lines: list[bytes], log: PutLog, seed: int) -> None:
    """What the subscription filter puts: CloudWatch Logs envelopes (gzip JSON) of the lines."""
    rng = random.Random(seed)
    i = 0
    entries: list[tuple[bytes, list[bytes]]] = []
    while i < len(lines):
        chunk = lines[i:i + rng.randint(5, 40)]
        i += len(chunk)
        entries.append((encode_cloudwatch(chunk, log_stream="eni-0abc-all", owner=ACCOUNT), chunk))
    for k in range(0, len(entries), 200):
        part = entries[k:k + 200]
        resp = kin.put_records(StreamName=stream, Records=[
            {"Data": data, "PartitionKey": f"k{rng.randrange(1 << 30)}"} for data, _ in part])
        assert not resp.get("FailedRecordCount"), resp
        for (_, carried), r in zip(part, resp["Records"], strict=True):
            log.records.append((r["ShardId"], r["SequenceNumber"], carried))


def write_config(path: Path, dep: Deployment, db: Path) -> Path:
    """dredge.toml from the stacks' outputs (README "Deployment")."""
    d, w, r = dep.delivery, dep.worker, dep.reader
    path.write_text(f"""
worker_id = "deploy-{dep.tag}"

[[streams]]
name = "{w['InputStreamName']}"
region = "{REGION}"
format = "{d['FlowLogFormat']}"

[index]
debounce_s = 0.1

[[index.ec2]]
regions = ["{REGION}"]
role_arns = ["{r['RoleArn']}"]
external_id = "{EXTERNAL_ID}"
poll_interval_s = 1.0

[pipeline]
flush_interval_s = 0.3
sink_retry_max_s = 1.0
shutdown_flush_attempts = 1

[kinesis]
idle_poll_interval_s = 0.2
list_shards_interval_s = 2.0
backoff_base_s = 0.05
backoff_max_s = 0.5

[lease]
table = "{w['LeaseTablePrefix']}"
failover_time_s = 4.0
renew_interval_s = 1.0
take_interval_s = 1.0

[sink.duckdb]
path = "{db}"
threads = 1

[sink.kinesis_out]
stream = "{w['OutputStreamName']}"
region = "{REGION}"
max_attempts = 2
backoff_base_s = 0.05
backoff_max_s = 0.2

[dead_letter]
path = "{db.with_suffix('.deadletter.jsonl')}"

[metrics]
port = 0
""")
    return path


def start_worker(aws: Aws, dep: Deployment, tmp_path: Path) -> Worker:
    env = {"AWS_ACCESS_KEY_ID": dep.key[0], "AWS_SECRET_ACCESS_KEY": dep.key[1],
           "AWS_SESSION_TOKEN": "", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
           "AWS_ENDPOINT_URL": aws.server.endpoint}
    cfg = write_config(tmp_path / "dredge.toml", dep, tmp_path / "w.duckdb")
    return Worker(cfg, env, tmp_path / "w.log").start()


# -- tests -----------------------------------------------------------------------------


def test_stacks_deploy_and_the_daemon_stores_exact_totals_with_only_the_shipped_policy(
        aws: Aws, tmp_path: Path) -> None:
    dep = deploy_all(aws)
    # What moto created, and what it skipped (said here, linted in tests/unit/infra)
    assert aws.created_types(f"delivery-{dep.tag}") >= {
        "AWS::KMS::Key", "AWS::Kinesis::Stream", "AWS::Logs::LogGroup", "AWS::IAM::Role",
        "AWS::EC2::FlowLog", "AWS::S3::Bucket"}
    assert not aws.created_types(f"delivery-{dep.tag}") & MOTO_UNSUPPORTED
    formats = {f["LogDestinationType"]: f.get("LogFormat")
               for f in aws.client("ec2").describe_flow_logs()["FlowLogs"] if f["ResourceId"] == dep.vpc}
    assert formats["cloud-watch-logs"] == dep.delivery["FlowLogFormat"] == formats["s3"]
    assert "${traffic-path}" in dep.delivery["FlowLogFormat"]
    table = dep.worker["LeaseTableName"]
    ddb = aws.client("dynamodb")
    assert ddb.describe_table(TableName=table)["Table"]["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table == f"{dep.worker['LeaseTablePrefix']}-{dep.worker['InputStreamName']}"

    kin = aws.client("kinesis")
    log = PutLog()
    worker = start_worker(aws, dep, tmp_path).wait_started()
    try:
        now = int(time.time())
        lines = custom_lines(now - 120, 700, seed=1) + custom_lines(now, 500, seed=2)
        put_control_message(kin, dep.worker["InputStreamName"], log)
        put_as_subscription(kin, dep.worker["InputStreamName"], lines, log, seed=3)
        wait_for(lambda: caught_up(lease_checkpoints(ddb, table), log.last_sequence()), 90,
                 "checkpoints to reach the last records put", alive=worker.check_alive)
    finally:
        rc = worker.terminate()
    text = worker.log.read_text()
    assert rc == 0, worker.tail()
    assert "AccessDenied" not in text, worker.tail()
    assert "index_started providers=1" in text

    want = line_totals(log.lines())
    assert want.flows == 1200
    assert store_totals(tmp_path / "w.duckdb").as_tuple() == want.as_tuple()
    # published once to the output stream (Druid's), every flow
    assert row_totals(published_rows(kin, dep.worker["OutputStreamName"])).as_tuple() == want.as_tuple()
    # the EC2 provider found the interface through the assumed index-reader role: flows from
    # its first poll on are the tagged app's (those two minutes earlier predate the inventory)
    expected_probe = sum(1 for f in (line.split(b" ") for line in log.lines())
                         if f[3] == ENI_IP.encode() and int(f[10]) >= now)
    assert store_by_source(tmp_path / "w.duckdb")[ENI_APP] == expected_probe > 0


# Each statement of the worker policy is needed: without it, the feature it names fails with
# AccessDenied on its call, in the daemon's log. (moto answers AccessDenied for JSON services in
# an XML body, so botocore shows "(403) ... <Code>AccessDenied</Code>" on the next line; AWS
# says "(AccessDeniedException) ... is not authorized to perform: kinesis:ListShards".)
NEEDED = [
    # Sid, the call refused, what the daemon does then:
    #   exits         the feature is vital: `dredge: error: ...` naming the call, exit 1
    #   holds         a sink refuses: flushes retried, nothing stored or checkpointed
    #   unattributed  an index provider fails (`ec2_poll_failed`, counted): flows are stored
    #                 without the owners it would have given
    ("ReadFlowLogStream", "ListShards", "exits"),  # reading the flow-log stream
    ("LeaseTable", "DescribeTable", "exits"),  # leases and checkpoints
    ("PublishOutputStream", "PutRecords", "holds"),  # publishing to Druid's stream
    ("AssumeIndexReaderRoles", "AssumeRole", "unattributed"),  # EC2 inventory of the accounts
]


def refused(text: str, operation: str) -> bool:
    return re.search(rf"when calling the {operation} operation[^\n]*\n?[^\n]*AccessDenied", text) is not None


@pytest.mark.parametrize(("sid", "operation", "then"), NEEDED, ids=[n[0] for n in NEEDED])
def test_without_one_statement_its_feature_fails_with_access_denied(
        aws: Aws, tmp_path: Path, sid: str, operation: str, then: str) -> None:
    dep = deploy_all(aws)
    assert sid in {st.get("Sid") for doc in dep.policies.values() for st in doc["Statement"]}
    grant(aws, dep, without=sid)
    log = PutLog()
    put_as_subscription(aws.client("kinesis"), dep.worker["InputStreamName"],
                        custom_lines(int(time.time()) + 5, 200, seed=4), log, seed=5)
    worker = start_worker(aws, dep, tmp_path)
    table = dep.worker["LeaseTableName"]
    try:
        wait_for(lambda: refused(worker.log.read_text(errors="replace"), operation), 120,
                 f"AccessDenied on {operation} in the log")
        if then == "exits":
            assert worker.proc is not None
            wait_for(lambda: worker.proc is not None and worker.proc.poll() is not None, 60,
                     "the daemon to exit by itself")
        elif then == "holds":
            wait_for(lambda: worker.log.read_text().count("flush_failed") >= 3, 60,
                     "flushes to be retried", alive=worker.check_alive)
            assert lease_checkpoints(aws.client("dynamodb"), table) == {"shardId-000000000000": "TRIM_HORIZON"}
        elif then == "unattributed":
            wait_for(lambda: caught_up(lease_checkpoints(aws.client("dynamodb"), table),
                                       log.last_sequence()), 90, "the records to be stored",
                     alive=worker.check_alive)
    finally:
        rc = worker.terminate()
    text = worker.log.read_text(errors="replace")
    db = tmp_path / "w.duckdb"
    if then == "exits":
        assert rc == 1, worker.tail()
        last = text[text.rindex("dredge: error:"):]
        assert refused(last, operation), worker.tail()
        assert "daemon_started" not in text
    elif then == "holds":
        assert rc == 1, worker.tail()  # the final flush failed too: nothing lost, read again
        assert "publish_failed" in text and store_totals(db).flows == 0
    else:
        assert rc == 0, worker.tail()
        assert "ec2_poll_failed" in text
        assert store_totals(db).as_tuple() == line_totals(log.lines()).as_tuple()
        assert ENI_APP not in store_by_source(db)


V2_HEADER = (b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets"
             b" bytes start end action log-status")


@pytest.mark.parametrize("without", ["", "ListReplayBucket", "ReadReplayObjects"],
                         ids=["all", "without-ListReplayBucket", "without-ReadReplayObjects"])
def test_replay_reads_the_delivery_bucket_with_the_worker_policy(
        aws: Aws, tmp_path: Path, without: str) -> None:
    """`dredge replay s3://...` (the delivery stack's ReplayUri) as the worker: S3 permissions
    are checked by moto against the bucket and object ARNs as shipped."""
    dep = deploy_all(aws)
    grant(aws, dep, without=without)
    lines = flow_lines([ENI_IP, "10.9.0.6"], int(time.time()) - 3600, 300, seed=7)
    uri = dep.delivery["ReplayUri"]
    bucket, prefix = uri[len("s3://"):].split("/", 1)
    key = f"{prefix}2026/11/30/{ACCOUNT}_vpcflowlogs_{REGION}_fl-0abc_20261130T0000Z_a1b2.log.gz"
    aws.client("s3").put_object(Bucket=bucket, Key=key,
                                Body=gzip.compress(V2_HEADER + b"\n" + b"\n".join(lines) + b"\n"))
    db = tmp_path / "r.duckdb"
    env = {"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": dep.key[0], "AWS_SECRET_ACCESS_KEY": dep.key[1],
           "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": aws.server.endpoint, "HOME": str(tmp_path)}
    # The whole bucket, not ReplayUri: moto's S3 signature check rejects a ListObjectsV2
    # prefix containing "/" (SignatureDoesNotMatch), whoever the caller.
    proc = subprocess.run([sys.executable, "-m", "dredge.cli", "replay", f"s3://{bucket}/", "--db", str(db),
                           "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    if not without:
        assert proc.returncode == 0, out
        assert store_totals(db).as_tuple() == line_totals(lines).as_tuple()
    elif without == "ListReplayBucket":
        assert proc.returncode == 2 and "cannot list" in out and "AccessDenied" in out, out
    else:
        assert proc.returncode == 1 and "cannot read" in out and "AccessDenied" in out, out
        assert "1 failed" in out


def test_run_stack_configures_the_container_from_the_other_stacks(aws: Aws) -> None:
    """run.yaml deployed to moto (ECS, no task is started): the task's environment over the
    image's dredge.toml is the configuration the daemon would load."""
    dep = deploy_all(aws)
    ec2 = aws.client("ec2")
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [dep.vpc]}])["Subnets"][0]["SubnetId"]
    prom = ec2.create_security_group(GroupName=f"prom-{dep.tag}", Description="Prometheus",
                                     VpcId=dep.vpc)["GroupId"]
    out = aws.deploy(f"run-{dep.tag}", "run.yaml", {
        "Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/dredge:0.1.0",
        "WorkerRoleArn": dep.worker["RoleArn"], "VpcId": dep.vpc, "SubnetIds": subnet,
        "PrometheusSecurityGroupId": prom, "StreamName": dep.delivery["StreamName"],
        "FlowLogFormat": dep.delivery["FlowLogFormat"],
        "LeaseTablePrefix": dep.worker["LeaseTablePrefix"],
        "OutputStreamName": dep.worker["OutputStreamName"], "Ec2InventoryRegions": REGION,
        "IndexReaderRoleArns": dep.reader["RoleArn"], "IndexReaderExternalId": EXTERNAL_ID})
    ecs = aws.client("ecs")
    service = ecs.describe_services(cluster=out["ClusterName"], services=[out["ServiceName"]])["services"][0]
    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    # (moto's CloudFormation drops the task definition's TaskRoleArn; cfn-lint checks it)
    container = task["containerDefinitions"][0]
    assert "/healthz" in " ".join(container["healthCheck"]["command"])
    env = {e["name"]: e["value"] for e in container["environment"] if e}  # moto keeps NoValue as None
    cfg = load_config(INFRA.parent / "container" / "dredge.toml", env=env)
    stream = cfg.streams[0]
    assert (stream.name, stream.format) == (dep.delivery["StreamName"], dep.delivery["FlowLogFormat"])
    assert stream.table_name(cfg.lease.table) == dep.worker["LeaseTableName"]
    assert cfg.sink.kinesis_out is not None and cfg.sink.kinesis_out.stream == dep.worker["OutputStreamName"]
    assert cfg.index.ec2[0].role_arns == [dep.reader["RoleArn"]]
    assert cfg.index.ec2[0].external_id == EXTERNAL_ID
    ingress = ec2.describe_security_groups(GroupIds=[out["SecurityGroupId"]])["SecurityGroups"][0]["IpPermissions"]
    assert [(p["FromPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]], p.get("IpRanges")) for p in ingress] \
        == [(9108, [prom], [])]
