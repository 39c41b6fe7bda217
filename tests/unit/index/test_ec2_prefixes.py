"""EC2 prefix delegation (``Ipv4Prefixes`` /28, ``Ipv6Prefixes`` /80) through the EC2 provider.

moto (5.2.x, server mode) accepts ``Ipv4PrefixCount``/``Ipv4Prefixes``/``Ipv6PrefixCount``/
``Ipv6Prefixes`` on CreateNetworkInterface, AssignPrivateIpAddresses and AssignIpv6Addresses
but ignores them: DescribeNetworkInterfaces never lists a prefix (see
tests/integration/test_index_ec2.py::test_prefix_delegation_through_moto). So these tests
feed the provider real API responses instead: DescribeNetworkInterfaces and
DescribeInstances XML bodies as EC2 returns them, parsed by botocore's own EC2 parser into
the exact dicts boto3/aiobotocore hand to the provider. Each poll goes through
``Ec2Inventory.apply`` (the code a real poll runs after its describe calls) into a real
IndexManager; lookups, restarts and ``dredge index lookup`` history are checked on it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import botocore.session
import numpy as np
import pyarrow as pa
from botocore.parsers import create_parser

from dredge.flowlog.parser import parse_addresses
from dredge.index.live import IndexManager, address_history
from dredge.index.providers.config import Ec2Config, IndexConfig
from dredge.index.providers.ec2 import Ec2Inventory, diff, interface_prefixes, inventory
from dredge.index.snapshot import IndexSnapshot

_MODEL = botocore.session.get_session().get_service_model("ec2")
V6_PREFIX = "2600:1f18:4a1:7b00:8d5f::/80"
V6_IN = "2600:1f18:4a1:7b00:8d5f:0:c0a8:1"  # a pod's address inside the /80
V6_OUT = "2600:1f18:4a1:7b00:8d60::1"  # the next /80: nobody's


def parse(operation: str, body: str) -> dict[str, Any]:
    """An EC2 query-protocol response body -> the dict botocore returns for it."""
    op = _MODEL.operation_model(operation)
    parsed: dict[str, Any] = create_parser("ec2").parse(
        {"body": body.encode(), "headers": {}, "status_code": 200}, op.output_shape)
    return parsed


def eni_xml(eni: str, ip: str, instance: str, *, v4: tuple[str, ...] = (),
            v6: tuple[str, ...] = (), tags: dict[str, str] | None = None) -> str:
    def items(key: str, values: tuple[str, ...]) -> str:
        return "".join(f"<item><{key}>{v}</{key}></item>" for v in values)

    tag_items = "".join(f"<item><key>{k}</key><value>{v}</value></item>"
                        for k, v in (tags or {}).items())
    return f"""
    <item>
      <networkInterfaceId>{eni}</networkInterfaceId>
      <subnetId>subnet-0a1b2c3d</subnetId>
      <vpcId>vpc-0c6bd4a2</vpcId>
      <availabilityZone>us-east-1a</availabilityZone>
      <description>aws-K8S-{instance}</description>
      <ownerId>111122223333</ownerId>
      <requesterManaged>false</requesterManaged>
      <status>in-use</status>
      <macAddress>02:2a:4b:3c:5d:6e</macAddress>
      <privateIpAddress>{ip}</privateIpAddress>
      <privateDnsName>ip-{ip.replace('.', '-')}.ec2.internal</privateDnsName>
      <sourceDestCheck>true</sourceDestCheck>
      <groupSet><item><groupId>sg-0a1b</groupId><groupName>eks-node</groupName></item></groupSet>
      <attachment>
        <attachmentId>eni-attach-{eni[4:]}</attachmentId>
        <instanceId>{instance}</instanceId>
        <instanceOwnerId>111122223333</instanceOwnerId>
        <deviceIndex>1</deviceIndex>
        <status>attached</status>
        <attachTime>2026-11-25T09:00:00.000Z</attachTime>
        <deleteOnTermination>true</deleteOnTermination>
      </attachment>
      <tagSet>{tag_items}</tagSet>
      <privateIpAddressesSet>
        <item><privateIpAddress>{ip}</privateIpAddress><primary>true</primary></item>
      </privateIpAddressesSet>
      <ipv6AddressesSet/>
      <ipv4PrefixSet>{items("ipv4Prefix", v4)}</ipv4PrefixSet>
      <ipv6PrefixSet>{items("ipv6Prefix", v6)}</ipv6PrefixSet>
      <interfaceType>interface</interfaceType>
    </item>"""


def describe_enis(*items: str) -> list[dict[str, Any]]:
    body = ('<DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            "<requestId>fc45294c-006b-457b-bab9-012f5b3b0e40</requestId>"
            f"<networkInterfaceSet>{''.join(items)}</networkInterfaceSet>"
            "</DescribeNetworkInterfacesResponse>")
    enis: list[dict[str, Any]] = parse("DescribeNetworkInterfaces", body)["NetworkInterfaces"]
    return enis


def describe_instances(*instances: tuple[str, str, dict[str, str]]) -> list[dict[str, Any]]:
    """(instance id, state name, tags) -> DescribeInstances' instances."""
    items = "".join(
        f"<item><instanceId>{i}</instanceId><imageId>ami-12c6146b</imageId>"
        f"<instanceState><code>16</code><name>{state}</name></instanceState>"
        "<tagSet>" + "".join(f"<item><key>{k}</key><value>{v}</value></item>"
                             for k, v in tags.items()) + "</tagSet></item>"
        for i, state, tags in instances)
    body = ('<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            "<requestId>8f7724cf-496f-496e-8fe3-example</requestId><reservationSet><item>"
            "<reservationId>r-1234567890abcdef0</reservationId><ownerId>111122223333</ownerId>"
            f"<instancesSet>{items}</instancesSet></item></reservationSet>"
            "</DescribeInstancesResponse>")
    return [i for r in parse("DescribeInstances", body)["Reservations"] for i in r["Instances"]]


NODE_A = ("i-0aaa", "running", {"app": "checkout", "cluster": "eks-prod"})
NODE_B = ("i-0bbb", "running", {"app": "search", "cluster": "eks-prod"})


def apps_at(snap: IndexSnapshot, ips: list[str], t: int) -> list[str]:
    ids, _ = snap.lookup(parse_addresses(pa.array(ips)), np.full(len(ips), t, np.int64))
    return [str(snap.owners.column("app")[int(i)]) for i in ids]


def test_the_response_shape_and_inventory() -> None:
    enis = describe_enis(eni_xml("eni-0a", "10.0.1.10", "i-0aaa", v4=("10.0.1.32/28",),
                                 v6=(V6_PREFIX,)))
    assert enis[0]["Ipv4Prefixes"] == [{"Ipv4Prefix": "10.0.1.32/28"}]
    assert enis[0]["Ipv6Prefixes"] == [{"Ipv6Prefix": V6_PREFIX}]
    expanded, kept = interface_prefixes(enis[0])
    assert expanded == [f"10.0.1.{i}" for i in range(32, 48)]
    assert kept == [V6_PREFIX]
    inv = inventory(enis, describe_instances(NODE_A), Ec2Config(), "us-east-1")
    assert len(inv) == 1 + 16 + 1
    assert {o[0] for o in inv.values()} == {"checkout"}
    assert inv[V6_PREFIX][1:] == ("eks-prod", "111122223333", "us-east-1", "us-east-1a",
                                  "vpc-0c6bd4a2", "subnet-0a1b2c3d", "instance")
    # the prefix moves to node B's interface: one event for it, none for the rest
    moved = inventory(describe_enis(eni_xml("eni-0a", "10.0.1.10", "i-0aaa", v4=("10.0.1.32/28",)),
                                    eni_xml("eni-0b", "10.0.1.11", "i-0bbb", v6=(V6_PREFIX,))),
                      describe_instances(NODE_A, NODE_B), Ec2Config(), "us-east-1")
    keys, owners = diff(inv, moved)
    assert sorted(keys) == ["10.0.1.11", V6_PREFIX]
    assert {k: o[0] if o else None for k, o in zip(keys, owners, strict=True)}[V6_PREFIX] == "search"


def test_prefix_history_through_the_provider(tmp_path: Path) -> None:
    state = tmp_path / "index.arrow"
    clock = [1_000_000.0]
    a = eni_xml("eni-0a", "10.0.1.10", "i-0aaa", v4=("10.0.1.32/28",), v6=(V6_PREFIX,))
    ips = ["10.0.1.37", V6_IN, V6_OUT, "10.0.1.48"]

    async def first() -> None:
        m = IndexManager(IndexConfig(state_path=str(state)), clock=lambda: clock[0])
        poller = Ec2Inventory(Ec2Config(), m)  # not added: nothing polls AWS here
        await m.start()
        scope = poller.scopes[0]
        assert poller.apply(scope, describe_enis(a), describe_instances(NODE_A), 1_000_000) == 18
        # t+1000: the /80 moves to node B (the /28 stays); t+2000: node A is terminated
        clock[0] = 1_001_000
        b = eni_xml("eni-0b", "10.0.1.11", "i-0bbb", v6=(V6_PREFIX,))
        a2 = eni_xml("eni-0a", "10.0.1.10", "i-0aaa", v4=("10.0.1.32/28",))
        assert poller.apply(scope, describe_enis(a2, b), describe_instances(NODE_A, NODE_B),
                            1_001_000) == 2
        clock[0] = 1_002_000
        dead = ("i-0aaa", "terminated", NODE_A[2])
        assert poller.apply(scope, describe_enis(a2, b), describe_instances(dead, NODE_B),
                            1_002_000) == 17
        snap = m.rebuild_now()
        assert apps_at(snap, ips, 999_999) == ["unknown", "internet", "internet", "unknown"]
        assert apps_at(snap, ips, 1_000_000) == ["checkout", "checkout", "internet", "unknown"]
        assert apps_at(snap, ips, 1_000_999) == ["checkout", "checkout", "internet", "unknown"]
        assert apps_at(snap, ips, 1_001_000) == ["checkout", "search", "internet", "unknown"]
        assert apps_at(snap, ips, 1_002_000) == ["unknown", "search", "internet", "unknown"]
        assert snap.prefixes is not None and snap.prefixes.prefixes == 1
        src = "ec2/default/us-east-1#prefix/80"
        assert m.status()[src].accepted == 2 and snap.sources[src] == 2
        hist = address_history(m.history, m.owner, V6_IN)
        assert [(h["source"], h["start"], h["end"], h["app"]) for h in hist] == [
            (src, 1_000_000, 1_001_000, "checkout"), (src, 1_001_000, None, "search")]
        await m.stop()  # saves

    asyncio.run(first())

    async def restart() -> None:
        clock[0] = 1_003_000
        m = IndexManager(IndexConfig(state_path=str(state)), clock=lambda: clock[0])
        poller = Ec2Inventory(Ec2Config(), m)  # not added: nothing polls AWS here
        await m.start()  # loads the saved state
        await poller.on_start()  # what a start does before its first poll: the saved holdings
        scope = poller.scopes[0]
        assert scope.prev is not None and scope.prev[V6_PREFIX][0] == "search"
        b = eni_xml("eni-0b", "10.0.1.11", "i-0bbb", v6=(V6_PREFIX,))
        assert poller.apply(scope, describe_enis(b), describe_instances(NODE_B), 1_003_000) == 0
        assert poller.apply(scope, describe_enis(), [], 1_004_000) == 2  # node B gone too
        snap = m.rebuild_now()
        assert apps_at(snap, [V6_IN], 1_000_500) == ["checkout"]
        assert apps_at(snap, [V6_IN], 1_003_999) == ["search"]
        assert apps_at(snap, [V6_IN, "10.0.1.11"], 1_004_000) == ["internet", "unknown"]
        await m.stop()

    asyncio.run(restart())
