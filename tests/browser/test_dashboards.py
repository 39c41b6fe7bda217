"""The dashboards in a real Chromium against ``dredge serve`` on a store built from generated
data: every chart renders without an error, the numbers shown equal ``dredge query --json``
on the same store, a filter change updates the charts and the URL, and each page leaves a
screenshot in tests/browser/artifacts/ (look at them)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dredge.query.render import human_bytes
from tests.browser.conftest import FILTER, Expected, Sample, iso, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def open_page(page: Any, url: str) -> None:
    page.goto(url)
    settled(page, 1)


def settled(page: Any, renders: int) -> None:
    """Wait until the page has finished `renders` renders; it must not be in error."""
    page.wait_for_function(
        "n => !!document.body && Number(document.body.dataset.renders || 0) >= n && document.body.dataset.state !== 'loading'",
        arg=renders, timeout=60_000)
    state = page.evaluate("document.body.dataset.state")
    assert state == "ready", page.inner_text("#status")


def renders(page: Any) -> int:
    return int(page.evaluate("Number(document.body.dataset.renders || 0)"))


def assert_charts_drawn(page: Any, at_least: int) -> None:
    """Every visible chart container holds a Plotly graph; no card shows an error."""
    charts = page.evaluate("""() => [...document.querySelectorAll('[data-testid^="chart-"]')]
        .filter(e => e.offsetParent !== null)
        .map(e => [e.dataset.testid, e.classList.contains('js-plotly-plot') && !!e.querySelector('.main-svg')])""")
    assert len(charts) >= at_least, charts
    assert [name for name, ok in charts if not ok] == []
    assert page.locator(".card.failed").count() == 0


def by_testid(page: Any, name: str) -> Any:
    return page.locator(f'[data-testid="{name}"]')


def query_of(page: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_overview_shows_the_store_totals(page: Any, server: str, sample: Sample, expected: Expected) -> None:
    open_page(page, f"{server}/overview?{sample.range_query}")
    assert_charts_drawn(page, 9)
    shown = by_testid(page, "range")
    assert (shown.get_attribute("data-from"), shown.get_attribute("data-to")) == (iso(sample.start), iso(sample.end))
    total = by_testid(page, "total-bytes")
    assert int(total.get_attribute("data-value")) == expected.total_bytes
    assert total.inner_text() == human_bytes(expected.total_bytes)
    # the rate charts are the same bytes: their points add up to the total
    series = page.evaluate("""() => { const d = document.querySelector('[data-testid="chart-bytes-rate"]').data[0];
        return d.y; }""")
    interval = int(shown.get_attribute("data-interval"))
    assert sum(series) * interval == pytest.approx(expected.total_bytes, rel=1e-9)
    screenshot(page, "overview")


def test_a_filter_updates_the_charts_and_the_url(page: Any, server: str, sample: Sample, expected: Expected) -> None:
    open_page(page, f"{server}/overview?{sample.range_query}")
    before = page.evaluate("document.querySelector('[data-testid=\"chart-bytes-rate\"]').data[0].y")
    dim, value = FILTER.split("=")
    by_testid(page, "filter-dim").select_option(dim)
    by_testid(page, "filter-value").fill(value)
    by_testid(page, "add-filter").click()
    settled(page, 2)
    assert query_of(page)["where"] == [FILTER]
    assert by_testid(page, "filter-chip").get_attribute("data-where") == FILTER
    assert int(by_testid(page, "total-bytes").get_attribute("data-value")) == expected.filtered_bytes
    assert 0 < expected.filtered_bytes < expected.total_bytes
    after = page.evaluate("document.querySelector('[data-testid=\"chart-bytes-rate\"]').data[0].y")
    assert after != before
    assert_charts_drawn(page, 9)
    screenshot(page, "overview-filtered")
    # the URL is the view: reloading it shows the same
    page.reload()
    settled(page, 1)
    assert int(by_testid(page, "total-bytes").get_attribute("data-value")) == expected.filtered_bytes
    # removing the filter restores the totals; the back button returns to the filtered view
    by_testid(page, "remove-filter").click()
    settled(page, 2)
    assert "where" not in query_of(page)
    assert int(by_testid(page, "total-bytes").get_attribute("data-value")) == expected.total_bytes
    page.go_back()
    settled(page, 3)
    assert query_of(page)["where"] == [FILTER]
    assert int(by_testid(page, "total-bytes").get_attribute("data-value")) == expected.filtered_bytes


def test_a_bar_click_filters(page: Any, server: str, sample: Sample) -> None:
    # one busy hour: 60 one-minute buckets, bars wide enough to click
    open_page(page, f"{server}/overview?from={iso(sample.start + 12 * 3600)}&to={iso(sample.start + 13 * 3600)}")
    page.locator('[data-testid="chart-by-action"]').scroll_into_view_if_needed()
    bars = page.locator('[data-testid="chart-by-action"] .bars .point path')
    assert bars.count() > 10
    boxes = [bars.nth(i).bounding_box() for i in range(bars.count())]
    tallest = max((b for b in boxes if b), key=lambda b: b["height"])
    # Plotly's drag layer lies over the bars and turns a click into the point under it
    x, y = tallest["x"] + tallest["width"] / 2, tallest["y"] + tallest["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    settled(page, 2)
    assert query_of(page)["where"] in (["action=ACCEPT"], ["action=REJECT"])
    assert_charts_drawn(page, 9)
    # region and AZ of the destination instead of the source
    by_testid(page, "side-region").select_option("dst")
    settled(page, 3)
    assert query_of(page)["side"] == ["dst"]
    assert by_testid(page, "side-az").input_value() == "dst"
    assert_charts_drawn(page, 9)


def test_dependencies_top_pair_and_drill_down(page: Any, server: str, sample: Sample, expected: Expected) -> None:
    open_page(page, f"{server}/dependencies?{sample.range_query}")
    assert_charts_drawn(page, 4)
    top = by_testid(page, "top-pair")
    want = expected.top_pair
    assert (top.get_attribute("data-src"), top.get_attribute("data-dst")) == (want["src_app"], want["dst_app"])
    assert int(top.get_attribute("data-bytes")) == want["bytes"]
    assert by_testid(page, "top-pair-bytes").inner_text() == human_bytes(want["bytes"])
    # the Sankey keeps sources and destinations apart: one node per side even for the same app
    nodes = page.evaluate("document.querySelector('[data-testid=\"chart-sankey\"]').data[0].node.customdata.map(c => c[0] + ':' + c[1])")
    assert len(nodes) == len(set(nodes))
    assert page.locator('[data-testid="chart-sankey"] .sankey-node').count() == len(nodes)
    first = page.locator('[data-testid="pair-row"]').first
    assert first.locator('td[data-col="src_app"]').get_attribute("data-value") == want["src_app"]
    assert int(first.locator('td[data-col="bytes"]').get_attribute("data-value")) == want["bytes"]
    screenshot(page, "dependencies")
    # drill-down: a row click filters on the pair
    first.click()
    settled(page, 2)
    assert sorted(query_of(page)["where"]) == sorted([f"src_app={want['src_app']}", f"dst_app={want['dst_app']}"])
    assert page.locator('[data-testid="pair-row"]').count() == 1
    assert int(by_testid(page, "top-pair").get_attribute("data-bytes")) == want["bytes"]
    assert_charts_drawn(page, 4)


def test_sankey_node_click_filters(page: Any, server: str, sample: Sample, expected: Expected) -> None:
    open_page(page, f"{server}/dependencies?{sample.range_query}")
    # the first node is the biggest source: the top pair's
    page.locator('[data-testid="chart-sankey"] .sankey-node rect').first.click()
    settled(page, 2)
    assert query_of(page)["where"] == [f"src_app={expected.top_pair['src_app']}"]
    assert by_testid(page, "top-pair").get_attribute("data-src") == expected.top_pair["src_app"]
    assert_charts_drawn(page, 4)


def test_what_changed_against_the_previous_period(page: Any, server: str, sample: Sample) -> None:
    # the second half of the day against the first half
    mid = (sample.start + sample.end) // 2
    open_page(page, f"{server}/dependencies?from={iso(mid)}&to={iso(sample.end)}")
    appeared = page.locator('[data-testid="appeared-row"]')
    vanished = page.locator('[data-testid="vanished-row"]')
    assert int(by_testid(page, "appeared-count").inner_text()) == appeared.count() > 0
    assert int(by_testid(page, "vanished-count").inner_text()) == vanished.count() > 0
    screenshot(page, "dependencies-half-day")


def test_cost_dollars_equal_the_query(page: Any, server: str, sample: Sample, expected: Expected) -> None:
    open_page(page, f"{server}/cost?{sample.range_query}")
    assert_charts_drawn(page, 3)
    total = float(by_testid(page, "cost-total").get_attribute("data-value"))
    assert total == pytest.approx(expected.cost_total, rel=1e-12)
    assert expected.cost_by_crossing.get("cross-az", 0) > 0
    for crossing, dollars in expected.cost_by_crossing.items():
        assert float(by_testid(page, f"cost-{crossing}").get_attribute("data-value")) == pytest.approx(dollars, rel=1e-12)
    row = page.locator('[data-testid="cost-row"]').first
    want = expected.top_cost_pair
    for col in ("src_app", "dst_app", "crossing"):
        assert row.locator(f'td[data-col="{col}"]').get_attribute("data-value") == want[col]
    assert float(row.locator('td[data-col="cost_usd"]').get_attribute("data-value")) == want["cost_usd"]
    screenshot(page, "cost")


def test_cost_prices_change_the_dollars(page: Any, server: str, sample: Sample, expected: Expected) -> None:
    open_page(page, f"{server}/cost?{sample.range_query}")
    before = float(by_testid(page, "cost-cross-az").get_attribute("data-value"))
    price = by_testid(page, "price-az_price")
    price.fill("0.02")
    price.dispatch_event("change")
    settled(page, 2)
    assert query_of(page)["az_price"] == ["0.02"]
    after = float(by_testid(page, "cost-cross-az").get_attribute("data-value"))
    # the cross-AZ rows' bytes now cost $0.01/GB more (their other charges, NAT, stay)
    moved = int(by_testid(page, "bytes-cross-az").get_attribute("data-value"))
    assert after - before == pytest.approx(moved / 1e9 * 0.01, rel=1e-6)


def test_ops_on_a_store_says_it_is_for_the_daemon(page: Any, server: str) -> None:
    open_page(page, f"{server}/ops")
    assert by_testid(page, "no-daemon").is_visible()
    assert not by_testid(page, "leases-held").is_visible()
    screenshot(page, "ops")


def test_default_view_navigation_and_downloads(page: Any, server: str, sample: Sample) -> None:
    open_page(page, f"{server}/?where={FILTER}")
    assert_charts_drawn(page, 9)
    # without a range: the last 24 h of the data, which is the whole sample
    assert by_testid(page, "range").get_attribute("data-to") == iso(sample.end)
    # the pages share the view: the filter follows to the next page
    with page.expect_navigation():
        by_testid(page, "nav-cost").click()
    settled(page, 1)
    assert urlsplit(page.url).path == "/cost"
    assert query_of(page)["where"] == [FILTER]
    with page.expect_download() as dl:
        by_testid(page, "download-csv-by-region").click()
    rows = list(csv.reader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8"))))
    assert rows[0][:3] == ["src_region", "dst_region", "crossing"]
    assert all(r[0] == FILTER.split("=")[1] for r in rows[1:]) and len(rows) > 1
    with page.expect_download() as dl:
        by_testid(page, "download-json-pairs").click()
    records = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert records and {"src_app", "dst_app", "cost_usd"} <= set(records[0])


@pytest.mark.parametrize(("chart", "dims"), [("chart-by-pair", ("src_app", "dst_app")),
                                             ("chart-by-region", ("src_region", "dst_region"))])
def test_a_cost_bar_click_filters_on_its_pair(page: Any, server: str, sample: Sample,
                                              chart: str, dims: tuple[str, str]) -> None:
    open_page(page, f"{server}/cost?{sample.range_query}")
    page.locator(f'[data-testid="{chart}"]').scroll_into_view_if_needed()
    bars = page.locator(f'[data-testid="{chart}"] .bars .point path')
    assert bars.count() > 0
    boxes = [bars.nth(i).bounding_box() for i in range(bars.count())]
    biggest = max((b for b in boxes if b), key=lambda b: b["height"] * b["width"])
    x, y = biggest["x"] + biggest["width"] / 2, biggest["y"] + biggest["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    settled(page, 2)
    keys = {w.split("=")[0] for w in query_of(page)["where"]}
    # apps are never null; a region can be (on-premises, internet): no filter for that side
    if chart == "chart-by-pair":
        assert keys == set(dims), keys
    else:
        assert dims[0] in keys and keys <= set(dims), keys
