from __future__ import annotations

from pathlib import Path

import pytest

from dredge.config import load_config
from dredge.errors import ConfigError
from dredge.sinks.iceberg.config import IcebergConfig

BASE = 'catalog = {type = "sql", uri = "sqlite:///c.db", warehouse = "s3://b/wh"}\n'


def test_defaults_and_section_off_by_default(tmp_path: Path) -> None:
    assert load_config(None, env={}).sink.iceberg is None
    cfg = tmp_path / "d.toml"
    cfg.write_text('[sink.iceberg]\ncatalog_name = "c"\n[sink.iceberg.catalog]\ntype = "sql"\n'
                   'uri = "sqlite:///c.db"\nwarehouse = "s3://b/wh"\ns3.endpoint = "http://127.0.0.1:5000"\n'
                   '"s3.region" = "us-east-1"\n')
    ice = load_config(cfg, env={}).sink.iceberg
    assert ice is not None
    assert ice.catalog == {"type": "sql", "uri": "sqlite:///c.db", "warehouse": "s3://b/wh",
                           "s3.endpoint": "http://127.0.0.1:5000", "s3.region": "us-east-1"}
    assert (ice.namespace, ice.table, ice.commit_interval_s, ice.catalog_name) == ("dredge", "flows", 60.0, "c")


def test_environment_sets_catalog_properties(tmp_path: Path) -> None:
    cfg = tmp_path / "d.toml"
    cfg.write_text("[sink.iceberg]\n" + BASE)
    env = {"DREDGE_SINK__ICEBERG__CATALOG__S3__ENDPOINT": "http://127.0.0.1:9",
           "DREDGE_SINK__ICEBERG__COMMIT_INTERVAL_S": "2.5"}
    ice = load_config(cfg, env=env).sink.iceberg
    assert ice is not None and ice.catalog["s3.endpoint"] == "http://127.0.0.1:9"
    assert ice.commit_interval_s == 2.5


@pytest.mark.parametrize(("body", "key"), [
    (BASE + "commit_interval_s = 0\n", "sink.iceberg.commit_interval_s"),
    (BASE + "commit_interval_s = inf\n", "sink.iceberg.commit_interval_s"),
    (BASE + "commit_interval_s = nan\n", "sink.iceberg.commit_interval_s"),
    ('catalog = {uri2 = "x"}\n', "sink.iceberg.catalog"),
    ('catalog = {type = "oracle"}\n', "sink.iceberg.catalog.type"),
    ('catalog = {type = "sql", warehouse = "/w"}\n', "sink.iceberg.catalog.uri"),
    ('catalog = {type = "sql", uri = "sqlite:///c.db"}\n', "sink.iceberg.catalog.warehouse"),
    ('catalog = {type = "sql", uri = "sqlite:///c.db", warehouse = "/w", x = [1]}\n', "sink.iceberg.catalog.x"),
    (BASE + 'table = "flows-1"\n', "sink.iceberg.table"),
    (BASE + 'namespace = ""\n', "sink.iceberg.namespace"),
    (BASE + "tabel = 1\n", "sink.iceberg.tabel"),
    (BASE + "reconcile_every_s = -1\n", "sink.iceberg.reconcile_every_s"),
    (BASE + "reconcile_grace_s = inf\n", "sink.iceberg.reconcile_grace_s"),
    (BASE + "reconcile_every_s = 600\n", "sink.iceberg.reconcile_every_s"),  # no [sink.druid]
])
def test_bad_values_name_the_key(tmp_path: Path, body: str, key: str) -> None:
    cfg = tmp_path / "d.toml"
    cfg.write_text("[sink.iceberg]\n" + body)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    assert err.value.field == key


def test_describe_keeps_the_uri_out() -> None:
    cfg = IcebergConfig(catalog={"type": "sql", "uri": "postgresql://u:secret@h/db", "warehouse": "s3://b"})
    assert "secret" not in cfg.describe() and "s3://b" in cfg.describe()


def test_example_file_documents_every_key(tmp_path: Path) -> None:
    import dataclasses

    example = Path(__file__).resolve().parents[4] / "infra" / "dredge.example.toml"
    text = example.read_text()
    block = text[text.index("#[sink.iceberg]"):].split("\n\n")[0]  # the commented section
    for f in dataclasses.fields(IcebergConfig):
        assert f"#{f.name} =" in block or f"#[sink.iceberg.{f.name}]" in block, f.name
    on = "\n".join(line[1:] for line in block.splitlines() if line.startswith(("#[", "#\"")) or " = " in line)
    path = tmp_path / "on.toml"
    path.write_text(on)
    ice = load_config(path, env={}).sink.iceberg
    assert ice is not None and ice.catalog["type"] == "sql" and ice.catalog["s3.region"] == "us-east-1"
