"""The sample estate: accounts, regions, VPCs, subnets, applications, and every address a flow
can carry, as columns of one endpoint table.

Endpoint kinds: ``SLOT`` (an address that owners.jsonl hands from app to app), ``UNOWNED``
(a VPC address no interval ever covers: it must enrich as unknown), ``INTERNET`` (public,
some tagged with the AWS service behind them) and ``CIDR`` (covered only by networks.csv).
Slots come first, so a slot's endpoint row is its slot number.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dredge.generate.lines import I64, StringPool

TYPES = ("instance", "eks-pod", "ecs-task", "lambda", "nat-gateway", "load-balancer")
INSTANCE, EKS_POD, ECS_TASK, LAMBDA, NAT_GATEWAY, LOAD_BALANCER = range(6)
SLOT, UNOWNED, INTERNET, CIDR = range(4)

REGIONS: dict[str, tuple[tuple[str, ...], str, float]] = {
    "us-east-1": (("use1-az1", "use1-az2", "use1-az4"), "2600:1f18", 1.0),
    "eu-west-1": (("euw1-az1", "euw1-az2", "euw1-az3"), "2a05:d018", 0.6),
    "us-west-2": (("usw2-az1", "usw2-az2", "usw2-az3"), "2600:1f14", 0.4),
}
APP_NAMES = (
    "api", "web", "checkout", "payments", "search", "auth", "orders", "inventory", "cart",
    "catalog", "billing", "notifications", "users", "recommendations", "reviews", "shipping",
    "pricing", "kafka", "redis", "postgres", "etl", "reporting", "gateway", "media", "images",
    "email", "fraud", "ledger", "graphql", "admin", "metrics", "logging", "tracing",
    "scheduler", "batch", "ml-inference", "feature-store", "identity", "session", "cdn-origin",
)  # fmt: skip
NAT_APP = "egress-nat"
# Share of each reassigned type among the app's and the slots' types: instance .. lambda.
_TYPE_PATTERN = np.array([0, 1, 0, 1, 2, 0, 1, 2, 3, 1])
_SLOT_TYPE_SHARE = (0.40, 0.30, 0.17, 0.13)
_INTERNET_V4_OCTETS = np.array([3, 13, 18, 23, 34, 44, 52, 54, 64, 81, 93, 104, 108, 142, 157, 185])
_INTERNET_V6 = ("2607:f8b0:4004", "2a03:2880:f10e", "2606:4700:3033", "2001:4860:4802")
# (name, share, traffic-path toward it): S3 and DynamoDB go through gateway endpoints.
_SERVICES = (("AMAZON", 0.4, 8), ("S3", 0.25, 7), ("DYNAMODB", 0.15, 7), ("EC2", 0.1, 8),
             ("CLOUDFRONT", 0.05, 8), ("ROUTE53", 0.05, 8))  # fmt: skip
# cidr, app, type, region, traffic-path toward it; account and vpc are filled for peered VPCs.
_CIDRS = (
    ("172.16.0.0/12", "on-prem", "on-prem", "on-prem", 3),
    ("192.168.0.0/16", "office", "on-prem", "on-prem", 3),
    ("192.168.10.0/24", "office-printers", "on-prem", "on-prem", 3),
    ("10.200.0.0/16", "shared-services", "peered-vpc", "us-east-1", 4),
    ("10.200.42.0/24", "ldap", "peered-vpc", "us-east-1", 4),
    ("151.101.0.0/16", "fastly", "saas", "global", 8),
    ("140.82.112.0/20", "github", "saas", "global", 8),
    ("35.190.0.0/17", "datadog", "saas", "global", 8),
    ("2a01:111:f400::/48", "saas-mail", "saas", "global", 8),
    ("fd00:ab:cd::/48", "on-prem-v6", "on-prem", "on-prem", 3),
)
EP_COLUMNS = ("addr", "kind", "site", "az", "subnet", "eni", "instance", "service", "path",
              "subloc_type", "subloc_id", "stype", "v6")  # fmt: skip


@dataclass(frozen=True)
class Site:
    """One VPC: an account's presence in a region."""

    account: str
    region: str
    azs: tuple[str, ...]
    vpc: str
    subnets: tuple[str, ...]  # two per AZ: subnet j lies in AZ j // 2
    weight: float


@dataclass(frozen=True)
class Picker:
    """Weighted draws from a set of endpoint rows."""

    rows: I64
    cum: npt.NDArray[np.float64]

    @staticmethod
    def of(rows: I64, weight: npt.NDArray[np.float64]) -> Picker:
        return Picker(rows, np.cumsum(weight[rows]))

    def pick(self, rng: np.random.Generator, n: int) -> I64:
        if not n:
            return self.rows[:0]
        if not len(self.rows):
            raise ValueError("empty endpoint pool")
        u = rng.random(n) * self.cum[-1]
        at = np.minimum(np.searchsorted(self.cum, u, side="right"), len(self.rows) - 1)
        out: I64 = self.rows[at]
        return out


@dataclass(frozen=True)
class Estate:
    pool: StringPool
    sites: list[Site]
    apps: list[str]
    app_type: I64
    app_weight: npt.NDArray[np.float64]
    ep: dict[str, I64]  # endpoint columns (EP_COLUMNS), pool ids or -1
    text: list[str]  # endpoint address text
    n_slots: int
    local4: list[Picker]  # per site: its IPv4 slots, NAT gateways left out
    local6: list[Picker]
    unowned: list[Picker]
    nat: list[Picker]
    slots4: Picker  # any site's
    slots6: Picker
    internet4: Picker
    internet6: Picker
    cidr4: Picker
    cidr6: Picker
    networks: list[tuple[str, str, str, str, str, str]]  # networks.csv rows


def hex_ids(rng: np.random.Generator, n: int, width: int = 17) -> list[str]:
    chars = np.array(list("0123456789abcdef"))[rng.integers(0, 16, size=(n, width))]
    out: list[str] = np.ascontiguousarray(chars).view(f"<U{width}").ravel().tolist()
    return out


def _v6(prefix: str, rng: np.random.Generator, n: int) -> list[str]:
    """``n`` addresses under ``prefix`` (whole groups), in canonical text."""
    groups = rng.integers(1, 0x10000, size=(n, 8 - prefix.count(":") - 1)).tolist()
    return [
        str(ipaddress.IPv6Address(":".join([prefix, *(f"{g:x}" for g in row)]))) for row in groups
    ]


class _Table:
    """Endpoint rows, gathered in chunks."""

    def __init__(self) -> None:
        self.chunks: list[dict[str, I64]] = []
        self.weights: list[npt.NDArray[np.float64]] = []
        self.text: list[str] = []

    def add(self, text: list[str], weight: npt.NDArray[np.float64], **cols: I64 | int) -> None:
        n = len(text)
        chunk = {c: np.full(n, -1, dtype=np.int64) for c in EP_COLUMNS}
        chunk["v6"][:] = 0
        for name, value in cols.items():
            chunk[name][:] = value
        self.chunks.append(chunk)
        self.weights.append(weight)
        self.text.extend(text)

    def columns(self) -> tuple[dict[str, I64], npt.NDArray[np.float64]]:
        cols = {c: np.concatenate([ch[c] for ch in self.chunks]) for c in EP_COLUMNS}
        return cols, np.concatenate(self.weights)


def _sites(rng: np.random.Generator, pool: StringPool, accounts: int) -> list[Site]:
    ids: list[str] = []
    while len(ids) < accounts:
        acct = str(int(rng.integers(10**11, 10**12)))
        if acct not in ids:
            ids.append(acct)
    names = list(REGIONS)
    sites = []
    for a, acct in enumerate(ids):
        for region in names if a == 0 else [names[0], names[1 + a % 2]]:
            azs, _, rweight = REGIONS[region]
            subnets = tuple(f"subnet-{h}" for h in hex_ids(rng, 2 * len(azs)))
            vpc = f"vpc-{hex_ids(rng, 1)[0]}"
            sites.append(Site(acct, region, azs, vpc, subnets, rweight / (a + 1) ** 0.7))
    for s in sites:
        for text in (s.account, s.region, s.vpc, *s.azs, *s.subnets):
            pool.add(text)
    return sites


def _apps(rng: np.random.Generator, apps: int) -> tuple[list[str], I64, npt.NDArray[np.float64]]:
    names = list(APP_NAMES[:apps]) + [f"svc-{i:03d}" for i in range(len(APP_NAMES), apps)]
    types = rng.permutation(_TYPE_PATTERN[np.arange(apps) % len(_TYPE_PATTERN)]).astype(np.int64)
    weight = 1.0 / np.arange(1, apps + 1) ** 1.1
    return names, types, weight / weight.sum()


def _add_site(
    rng: np.random.Generator,
    pool: StringPool,
    slots: _Table,
    spare: _Table,
    si: int,
    n: int,
    site: Site,
) -> None:
    """Site ``si``'s slots into ``slots`` and its never-owned addresses into ``spare``."""
    n_az = len(site.azs)
    az = np.concatenate([np.arange(n_az), np.repeat(np.arange(n_az), 2), rng.integers(0, n_az, n)])
    stype = np.concatenate(
        [
            np.full(n_az, NAT_GATEWAY),
            np.full(2 * n_az, LOAD_BALANCER),
            rng.choice(4, size=n, p=_SLOT_TYPE_SHARE),
        ]
    )
    m = len(az)
    v6 = np.zeros(m, dtype=bool)
    v6[3 * n_az :] = rng.random(n) < 0.06
    v6[3 * n_az + rng.integers(0, n, size=3)] = True  # every site has IPv6 owners
    subnet_j = 2 * az + (stype >= NAT_GATEWAY)  # NAT gateways and load balancers: public subnets
    text = [""] * m
    for j in range(2 * n_az):
        rows4 = np.flatnonzero((subnet_j == j) & ~v6)
        hosts = rng.permutation(np.arange(4, 4091))
        hosts = hosts[(hosts % 256 != 0) & (hosts % 256 != 255)]
        addrs = [f"10.{si + 1}.{j * 16 + h // 256}.{h % 256}" for h in hosts.tolist()]
        for r, t in zip(rows4.tolist(), addrs, strict=False):
            text[r] = t
        lone = addrs[len(rows4) : len(rows4) + max(2, len(rows4) // 30)]
        spare.add(
            lone,
            np.ones(len(lone)),
            addr=pool.add_many(lone),
            kind=UNOWNED,
            site=si,
            az=pool.add(site.azs[j // 2]),
            subnet=pool.add(site.subnets[j]),
            eni=pool.add_many([f"eni-{h}" for h in hex_ids(rng, len(lone))]),
            instance=pool.add_many([f"i-{h}" for h in hex_ids(rng, len(lone))]),
        )
        rows6 = np.flatnonzero((subnet_j == j) & v6)
        net = f"{REGIONS[site.region][1]}:{0x1000 + 37 * si:x}:{0x4A00 + j:x}"
        for r, t in zip(rows6.tolist(), _v6(net, rng, len(rows6)), strict=True):
            text[r] = t
    instance = np.full(m, -1, dtype=np.int64)
    own = np.flatnonzero(stype == INSTANCE)
    instance[own] = pool.add_many([f"i-{h}" for h in hex_ids(rng, len(own))])
    pods = np.flatnonzero((stype == EKS_POD) | (stype == ECS_TASK))
    nodes = pool.add_many([f"i-{h}" for h in hex_ids(rng, max(3, len(pods) // 20))])
    instance[pods] = nodes[rng.integers(0, len(nodes), len(pods))]
    outpost = (si == 0) & (stype == INSTANCE) & (rng.random(m) < 0.05)
    weight = (rng.pareto(1.5, m) + 0.5) * np.where(stype == LOAD_BALANCER, 5.0, 1.0)
    slots.add(
        text,
        weight,
        addr=pool.add_many(text),
        kind=SLOT,
        site=si,
        az=np.array([pool.add(site.azs[a]) for a in az]),
        subnet=np.array([pool.add(site.subnets[j]) for j in subnet_j]),
        eni=pool.add_many([f"eni-{h}" for h in hex_ids(rng, m)]),
        instance=instance,
        subloc_type=np.where(outpost, pool.add("outpost"), -1),
        subloc_id=np.where(outpost, pool.add(f"op-{hex_ids(rng, 1)[0]}"), -1),
        stype=stype,
        v6=v6.astype(np.int64),
    )


def _add_internet(rng: np.random.Generator, pool: StringPool, table: _Table) -> None:
    n = 4000
    octets = rng.integers(0, 256, size=(n, 4))
    octets[:, 0] = rng.choice(_INTERNET_V4_OCTETS, n)
    octets[:, 3] = rng.integers(1, 255, n)
    tagged = rng.random(n) < 0.25
    octets[tagged, 0] = rng.choice([3, 52, 54], int(tagged.sum()))
    svc = rng.choice(len(_SERVICES), n, p=[s[1] for s in _SERVICES])
    text = [f"{a}.{b}.{c}.{d}" for a, b, c, d in octets.tolist()]
    service = np.array([pool.add(s[0]) for s in _SERVICES])[svc]
    path = np.array([s[2] for s in _SERVICES])[svc]
    table.add(
        text,
        rng.pareto(1.2, n) + 0.2,
        addr=pool.add_many(text),
        kind=INTERNET,
        service=np.where(tagged, service, -1),
        path=np.where(tagged, path, 8),
    )
    text6 = [t for prefix in _INTERNET_V6 for t in _v6(prefix, rng, 250)]
    table.add(
        text6,
        rng.pareto(1.2, len(text6)) + 0.2,
        addr=pool.add_many(text6),
        kind=INTERNET,
        path=8,
        v6=1,
    )


def _add_cidrs(
    rng: np.random.Generator, pool: StringPool, table: _Table, site: Site
) -> list[tuple[str, str, str, str, str, str]]:
    """Hosts inside each networks.csv range (nested ranges get their own); the csv rows."""
    rows = []
    peered_vpc = f"vpc-{hex_ids(rng, 1)[0]}"
    for cidr, app, kind, region, path in _CIDRS:
        net = ipaddress.ip_network(cidr)
        peered = kind == "peered-vpc"
        rows.append(
            (cidr, app, kind, region, site.account if peered else "", peered_vpc if peered else "")
        )
        n = 60 if net.prefixlen in (24, 48) else 150
        span = min(net.num_addresses - 2, 2**62)
        base = int(net.network_address)
        text = [str(ipaddress.ip_address(base + 1 + int(o))) for o in rng.integers(0, span, n)]
        table.add(
            text,
            rng.pareto(1.5, n) + 0.5,
            addr=pool.add_many(text),
            kind=CIDR,
            path=path,
            v6=int(net.version == 6),
        )
    return rows


def build_estate(rng: np.random.Generator, *, accounts: int, apps: int, flows: int) -> Estate:
    pool = StringPool()
    sites = _sites(rng, pool, accounts)
    names, app_type, app_weight = _apps(rng, apps)
    slots, spare, other = _Table(), _Table(), _Table()
    n_slots = max(apps * 25, min(flows // 100, 50_000))
    site_w = np.array([s.weight for s in sites])
    per_site = np.maximum(rng.multinomial(n_slots, site_w / site_w.sum()), 20)
    for si, site in enumerate(sites):
        _add_site(rng, pool, slots, spare, si, int(per_site[si]), site)
    _add_internet(rng, pool, other)
    networks = _add_cidrs(rng, pool, other, sites[0])
    table = _Table()
    for part in (slots, spare, other):
        table.chunks += part.chunks
        table.weights += part.weights
        table.text += part.text
    ep, weight = table.columns()
    kind, home, v6, stype = ep["kind"], ep["site"], ep["v6"] == 1, ep["stype"]
    slot = (kind == SLOT) & (stype != NAT_GATEWAY)

    def picker(mask: npt.NDArray[np.bool_]) -> Picker:
        return Picker.of(np.flatnonzero(mask), weight)

    return Estate(
        pool=pool,
        sites=sites,
        apps=names,
        app_type=app_type,
        app_weight=app_weight,
        ep=ep,
        text=table.text,
        n_slots=len(slots.text),
        local4=[picker(slot & ~v6 & (home == s)) for s in range(len(sites))],
        local6=[picker(slot & v6 & (home == s)) for s in range(len(sites))],
        unowned=[picker((kind == UNOWNED) & (home == s)) for s in range(len(sites))],
        nat=[picker((stype == NAT_GATEWAY) & (home == s)) for s in range(len(sites))],
        slots4=picker(slot & ~v6),
        slots6=picker(slot & v6),
        internet4=picker((kind == INTERNET) & ~v6),
        internet6=picker((kind == INTERNET) & v6),
        cidr4=picker((kind == CIDR) & ~v6),
        cidr6=picker((kind == CIDR) & v6),
        networks=networks,
    )
