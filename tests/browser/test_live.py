"""The dashboards served by the live daemon (`dredge run` reading a moto-server Kinesis
stream): the overview refreshes by itself as data arrives and its total equals what was put;
the Operations page shows the shards, leases, flushes and the index's freshness."""

from __future__ import annotations

import json
import random
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from dredge.query.render import human_bytes
from dredge.testing import MotoServer, free_port
from tests.browser.conftest import screenshot
from tests.browser.test_dashboards import assert_charts_drawn, by_testid, open_page
from tests.integration.samples import Samples
from tests.integration.streams import (
    PutLog,
    Sample,
    Totals,
    Worker,
    create_stream,
    encode_mixed,
    kinesis,
    line_totals,
    put_payloads,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def live_sample(samples: Samples) -> Sample:
    return samples.stream(flows=6_000, seed=9)  # the integration tests' `sample`


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None
    except OSError:
        return 0, None


def served_bytes(url: str) -> int:
    status, body = get_json(f"{url}/api/query?kind=timeseries&interval=1d")
    return sum(r[body["columns"].index("bytes")] for r in body["rows"]) if status == 200 else -1


def test_live_daemon_overview_refreshes_and_ops(moto: MotoServer, live_sample: Sample, browser: Any,
                                                page: Any, tmp_path: Path) -> None:
    stream = f"pages-{uuid.uuid4().hex[:8]}"
    kin = kinesis(moto.endpoint)
    create_stream(kin, stream, 2)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # a live index (the CIDR map polled): the Operations page has a provider's freshness to show
    index = (f'ownership = ["{live_sample.owners}"]\ncidrs = ["{live_sample.networks}"]\n'
             f'state_path = "{tmp_path / "index.state"}"\ncidr_poll_interval_s = 0.2\n')
    cfg = write_config(tmp_path / "dredge.toml", stream=stream, db=tmp_path / "live.duckdb",
                       index=index, worker_id="w1", metrics_port=port)
    worker = Worker(cfg, moto.env(), tmp_path / "worker.log").start()
    rng = random.Random(3)
    log = PutLog()
    half = len(live_sample.lines) // 2

    def put(lines: list[bytes]) -> Totals:
        put_payloads(kin, stream, encode_mixed(lines, rng), rng, log)
        want = line_totals(log.lines())
        wait_for(lambda: served_bytes(url) == want.bytes, 120, "the daemon to store what was put",
                 alive=worker.check_alive)
        return want

    try:
        worker.wait_started()
        wait_for(lambda: get_json(f"{url}/readyz")[0] == 200, 60, "/readyz 200", alive=worker.check_alive)
        first = put(live_sample.lines[:half])
        # the whole data (a sample from another day) and a refresh every second
        open_page(page, f"{url}/overview?range=all&refresh=1")
        assert by_testid(page, "backend").inner_text().endswith("live daemon")
        assert by_testid(page, "auto-refresh").is_checked()
        assert int(by_testid(page, "total-bytes").get_attribute("data-value")) == first.bytes
        assert_charts_drawn(page, 9)
        both = put(live_sample.lines[half:])
        assert both.bytes > first.bytes
        page.wait_for_function(
            "want => document.querySelector('[data-testid=\"total-bytes\"]').dataset.value === String(want)",
            arg=both.bytes, timeout=90_000)
        assert by_testid(page, "total-bytes").inner_text() == human_bytes(both.bytes)
        screenshot(page, "overview-live")

        open_page(page, f"{url}/ops")
        assert not by_testid(page, "no-daemon").is_visible()
        assert by_testid(page, "leases-held").inner_text() == "2"
        assert page.locator('[data-testid="table-shards"] tbody tr').count() == 2
        assert by_testid(page, "flush-latency").inner_text() != "–"
        assert by_testid(page, "index-freshness").inner_text() != "static index"
        assert_charts_drawn(page, 2)
        screenshot(page, "ops-live")
    finally:
        worker.terminate()
