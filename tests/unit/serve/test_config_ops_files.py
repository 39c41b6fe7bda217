"""[serve] validation and the bind rule; /api/ops quantiles; static file resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram

from dredge.config import DredgeConfig, MetricsConfig
from dredge.errors import ConfigError
from dredge.serve import files
from dredge.serve.config import ServeConfig, is_loopback
from dredge.serve.ops import OpsReader, quantile


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.5", "::", "example.com"))


def test_non_loopback_needs_auth_or_an_explicit_yes() -> None:
    with pytest.raises(ConfigError, match=r"metrics.host: 0.0.0.0 is not a loopback address"):
        DredgeConfig(metrics=MetricsConfig(host="0.0.0.0")).validate()
    DredgeConfig(metrics=MetricsConfig(host="0.0.0.0", port=0)).validate()  # no server: fine
    for serve in (ServeConfig(token="t"), ServeConfig(user="u", password="p"),
                  ServeConfig(allow_unauthenticated=True)):
        DredgeConfig(metrics=MetricsConfig(host="0.0.0.0"), serve=serve).validate()
    assert DredgeConfig().metrics.host == "127.0.0.1"


@pytest.mark.parametrize(("serve", "field"), [
    (ServeConfig(user="u"), "serve.user"),
    (ServeConfig(user="a:b", password="p"), "serve.user"),
    (ServeConfig(max_request_bytes=10), "serve.max_request_bytes"),
    (ServeConfig(query_timeout_s=0), "serve.query_timeout_s"),
    (ServeConfig(max_concurrent_queries=0), "serve.max_concurrent_queries"),
    (ServeConfig(index_stale_s=-1), "serve.index_stale_s"),
])
def test_bad_serve_settings_name_the_key(serve: ServeConfig, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        DredgeConfig(serve=serve).validate()
    assert err.value.field == field


def test_quantile_like_histogram_quantile() -> None:
    buckets = [(0.1, 0.0), (0.5, 50.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.5)
    assert quantile(0.25, buckets) == pytest.approx(0.3)
    assert quantile(0.99, buckets) == pytest.approx(0.99)
    assert quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None
    assert quantile(0.99, [(1.0, 1.0), (float("inf"), 10.0)]) == 1.0  # beyond the last bound


def test_ops_reads_recent_flushes_and_gauges_from_a_registry() -> None:
    reg = CollectorRegistry()
    flush = Histogram("dredge_sink_flush_seconds", "t", ["sink"], registry=reg,
                      buckets=(0.01, 0.1, 1.0))
    behind = Gauge("dredge_kinesis_millis_behind_latest", "t", ["stream", "shard"], registry=reg)
    fresh = Gauge("dredge_index_provider_updated_timestamp_seconds", "t", ["provider"], registry=reg)
    behind.labels("flows", "shardId-0").set(1500)
    fresh.labels("ec2").set(1000.0)
    ops = OpsReader(reg, window_s=60)
    for _ in range(10):
        flush.labels("duckdb").observe(0.5)  # old and slow
    first = ops.read(now=1000.0)
    assert first["flush"]["p50_s"] == pytest.approx(0.55)
    for _ in range(10):
        flush.labels("duckdb").observe(0.005)  # recent and fast
    later = ops.read(now=1030.0)
    assert later["flush"]["recent"] == 10 and later["flush"]["window_s"] == 30
    assert later["flush"]["p99_s"] <= 0.01
    assert later["shards"] == [{"stream": "flows", "shard": "shardId-0", "millis_behind_latest": 1500}]
    assert later["index_freshness_s"] == {"ec2": 30.0}
    assert later["daemon"] is True and later["dead_letters"] == {}


def test_static_files_stay_inside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "overview.html").write_text("<h1>o</h1>")
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "a.js").write_text("1")
    (tmp_path.parent / "secret.txt").write_text("no")
    assert files.resolve("/", tmp_path) == (tmp_path / "overview.html").resolve()
    assert files.resolve("/overview", tmp_path) == (tmp_path / "overview.html").resolve()
    assert files.resolve("/static/js/a.js", tmp_path) == (tmp_path / "js" / "a.js").resolve()
    for bad in ("/static/../secret.txt", "/static/js/../../secret.txt", "/static/", "/cost",
                "/static/js", "/etc/passwd", "/static//etc/passwd"):
        assert files.resolve(bad, tmp_path) is None, bad
    assert files.content_type(Path("a.js")).startswith("text/javascript")


def test_plotly_comes_from_the_pinned_package() -> None:
    path = files.resolve("/static/vendor/plotly.min.js")
    assert path is not None and path.parts[-3:] == ("plotly", "package_data", "plotly.min.js")
    assert path.stat().st_size > 1_000_000


def test_pages_are_their_main_inside_the_shared_shell() -> None:
    for name, title in files.PAGES.items():
        path = files.resolve(f"/{name}")
        assert path is not None
        page = files.load(path).decode()
        assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
        assert f"<title>Dredge · {title}</title>" in page
        assert f'<script type="module" src="/static/js/{name}.js"></script>' in page
        main = page[page.index("<main>"):page.index("</main>")]
        assert path.read_text() in main and "{{" not in page
    css = files.resolve("/static/css/dredge.css")
    assert css is not None and files.load(css) == css.read_bytes()  # other files as they are
