"""The Superset bundle: files Superset can read, every reference resolving, every column and
metric a chart names existing in the ``flows`` schema, stable ids, and no password."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from dredge.cli import main
from dredge.dashboards import layout, schema
from dredge.dashboards.bundle import PASSWORD_MASK, ROOT, BundleOptions, build
from dredge.dashboards.charts import used_columns, used_metrics
from dredge.dashboards.datasets import druid_datasets, druid_uri
from dredge.enrich.rollup import DIMENSIONS, METRICS
from dredge.query.spec import (
    DEFAULT_AZ_PRICE,
    DEFAULT_INTERNET_PRICE,
    DEFAULT_NAT_PRICE,
    DEFAULT_REGION_PRICE,
    DRUID,
    QuerySpec,
    crossing_rules,
)
from dredge.sinks.druid import DruidConfig, dimensions_spec

Docs = dict[str, dict[str, Any]]


def load(files: dict[str, str]) -> Docs:
    return {path: yaml.safe_load(text) for path, text in files.items()}


def kind(docs: Docs, folder: str) -> list[dict[str, Any]]:
    return [d for p, d in docs.items() if p.startswith(f"{ROOT}/{folder}/")]


@pytest.fixture(scope="module")
def docs() -> Docs:
    return load(build(BundleOptions(DruidConfig(url="http://127.0.0.1:18888"),
                                    duckdb_path="/data/dredge.duckdb")))


def test_layout_and_metadata(docs: Docs) -> None:
    assert all(p.startswith(ROOT + "/") for p in docs)
    assert docs[f"{ROOT}/metadata.yaml"]["version"] == "1.0.0"
    assert docs[f"{ROOT}/metadata.yaml"]["type"] == "Dashboard"  # import-dashboards wants it
    assert {d["dashboard_title"] for d in kind(docs, "dashboards")} == {
        "Network overview", "Application dependencies", "Data transfer cost"}
    assert len(kind(docs, "databases")) == 2  # Druid and the DuckDB store


def test_every_uuid_reference_resolves(docs: Docs) -> None:
    databases = {d["uuid"] for d in kind(docs, "databases")}
    datasets = {d["uuid"]: d for d in kind(docs, "datasets")}
    charts = {d["uuid"]: d for d in kind(docs, "charts")}
    every = [d["uuid"] for folder in ("databases", "datasets", "charts", "dashboards")
             for d in kind(docs, folder)]
    assert len(every) == len(set(every)), "a UUID is used twice"
    for d in datasets.values():
        assert d["database_uuid"] in databases, d["table_name"]
    for c in charts.values():
        assert c["dataset_uuid"] in datasets, c["slice_name"]
    placed: set[str] = set()
    for board in kind(docs, "dashboards"):
        pos = board["position"]
        items = [v for k, v in pos.items() if k != "DASHBOARD_VERSION_KEY"]
        ids = {v["id"] for v in items}
        for v in items:  # the layout tree: children and parents exist
            assert set(v.get("children", [])) <= ids
            assert set(v.get("parents", [])) <= ids
        local_ids = {}
        for v in items:
            if v["type"] == "CHART":
                assert v["meta"]["uuid"] in charts
                assert v["meta"]["sliceName"] == charts[v["meta"]["uuid"]]["slice_name"]
                local_ids[v["meta"]["chartId"]] = v["meta"]["uuid"]
                placed.add(v["meta"]["uuid"])
        assert len(local_ids) == sum(1 for v in items if v["type"] == "CHART")
        widths: dict[str, int] = {}
        for v in items:
            if v["type"] == "ROW":
                widths[v["id"]] = sum(pos[ch]["meta"]["width"] for ch in v["children"])
        assert all(w <= 12 for w in widths.values()), widths
        filters = board["metadata"]["native_filter_configuration"]
        assert len({f["id"] for f in filters}) == len(filters)
        for f in filters:
            assert set(f["scope"]["excluded"]) <= set(local_ids)
            for target in f["targets"]:
                if target:
                    assert target["datasetUuid"] in datasets
    assert placed == set(charts), "every chart is on a dashboard"


def test_dataset_columns_are_the_flows_schema(docs: Docs) -> None:
    # the Druid datasource as ingested: __time, the spec's dimensions, the rollup's metrics
    ingested = {"__time"} | {d if isinstance(d, str) else d["name"] for d in dimensions_spec()}
    ingested |= set(METRICS)
    assert ingested == schema.COLUMN_NAMES
    assert {d for d in DIMENSIONS if d != "window_start"} < schema.COLUMN_NAMES
    types = {d["name"]: d["type"] for d in dimensions_spec() if isinstance(d, dict)}
    flows = next(d for d in kind(docs, "datasets") if d["table_name"] == "dredge_flows")
    assert flows["sql"] is None and flows["main_dttm_col"] == "__time"
    stored = {c["column_name"] for c in flows["columns"] if not c["expression"]}
    assert stored == ingested  # and calculated columns over them
    for c in flows["columns"]:
        if c["column_name"] in types:
            assert c["type"] == "BIGINT"


def test_virtual_datasets_select_what_they_declare() -> None:
    for ds in druid_datasets("dredge_flows").all():
        if not ds.sql:
            continue
        selected = set(re.findall(r"\bAS (\w+)", ds.sql)) | schema.COLUMN_NAMES
        assert ds.column_names <= selected, ds.name
        assert '"dredge_flows"' in ds.sql
        assert ds.column_names >= schema.COLUMN_NAMES  # every native filter applies to it


def test_every_column_and_metric_a_chart_uses_exists() -> None:
    ds = druid_datasets("dredge_flows")
    for board in layout.dashboards(ds):
        for chart in board.charts:
            missing_cols = used_columns(chart) - chart.dataset.column_names
            assert not missing_cols, (chart.name, missing_cols)
            missing = used_metrics(chart) - chart.dataset.metric_names
            assert not missing, (chart.name, missing)
            assert used_columns(chart) or used_metrics(chart)
        for _, column in schema.FILTERS:
            for chart in board.charts:
                assert column in chart.dataset.column_names
    # the metrics' expressions name only columns of their dataset
    words = re.compile(r"\b([a-z_]+)\b")
    sql_words = {"sum", "case", "when", "then", "else", "end", "or", "and", "nullif",
                 "timestamp_to_millis", "max", "min", "reject", "unknown", "cross_az",
                 "cross_region"}
    for dataset in ds.all():
        for m in dataset.metrics:
            names = set(words.findall(m.expression.replace("'cross-az'", "").replace(
                "'cross-region'", ""))) - sql_words
            assert names <= dataset.column_names, (dataset.name, m.name, names)


def test_cost_model_is_dredge_query_cross_az() -> None:
    sql, _ = QuerySpec(kind="cross-az").sql(DRUID)  # every price, as the command runs
    for _, condition in crossing_rules(DRUID):
        assert condition in sql and condition in schema.crossing_condition()
    assert schema.crossing_kind() in sql
    cost = schema.row_cost()
    for price in (DEFAULT_AZ_PRICE, DEFAULT_REGION_PRICE, DEFAULT_INTERNET_PRICE, DEFAULT_NAT_PRICE):
        assert repr(price) in cost
    transfer = druid_datasets("flows_x").transfer
    assert f"WHERE {schema.crossing_condition()}" in transfer.sql
    assert '"flows_x"' in transfer.sql


def test_stable_ids_and_bytes(tmp_path: Path) -> None:
    a = build(BundleOptions(DruidConfig(url="http://127.0.0.1:18888")))
    b = build(BundleOptions(DruidConfig(url="https://druid.example:9088", user="reader")))
    uuids = re.compile(r'uuid: "([0-9a-f-]{36})"')
    # a different Druid URL, same objects: a re-import updates them in place
    assert sorted(uuids.findall("".join(a.values()))) == sorted(uuids.findall("".join(b.values())))
    assert main(["dashboards", "export", "--out", str(tmp_path / "1.zip"), "--no-duckdb"]) == 0
    assert main(["dashboards", "export", "--out", str(tmp_path / "2.zip"), "--no-duckdb"]) == 0
    assert (tmp_path / "1.zip").read_bytes() == (tmp_path / "2.zip").read_bytes()


@pytest.mark.parametrize(("url", "user", "uri"), [
    ("http://127.0.0.1:18888", "", "druid://127.0.0.1:18888/druid/v2/sql/"),
    ("https://127.0.0.1:18889", "dredge", "druid+https://dredge@127.0.0.1:18889/druid/v2/sql/"),
    ("https://druid.example", "a@b", "druid+https://a%40b@druid.example:443/druid/v2/sql/"),
    ("http://[::1]:8888/", "", "druid://[::1]:8888/druid/v2/sql/"),
])
def test_druid_uri(url: str, user: str, uri: str) -> None:
    assert druid_uri(DruidConfig(url=url, user=user)) == uri


def test_config_file_tls_user_and_never_the_password(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("URL", "USER", "PASSWORD", "CA_FILE", "TLS_VERIFY", "DATASOURCE"):
        monkeypatch.delenv(f"DREDGE_DRUID_{name}", raising=False)
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    toml = tmp_path / "dredge.toml"
    toml.write_text(f'[sink.duckdb]\npath = "{tmp_path}/store.duckdb"\n'
                    '[sink.druid]\nurl = "https://127.0.0.1:18889"\nuser = "dredge"\n'
                    f'password = "s3cret-pw"\nca_file = "{ca}"\ndatasource = "flows_b"\n')
    out = tmp_path / "b.zip"
    assert main(["dashboards", "export", "--out", str(out), "--config", str(toml)]) == 0
    with zipfile.ZipFile(out) as zf:
        texts = {n: zf.read(n).decode() for n in zf.namelist()}
    assert not any("s3cret-pw" in t for t in texts.values())
    docs = load(texts)
    druid = next(d for d in kind(docs, "databases") if d["database_name"] == "Dredge Druid")
    assert druid["sqlalchemy_uri"] == "druid+https://dredge@127.0.0.1:18889/druid/v2/sql/"
    assert druid["extra"]["engine_params"] == {"connect_args": {"ssl_verify_cert": str(ca)}}
    duck = next(d for d in kind(docs, "databases") if d["database_name"] != "Dredge Druid")
    assert duck["sqlalchemy_uri"] == f"duckdb:///{tmp_path}/store.duckdb"
    assert duck["extra"]["engine_params"] == {"connect_args": {"read_only": True}}
    tables = {d["table_name"] for d in kind(docs, "datasets")}
    assert {"flows_b", "flows_b_transfer", "flows"} <= tables
    # --ask-password: Superset's mask, its import dialog asks for the password
    monkeypatch.setenv("DREDGE_DRUID_TLS_VERIFY", "0")
    assert main(["dashboards", "export", "--out", str(out), "--config", str(toml),
                 "--ask-password", "--no-duckdb"]) == 0
    with zipfile.ZipFile(out) as zf:
        docs = load({n: zf.read(n).decode() for n in zf.namelist()})
    (druid,) = kind(docs, "databases")
    assert druid["sqlalchemy_uri"] == (
        f"druid+https://dredge:{PASSWORD_MASK}@127.0.0.1:18889/druid/v2/sql/")
    assert druid["extra"]["engine_params"] == {"connect_args": {"ssl_verify_cert": False}}


def test_bad_url_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "export", "--out", str(tmp_path / "x.zip"),
                 "--druid-url", "ftp://x"]) == 2
    assert capsys.readouterr().err.startswith("dredge: error: druid.url")
