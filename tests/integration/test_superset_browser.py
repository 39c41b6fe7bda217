"""The dashboards in a real browser against the real local Druid and Superset.

Generated flows are replayed into Druid (``--sink druid``, a datasource of this test), the
bundle for that datasource is imported (``superset.sh import``), and Debian's Chromium
(Playwright, ``executable_path``) logs in and opens each dashboard: every chart's data
request answers 200 with rows, no chart shows an error, and the total bytes and the top app
pair shown equal ``dredge query --backend druid --json`` for the same range (all time: the
dashboards' time filter defaults to "No filter"). A screenshot of each dashboard is kept in
test-artifacts/superset/. At the end the local Superset gets the default bundle back.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from dredge.dashboards import layout
from dredge.dashboards.datasets import druid_datasets
from dredge.sinks.druid import DruidAPI, DruidConfig
from dredge.testing import service_unavailable
from tests.integration import superset_env as ss

pytestmark = [pytest.mark.integration, pytest.mark.superset, pytest.mark.druid]

DATASOURCE = "dredge_flows_superset_test"
CHROMIUM = "/usr/bin/chromium"
RENDER_TIMEOUT = 240.0


def dredge(*args: str) -> list[dict[str, Any]]:
    env = {**os.environ, "DREDGE_DRUID_URL": ss.ROUTER}
    out = subprocess.run([sys.executable, "-m", "dredge.cli", *args], env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    if args[0] != "query":
        return []
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Flows in Druid under DATASOURCE, the bundle for it imported into the local Superset."""
    for why in (ss.venv_missing(), ss.server_down(),
                DruidAPI(DruidConfig(url=ss.ROUTER, max_attempts=2)).healthy()):
        if why:
            service_unavailable(why)
    if not Path(CHROMIUM).exists():
        service_unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from dredge.generate import generate

    work = tmp_path_factory.mktemp("superset")
    generate(work / "gen", flows=20_000, seed=12, hours=3)
    dredge("replay", str(work / "gen" / "logs"), "--index", str(work / "gen" / "owners.jsonl"),
           "--cidrs", str(work / "gen" / "networks.csv"), "--db", str(work / "store.duckdb"),
           "--no-progress", "--sink", "druid", "--druid-datasource", DATASOURCE)
    ss.import_with_script("--druid-datasource", DATASOURCE, "--no-duckdb")
    try:
        yield DATASOURCE
    finally:
        with contextlib.suppress(AssertionError, subprocess.SubprocessError):
            ss.import_with_script()  # the local Superset back on the default datasource
        api = DruidAPI(DruidConfig(url=ss.ROUTER, max_attempts=2))
        with contextlib.suppress(Exception):  # cleanup only: a left-over datasource is harmless
            api.request("DELETE", f"/druid/coordinator/v1/datasources/{DATASOURCE}")
            api.request("POST", "/druid/indexer/v1/task", {
                "type": "kill", "dataSource": DATASOURCE, "interval": "2000-01-01/2100-01-01"},
                overlord=True)


def path(url: str) -> str:
    return urlparse(url).path


def log_in(pg: Any, tries: int = 2) -> None:
    """Log in through the login form and check that Superset keeps the session.

    The landing URL alone proves nothing: the app sends a page whose API calls answer 401 to
    ``/login/?next=<that page>``, which still contains ``/superset/welcome/``. So the welcome
    page must still be there once its own requests are done, and ``/api/v1/me/`` must answer
    200 with the session's cookie. A second try is allowed, with a warning that says why.
    """
    why = ""
    for _ in range(tries):
        pg.goto(ss.URL + "/login/")
        pg.fill("[data-test=username-input]", ss.ADMIN)
        pg.fill("[data-test=password-input]", ss.PASSWORD)
        pg.click("[data-test=login-button]")
        pg.wait_for_url(lambda url: path(url) == "/superset/welcome/")
        pg.wait_for_load_state("networkidle")
        me = pg.request.get(ss.URL + "/api/v1/me/")
        if path(pg.url) == "/superset/welcome/" and me.status == 200:
            return
        why = f"after logging in: {pg.url}, /api/v1/me/ answered {me.status}"
        warnings.warn(why, stacklevel=1)
    raise AssertionError(why)


def block_outside(pg: Any) -> None:
    """Only the local Superset: its pages also load a telemetry pixel from the internet
    (apachesuperset.gateway.scarf.sh), which CI may not reach and the tests do not need."""
    pg.route(lambda url: not url.startswith(ss.URL + "/"), lambda route: route.abort())


@pytest.fixture(scope="module")
def page(loaded: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            pg = browser.new_page(viewport={"width": 1600, "height": 1450})
            pg.set_default_timeout(60_000)
            block_outside(pg)
            log_in(pg)
            yield pg
        finally:
            browser.close()


class ChartData:
    """The /api/v1/chart/data answers of one dashboard visit, by chart id."""

    def __init__(self) -> None:
        self.answers: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        self.denied: list[str] = []

    def on_response(self, resp: Any) -> None:
        if resp.status in (401, 403):  # what sends the app to the login page
            self.denied.append(f"{resp.status} {resp.request.method} {path(resp.url)}")
        if "/api/v1/chart/data" not in resp.url or resp.request.method != "POST":
            return
        form = json.loads(resp.request.post_data or "{}").get("form_data") or {}
        if not form.get("slice_id"):
            return  # a native filter's values
        try:
            body = resp.json()
        except Exception:  # an error page: its status says enough
            body = {}
        self.answers.setdefault(int(form["slice_id"]), []).append((resp.status, body))


def open_dashboard(page: Any, board: layout.Dashboard) -> tuple[ChartData, dict[str, int]]:
    data = ChartData()
    page.on("response", data.on_response)
    try:
        target = f"/superset/dashboard/{board.slug}/"
        page.goto(ss.URL + target)
        if path(page.url) != target:  # sent to the login page: once, log in again
            sent_to, denied = page.url, data.denied[:]
            log_in(page)
            warnings.warn(f"{board.slug}: Superset sent the browser to {sent_to} (denied: "
                          f"{denied}); logged in again", stacklevel=1)
            data.denied.clear()
            page.goto(ss.URL + target)
        deadline = time.monotonic() + RENDER_TIMEOUT
        while True:
            holders = page.locator("[data-test=chart-grid-component]").count()
            if holders == len(board.charts) and len(data.answers) >= holders:
                break
            assert time.monotonic() < deadline, (page.url, holders, sorted(data.answers),
                                                 data.denied)
            time.sleep(1)
        while page.locator("[data-test=chart-grid-component] .loading").count():
            assert time.monotonic() < deadline
            time.sleep(1)
        time.sleep(3)  # animations (ECharts) settle before the screenshot
        names = {}
        for el in page.locator("[data-test=dashboard-component-chart-holder]").all():
            cid = int(el.locator("[data-test=chart-grid-component]").get_attribute(
                "data-test-chart-id"))
            names[el.locator("[data-test=slice-header] .header-title, "
                             "[data-test=editable-title-input], [data-test=slice-header]"
                             ).first.inner_text().split("\n")[0].strip()] = cid
    finally:
        page.remove_listener("response", data.on_response)
    ss.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ss.ARTIFACTS / f"{board.slug}.png"))
    return data, names


def rows(answer: tuple[int, dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for result in answer[1].get("result", []) for r in result.get("data") or []]


BOARDS = {b.slug: b for b in layout.dashboards(druid_datasets(DATASOURCE))}


@pytest.mark.parametrize("slug", list(BOARDS))
def test_dashboard_shows_druid_data(page: Any, slug: str) -> None:
    board = BOARDS[slug]
    log = ss.VAR / "log" / "superset.log"  # written by the server superset.sh started
    seen = log.stat().st_size if log.exists() else 0
    data, names = open_dashboard(page, board)
    if log.exists():  # a query Superset retried or did without (a chart's series limit) is
        # still a failed query: none may fail
        with log.open("rb") as fh:
            fh.seek(seen)
            failed = [line for line in fh.read().decode(errors="replace").splitlines()
                      if "superset.models.helpers:Query" in line or "Error:" in line]
        assert not failed, failed[:5]
    assert set(names) == {c.name for c in board.charts}, names
    for name, cid in names.items():
        last = data.answers[cid][-1]
        # every answer, not only the last: a chart that failed first and was asked again
        # (the Broker not yet able to sum a metric after a REPLACE) is a user seeing an error
        assert [s for s, _ in data.answers[cid]] == [200] * len(data.answers[cid]), (name, last)
        assert rows(last), f"{name}: no rows"
    errors = page.locator("[data-test=chart-grid-component] [role=alert], "
                          "[data-test=chart-grid-component] .ant-alert-error").all_inner_texts()
    assert not errors, errors
    holder = {n: page.locator(f"[data-test=chart-grid-component][data-test-chart-id='{cid}']")
              for n, cid in names.items()}

    if slug == "dredge-network-overview":
        by_action = dredge("query", "top", "--backend", "druid", "--druid-datasource",
                           DATASOURCE, "--by", "action", "--limit", "1000", "--json")
        total = sum(r["bytes"] for r in by_action)
        shown = rows(data.answers[names["Total bytes"]][-1])[0]["bytes"]
        assert shown == total
        assert smart_number(total) in holder["Total bytes"].inner_text()
    if slug == "dredge-application-dependencies":
        (top,) = dredge("query", "top", "--backend", "druid", "--druid-datasource", DATASOURCE,
                        "--by", "src_app,dst_app", "--limit", "1", "--json")
        first = rows(data.answers[names["Top app pairs"]][-1])[0]
        assert (first["src_app"], first["dst_app"], first["bytes"]) == (
            top["src_app"], top["dst_app"], top["bytes"])
        cells = holder["Top app pairs"].locator("tbody tr").first.locator("td").all_inner_texts()
        assert cells[:2] == [top["src_app"], top["dst_app"]], cells
        app_rows = rows(data.answers[names["One app's inbound and outbound bytes"]][-1])
        assert app_rows  # no app picked: every app's traffic, inbound and outbound
        # cross-filtering: a click on the top pair's source app filters the other charts
        sent: list[dict[str, Any]] = []

        def on_request(req: Any) -> None:
            if "/api/v1/chart/data" in req.url and req.method == "POST":
                sent.append(json.loads(req.post_data or "{}"))

        page.on("request", on_request)
        try:
            holder["Top app pairs"].locator("tbody tr").first.locator("td").first.click()
            deadline = time.monotonic() + 120
            want = {"col": "src_app", "op": "IN", "val": [top["src_app"]]}
            sankey = names["App to app (Sankey)"]
            while not any(q.get("form_data", {}).get("slice_id") == sankey
                          and want in q.get("queries", [{}])[0].get("filters", [])
                          for q in sent):
                assert time.monotonic() < deadline, "no cross-filter reached the Sankey"
                time.sleep(1)
        finally:
            page.remove_listener("request", on_request)
    if slug == "dredge-data-transfer-cost":
        # the same cost model and default prices as the command (AZ, region, internet, NAT)
        pairs = dredge("query", "cross-az", "--backend", "druid", "--druid-datasource",
                       DATASOURCE, "--limit", "100000", "--json")
        cost = rows(data.answers[names["Total transfer cost"]][-1])[0]["cost_usd"]
        assert cost == pytest.approx(sum(p["cost_usd"] for p in pairs), rel=1e-9)


def smart_number(n: float) -> str:
    """Superset's SMART_NUMBER (d3 ``.3~s``, G shown as B) for the totals shown here."""
    for exp, suffix in ((12, "T"), (9, "B"), (6, "M"), (3, "k")):
        if abs(n) >= 10**exp:
            text = f"{n / 10**exp:.3g}"
            return text + suffix
    return f"{n:.3g}"
