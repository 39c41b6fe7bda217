"""The ``flows`` rows as Superset sees them in Druid: columns and types, saved metrics, the
native-filter columns, and the data-transfer cost model in Druid SQL.

Columns come from the rollup (:data:`dredge.enrich.rollup.DIMENSIONS` and ``METRICS``) and
the ingestion spec (:data:`dredge.sinks.druid.LONG_DIMENSIONS`; the timestamp is Druid's
``__time``), so a column added there appears here. The prices and the crossing rules are those
of ``dredge query cross-az``, read from :mod:`dredge.query.spec`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dredge.enrich.rollup import DIMENSIONS, METRICS
from dredge.query.spec import (
    DEFAULT_AZ_PRICE,
    DEFAULT_INTERNET_PRICE,
    DEFAULT_NAT_PRICE,
    DEFAULT_REGION_PRICE,
    DRUID,
    crossing_case,
    crossing_rules,
)
from dredge.sinks.druid import LONG_DIMENSIONS

TIME = "__time"  # Druid's timestamp: the rollup's window_start
SIDES = {"src": "Source", "dst": "Destination"}
WORDS = {"app": "app", "cluster": "cluster", "account": "account", "region": "region",
         "az": "AZ ID", "vpc": "VPC", "subnet": "subnet", "type": "owner type"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as Druid SQL reports it (INFORMATION_SCHEMA.COLUMNS)
    label: str
    description: str = ""
    expression: str = ""  # a calculated column: SQL over the row

    @property
    def is_time(self) -> bool:
        return self.name == TIME

    @property
    def is_metric_input(self) -> bool:
        return self.name in METRICS


@dataclass(frozen=True)
class Metric:
    name: str
    expression: str
    label: str
    description: str
    d3format: str = ""


def _label(name: str) -> str:
    if name == "port":
        return "Service port"
    side, _, word = name.partition("_")
    if side in SIDES and word in WORDS:
        return f"{SIDES[side]} {WORDS[word]}"
    return name.replace("_", " ").capitalize()


def flow_columns() -> list[Column]:
    """Every column of the Druid datasource, in the rollup's order."""
    cols = [Column(TIME, "TIMESTAMP", "Time", "start of the one-minute window (UTC)")]
    for name in DIMENSIONS:
        if name == "window_start":
            continue
        kind = "BIGINT" if name in LONG_DIMENSIONS else "VARCHAR"
        cols.append(Column(name, kind, _label(name)))
    cols += [Column(m, "BIGINT", m.capitalize(), f"sum of {m} in the window") for m in METRICS]
    return cols


COLUMN_NAMES = frozenset(c.name for c in flow_columns())

# AWS's traffic-path codes (flow-log v5; egress traffic only, null before v5)
TRAFFIC_PATHS = {
    1: "same VPC", 2: "internet gateway or gateway endpoint", 3: "virtual private gateway",
    4: "intra-region peering", 5: "inter-region peering", 6: "local gateway",
    7: "gateway endpoint (Nitro)", 8: "internet gateway (Nitro)",
}


def traffic_path_name() -> Column:
    """A calculated column: ``traffic_path`` as words, ``not recorded`` when null."""
    cases = " ".join(f"WHEN {code} THEN '{code} {name}'" for code, name in TRAFFIC_PATHS.items())
    return Column("traffic_path_name", "VARCHAR", "Traffic path",
                  "how egress traffic left (flow-log v5+)",
                  expression=f"CASE traffic_path {cases} ELSE 'not recorded' END")


def port_name() -> Column:
    """A calculated column: the service port as ``dredge query`` shows it (``443 (https)``,
    ``ephemeral``), ``none`` when the flow has none (or it was not recorded)."""
    from dredge.query.ports import EPHEMERAL_NAME, NAMES, label

    cases = " ".join(f"WHEN {p} THEN '{label(p)}'" for p in NAMES)
    return Column("port_name", "VARCHAR", "Service port (name)",
                  "the port of the side that serves (dredge.flowlog.ports)",
                  expression=f"CASE WHEN port IS NULL THEN 'none' ELSE CASE port WHEN 0 THEN "
                             f"'{EPHEMERAL_NAME}' {cases} ELSE CAST(port AS VARCHAR) END END")


# Native filters of every dashboard: (title, column). Every dataset has these columns.
FILTERS = (
    ("Source region", "src_region"), ("Source account", "src_account"),
    ("Source AZ", "src_az"), ("Source VPC", "src_vpc"), ("Source app", "src_app"),
    ("Destination app", "dst_app"), ("Source cluster", "src_cluster"), ("Action", "action"),
    ("Protocol", "protocol"), ("Service port", "port"), ("Flow direction", "flow_direction"),
)

UNATTRIBUTED = "unknown"  # the owner of private addresses nobody owns (dredge.index.snapshot)


def _share(condition: str, of: str) -> str:
    return (f"SUM(CASE WHEN {condition} THEN {of} ELSE 0 END) * 1.0 / "
            f"NULLIF(SUM({of}), 0)")


def flow_metrics() -> list[Metric]:
    """Saved metrics of every dataset over the ``flows`` rows."""
    # Rows are one-minute windows: the span from the first to the last minute with traffic,
    # plus that last minute, is the time the bytes were sent over
    span_s = (f"((TIMESTAMP_TO_MILLIS(MAX({TIME})) - TIMESTAMP_TO_MILLIS(MIN({TIME}))) "
              "/ 1000.0 + 60)")
    return [
        Metric("bytes", "SUM(bytes)", "Bytes", "bytes sent", "SMART_NUMBER"),
        Metric("packets", "SUM(packets)", "Packets", "packets sent", "SMART_NUMBER"),
        Metric("flows", "SUM(flows)", "Flows", "flow-log records", "SMART_NUMBER"),
        Metric("bytes_per_s", f"SUM(bytes) / {span_s}", "Bytes/s",
               "mean bytes per second from the first to the last minute with traffic",
               "SMART_NUMBER"),
        Metric("share_rejected", _share("action = 'REJECT'", "flows"), "Share rejected",
               "share of flow-log records whose action is REJECT", ".1%"),
        Metric("share_unattributed",
               _share(f"src_app = '{UNATTRIBUTED}' OR dst_app = '{UNATTRIBUTED}'", "bytes"),
               "Share unattributed",
               "share of bytes with a private address on either side that no owner claims",
               ".1%"),
    ]


# -- the cost model: `dredge query cross-az`, in Druid SQL ------------------------------------


def _rules() -> list[tuple[str, str]]:
    return crossing_rules(DRUID, internet=True, nat=True)


def crossing_condition() -> str:
    """True for rows that pay a transfer price: across regions, across AZs within one region,
    out to the internet, or through a NAT gateway (``dredge query cross-az``'s rules)."""
    return "(" + " OR ".join(c for _, c in _rules()) + ")"


def crossing_kind() -> str:
    """The first crossing that applies to a row that :func:`crossing_condition` keeps."""
    return crossing_case(_rules())


def row_cost(az_price: float = DEFAULT_AZ_PRICE, region_price: float = DEFAULT_REGION_PRICE,
             internet_price: float = DEFAULT_INTERNET_PRICE, nat_price: float = DEFAULT_NAT_PRICE
             ) -> str:
    """US dollars for one row's bytes: the AZ or region price by its first crossing, plus the
    internet and NAT prices where they apply (as ``dredge query cross-az`` adds them)."""
    rules = dict(_rules())
    kind = crossing_kind()
    cost = (f"bytes / 1e9 * CASE WHEN {kind} = 'cross-region' THEN {float(region_price)!r} "
            f"WHEN {kind} = 'cross-az' THEN {float(az_price)!r} ELSE 0.0 END")
    for name, price in (("internet", internet_price), ("nat", nat_price)):
        cost += f" + CASE WHEN {rules[name]} THEN bytes ELSE 0 END / 1e9 * {float(price)!r}"
    return cost


def cost_metrics() -> list[Metric]:
    """Saved metrics of the transfer-cost dataset (its rows carry ``cost_usd``)."""
    return [
        Metric("cost_usd", "SUM(cost_usd)", "Cost (USD)",
               f"estimated data-transfer cost: ${DEFAULT_AZ_PRICE}/GB across AZs, "
               f"${DEFAULT_REGION_PRICE}/GB across regions, ${DEFAULT_INTERNET_PRICE}/GB out to "
               f"the internet, ${DEFAULT_NAT_PRICE}/GB through a NAT gateway "
               "(dredge query cross-az)", "$,.4~r"),
        Metric("cross_az_bytes", "SUM(CASE WHEN crossing = 'cross-az' THEN bytes ELSE 0 END)",
               "Cross-AZ bytes", "bytes between AZs of one region", "SMART_NUMBER"),
        Metric("cross_region_bytes",
               "SUM(CASE WHEN crossing = 'cross-region' THEN bytes ELSE 0 END)",
               "Cross-region bytes", "bytes between AWS regions", "SMART_NUMBER"),
    ]
