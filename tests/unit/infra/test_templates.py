"""The CloudFormation templates of infra/aws: cfn-lint clean, and the worker's policy grants
exactly the AWS calls the code makes (found in the source through botocore's service models),
each statement scoped to the stack's own resources."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import botocore.session
from cfnlint.decode import decode_str

from dredge.config import load_config
from dredge.flowlog.fields import FlowFormat
from tests.unit.infra.conftest import INFRA, ROOT, tool

TEMPLATES = sorted((INFRA / "aws").glob("*.yaml"))

# Called by Dredge but deliberately not granted to the worker role, and why.
NOT_GRANTED = {
    "dynamodb:CreateTable": "the worker stack creates the lease table (with PITR); the daemon only creates a missing one",
    "kinesis:CreateStream": "`dredge druid init --create-stream`: an operator's command, not the daemon",
    "kinesis:DescribeStreamSummary": "`dredge druid init --create-stream`: an operator's command",
}
# Method names that are not AWS calls although an operation has the same snake_case name.
NOT_AWS = {"dynamodb:Query": "`.query(` is `dredge query` (DuckDB, Druid): no DynamoDB Query"}
# S3 operations are not 1:1 with IAM actions.
S3_ACTIONS = {"list_objects_v2": "s3:ListBucket", "get_object": "s3:GetObject",
              "put_object": "s3:PutObject", "delete_objects": "s3:DeleteObject"}
SERVICES = {"kinesis": "kinesis", "dynamodb": "dynamodb", "ec2": "ec2", "sts": "sts"}


def template(name: str) -> dict[str, Any]:
    tpl, errors = decode_str((INFRA / "aws" / name).read_text())
    assert not errors and tpl is not None, errors
    return dict(tpl)


def worker_statements() -> list[dict[str, Any]]:
    resources = template("worker.yaml")["Resources"]
    return [st for r in resources.values() if r["Type"] == "AWS::IAM::Policy"
            for st in r["Properties"]["PolicyDocument"]["Statement"]]


def actions(st: dict[str, Any]) -> list[str]:
    return [st["Action"]] if isinstance(st["Action"], str) else list(st["Action"])


def called_operations() -> set[str]:
    """IAM actions of every AWS operation the package's source calls (``.op(`` or a paginator);
    not ``dredge/testing.py``: the test fixtures' calls (kinesis-local's readiness probe) are
    never made by a deployed daemon."""
    source = "\n".join(p.read_text() for p in (ROOT / "dredge").rglob("*.py")
                       if p != ROOT / "dredge" / "testing.py")
    used = set(re.findall(r"\.([a-z][a-z0-9_]+)\(", source))
    used |= set(re.findall(r"get_paginator\(\"([a-z0-9_]+)\"\)", source))
    used |= set(re.findall(r"client\.([a-z][a-z0-9_]+)\b", source))  # passed, called later
    session = botocore.session.get_session()
    out = set()
    for service, prefix in SERVICES.items():
        model = session.get_service_model(service)
        for op in model.operation_names:
            if botocore.xform_name(op) in used:
                out.add(f"{prefix}:{op}")
    out |= {action for op, action in S3_ACTIONS.items() if op in used}
    return out


def test_cfn_lint_passes_on_every_template() -> None:
    proc = subprocess.run([tool("cfn-lint"), *map(str, TEMPLATES)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_templates_are_the_four_documented() -> None:
    assert [p.name for p in TEMPLATES] == ["delivery.yaml", "index-reader.yaml", "run.yaml", "worker.yaml"]
    readme = (INFRA / "aws" / "README.md").read_text()
    for p in TEMPLATES:
        assert p.name in readme


def test_worker_grants_exactly_what_the_code_calls() -> None:
    granted = {a for st in worker_statements() for a in actions(st)}
    reader = {a for r in template("index-reader.yaml")["Resources"].values()
              if r["Type"] == "AWS::IAM::Policy"
              for st in r["Properties"]["PolicyDocument"]["Statement"] for a in actions(st)}
    granted_or_reader = granted | reader
    called = called_operations()
    missing = called - granted_or_reader - set(NOT_GRANTED) - set(NOT_AWS)
    assert not missing, f"the code calls these, the policy does not grant them: {sorted(missing)}"
    # KMS is called by Kinesis on the daemon's behalf, never by the code itself.
    unused = {a for a in granted_or_reader - called if not a.startswith("kms:")}
    assert not unused, f"granted but never called: {sorted(unused)}"
    assert set(NOT_GRANTED) <= called, "a NOT_GRANTED entry the code no longer calls"


def test_worker_statements_are_scoped_to_the_stack_resources() -> None:
    sids = [st["Sid"] for st in worker_statements()]
    assert len(sids) == len(set(sids)), "Sids name features: one each"
    for st in worker_statements():
        assert st["Effect"] == "Allow"
        if st["Sid"] == "DescribeEc2Inventory":
            assert st["Resource"] == "*"  # EC2's Describe calls have no resource-level permissions
            continue
        assert st["Resource"] != "*" and "*" not in str(st["Resource"]).replace("/*", "").replace("}*", ""), st
    by_sid = {st["Sid"]: st for st in worker_statements()}
    assert by_sid["ReadFlowLogStream"]["Resource"] == {"Ref": "InputStreamArn"}
    assert by_sid["LeaseTable"]["Resource"] == {"Fn::GetAtt": ["LeaseTable", "Arn"]}
    assert by_sid["PublishOutputStream"]["Resource"] == {"Fn::GetAtt": ["OutputStream", "Arn"]}
    assert by_sid["AssumeIndexReaderRoles"]["Resource"] == {"Ref": "IndexReaderRoleArns"}


def test_lease_table_is_named_as_the_daemon_names_it() -> None:
    table = template("worker.yaml")["Resources"]["LeaseTable"]["Properties"]
    fmt, values = table["TableName"]["Fn::Sub"]
    assert fmt == "${LeaseTablePrefix}-${Name}"
    assert values["Name"] == {"Fn::Select": [1, {"Fn::Split": ["/", {"Ref": "InputStreamArn"}]}]}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["KeySchema"] == [{"AttributeName": "leaseKey", "KeyType": "HASH"}]


def test_delivery_format_is_one_dredge_parses_with_the_v5_fields() -> None:
    fmt = template("delivery.yaml")["Mappings"]["FlowLog"]["Format"]["Fields"]
    parsed = FlowFormat.parse(fmt)
    names = set(re.findall(r"\$\{([a-z-]+)\}", fmt))
    assert {"flow-direction", "traffic-path", "pkt-srcaddr", "pkt-dstaddr", "az-id"} <= names
    assert parsed is not None


def container_env(extra: dict[str, str]) -> dict[str, str]:
    """The run template's container environment, its parameters given ``extra`` values."""
    task = template("run.yaml")["Resources"]["TaskDefinition"]["Properties"]
    env: dict[str, str] = {}
    for item in task["ContainerDefinitions"][0]["Environment"]:
        if "Fn::If" in item:
            item = item["Fn::If"][1]  # every optional setting on
        value = item["Value"]
        if isinstance(value, dict):
            value = extra[value["Ref"]]
        env[item["Name"]] = str(value)
    return env


def test_container_configuration_loads_with_the_run_template_environment() -> None:
    fmt = template("delivery.yaml")["Mappings"]["FlowLog"]["Format"]["Fields"]
    env = container_env({
        "AWS::Region": "eu-west-1", "StreamName": "vpc-flow-logs", "FlowLogFormat": fmt,
        "LeaseTablePrefix": "dredge-leases", "OutputStreamName": "dredge-flows",
        "Ec2InventoryRegions": "eu-west-1,us-east-1",
        "IndexReaderRoleArns": "arn:aws:iam::111111111111:role/dredge-index-reader",
        "IndexReaderExternalId": "x-123"})
    cfg = load_config(INFRA / "container" / "dredge.toml", env=env)
    cfg.require_streams()
    assert cfg.streams[0].name == "vpc-flow-logs"
    assert cfg.streams[0].table_name(cfg.lease.table) == "dredge-leases-vpc-flow-logs"
    assert cfg.sink.kinesis_out is not None and cfg.sink.kinesis_out.stream == "dredge-flows"
    assert cfg.index.ec2[0].regions == ["eu-west-1", "us-east-1"]
    assert cfg.index.ec2[0].external_id == "x-123"
    assert (cfg.metrics.host, cfg.metrics.port) == ("0.0.0.0", 9108)
