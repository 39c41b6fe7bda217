"""Providers' pure parts: EC2 responses to owners and the diff of two polls, event lines,
CIDR files reloaded on change; every provider config's defaults validate."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dredge.errors import ConfigError
from dredge.flowlog.parser import parse_addresses
from dredge.index.live import IndexManager
from dredge.index.providers.cidr import CidrFiles
from dredge.index.providers.config import (
    CidrConfig,
    Ec2Config,
    EventFileConfig,
    EventStreamConfig,
    IndexConfig,
)
from dredge.index.providers.ec2 import (
    diff,
    interface_addresses,
    interface_type,
    inventory,
    split_asg_name,
)
from dredge.index.providers.events import parse_events


def test_defaults_validate_and_errors_name_fields() -> None:
    Ec2Config().validate()
    CidrConfig().validate()
    IndexConfig().validate()
    EventFileConfig(path="x").validate()
    EventStreamConfig(stream="s").validate()
    for bad, field in ((Ec2Config(role_arns=("nope",)), "role_arns"),
                       (Ec2Config(regions=()), "regions"),
                       (EventFileConfig(), "path"),
                       (EventFileConfig(path="x", start_at="middle"), "start_at"),
                       (EventStreamConfig(stream="s", initial_position="AT"), "initial_position"),
                       (CidrConfig(paths=("a.txt",)), "paths")):
        with pytest.raises(ConfigError) as err:
            bad.validate()
        assert err.value.field == field


def test_asg_names() -> None:
    assert split_asg_name("shop-frontend-blue-v042") == ("shop", "shop-frontend-blue")
    assert split_asg_name("api-prod") == ("api", "api-prod")
    assert split_asg_name("solo-v1") == ("solo", "solo")


# Response shapes as DescribeNetworkInterfaces documents them (fields trimmed).
NAT = {"InterfaceType": "nat_gateway", "Description": "Interface for NAT Gateway nat-0a1b2c3d4e5f",
       "RequesterManaged": True, "PrivateIpAddresses": [
           {"PrivateIpAddress": "10.0.0.9", "Association": {"PublicIp": "3.5.6.7"}}],
       "OwnerId": "111122223333", "VpcId": "vpc-1", "SubnetId": "subnet-1",
       "AvailabilityZone": "us-east-1a", "TagSet": []}
LAMBDA = {"InterfaceType": "lambda",
          "Description": "AWS Lambda VPC ENI-resize-images-0a1b2c3d-1111-2222-3333-444455556666",
          "RequesterManaged": True, "PrivateIpAddress": "10.0.0.10", "TagSet": []}
ENDPOINT = {"InterfaceType": "vpc_endpoint", "Description": "VPC Endpoint Interface vpce-0abc123",
            "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.11"}], "TagSet": []}
POD = {"InterfaceType": "interface", "Description": "arn:aws:ecs:us-east-1:1:attachment/x",
       "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.12"}],
       "Ipv6Addresses": [{"Ipv6Address": "2600:1f18::12"}],
       "TagSet": [{"Key": "app", "Value": "orders"}, {"Key": "cluster", "Value": "orders-eu"}]}
VM = {"InterfaceType": "interface", "Description": "", "Attachment": {"InstanceId": "i-1"},
      "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.13"}, {"PrivateIpAddress": "10.0.0.14"}],
      "TagSet": []}
DEAD = {"InterfaceType": "interface", "Attachment": {"InstanceId": "i-2"},
        "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.15"}], "TagSet": []}
INSTANCES = [{"InstanceId": "i-1", "State": {"Name": "running"},
              "Tags": [{"Key": "aws:autoscaling:groupName", "Value": "cart-api-green-v007"},
                       {"Key": "cluster", "Value": "cart-special"}]},
             {"InstanceId": "i-2", "State": {"Name": "terminated"},
              "Tags": [{"Key": "app", "Value": "gone"}]}]


def test_interfaces_to_owners() -> None:
    assert [interface_type(e) for e in (NAT, LAMBDA, ENDPOINT, POD, VM)] == \
        ["nat-gateway", "lambda", "vpc-endpoint", "ecs-task", "instance"]
    assert interface_addresses(NAT) == ["10.0.0.9", "3.5.6.7"]
    assert interface_addresses(POD) == ["10.0.0.12", "2600:1f18::12"]
    inv = inventory([NAT, LAMBDA, ENDPOINT, POD, VM, DEAD], INSTANCES, Ec2Config(), "us-east-1")
    got = {ip: (o[0], o[1], o[7]) for ip, o in inv.items()}
    assert got == {
        "10.0.0.9": ("nat-0a1b2c3d4e5f", None, "nat-gateway"),
        "3.5.6.7": ("nat-0a1b2c3d4e5f", None, "nat-gateway"),
        "10.0.0.10": ("resize-images", None, "lambda"),
        "10.0.0.11": ("vpce-0abc123", None, "vpc-endpoint"),
        "10.0.0.12": ("orders", "orders-eu", "ecs-task"),
        "2600:1f18::12": ("orders", "orders-eu", "ecs-task"),
        "10.0.0.13": ("cart", "cart-special", "instance"),  # tag beats the ASG convention
        "10.0.0.14": ("cart", "cart-special", "instance"),
    }
    assert inv["10.0.0.9"][2:7] == ("111122223333", "us-east-1", "us-east-1a", "vpc-1", "subnet-1")


def test_diff_of_two_polls() -> None:
    a = ("a",) * 8
    b = ("b",) * 8
    ips, owners = diff({"1": a, "2": a, "3": a}, {"1": a, "2": b, "4": b})
    assert sorted(zip(ips, owners, strict=True), key=lambda x: x[0]) == \
        [("2", b), ("3", None), ("4", b)]
    assert diff({}, {}) == ([], [])


def test_event_lines() -> None:
    ips, times, owners, bad = parse_events([
        b'{"ip": "10.0.0.1", "app": "x", "assigned_at": 10}',
        b'{"ip": "10.0.0.1", "unassigned_at": "1970-01-01T00:00:20Z"}',
        b'{"ip": "10.0.0.1", "assigned_at": true}', b'{"app": "noip", "assigned_at": 1}',
        b"{", b"", b'{"ip": 5, "assigned_at": 1}',
    ])
    assert (ips, times, bad) == (["10.0.0.1", "10.0.0.1"], [10, 20], 4)
    assert owners[0] is not None and owners[0][0] == "x" and owners[1] is None


def test_cidr_files_reload_on_change_only(tmp_path: Path) -> None:
    csv = tmp_path / "n.csv"
    csv.write_text("cidr,app\n10.0.0.0/8,corp\n")

    def app(m: IndexManager, ip: str) -> str:
        snap = m.rebuild_now()
        ids, _ = snap.lookup(parse_addresses(pa.array([ip])), np.array([0]))
        return str(snap.owners.column("app")[int(ids[0])].as_py())

    async def main() -> None:
        m = IndexManager(IndexConfig())
        files = CidrFiles(CidrConfig(paths=(str(csv),), poll_interval_s=3600), m)
        m.add(files)
        await m.start()
        assert app(m, "10.1.1.1") == "corp"
        assert files.check() == 0  # unchanged
        st = csv.stat()
        os.utime(csv, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        assert files.check() == 0  # touched, same bytes
        csv.write_text("cidr,app\n10.0.0.0/8,corp2\n")
        assert files.check() == 1
        assert app(m, "10.1.1.1") == "corp2"
        csv.write_text("nonsense with no header\n")
        assert files.check() == 0  # unreadable: the previous map stays
        assert app(m, "10.1.1.1") == "corp2"
        assert m.status()[f"cidr/{csv}"].error is not None
        await m.stop()

    asyncio.run(main())
