"""The three dashboards: their charts in rows, native filters, cross-filtering.

- *Network overview*: totals and trends, bytes by region and by traffic path, accepted vs
  rejected, the share of bytes no owner claims, rejected flows and bytes by service port.
- *Application dependencies*: who talks to whom (Sankey, graph), the top and the rejected
  pairs, and one app's inbound and outbound traffic (its own *App* filter, applying to that
  chart only).
- *Data transfer cost*: bytes and dollars across AZs and regions, out to the internet and
  through NAT gateways, by app pair, region pair and account and app, and the change against the previous hour (the big number's trend: a
  time-comparison chart needs an enclosed time range in Superset, and the dashboards default
  to all time).

Every dashboard has the same native filters (:data:`schema.FILTERS` and the time range),
targeting the Druid datasource; Superset applies a filter by column name to each chart in its
scope, and every dataset carries these columns. Chart ids in the layout are local numbers:
Superset's importer maps them to its own ids by each chart's UUID.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dredge.dashboards import charts as c
from dredge.dashboards.charts import Chart
from dredge.dashboards.datasets import VERSION, Datasets
from dredge.dashboards.ids import stable_uuid
from dredge.dashboards.schema import FILTERS

ROW_HEIGHT = 50  # grid units (8 px each)


@dataclass(frozen=True)
class Dashboard:
    title: str
    slug: str
    description: str
    rows: list[list[tuple[Chart, int]]]  # (chart, width of 12) per row
    app_filter_chart: str = ""  # the chart the "App" filter applies to, if any

    @property
    def uuid(self) -> str:
        return stable_uuid("dashboard", self.title)

    @property
    def charts(self) -> list[Chart]:
        return [chart for row in self.rows for chart, _ in row]


def network_overview(ds: Datasets) -> Dashboard:
    f = ds.flows
    return Dashboard("Network overview", "dredge-network-overview",
                     "VPC flow-log traffic enriched with its owners, from Druid", [
        [(Chart("Total bytes", f, c.big_number_total("bytes", "bytes in the time range")), 3),
         (Chart("Bytes per hour", f, c.big_number_trend("bytes", "PT1H", "vs previous hour")), 3),
         (Chart("Mean bytes per second", f, c.big_number_total(
             "bytes_per_s", "from the first to the last minute with traffic")), 3),
         (Chart("Share rejected", f, c.big_number_trend(
             "share_rejected", "PT1H", "vs previous hour", ".1%")), 3)],
        [(Chart("Bytes by source region", f, c.timeseries(
            "echarts_timeseries_bar", ["bytes"], ["src_region"], stack=True)), 6),
         (Chart("Bytes by traffic path", f, c.timeseries(
             "echarts_area", ["bytes"], ["traffic_path_name"], stack=True)), 6)],
        [(Chart("Accepted and rejected flows", f, c.timeseries(
            "echarts_timeseries_bar", ["flows"], ["action"], stack=True)), 6),
         (Chart("Share of bytes unattributed", f, c.timeseries(
             "echarts_timeseries_line", ["share_unattributed"], [], fmt=".1%")), 6)],
        [(Chart("Rejected flows by service port", f, c.table(
            ["port_name"], ["flows", "bytes"], filters=[c.where("action", "==", "REJECT")])), 6),
         (Chart("Bytes by service port", f, c.table(["port_name"], ["bytes", "flows"])), 6)],
    ])


def application_dependencies(ds: Datasets) -> Dashboard:
    f, e = ds.flows, ds.edges
    inbound_outbound = "One app's inbound and outbound bytes"
    return Dashboard("Application dependencies", "dredge-application-dependencies",
                     "Which applications talk to which, by owner at flow time", [
        [(Chart("App to app (Sankey)", e, c.sankey("src_node", "dst_node", "bytes")), 6),
         (Chart("App graph", f, c.graph("src_app", "dst_app", "bytes")), 6)],
        [(Chart("Top app pairs", f, c.table(["src_app", "dst_app"],
                                            ["bytes", "packets", "flows"])), 6),
         (Chart("Rejected pairs", f, c.table(
             ["src_app", "dst_app", "protocol"], ["flows", "bytes"],
             filters=[c.where("action", "==", "REJECT")])), 6)],
        [(Chart(inbound_outbound, ds.traffic, c.timeseries(
            "echarts_timeseries_bar", ["bytes"], ["direction"]),
            "pick one app in the App filter; without one, every app's traffic is counted "
            "once inbound and once outbound"), 12)],
    ], app_filter_chart=inbound_outbound)


def data_transfer_cost(ds: Datasets) -> Dashboard:
    t = ds.transfer
    return Dashboard("Data transfer cost", "dredge-data-transfer-cost",
                     "Traffic that costs money to move, priced as dredge query cross-az", [
        [(Chart("Total transfer cost", t, c.big_number_total(
            "cost_usd", "across AZs, regions, to the internet, through NAT", "$,.4~r")), 3),
         (Chart("Transfer cost per hour", t, c.big_number_trend(
             "cost_usd", "PT1H", "vs previous hour", "$,.4~r")), 3),
         (Chart("Cross-AZ bytes", t, c.big_number_total("cross_az_bytes", "between AZs")), 3),
         (Chart("Cross-region bytes", t, c.big_number_total(
             "cross_region_bytes", "between regions")), 3)],
        [(Chart("Cost by app pair", t, c.table(
            ["src_app", "dst_app", "crossing"], ["cost_usd", "bytes"])), 6),
         (Chart("Cost by account and app", t, c.treemap(
             ["src_account", "src_app"], "cost_usd", "$,.4~r")), 6)],
        [(Chart("Cost over time by crossing", t, c.timeseries(
            "echarts_timeseries_bar", ["cost_usd"], ["crossing"], stack=True, fmt="$,.4~r")), 6),
         (Chart("Cost by region pair", t, c.table(
             ["src_region", "dst_region", "crossing"], ["cost_usd", "bytes"])), 6)],
    ])


def dashboards(ds: Datasets) -> list[Dashboard]:
    return [network_overview(ds), application_dependencies(ds), data_transfer_cost(ds)]


# -- Superset's JSON: position and metadata --------------------------------------------------


def chart_ids(board: Dashboard) -> dict[str, int]:
    """Local ids of the dashboard's charts (the importer replaces them, matched by UUID)."""
    return {chart.uuid: i + 1 for i, chart in enumerate(board.charts)}


def position(board: Dashboard) -> dict[str, Any]:
    ids = chart_ids(board)
    pos: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": board.title}},
    }
    rows = []
    for r, row in enumerate(board.rows):
        row_id = f"ROW-{r + 1}"
        rows.append(row_id)
        children = []
        for chart, width in row:
            chart_key = f"CHART-{chart.uuid[:8]}"
            children.append(chart_key)
            pos[chart_key] = {
                "type": "CHART", "id": chart_key, "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {"width": width, "height": ROW_HEIGHT, "chartId": ids[chart.uuid],
                         "uuid": chart.uuid, "sliceName": chart.name},
            }
        pos[row_id] = {"type": "ROW", "id": row_id, "children": children,
                       "parents": ["ROOT_ID", "GRID_ID"],
                       "meta": {"background": "BACKGROUND_TRANSPARENT"}}
    pos["GRID_ID"] = {"type": "GRID", "id": "GRID_ID", "children": rows,
                      "parents": ["ROOT_ID"]}
    return pos


def _filter_id(board: Dashboard, name: str) -> str:
    return "NATIVE_FILTER-" + stable_uuid("filter", f"{board.title}/{name}")[:13]


def _select_filter(board: Dashboard, name: str, dataset_uuid: str, column: str,
                   excluded: list[int], *, single: bool = False) -> dict[str, Any]:
    return {
        "id": _filter_id(board, name), "name": name, "filterType": "filter_select",
        "type": "NATIVE_FILTER", "description": "",
        "targets": [{"datasetUuid": dataset_uuid, "column": {"name": column}}],
        "controlValues": {"enableEmptyFilter": False, "defaultToFirstItem": False,
                          "multiSelect": not single, "searchAllOptions": False,
                          "inverseSelection": False, "sortAscending": True},
        "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
        "cascadeParentIds": [], "scope": {"rootPath": ["ROOT_ID"], "excluded": excluded},
    }


def native_filters(board: Dashboard, ds: Datasets) -> list[dict[str, Any]]:
    ids = chart_ids(board)
    out: list[dict[str, Any]] = [{
        "id": _filter_id(board, "Time range"), "name": "Time range", "filterType": "filter_time",
        "type": "NATIVE_FILTER", "description": "", "targets": [{}], "controlValues": {},
        "defaultDataMask": {"extraFormData": {"time_range": "No filter"},
                            "filterState": {"value": "No filter"}, "ownState": {}},
        "cascadeParentIds": [], "scope": {"rootPath": ["ROOT_ID"], "excluded": []},
    }]
    out += [_select_filter(board, name, ds.flows.uuid, column, [])
            for name, column in FILTERS]
    if board.app_filter_chart:
        own = next(ch for ch in board.charts if ch.name == board.app_filter_chart)
        others = [ids[ch.uuid] for ch in board.charts if ch is not own]
        # single choice, none preselected: Superset leaves a preselected first item unapplied
        # until "Apply" is pressed, so the chart would show all apps while the filter shows one
        out.append(_select_filter(board, "App", own.dataset.uuid, "app", others, single=True))
    return out


def metadata(board: Dashboard, ds: Datasets) -> dict[str, Any]:
    return {
        "native_filter_configuration": native_filters(board, ds),
        "cross_filters_enabled": True,
        "global_chart_configuration": {"scope": {"rootPath": ["ROOT_ID"], "excluded": []}},
        "timed_refresh_immune_slices": [], "expanded_slices": {}, "refresh_frequency": 0,
        "default_filters": "{}", "color_scheme": "supersetColors", "label_colors": {},
        "shared_label_colors": [], "color_scheme_domain": [],
    }


def dashboard_document(board: Dashboard, ds: Datasets) -> dict[str, Any]:
    return {
        "dashboard_title": board.title,
        "description": board.description,
        "css": "",
        "slug": board.slug,
        "certified_by": None,
        "certification_details": None,
        "published": True,
        "uuid": board.uuid,
        "position": position(board),
        "metadata": metadata(board, ds),
        "version": VERSION,
    }
