"""The VPC flow-log fields of versions 2 to 8 and the formats built from them.

A format is an ordered tuple of AWS field names (hyphenated, as in a header line). It comes
from a file's header line, from the user (``--format``: plain names or AWS's
``${version} ${srcaddr} ...`` syntax), or is the default version 2 format.

Each field has a kind that says how the columnar parser stores it:

- ``INT``  non-negative integers, stored as int64 with a null mask;
- ``ADDR`` IPv4/IPv6 addresses, stored as (family, hi, lo) 128-bit columns;
- ``CODE`` a small closed set of words (ACCEPT/REJECT, OK/NODATA/SKIPDATA, ingress/egress)
  stored as int8 codes (0 = null);
- ``STR``  anything else, kept as byte slices and turned into Arrow strings on demand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from dredge.errors import ParseError

# A flow-log record is a few hundred bytes; a "line" past this is not one (a gzip bomb of
# zeros, a binary file): readers drop it (``line_too_long``) and never hold more of it.
MAX_LINE_BYTES = 1 << 20
LONG_LINE_HEAD = 256  # bytes of such a line kept in its dead letter


class Kind(IntEnum):
    INT = 0
    ADDR = 1
    CODE = 2
    STR = 3


@dataclass(frozen=True)
class Field:
    name: str  # AWS name, hyphenated
    kind: Kind
    version: int
    parquet_type: str = "string"  # int32 / int64 / string, as S3's Parquet delivery types it

    @property
    def column(self) -> str:
        """snake_case name, as AWS uses in Parquet and Dredge in JSON output."""
        return self.name.replace("-", "_")


def _f(name: str, kind: Kind, version: int, ptype: str = "string") -> Field:
    return Field(name, kind, version, ptype)


def _many(version: int, kind: Kind, names: str, ptype: str = "string") -> list[Field]:
    """Consecutive fields of one version and kind, in the order given."""
    return [Field(n, kind, version, ptype) for n in names.split()]


INT, ADDR, CODE, STR = Kind.INT, Kind.ADDR, Kind.CODE, Kind.STR

# In AWS's order (version 2: the default format, in its order).
FIELDS: dict[str, Field] = {
    f.name: f
    for f in [
        _f("version", INT, 2, "int32"),
        *_many(2, STR, "account-id interface-id"),
        *_many(2, ADDR, "srcaddr dstaddr"),
        *_many(2, INT, "srcport dstport protocol", "int32"),
        *_many(2, INT, "packets bytes start end", "int64"),
        *_many(2, CODE, "action log-status"),
        *_many(3, STR, "vpc-id subnet-id instance-id"),
        _f("tcp-flags", INT, 3, "int32"),
        _f("type", STR, 3),
        *_many(3, ADDR, "pkt-srcaddr pkt-dstaddr"),
        *_many(4, STR, "region az-id sublocation-type sublocation-id"),
        *_many(5, STR, "pkt-src-aws-service pkt-dst-aws-service"),
        _f("flow-direction", CODE, 5),
        _f("traffic-path", INT, 5, "int32"),
        # version 6: transit gateway flow logs
        *_many(6, STR, """resource-type tgw-id tgw-attachment-id tgw-src-vpc-account-id
                          tgw-dst-vpc-account-id tgw-src-vpc-id tgw-dst-vpc-id tgw-src-subnet-id
                          tgw-dst-subnet-id tgw-src-eni tgw-dst-eni tgw-src-az-id tgw-dst-az-id
                          tgw-pair-attachment-id"""),
        *_many(6, INT, """packets-lost-no-route packets-lost-blackhole packets-lost-mtu-exceeded
                          packets-lost-ttl-expired""", "int64"),
        # version 7: ECS
        *_many(7, STR, """ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn
                          ecs-container-instance-id ecs-container-id ecs-second-container-id
                          ecs-service-name ecs-task-definition-arn ecs-task-arn ecs-task-id"""),
        _f("reject-reason", STR, 8),
    ]
}

BY_COLUMN: dict[str, Field] = {f.column: f for f in FIELDS.values()}

DEFAULT_V2: tuple[str, ...] = (
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
    "protocol", "packets", "bytes", "start", "end", "action", "log-status",
)

# The words of each CODE field, in code order (code = index + 1; 0 is null).
CODES: dict[str, tuple[bytes, ...]] = {
    "action": (b"ACCEPT", b"REJECT"),
    "log-status": (b"OK", b"NODATA", b"SKIPDATA"),
    "flow-direction": (b"ingress", b"egress"),
}
LOG_OK, LOG_NODATA, LOG_SKIPDATA = 1, 2, 3

# What the enrichment pipeline needs from a format.
REQUIRED_FOR_ENRICH = ("srcaddr", "dstaddr", "start", "bytes", "packets")

_TOKEN = re.compile(r"\$\{([a-z0-9-]+)\}")


@dataclass(frozen=True)
class FlowFormat:
    fields: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.fields:
            raise ParseError("a flow-log format needs at least one field")
        unknown = [f for f in self.fields if f not in FIELDS]
        if unknown:
            raise ParseError(f"unknown flow-log field(s): {', '.join(unknown)}")
        if len(set(self.fields)) != len(self.fields):
            raise ParseError("a flow-log format names a field twice")

    @classmethod
    def parse(cls, text: str) -> FlowFormat:
        """From a header line, plain names, snake_case names or ``${name}`` tokens."""
        text = text.strip()
        tokens: list[str] = _TOKEN.findall(text) if "${" in text else text.split()
        names = [BY_COLUMN[t].name if t in BY_COLUMN and t not in FIELDS else t for t in tokens]
        return cls(tuple(names))

    @property
    def version(self) -> int:
        return max(FIELDS[f].version for f in self.fields)

    def has(self, name: str) -> bool:
        return name in self.fields

    def check_enrichable(self) -> None:
        missing = [f for f in REQUIRED_FOR_ENRICH if f not in self.fields]
        if missing:
            raise ParseError(f"format lacks field(s) needed to enrich flows: {', '.join(missing)}")

    def __str__(self) -> str:
        return " ".join(self.fields)


DEFAULT_FORMAT = FlowFormat(DEFAULT_V2)


def looks_like_header(line: bytes) -> bool:
    """A header line names fields; a record starts with a version number."""
    first = line.split(maxsplit=1)[:1]
    return bool(first) and first[0].decode("latin-1") in FIELDS
