"""The charts: Superset form data (``params``) for each kind the dashboards use.

Every chart names its dataset's saved metrics and columns by name; the unit tests check
that each one exists (:func:`used_columns`, :func:`used_metrics`). Time series are bucketed
on ``__time`` with Superset's time grains; no chart carries a time range of its own: the
dashboards' *Time range* filter sets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dredge.dashboards.datasets import VERSION, Dataset
from dredge.dashboards.ids import stable_uuid
from dredge.dashboards.schema import TIME

NO_TIME_FILTER = {"clause": "WHERE", "subject": TIME, "operator": "TEMPORAL_RANGE",
                  "comparator": "No filter", "expressionType": "SIMPLE"}


@dataclass(frozen=True)
class Chart:
    name: str  # slice_name: unique in the bundle, the seed of its UUID
    dataset: Dataset
    params: dict[str, Any]
    description: str = ""

    @property
    def viz_type(self) -> str:
        return str(self.params["viz_type"])

    @property
    def uuid(self) -> str:
        return stable_uuid("chart", self.name)

    def document(self) -> dict[str, Any]:
        return {
            "slice_name": self.name,
            "description": self.description or None,
            "certified_by": None,
            "certification_details": None,
            "viz_type": self.viz_type,
            "params": self.params,
            "query_context": None,
            "cache_timeout": None,
            "uuid": self.uuid,
            "version": VERSION,
            "dataset_uuid": self.dataset.uuid,
        }


def where(column: str, op: str, value: Any) -> dict[str, Any]:
    """An ad-hoc WHERE filter (``op``: ``==``, ``!=``, ``IN``...)."""
    return {"clause": "WHERE", "subject": column, "operator": op, "comparator": value,
            "expressionType": "SIMPLE"}


def _base(viz: str, filters: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {"viz_type": viz, "adhoc_filters": [dict(NO_TIME_FILTER), *(filters or [])],
            "extra_form_data": {}, "dashboards": []}


def big_number_total(metric: str, subtitle: str, fmt: str = "SMART_NUMBER",
                     filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {**_base("big_number_total", filters), "metric": metric, "subheader": subtitle,
            "y_axis_format": fmt, "header_font_size": 0.4, "subheader_font_size": 0.15}


def big_number_trend(metric: str, grain: str, suffix: str, fmt: str = "SMART_NUMBER"
                     ) -> dict[str, Any]:
    """The last period's value, its change against the period before, and the trend."""
    return {**_base("big_number", None), "metric": metric, "x_axis": TIME,
            "time_grain_sqla": grain, "compare_lag": 1, "compare_suffix": suffix,
            "show_timestamp": True, "show_trend_line": True, "start_y_axis_at_zero": True,
            "rolling_type": "None", "y_axis_format": fmt, "header_font_size": 0.4,
            "subheader_font_size": 0.15, "time_format": "smart_date"}


def timeseries(viz: str, metrics: list[str], groupby: list[str], grain: str = "PT1H", *,
               stack: bool = False, fmt: str = "SMART_NUMBER", series_limit: int = 0,
               filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``echarts_timeseries_bar``, ``echarts_timeseries_line`` or ``echarts_area``.

    ``series_limit`` > 0: only the top series by the first metric. Off by default: Superset
    finds them with a query Druid 33 cannot plan (``SUM(bytes) AS "bytes" ... ORDER BY
    SUM(bytes)``: "SUM operator that is not supported", logged on every view while the chart
    still drew all series), and the dashboards' series are few (regions, paths, actions)."""
    out = {
        **_base(viz, filters), "x_axis": TIME, "time_grain_sqla": grain,
        "x_axis_sort_asc": True, "metrics": metrics, "groupby": groupby,
        "order_desc": True, "row_limit": 10000, "truncate_metric": True,
        "show_empty_columns": True, "stack": "Stack" if stack else None, "only_total": True,
        "show_legend": True, "legendType": "scroll", "legendOrientation": "top",
        "rich_tooltip": True, "tooltipTimeFormat": "smart_date",
        "x_axis_time_format": "smart_date", "y_axis_format": fmt, "truncateYAxis": False,
        "color_scheme": "supersetColors", "annotation_layers": [], "zoomable": False,
        "comparison_type": "values", "time_compare": [],  # needs an enclosed time range
    }
    if groupby and series_limit > 0:
        out.update(limit=series_limit, series_limit=series_limit,
                   timeseries_limit_metric=metrics[0])
    if viz == "echarts_area":
        out["opacity"] = 0.3
    return out


def table(groupby: list[str], metrics: list[str], limit: int = 20,
          filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An aggregate table sorted by its first metric, largest first."""
    return {**_base("table", filters), "query_mode": "aggregate", "groupby": groupby,
            "metrics": metrics, "all_columns": [], "percent_metrics": [],
            "timeseries_limit_metric": metrics[0], "order_desc": True, "order_by_cols": [],
            "row_limit": limit, "server_page_length": 10, "include_search": False,
            "show_cell_bars": True, "color_pn": True, "table_timestamp_format": "smart_date",
            "allow_rearrange_columns": False, "conditional_formatting": []}


def sankey(source: str, target: str, metric: str, limit: int = 40) -> dict[str, Any]:
    return {**_base("sankey_v2", None), "source": source, "target": target,
            "metric": metric, "row_limit": limit, "sort_by_metric": True,
            "color_scheme": "supersetColors"}


def graph(source: str, target: str, metric: str, limit: int = 60) -> dict[str, Any]:
    return {**_base("graph_chart", None), "source": source, "target": target,
            "metric": metric, "row_limit": limit, "layout": "force", "roam": True,
            "draggable": False, "selectedMode": "single", "showSymbolThreshold": 0,
            "baseNodeSize": 20, "baseEdgeWidth": 3, "edgeSymbol": "none,arrow",
            "edgeLength": 250, "gravity": 0.3, "repulsion": 1000, "friction": 0.2,
            "show_legend": False, "color_scheme": "supersetColors"}


def treemap(groupby: list[str], metric: str, fmt: str) -> dict[str, Any]:
    return {**_base("treemap_v2", None), "groupby": groupby, "metric": metric,
            "row_limit": 1000, "show_labels": True, "show_upper_labels": True,
            "label_type": "key_value", "number_format": fmt, "date_format": "smart_date",
            "color_scheme": "supersetColors"}


_COLUMN_KEYS = ("groupby", "x_axis", "source", "target", "source_category",
                "target_category", "all_columns", "columns")
_METRIC_KEYS = ("metrics", "metric", "timeseries_limit_metric", "percent_metrics",
                "secondary_metric", "size")


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)]


def used_columns(chart: Chart) -> set[str]:
    """Every column the chart names (grouping, axes, filters)."""
    p = chart.params
    cols = {c for key in _COLUMN_KEYS for c in _names(p.get(key))}
    cols |= {f["subject"] for f in p.get("adhoc_filters", [])}
    return cols


def used_metrics(chart: Chart) -> set[str]:
    """Every saved metric the chart names."""
    return {m for key in _METRIC_KEYS for m in _names(chart.params.get(key))}
