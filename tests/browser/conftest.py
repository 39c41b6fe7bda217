"""Browser tests' fixtures: a store built from generated data, ``dredge serve`` on it, and
Debian's Chromium driven by Playwright (``executable_path``: Playwright never downloads a
browser). Without Chromium or Playwright the tests skip locally and fail when ``CI=true``.

The numbers the pages must show (``expected``) come from ``dredge query --json`` run as its
own process on the same store, once per session, before the server starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dredge.cli import main
from dredge.generate import generate
from dredge.testing import free_port, service_unavailable, wait_http

CHROMIUM = os.environ.get("DREDGE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).with_name("artifacts")
FLOWS, SEED = 20_000, 7
# a filter for the "filter changes the charts" checks: present in the sample, not everywhere
FILTER = "src_region=us-east-1"


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Sample:
    dir: Path
    store: Path
    start: int  # [start, end): the flows' start times, whole hours
    end: int

    @property
    def range_query(self) -> str:
        return f"from={iso(self.start)}&to={iso(self.end)}"


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """``dredge generate --flows 20000 --seed 7`` then ``dredge replay`` into a DuckDB store."""
    out = tmp_path_factory.mktemp("browser-gen")
    manifest = generate(out, flows=FLOWS, seed=SEED)
    store = out / "dredge.duckdb"
    args = ["replay", str(out / "logs"), "--index", str(out / "owners.jsonl"),
            "--cidrs", str(out / "networks.csv"), "--db", str(store), "--no-progress"]
    assert main(args) == 0
    return Sample(out, store, int(manifest["window"]["start"]), int(manifest["window"]["end"]))


def dredge_query(store: Path, kind: str, *args: str) -> list[dict[str, Any]]:
    """``dredge query KIND --db STORE --json ARGS...`` in its own process, as a user runs it."""
    cmd = [sys.executable, "-m", "dredge.cli", "query", kind, "--db", str(store), "--json", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@dataclass
class Expected:
    """What the pages must show for the whole sample's range, from ``dredge query --json``."""

    total_bytes: int
    filtered_bytes: int  # with FILTER
    top_pair: dict[str, Any]
    cost_total: float
    cost_by_crossing: dict[str, float] = field(default_factory=dict)
    top_cost_pair: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="session")
def expected(sample: Sample) -> Expected:
    rng = ("--from", iso(sample.start), "--to", iso(sample.end))
    day = dredge_query(sample.store, "timeseries", "--interval", "1d", *rng)
    filtered = dredge_query(sample.store, "timeseries", "--interval", "1d", "--where", FILTER, *rng)
    top = dredge_query(sample.store, "top", "--by", "src_app,dst_app", "--limit", "1", *rng)
    regions = dredge_query(sample.store, "cross-az", "--by", "src_region,dst_region", "--limit", "1000", *rng)
    pairs = dredge_query(sample.store, "cross-az", "--by", "src_app,dst_app", "--limit", "1", *rng)
    by_crossing: dict[str, float] = {}
    for r in regions:
        by_crossing[r["crossing"]] = by_crossing.get(r["crossing"], 0.0) + r["cost_usd"]
    return Expected(
        total_bytes=sum(r["bytes"] for r in day),
        filtered_bytes=sum(r["bytes"] for r in filtered),
        top_pair=top[0],
        cost_total=sum(r["cost_usd"] for r in regions),
        cost_by_crossing=by_crossing,
        top_cost_pair=pairs[0],
    )


@pytest.fixture(scope="session")
def server(sample: Sample, expected: Expected) -> Iterator[str]:
    """``dredge serve --db <store> --port <free>`` as a subprocess; its base URL."""
    port = free_port()
    log = sample.dir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dredge.cli", "serve", "--db", str(sample.store), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_http(f"{url}/healthz", timeout=60):
            proc.kill()
            pytest.fail(f"dredge serve did not answer: {log.read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium through Playwright's sync API, per module: the sync API keeps an asyncio loop
    running in this thread while it is open, and every asyncio.run() of the tests after it
    would fail (module scope closes it when the browser tests end)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        service_unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Problems:
    """What a page must never do: log an error, throw, or have a request fail."""

    items: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.items.append(text)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (1400x900) whose console errors, uncaught exceptions and failed requests
    fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    problems = Problems()
    pg.on("console", lambda m: m.type == "error" and problems.add(f"console: {m.text}"))
    pg.on("pageerror", lambda e: problems.add(f"exception: {e}"))
    # ERR_ABORTED: the page navigated away while a (refresh) request was in flight
    pg.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED"
          and problems.add(f"request failed: {r.url} {r.failure}"))
    pg.on("response", lambda r: r.status >= 400 and problems.add(f"HTTP {r.status}: {r.url}"))
    try:
        yield pg
    finally:
        context.close()
    assert not problems.items, "\n".join(problems.items)


def screenshot(pg: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path
