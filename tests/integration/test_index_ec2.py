"""EC2 inventory against a real EC2 API (moto in server mode): instances and interfaces
created, tagged, terminated, addresses re-used by another app, an auto scaling group named
by convention, IPv6 and public addresses; lookups before and after each change. The
poller's notion of time is an injected clock, so nothing sleeps; a restart resumes from
the saved state."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyarrow as pa
import pytest

from dredge.flowlog.parser import parse_addresses
from dredge.index.live import IndexManager
from dredge.index.providers.config import Ec2Config, IndexConfig
from dredge.index.providers.ec2 import Ec2Inventory
from dredge.index.snapshot import IndexSnapshot
from dredge.testing import FakeClock, MotoServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
AMI = "ami-12c6146b"


def owners_at(snap: IndexSnapshot, ips: list[str], t: int) -> list[dict[str, Any]]:
    ids, _ = snap.lookup(parse_addresses(pa.array(ips)), np.full(len(ips), t, np.int64))
    return [snap.owners.slice(int(i), 1).to_pylist()[0] for i in ids]


def apps_at(snap: IndexSnapshot, ips: list[str], t: int) -> list[str | None]:
    return [o["app"] for o in owners_at(snap, ips, t)]


@pytest.fixture
def ec2(moto: MotoServer) -> Any:
    moto.reset()
    return boto3.client("ec2", region_name="us-east-1", endpoint_url=moto.endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _vpc(ec2: Any) -> tuple[str, str, str]:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    v6 = vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"].replace("/56", "/64")
    sub = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24", Ipv6CidrBlock=v6)
    return vpc["VpcId"], sub["Subnet"]["SubnetId"], v6


def _run(ec2: Any, subnet: str, ip: str, tags: dict[str, str]) -> str:
    r = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=subnet, PrivateIpAddress=ip,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": [
                              {"Key": k, "Value": v} for k, v in tags.items()]}])
    return str(r["Instances"][0]["InstanceId"])


def test_instances_interfaces_reuse_and_restart(moto: MotoServer, ec2: Any, tmp_path: Path) -> None:
    vpc, subnet, v6 = _vpc(ec2)
    state = tmp_path / "index.arrow"
    clock = FakeClock(1_000_000)
    api = _run(ec2, subnet, "10.0.1.5", {"app": "api", "cluster": "api-prod"})
    lb = ec2.create_network_interface(
        SubnetId=subnet, Description="ELB app/my-alb/50dc6c495c0c9188",
        PrivateIpAddresses=[{"PrivateIpAddress": "10.0.1.20", "Primary": True},
                            {"PrivateIpAddress": "10.0.1.21", "Primary": False}])["NetworkInterface"]
    eni_v6 = v6.replace("::/64", "::1234")
    ec2.assign_ipv6_addresses(NetworkInterfaceId=lb["NetworkInterfaceId"], Ipv6Addresses=[eni_v6])
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], NetworkInterfaceId=lb["NetworkInterfaceId"])
    batch = ec2.create_network_interface(
        SubnetId=subnet, PrivateIpAddress="10.0.1.30",
        TagSpecifications=[{"ResourceType": "network-interface",
                            "Tags": [{"Key": "app", "Value": "batch"}]}])["NetworkInterface"]
    ips = ["10.0.1.5", "10.0.1.20", "10.0.1.21", eni_v6, eip["PublicIp"], "10.0.1.30"]

    async def first() -> None:
        m = IndexManager(IndexConfig(state_path=str(state)), clock=clock)
        poller = Ec2Inventory(Ec2Config(poll_interval_s=3600,
                                        role_arns=("arn:aws:iam::123456789012:role/dredge",)), m)
        m.add(poller)
        await m.start()
        assert await poller.poll() == 0  # start polled once already: nothing changed
        snap = m.rebuild_now()
        assert apps_at(snap, ips, 1_000_000) == ["api", "my-alb", "my-alb", "my-alb", "my-alb", "batch"]
        assert apps_at(snap, ips, 999_999) == ["unknown"] * 3 + ["internet"] * 2 + ["unknown"]
        o = owners_at(snap, ["10.0.1.5", "10.0.1.20"], 1_000_000)
        assert (o[0]["cluster"], o[0]["type"], o[0]["vpc"], o[0]["subnet"], o[0]["account"]) == \
            ("api-prod", "instance", vpc, subnet, "123456789012")
        assert o[1]["type"] == "load-balancer"

        # t=2000: api terminated, batch's address retagged to another app
        ec2.terminate_instances(InstanceIds=[api])
        ec2.create_tags(Resources=[batch["NetworkInterfaceId"]], Tags=[{"Key": "app", "Value": "etl"}])
        clock.now = 1_002_000
        assert await poller.poll() == 2
        snap = m.rebuild_now()
        assert apps_at(snap, ["10.0.1.5", "10.0.1.30"], 1_001_999) == ["api", "batch"]
        assert apps_at(snap, ["10.0.1.5", "10.0.1.30"], 1_002_000) == ["unknown", "etl"]

        # t=3000: the address comes back for another app (a task's interface)
        ec2.delete_network_interface(NetworkInterfaceId=_eni_of(ec2, api))
        ec2.create_network_interface(
            SubnetId=subnet, PrivateIpAddress="10.0.1.5",
            TagSpecifications=[{"ResourceType": "network-interface",
                                "Tags": [{"Key": "app", "Value": "web"}]}])
        clock.now = 1_003_000
        await poller.poll()
        snap = m.rebuild_now()
        assert apps_at(snap, ["10.0.1.5"] * 1, 1_001_500) == ["api"]
        assert apps_at(snap, ["10.0.1.5"], 1_002_500) == ["unknown"]
        assert apps_at(snap, ["10.0.1.5"], 1_003_000) == ["web"]
        await m.stop()

    asyncio.run(first())

    # while the daemon is down, the load balancer's interface goes away
    ec2.disassociate_address(AssociationId=_assoc(ec2, lb["NetworkInterfaceId"]))
    ec2.delete_network_interface(NetworkInterfaceId=lb["NetworkInterfaceId"])

    async def restart() -> None:
        clock.now = 1_004_000
        m = IndexManager(IndexConfig(state_path=str(state)), clock=clock)
        poller = Ec2Inventory(Ec2Config(poll_interval_s=3600,
                                        role_arns=("arn:aws:iam::123456789012:role/dredge",)), m)
        m.add(poller)
        await m.start()  # loads history, polls once: only the load balancer changed
        snap = m.rebuild_now()
        assert apps_at(snap, ips, 1_003_500) == ["web", "my-alb", "my-alb", "my-alb", "my-alb", "etl"]
        assert apps_at(snap, ips, 1_004_000) == ["web", "unknown", "unknown", "internet",
                                                 "internet", "etl"]
        assert apps_at(snap, ["10.0.1.5"], 1_001_500) == ["api"]
        hist = m.history.intervals()
        assert len(hist) == 8  # 6 first sights, re-tag, re-use: nothing twice
        await m.stop()

    asyncio.run(restart())


def _eni_of(ec2: Any, instance: str) -> str:
    for e in ec2.describe_network_interfaces()["NetworkInterfaces"]:
        if (e.get("Attachment") or {}).get("InstanceId") == instance:
            return str(e["NetworkInterfaceId"])
    raise AssertionError(f"no interface for {instance}")


def _assoc(ec2: Any, eni: str) -> str:
    for e in ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]:
        return str(e["Association"]["AssociationId"])
    raise AssertionError(eni)


def test_auto_scaling_group_convention(moto: MotoServer, ec2: Any) -> None:
    _, subnet, _ = _vpc(ec2)
    asg = boto3.client("autoscaling", region_name="us-east-1", endpoint_url=moto.endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2.create_launch_template(LaunchTemplateName="shop-lt",
                               LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"})
    asg.create_auto_scaling_group(AutoScalingGroupName="shop-frontend-blue-v042",
                                  LaunchTemplate={"LaunchTemplateName": "shop-lt"}, MinSize=1,
                                  MaxSize=1, DesiredCapacity=1, VPCZoneIdentifier=subnet)
    inst = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert len(inst) == 1
    ip = inst[0]["PrivateIpAddress"]

    async def main() -> None:
        m = IndexManager(IndexConfig(), clock=FakeClock(5_000))
        m.add(Ec2Inventory(Ec2Config(poll_interval_s=3600), m))
        await m.start()
        o = owners_at(m.rebuild_now(), [ip], 5_000)[0]
        assert (o["app"], o["cluster"], o["type"]) == ("shop", "shop-frontend-blue", "instance")
        assert "ec2/default/us-east-1" in m.status()
        await m.stop()

    asyncio.run(main())


def test_a_failing_scope_releases_nothing(moto: MotoServer, ec2: Any) -> None:
    _, subnet, _ = _vpc(ec2)
    _run(ec2, subnet, "10.0.1.7", {"app": "api"})
    clock = FakeClock(10_000)

    async def main() -> None:
        m = IndexManager(IndexConfig(), clock=clock)
        poller = Ec2Inventory(Ec2Config(poll_interval_s=3600), m)
        m.add(poller)
        await m.start()
        poller.config = Ec2Config(poll_interval_s=3600, endpoint_url="http://127.0.0.1:9")  # nobody
        clock.now = 11_000
        assert await poller.poll() == 0
        assert apps_at(m.rebuild_now(), ["10.0.1.7"], 11_500) == ["api"]
        assert m.status()["ec2/default/us-east-1"].error is not None
        await m.stop()

    asyncio.run(main())


def test_prefix_delegation_through_moto(moto: MotoServer, ec2: Any) -> None:
    """Prefixes asked for the way EKS/ECS prefix delegation does. moto 5.2.x accepts
    ``Ipv4PrefixCount``/``Ipv6PrefixCount``/``Ipv4Prefixes``/``Ipv6Prefixes`` and ignores
    them (DescribeNetworkInterfaces lists no prefix), so through moto this checks that such
    interfaces are indexed by their addresses and, should moto list prefixes one day, that
    every address of a delegated /28 and an address inside a /80 are owned. The prefix
    logic itself runs on real EC2 responses in tests/unit/index/test_ec2_prefixes.py."""
    _, subnet, _ = _vpc(ec2)
    tags = [{"ResourceType": "network-interface", "Tags": [{"Key": "app", "Value": "pods"}]}]
    eni = ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress="10.0.1.40",
                                       Ipv4PrefixCount=1, Ipv6PrefixCount=1,
                                       TagSpecifications=tags)["NetworkInterface"]
    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni["NetworkInterfaceId"], Ipv4PrefixCount=1)
    desc = ec2.describe_network_interfaces(
        NetworkInterfaceIds=[eni["NetworkInterfaceId"]])["NetworkInterfaces"][0]
    v4 = [p["Ipv4Prefix"] for p in desc.get("Ipv4Prefixes") or []]
    v6 = [p["Ipv6Prefix"] for p in desc.get("Ipv6Prefixes") or []]

    async def main() -> None:
        m = IndexManager(IndexConfig(), clock=FakeClock(20_000))
        m.add(Ec2Inventory(Ec2Config(poll_interval_s=3600), m))
        await m.start()
        snap = m.rebuild_now()
        assert apps_at(snap, ["10.0.1.40"], 20_000) == ["pods"]
        for p in v4:
            net = ipaddress.ip_network(p)
            assert apps_at(snap, [str(a) for a in net], 20_000) == ["pods"] * net.num_addresses
        for p in v6:
            inside = str(ipaddress.ip_network(p).network_address + 12345)
            assert apps_at(snap, [inside], 20_000) == ["pods"]
        await m.stop()

    asyncio.run(main())
