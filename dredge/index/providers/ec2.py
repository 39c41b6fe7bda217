"""EC2 inventory as a provider: poll network interfaces, diff successive polls into history.

Per account (a role assumed through STS, or the default credentials) and region, each poll
reads DescribeNetworkInterfaces and DescribeInstances (for instance tags) and maps every
address of every interface to an owner:

- addresses: primary and secondary private IPv4, their associated public IPs, the
  interface's own association, IPv6 addresses;
- delegated prefixes (EKS/ECS prefix delegation): each IPv4 /28 in ``Ipv4Prefixes`` as its
  16 addresses; each IPv6 /80 in ``Ipv6Prefixes`` as a prefix, kept in the scope's companion
  source ``ec2/<account>/<region>#prefix/80`` (see :mod:`dredge.index.prefixes`): an address
  inside it is owned through the prefix while it is assigned;
- ``type``: from the interface type and description (instance, nat-gateway,
  load-balancer, lambda, vpc-endpoint, ecs-task, aws-managed, interface);
- ``app`` / ``cluster``: the first configured tag key present on the interface, else on its
  instance; else the auto scaling group name (instance tag ``aws:autoscaling:groupName``)
  read as ``app-stack-detail-vNNN``: app = ``app``, cluster = ``app-stack-detail``; else,
  for AWS-managed interfaces, the resource named in the description (load balancer,
  Lambda function, NAT gateway or endpoint id).

The diff against the previous poll of the same scope becomes events at the poll's time
(the injected clock): an address (or prefix) seen for the first time, or with another
owner, is assigned; one that disappeared is released. A scope whose poll fails is not diffed at all
(a failed call must not release the whole account). After a restart the previous poll is
what the saved history says the scope holds, so nothing is released or re-assigned twice.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dredge.aws import AssumedRole, assume_role
from dredge.index import metrics
from dredge.index.owners import OWNER_FIELDS, Owner
from dredge.index.prefixes import expand_v4, split_keys
from dredge.index.providers.base import IndexFeed, PollingProvider, SourceSink
from dredge.index.providers.config import Ec2Config, account_of
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)
KIND = "ec2"
ASG_TAG = "aws:autoscaling:groupName"
_VERSION = re.compile(r"^(.+)-v\d+$")


# -- from API responses to owners (pure) -------------------------------------------------


def split_asg_name(name: str) -> tuple[str, str]:
    """``app-stack-detail-v042`` -> (``app``, ``app-stack-detail``)."""
    m = _VERSION.match(name)
    cluster = m.group(1) if m else name
    return cluster.split("-", 1)[0], cluster


def tags_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in obj.get("TagSet", obj.get("Tags", [])) or []}


def interface_type(eni: Mapping[str, Any]) -> str:
    it = str(eni.get("InterfaceType") or "interface")
    desc = str(eni.get("Description") or "")
    if it == "nat_gateway" or desc.startswith("Interface for NAT Gateway"):
        return "nat-gateway"
    if it in ("network_load_balancer", "gateway_load_balancer", "load_balancer") \
            or desc.startswith("ELB "):
        return "load-balancer"
    if it == "lambda" or desc.startswith("AWS Lambda VPC ENI"):
        return "lambda"
    if it in ("vpc_endpoint", "gateway_load_balancer_endpoint") \
            or desc.startswith("VPC Endpoint Interface"):
        return "vpc-endpoint"
    if desc.startswith("arn:aws:ecs:"):
        return "ecs-task"
    if (eni.get("Attachment") or {}).get("InstanceId"):
        return "instance"
    if eni.get("RequesterManaged"):
        return "aws-managed"
    return "interface"


def _managed_name(kind: str, desc: str) -> str | None:
    if kind == "load-balancer" and desc.startswith("ELB "):
        parts = desc[4:].split("/")  # "ELB app/my-alb/50dc6c495c0c9188" or "ELB my-classic"
        return parts[1] if len(parts) >= 2 else parts[0]
    if kind == "lambda" and desc.startswith("AWS Lambda VPC ENI-"):
        rest = desc[len("AWS Lambda VPC ENI-"):]
        m = re.match(r"^(.+)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", rest)
        return m.group(1) if m else rest
    if kind in ("nat-gateway", "vpc-endpoint"):
        m = re.search(r"\b(nat|vpce)-[0-9a-f]+\b", desc)
        return m.group(0) if m else None
    return None


def interface_owner(eni: Mapping[str, Any], instance_tags: Mapping[str, Mapping[str, str]],
                    config: Ec2Config, region: str) -> Owner:
    kind = interface_type(eni)
    tags = tags_of(eni)
    inst = instance_tags.get((eni.get("Attachment") or {}).get("InstanceId") or "", {})
    app = next((src[k] for src in (tags, inst) for k in config.app_tags if src.get(k)), None)
    cluster = next((src[k] for src in (tags, inst) for k in config.cluster_tags if src.get(k)), None)
    asg = inst.get(ASG_TAG) or tags.get(ASG_TAG)
    if config.asg_convention and asg and (app is None or cluster is None):
        a, c = split_asg_name(asg)
        app, cluster = app or a, cluster or c
    if app is None:
        app = _managed_name(kind, str(eni.get("Description") or ""))
    values = {"app": app, "cluster": cluster, "account": eni.get("OwnerId"), "region": region,
              "az": eni.get("AvailabilityZone"), "vpc": eni.get("VpcId"),
              "subnet": eni.get("SubnetId"), "type": kind}
    return tuple(None if values[f] is None else str(values[f]) for f in OWNER_FIELDS)


def interface_addresses(eni: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    privs = eni.get("PrivateIpAddresses") or []
    for p in privs:
        out.append(p["PrivateIpAddress"])
        pub = (p.get("Association") or {}).get("PublicIp")
        if pub:
            out.append(pub)
    if not privs and eni.get("PrivateIpAddress"):
        out.append(eni["PrivateIpAddress"])
    pub = (eni.get("Association") or {}).get("PublicIp")
    if pub:
        out.append(pub)
    out += [a["Ipv6Address"] for a in eni.get("Ipv6Addresses") or [] if a.get("Ipv6Address")]
    return list(dict.fromkeys(out))


def interface_prefixes(eni: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Delegated prefixes of an interface: (addresses of its IPv4 /28s, expanded; its other
    prefixes as ``network/length``, IPv6 /80s)."""
    expanded: list[str] = []
    kept: list[str] = []
    for p in [p.get("Ipv4Prefix") for p in eni.get("Ipv4Prefixes") or []] \
            + [p.get("Ipv6Prefix") for p in eni.get("Ipv6Prefixes") or []]:
        if not p:
            continue
        ips = expand_v4(p)
        if ips is None:
            kept.append(p)
        else:
            expanded += ips
    return expanded, kept


def inventory(enis: Iterable[Mapping[str, Any]], instances: Iterable[Mapping[str, Any]],
              config: Ec2Config, region: str) -> dict[str, Owner]:
    """Address (or delegated ``network/length``) -> owner for one scope's poll. An address
    on two interfaces (should not happen within one VPC) goes to the interface listed last."""
    gone = {"terminated", "shutting-down"}
    inst_tags = {i["InstanceId"]: tags_of(i) for i in instances
                 if (i.get("State") or {}).get("Name") not in gone}
    dead = {i["InstanceId"] for i in instances if (i.get("State") or {}).get("Name") in gone}
    out: dict[str, Owner] = {}
    for eni in enis:
        if (eni.get("Attachment") or {}).get("InstanceId") in dead:
            continue  # its addresses are on their way back to the subnet
        owner = interface_owner(eni, inst_tags, config, region)
        expanded, prefixes = interface_prefixes(eni)
        for key in interface_addresses(eni) + expanded + prefixes:
            out[key] = owner
    return out


def diff(prev: Mapping[str, Owner], cur: Mapping[str, Owner]
         ) -> tuple[list[str], list[Owner | None]]:
    """Events turning ``prev`` into ``cur``: (addresses, new owner or None = released)."""
    ips: list[str] = []
    owners: list[Owner | None] = []
    for ip, o in cur.items():
        if prev.get(ip) != o:
            ips.append(ip)
            owners.append(o)
    for ip in prev:
        if ip not in cur:
            ips.append(ip)
            owners.append(None)
    return ips, owners


# -- the provider ------------------------------------------------------------------------


@dataclass
class _Scope:
    account: str  # the id from the role ARN, or "default"
    region: str
    role_arn: str
    sink: SourceSink
    prev: dict[str, Owner] | None = None
    creds: dict[str, Any] | None = None


class Ec2Inventory(PollingProvider):
    """Provider: one source per (account, region), ``ec2/<account>/<region>``."""

    name = KIND

    def __init__(self, config: Ec2Config, manager: IndexFeed,
                 clock: Callable[[], float] | None = None) -> None:
        config.validate()
        super().__init__(config.poll_interval_s)
        self.config = config.provider_config()
        self.clock = clock or manager.clock
        self.scopes = [
            _Scope(account, region, role, manager.sink(f"ec2/{account}/{region}", KIND))
            for role, account in ((r, account_of(r)) for r in config.role_arns or ("",))
            for region in config.regions
        ]

    async def on_start(self) -> None:
        for s in self.scopes:
            s.prev = s.sink.assigned() | s.sink.assigned_prefixes()

    async def poll(self) -> int:
        """Poll every scope once; returns the number of events submitted."""
        results = await asyncio.gather(*(self._poll_scope(s) for s in self.scopes))
        return sum(results)

    async def _poll_scope(self, scope: _Scope) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        t = int(self.clock())
        t0 = time.perf_counter()
        try:
            enis, instances = await self._describe(scope)
        except (BotoCoreError, ClientError) as exc:
            metrics.polls_total.labels(KIND, "failed").inc()
            self.report_error(scope.sink, exc, "ec2_poll_failed", account=scope.account,
                              region=scope.region)
            return 0
        n = self.apply(scope, enis, instances, t)
        metrics.polls_total.labels(KIND, "ok").inc()
        log.debug("ec2_polled", account=scope.account, region=scope.region, interfaces=len(enis),
                  addresses=len(scope.prev or {}), changes=n,
                  seconds=round(time.perf_counter() - t0, 3))
        return n

    def apply(self, scope: _Scope, enis: list[dict[str, Any]], instances: list[dict[str, Any]],
              t: int) -> int:
        """One successful poll's responses (DescribeNetworkInterfaces, DescribeInstances)
        diffed against the scope's previous poll and submitted at ``t``. Returns the number
        of events."""
        cur = inventory(enis, instances, self.config, scope.region)
        keys, changed = diff(scope.prev or {}, cur)
        ips, owners, nets = split_keys(keys, changed)
        if ips:
            scope.sink.submit(ips, [t] * len(ips), owners)
        else:
            scope.sink.touch()
        for length, (net_ips, net_owners) in nets.items():
            scope.sink.prefix_sink(length).submit(net_ips, [t] * len(net_ips), net_owners)
        scope.prev = cur
        return len(keys)

    async def _credentials(self, scope: _Scope) -> dict[str, Any]:
        if not scope.role_arn:
            return {}
        exp = (scope.creds or {}).get("expires", 0.0)
        if scope.creds is None or exp - time.time() < 300:
            role = AssumedRole(scope.role_arn, self.config.role_session_name,
                               self.config.external_id)
            c = await assume_role(role, scope.region, self.config.endpoint_url)
            scope.creds = {**c.client_kwargs(), "expires": c.expiry.timestamp()}
        return {k: v for k, v in scope.creds.items() if k != "expires"}

    def _client_args(self, region: str) -> dict[str, Any]:
        args: dict[str, Any] = {"region_name": region}
        if self.config.endpoint_url:
            args["endpoint_url"] = self.config.endpoint_url
        return args

    async def _describe(self, scope: _Scope) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from aiobotocore.session import get_session

        creds = await self._credentials(scope)
        async with get_session().create_client("ec2", **self._client_args(scope.region),
                                               **creds) as ec2:
            enis: list[dict[str, Any]] = []
            async for page in ec2.get_paginator("describe_network_interfaces").paginate():
                enis += page.get("NetworkInterfaces", [])
            instances: list[dict[str, Any]] = []
            async for page in ec2.get_paginator("describe_instances").paginate():
                for r in page.get("Reservations", []):
                    instances += r.get("Instances", [])
        return enis, instances
