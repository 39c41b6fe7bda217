"""`dredge run` with a ledger table whose schema Dredge cannot write: exit 2, the column named,
before any stream is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dredge.app import run_daemon
from dredge.config import load_config
from dredge.sinks.iceberg.config import IcebergConfig
from dredge.sinks.iceberg.table import table_schema


def test_schema_mismatch_stops_the_start(tmp_path: Path, iceberg_config: IcebergConfig,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from pyiceberg.catalog import load_catalog
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField, StringType

    catalog = load_catalog("dredge", **iceberg_config.catalog)
    catalog.create_namespace("dredge")
    fields = [NestedField(f.field_id, f.name, StringType() if f.name == "packets" else f.field_type,
                          required=f.required) for f in table_schema().fields]
    catalog.create_table(("dredge", "flows"), schema=Schema(*fields))
    props = "\n".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in iceberg_config.catalog.items())
    cfg = tmp_path / "d.toml"
    cfg.write_text(f'[[streams]]\nname = "s"\nendpoint_url = "http://127.0.0.1:9"\n'
                   f'[metrics]\nport = 0\n[sink.duckdb]\npath = "{tmp_path / "d.duckdb"}"\n'
                   f'[dead_letter]\npath = ""\n[sink.iceberg.catalog]\n{props}\n')
    assert run_daemon(load_config(cfg, env={})) == 2
    err = capsys.readouterr().err
    assert "dredge: error: sink.iceberg.table: table dredge.flows: column 'packets' is string" in err
