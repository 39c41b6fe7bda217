"""Queries over the ``flows`` table, as SQL for DuckDB (and Druid SQL, same answers).

``top``: the biggest groups by any dimensions; ``timeseries``: totals per time bucket;
``cross-az``: application pairs whose traffic costs money to move: across availability zones
or regions, out to the internet, or through a NAT gateway, with the estimated cost (see
:func:`QuerySpec.sql` for the model). Filters: ``--where dim=value`` (``a|b`` for any of
several), ``dim!=value``, and a time range [from, to). ``protocol`` takes names or numbers
(:mod:`dredge.query.protocols`), so does the service ``port`` (:mod:`dredge.query.ports`); the code words of ``action`` and ``flow_direction`` are
matched in any case and stored as the flow log spells them (``REJECT``, ``ingress``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from dredge.enrich.rollup import DIMENSIONS
from dredge.errors import ConfigError
from dredge.times import parse_duration as parse_duration  # re-exported (home: dredge.times)
from dredge.times import parse_time as parse_time

METRICS = ("bytes", "packets", "flows")
FILTERABLE = tuple(d for d in DIMENSIONS if d != "window_start")

# AWS data transfer list prices (USD per GB), us-east-1, 2026: traffic between AZs is
# charged $0.01/GB on each side (out of one AZ and into the other); between regions the
# sender pays about $0.02/GB. Each flow-log record is one side's view of the traffic, so the
# cross-AZ price applies to each record's bytes once.
DEFAULT_AZ_PRICE = 0.01
DEFAULT_REGION_PRICE = 0.02
# Data transfer out to the internet (first 10 TB/month tier) and NAT gateway data processing.
DEFAULT_INTERNET_PRICE = 0.09
DEFAULT_NAT_PRICE = 0.045
PRICES = ("az_price", "region_price", "internet_price", "nat_price")
NUMERIC = ("protocol", "port", "traffic_path")  # integer dimensions: filter values are integers
# dimensions holding a flow-log code word: the words, as the store spells them
WORDS = {"action": ("ACCEPT", "REJECT"), "flow_direction": ("ingress", "egress")}
# Owner types (``src_type``/``dst_type``) the cost model reads: what the index gives addresses
# outside every known range, and NAT gateways' interfaces (``dredge generate`` emits both).
INTERNET_TYPE = "internet"
NAT_TYPE = "nat-gateway"
INT64_MAX = 2**63 - 1  # metric totals saturate here (Dialect.sum)
TWO_63_DOUBLE = "9.223372036854775808E18"  # 2**63 as a double literal
COST_COLUMNS = ("src_region", "dst_region", "src_az", "dst_az", "src_type", "dst_type", "action")


@dataclass(frozen=True)
class Dialect:
    name: str
    table: str
    time_col: str

    def bucket(self, seconds: int) -> str:
        if self.name == "druid":
            # DuckDB's time_bucket counts from Monday 2000-01-03; Druid from the epoch unless
            # told: the same origin gives the same buckets for intervals that do not divide a day
            return f"TIME_FLOOR({self.time_col}, 'PT{seconds}S', TIMESTAMP '2000-01-03 00:00:00')"
        return f"time_bucket(INTERVAL '{seconds} seconds', {self.time_col})"

    def ascending(self, cols: tuple[str, ...]) -> str:
        """ORDER BY terms, ascending with NULLs last (DuckDB's default). Druid puts NULLs
        first and refuses ``NULLS LAST`` on ascending keys; ``col IS NULL`` first does it."""
        if self.name == "druid":
            return ", ".join(f"{c} IS NULL, {c}" for c in cols)
        return ", ".join(cols)

    def sum(self, col: str) -> str:
        """A metric's total, saturating at the int64 maximum (never wrapping negative).

        DuckDB sums BIGINT into HUGEINT (exact), capped before the cast back. Druid's
        ``longSum`` wraps, so beside it the same column is summed as doubles: a double total
        at or past 2**63, or a stored value below zero (Druid's own ingestion rollup wrapped
        it; every true value is >= 0), gives the maximum. The long sum stays the answer
        otherwise, exact. The rollup saturates each stored row the same way
        (``enrich.rollup``). Unseen: a Druid ingestion sum that wrapped all the way round to
        a positive value (more than 2**64 in one row: thousands of records at the
        plausibility bounds in one minute and group)."""
        if self.name == "druid":
            return (f"CASE WHEN SUM(CAST({col} AS DOUBLE)) >= {TWO_63_DOUBLE} OR MIN({col}) < 0 "
                    f"THEN {INT64_MAX} ELSE SUM({col}) END")
        return f"CAST(CASE WHEN SUM({col}) > {INT64_MAX} THEN {INT64_MAX} ELSE SUM({col}) END AS BIGINT)"

    def is_aws_region(self, col: str) -> str:
        """True for AWS region codes (us-east-1, us-gov-west-1), false for on-prem/GLOBAL/null."""
        pattern = "'^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$'"
        if self.name == "druid":
            return f"REGEXP_LIKE({col}, {pattern})"
        return f"regexp_matches(coalesce({col}, ''), {pattern})"

    def ts_literal(self, epoch: int) -> str:
        text = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"TIMESTAMP '{text}'"


DUCKDB = Dialect("duckdb", "flows", "window_start")
DRUID = Dialect("druid", '"dredge_flows"', "__time")


@dataclass(frozen=True)
class Filter:
    dim: str
    values: tuple[str, ...]
    negate: bool = False

    @classmethod
    def parse(cls, text: str) -> Filter:
        m = re.fullmatch(r"\s*([a-z_]+)\s*(!=|=)\s*(.*)", text)
        if not m:
            raise ConfigError("where", f"expected dim=value or dim!=value, got {text!r}")
        dim, op, value = m.groups()
        if dim not in FILTERABLE:
            raise ConfigError("where", f"unknown dimension {dim!r}; one of {', '.join(FILTERABLE)}")
        values = tuple(_canonical(dim, v.strip()) for v in value.split("|"))
        return cls(dim, values, op == "!=")


def _canonical(dim: str, value: str) -> str:
    """A filter value as the store holds it: protocol names as numbers, code words in the
    flow log's case; a value the dimension cannot hold is refused."""
    if dim == "protocol":
        from dredge.query.protocols import number

        n = number(value)
        if n is None or n > 255:
            raise ConfigError("where", f"protocol takes a number 0-255 or an IANA name (tcp, "
                                       f"udp, icmp, ...), not {value!r}")
        return str(n)
    if dim == "port":
        from dredge.query.ports import number as port_number

        p = port_number(value)
        if p is None:
            raise ConfigError("where", f"port takes a number 0-65535, a service name (https, "
                                       f"ssh, ...) or ephemeral, not {value!r}")
        return str(p)
    if dim in NUMERIC and not re.fullmatch(r"-?\d+", value):
        raise ConfigError("where", f"{dim} takes integers, not {value!r}")
    if dim in WORDS:
        for word in WORDS[dim]:
            if word.lower() == value.lower():
                return word
        raise ConfigError("where", f"{dim} is one of {', '.join(WORDS[dim])} (any case), "
                                   f"not {value!r}")
    return value


def crossing_rules(dialect: Dialect, internet: bool = True, nat: bool = True
                   ) -> list[tuple[str, str]]:
    """The cost model's crossings as (name, SQL condition over one rolled-up row), in order:
    the first that applies names a row's crossing (see ``QuerySpec._cost_sql``). The
    dashboards' Superset datasets use the same rules."""
    regions = (f"({dialect.is_aws_region('src_region')} AND {dialect.is_aws_region('dst_region')} "
               "AND src_region <> dst_region)")
    azs = ("(src_az IS NOT NULL AND dst_az IS NOT NULL AND src_az <> dst_az "
           "AND coalesce(src_region, '') = coalesce(dst_region, ''))")
    sent = "coalesce(action, '') <> 'REJECT'"  # a rejected packet never left
    rules = [("cross-region", regions), ("cross-az", azs)]
    if internet:
        rules.append(("internet", f"(dst_type = '{INTERNET_TYPE}' AND "
                                  f"coalesce(src_type, '') <> '{INTERNET_TYPE}' AND {sent})"))
    if nat:
        rules.append(("nat", f"(((src_type = '{NAT_TYPE}' AND coalesce(dst_type, '') <> "
                             f"'{INTERNET_TYPE}') OR (dst_type = '{NAT_TYPE}' AND "
                             f"coalesce(src_type, '') <> '{INTERNET_TYPE}')) AND {sent})"))
    return rules


def crossing_case(rules: list[tuple[str, str]]) -> str:
    """A row's crossing name, for a row that one of ``rules`` keeps."""
    return ("CASE " + " ".join(f"WHEN {c} THEN '{name}'" for name, c in rules[:-1])
            + f" ELSE '{rules[-1][0]}' END")


@dataclass(frozen=True)
class QuerySpec:
    kind: str  # top | timeseries | cross-az
    by: tuple[str, ...] = ("src_app", "dst_app")
    filters: tuple[Filter, ...] = ()
    start: int | None = None
    end: int | None = None
    metric: str = "bytes"
    limit: int = 20
    interval_s: int = 300
    az_price: float = DEFAULT_AZ_PRICE
    region_price: float = DEFAULT_REGION_PRICE
    internet_price: float = DEFAULT_INTERNET_PRICE
    nat_price: float = DEFAULT_NAT_PRICE
    extra: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.kind not in ("top", "timeseries", "cross-az"):
            raise ConfigError("query", f"unknown query {self.kind!r}")
        for d in self.by:
            if d not in FILTERABLE:
                raise ConfigError("by", f"unknown dimension {d!r}; one of {', '.join(FILTERABLE)}")
        if self.metric not in METRICS:
            raise ConfigError("metric", f"one of {', '.join(METRICS)}")
        if self.limit <= 0:
            raise ConfigError("limit", "must be positive")
        if self.interval_s <= 0:
            raise ConfigError("interval", "must be positive")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ConfigError("to", "must be after --from")
        for name in PRICES:
            price = getattr(self, name)
            if not (isinstance(price, int | float) and 0 <= price < float("inf")):
                raise ConfigError(name, "a price in USD per GB, >= 0")

    def result_schema(self) -> pa.Schema:
        """The column names and types of the result, as DuckDB returns them."""
        from dredge.enrich.rollup import FLOWS_SCHEMA

        fields: list[pa.Field] = []
        if self.kind == "timeseries":
            fields.append(pa.field("t", pa.timestamp("us")))
        fields += [pa.field(d, FLOWS_SCHEMA.field(d).type) for d in self.by]
        if self.kind == "cross-az":
            fields.append(pa.field("crossing", pa.string()))
        fields += [pa.field(m, pa.int64()) for m in METRICS]
        if self.kind == "cross-az":
            fields.append(pa.field("cost_usd", pa.float64()))
        return pa.schema(fields)

    def where(self, dialect: Dialect) -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        if self.start is not None:
            clauses.append(f"{dialect.time_col} >= {dialect.ts_literal(self.start)}")
        if self.end is not None:
            clauses.append(f"{dialect.time_col} < {dialect.ts_literal(self.end)}")
        for f in self.filters:
            col = f.dim
            if f.dim in NUMERIC:
                vals: list[object] = [int(v) for v in f.values]
            else:
                vals = list(f.values)
            marks = ", ".join("?" for _ in vals)
            if f.negate:
                clauses.append(f"({col} IS NULL OR {col} NOT IN ({marks}))")
            else:
                clauses.append(f"{col} IN ({marks})")
            params.extend(vals)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def sql(self, dialect: Dialect = DUCKDB) -> tuple[str, list[object]]:
        self.validate()
        where, params = self.where(dialect)
        sums = ", ".join(f"{dialect.sum(m)} AS {m}" for m in METRICS)
        if self.kind == "top":
            by = ", ".join(self.by)
            return (f"SELECT {by}, {sums} FROM {dialect.table}{where} GROUP BY {by} "
                    f"ORDER BY {self.metric} DESC, {dialect.ascending(self.by)} "
                    f"LIMIT {int(self.limit)}"), params
        if self.kind == "timeseries":
            bucket = dialect.bucket(self.interval_s)
            by = "".join(f", {d}" for d in self.by)
            order = f", {dialect.ascending(self.by)}" if self.by else ""
            return (f"SELECT {bucket} AS t{by}, {sums} FROM {dialect.table}{where} "
                    f"GROUP BY 1{''.join(f', {i + 2}' for i in range(len(self.by)))} "
                    f"ORDER BY 1{order}"), params
        return self._cost_sql(dialect, where, params, sums)

    def _cost_sql(self, dialect: Dialect, where: str, params: list[object], sums: str
                  ) -> tuple[str, list[object]]:
        """The cost model, per rolled-up row (one side's view of the traffic):

        - cross-region: both sides in AWS regions (not on-prem, GLOBAL or unknown), different;
        - cross-az: both AZ IDs known and different within one region;
        - internet: the destination's owner type is ``internet`` and the source's is not
          (egress; traffic in from the internet is free), not rejected;
        - nat: one side is a NAT gateway's interface and the other is not the internet (the
          host's leg: each byte the gateway processes is counted once, not again on its
          internet leg), not rejected.

        Rejected records count for cross-AZ/region as they always have (the model before the
        internet and NAT prices); for the two new prices a rejected packet never left.

        ``crossing`` names the first that applies, in that order; ``cost_usd`` adds every
        price that applies (a host in one AZ sending through a NAT gateway in another pays
        both). A price of 0 leaves its rows out, so with ``internet_price = nat_price = 0``
        the answer is exactly the cross-AZ/region one.
        """
        crossings = crossing_rules(dialect, internet=self.internet_price > 0,
                                   nat=self.nat_price > 0)
        kind = crossing_case(crossings)
        cond = "(" + " OR ".join(c for _, c in crossings) + ")"
        # Rows are first summed by the columns the model reads (a few thousand groups), so the
        # region pattern and the CASEs run per group, not per row; integer sums are the same.
        # The middle query names each group's crossing (and the bytes the extra prices apply
        # to) as plain columns, so the outer query groups by names, not by a repeated CASE.
        cols = list(dict.fromkeys([*self.by, *COST_COLUMNS]))
        inner = (f"SELECT {', '.join(cols)}, {sums} FROM {dialect.table}{where} "
                 f"GROUP BY {', '.join(str(i + 1) for i in range(len(cols)))}")
        extra = crossings[2:]
        middle = (f"SELECT {''.join(f'{b}, ' for b in self.by)}{kind} AS crossing, "
                  + "bytes, packets, flows"
                  + "".join(f", CASE WHEN {c} THEN bytes ELSE 0 END AS {n}_bytes" for n, c in extra)
                  + f" FROM ({inner}) pre WHERE {cond}")
        by = ", ".join(self.by)
        groups = ", ".join(str(i + 1) for i in range(len(self.by) + 1))  # Druid: no aliases
        # The base price by the group's crossing, exactly as before the extension; the extra
        # prices on the bytes of the rows they apply to (+ 0.0 where none do: same float)
        base = ("CASE WHEN crossing = 'cross-region' THEN "
                f"{float(self.region_price)!r} WHEN crossing = 'cross-az' THEN "
                f"{float(self.az_price)!r} ELSE 0.0 END")
        if not extra:
            base = (f"CASE WHEN crossing = 'cross-region' THEN {float(self.region_price)!r} "
                    f"ELSE {float(self.az_price)!r} END")
        cost = f"{dialect.sum('bytes')} / 1e9 * {base}"
        for name, _ in extra:
            rate = float(self.internet_price if name == "internet" else self.nat_price)
            # Druid turns SUM(CASE WHEN c THEN x ELSE 0 END) into a filtered aggregator: NULL,
            # not 0, for a group where no row matches
            cost += f" + coalesce({dialect.sum(f'{name}_bytes')}, 0) / 1e9 * {rate!r}"
        return (f"SELECT {by}, crossing, {sums}, {cost} AS cost_usd "
                f"FROM ({middle}) x GROUP BY {groups} "
                f"ORDER BY cost_usd DESC, {dialect.ascending(self.by)} LIMIT {int(self.limit)}"), params
