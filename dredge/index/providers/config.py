"""Settings of the index's providers, each declared once, and the ``[index]`` table that
composes them with the live index's own (:class:`~dredge.index.config.LiveConfig`).

Light on purpose (``dredge.config`` imports it at start-up): no numpy, pyarrow or AWS SDK
here. Field defaults *are* the defaults; ``validate()`` raises :class:`ConfigError` naming
the key (``dredge.config`` prefixes the section: ``index.ec2[0].regions``). The lists are
TOML's; a provider keeps :meth:`Ec2Config.provider_config` / :meth:`EventsConfig.provider_config`,
where they are frozen to tuples.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from dredge.aws import resolve_region
from dredge.errors import ConfigError
from dredge.index.config import LiveConfig
from dredge.settings import check_positive, check_url, sub_validate
from dredge.sources.kinesis.config import check_stream_name

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/.+$")
EVENT_KINDS = ("file", "kinesis")
STREAM_POSITIONS = ("TRIM_HORIZON", "LATEST")
FILE_STARTS = ("beginning", "end")



def account_of(role_arn: str) -> str:
    """The account id in an IAM role ARN, or ``default`` (no role: ambient credentials)."""
    m = _ROLE_ARN.match(role_arn)
    return m.group(1) if m else "default"


def cidr_map_problem(path: str) -> str | None:
    """Why the CIDR reloader cannot read ``path`` (it reads .csv and ip-ranges .json), or None."""
    if path.endswith((".csv", ".json")):
        return None
    return f"{path}: a .csv CIDR map or an ip-ranges .json file"


def _frozen(settings: Any) -> Any:
    """A copy of a settings dataclass with its lists frozen to tuples."""
    return dataclasses.replace(settings, **{
        f.name: tuple(v) for f in dataclasses.fields(settings)
        if isinstance(v := getattr(settings, f.name), list)})


@dataclass(frozen=True)
class Ec2Config:
    """One EC2 inventory provider (``[[index.ec2]]``): accounts x regions, polled."""

    regions: list[str] = field(default_factory=lambda: ["us-east-1"])
    # one IAM role per account to assume (the account is the ARN's); [] = the default
    # credentials' own account
    role_arns: list[str] = field(default_factory=list)
    role_session_name: str = "dredge-index"
    external_id: str = ""
    endpoint_url: str = ""  # EC2 and STS endpoint; empty: AWS (or AWS_ENDPOINT_URL)
    poll_interval_s: float = 60.0
    app_tags: list[str] = field(default_factory=lambda: ["app", "application", "App"])
    cluster_tags: list[str] = field(default_factory=lambda: ["cluster", "Cluster"])
    asg_convention: bool = True  # app/cluster from "app-stack-detail-vNNN" group names

    def validate(self) -> None:
        if not self.regions:
            raise ConfigError("regions", "give at least one region")
        for arn in self.role_arns:
            if not _ROLE_ARN.match(arn):
                raise ConfigError("role_arns", f"not an IAM role ARN: {arn}")
        check_positive(self, "poll_interval_s")
        if not self.app_tags:
            raise ConfigError("app_tags", "give at least one tag key")
        check_url("endpoint_url", self.endpoint_url)
        for i, r in enumerate(self.regions):
            if not r:
                raise ConfigError(f"regions[{i}]", "must not be empty")

    def provider_config(self) -> Ec2Config:
        """These settings as a running provider keeps them (lists frozen to tuples)."""
        frozen: Ec2Config = _frozen(self)
        return frozen


@dataclass(frozen=True)
class EventsConfig:
    """One assignment-event provider (``[[index.events]]``): a JSON-lines file or a stream.

    :meth:`provider_config` gives the kind's own settings (:class:`EventFileConfig`,
    :class:`EventStreamConfig`: these plus tuning knobs that are not TOML keys)."""

    kind: str = "file"  # "file" (followed as it is appended to) or "kinesis"
    path: str = ""  # kind = "file"
    start_at: str = "beginning"  # kind = "file", no saved position: "beginning" or "end"
    stream: str = ""  # kind = "kinesis": the stream name (every shard is read, no leases)
    region: str = ""  # kind = "kinesis"; empty: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1
    endpoint_url: str = ""  # kind = "kinesis"; empty: AWS (or AWS_ENDPOINT_URL)
    initial_position: str = "TRIM_HORIZON"  # kind = "kinesis", no saved position
    poll_interval_s: float = 1.0

    def validate(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ConfigError("kind", f"one of {list(EVENT_KINDS)}")
        if self.kind == "file":
            for name in ("stream", "region", "endpoint_url"):
                if getattr(self, name):
                    raise ConfigError(name, 'only with kind = "kinesis"')
            if not self.path:
                raise ConfigError("path", "give the JSON-lines file to follow")
            if self.start_at not in FILE_STARTS:
                raise ConfigError("start_at", " or ".join(FILE_STARTS))
        else:
            if self.path:
                raise ConfigError("path", 'only with kind = "file"')
            check_stream_name("stream", self.stream)
            check_url("endpoint_url", self.endpoint_url)
            if self.initial_position not in STREAM_POSITIONS:
                raise ConfigError("initial_position", " or ".join(STREAM_POSITIONS))
        check_positive(self, "poll_interval_s")

    @property
    def source_key(self) -> str:
        """What one provider reads (a file or a stream): two providers must not share it."""
        return self.path or f"kinesis:{self.stream}"

    def provider_config(self) -> EventFileConfig | EventStreamConfig:
        """The kind's settings, with the region resolved (explicit, else the environment's)."""
        common = {f.name: getattr(self, f.name) for f in dataclasses.fields(EventsConfig)}
        if self.kind == "file":
            return EventFileConfig(**common)
        return EventStreamConfig(**{**common, "region": resolve_region(self.region)})


@dataclass(frozen=True)
class EventFileConfig(EventsConfig):
    """A JSON-lines file of assignment events, followed as it is appended to."""

    max_read_bytes: int = 8 << 20  # read at most this much per call

    def validate(self) -> None:
        super().validate()
        if self.max_read_bytes < 4096:
            raise ConfigError("max_read_bytes", "must be >= 4096")


@dataclass(frozen=True)
class EventStreamConfig(EventsConfig):
    """A Kinesis stream of assignment events, every shard read by every worker."""

    kind: str = "kinesis"
    discover_interval_s: float = 30.0  # look for new shards (splits, merges) this often
    limit: int = 1000  # records per GetRecords call

    def validate(self) -> None:
        super().validate()
        check_positive(self, "discover_interval_s")
        if not 1 <= self.limit <= 10_000:
            raise ConfigError("limit", "between 1 and 10000")


@dataclass(frozen=True)
class CidrConfig:
    """CIDR map files reloaded when they change (``[index] cidrs``, ``cidr_poll_interval_s``)."""

    paths: tuple[str, ...] = ()
    poll_interval_s: float = 10.0

    def validate(self) -> None:
        check_positive(self, "poll_interval_s")
        for p in self.paths:
            if (problem := cidr_map_problem(p)) is not None:
                raise ConfigError("paths", problem)


@dataclass(frozen=True)
class IndexConfig(LiveConfig):
    """The IP -> application index (``[index]``).

    Ownership files alone (no provider, no ``state_path``): one static snapshot built at
    start, as ``dredge replay --index/--cidrs``. Anything else: the live index
    (:mod:`dredge.index.live`, its settings are the :class:`LiveConfig` fields) with the
    configured providers, ``cidrs`` reloaded when they change.
    """

    ownership: list[str] = field(default_factory=list)  # ownership history, JSON lines
    cidrs: list[str] = field(default_factory=list)  # CIDR maps: CSV or AWS ip-ranges.json
    cidr_poll_interval_s: float = 10.0  # live index: look for changed CIDR maps this often
    ec2: list[Ec2Config] = field(default_factory=list)
    events: list[EventsConfig] = field(default_factory=list)

    def validate(self) -> None:
        for i, p in enumerate(self.ownership):
            if not p:
                raise ConfigError(f"ownership[{i}]", "must not be empty")
        for i, p in enumerate(self.cidrs):
            if not p:
                raise ConfigError(f"cidrs[{i}]", "must not be empty")
            if self.live and (problem := cidr_map_problem(p)) is not None:
                raise ConfigError(f"cidrs[{i}]", problem)
        check_positive(self, "cidr_poll_interval_s")
        super().validate()
        for i, e in enumerate(self.ec2):
            sub_validate(f"ec2[{i}]", e.validate)
        keys: set[str] = set()
        for i, ev in enumerate(self.events):
            sub_validate(f"events[{i}]", ev.validate)
            if ev.source_key in keys:  # one source per file or stream: two would share positions
                raise ConfigError(f"events[{i}]", f"{ev.source_key} is listed twice")
            keys.add(ev.source_key)

    @property
    def live(self) -> bool:
        """True: the daemon runs the live index; False: one static snapshot from the files."""
        return bool(self.ec2 or self.events or self.state_path or not self.ownership)

    def live_config(self) -> LiveConfig:
        """The live index manager's settings (these: an IndexConfig is a LiveConfig)."""
        return self

    def cidr_config(self) -> CidrConfig:
        return CidrConfig(tuple(self.cidrs), self.cidr_poll_interval_s)


__all__ = [
    "CidrConfig",
    "Ec2Config",
    "EventFileConfig",
    "EventStreamConfig",
    "EventsConfig",
    "IndexConfig",
    "account_of",
    "cidr_map_problem",
]
