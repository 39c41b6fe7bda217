"""``dredge query --backend iceberg`` gives, for every query kind and option, exactly what
``dredge query`` prints on the DuckDB store holding the same rows (the ledger on moto S3, a
SQLite catalog, filled from the store in several commits)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dredge.cli import main
from dredge.query.iceberg import spec_filter, time_range
from dredge.query.spec import QuerySpec, parse_time
from dredge.sinks.iceberg.table import open_table
from tests.integration.iceberg import append, ledger_config, store_rows, toml_of
from tests.integration.samples import replay_args

pytestmark = pytest.mark.integration

QUERIES = [
    ["top"],
    ["top", "--by", "src_app,dst_app,protocol", "--metric", "packets", "--limit", "50"],
    ["top", "--by", "dst_az", "--where", "action=REJECT", "--metric", "flows"],
    ["top", "--by", "src_region,dst_region", "--where", "protocol=6|17", "--where", "src_app!=api"],
    ["top", "--by", "traffic_path,flow_direction", "--where", "traffic_path=1"],
    ["top", "--by", "port", "--where", "action=REJECT", "--limit", "50"],  # NULL ports too
    ["top", "--by", "port,protocol", "--where", "port=https|ssh|ephemeral", "--metric", "flows"],
    ["timeseries", "--interval", "5m", "--by", "action"],
    ["timeseries", "--interval", "7m", "--from", "2026-11-25T00:20Z", "--to", "2026-11-25T01:10Z"],
    ["cross-az"],
    ["cross-az", "--by", "src_region,dst_region", "--nat-price", "0", "--az-price", "0.02"],
    ["top", "--from", "2026-11-25T01:00Z", "--to", "2026-11-25T01:00:30Z"],  # inside one minute
    ["top", "--from", "2030-01-01T00:00Z"],  # nothing
]


def _out(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    capsys.readouterr()
    assert main(args) == 0
    return capsys.readouterr().out


def test_same_answers_as_duckdb(druid_logs: Path, iceberg_catalog: dict[str, str],
                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "store.duckdb"
    assert main(replay_args(druid_logs, db)) == 0
    config = ledger_config(iceberg_catalog)
    table = open_table(config)
    rows = store_rows(db)
    append(table, rows, commits=4)
    toml = tmp_path / "dredge.toml"
    toml.write_text(toml_of(config))

    for query in QUERIES:
        for fmt in (["--json"], []):
            want = _out(capsys, ["query", *query, "--db", str(db), *fmt])
            got = _out(capsys, ["query", *query, "--backend", "iceberg", "--config", str(toml), *fmt])
            assert got == want, query
        assert want.strip() or query[-1].startswith("2030"), query

    # the time range is pushed down: one hour plans that hour's files only
    one_hour = QuerySpec(kind="top", start=parse_time("2026-11-25T01:00Z"),
                         end=parse_time("2026-11-25T02:00Z"))
    planned = len(list(table.scan(row_filter=spec_filter(one_hour)).plan_files()))
    assert 0 < planned < len(list(table.scan().plan_files()))

    lo, hi = time_range(table)
    ws = rows.column("window_start")
    assert (lo, hi) == (ws[0].as_py(), max(ws.to_pylist()))

    # `dredge serve --backend iceberg`: /api/query answers what `dredge query --json` prints
    from tests.integration.test_serve import api, as_records, cli_json, http, params_of, start_serve

    served = start_serve(["--backend", "iceberg", "--config", str(toml)], tmp_path / "serve.log")
    try:
        for query in (["top", "--by", "src_app,dst_app", "--limit", "30"],
                      ["timeseries", "--interval", "10m", "--by", "action"], ["cross-az"]):
            got = as_records(api(served.url, **params_of(query)))
            assert got == cli_json(capsys, *query, "--db", str(db)), query
        status, body = http("GET", f"{served.url}/api/meta")
        assert status == 200 and json.loads(body)["backend"] == "iceberg", body
    finally:
        served.stop()


def test_missing_table_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "dredge.toml"
    toml.write_text("[[streams]]\nname = \"flows\"\n[sink.iceberg]\n[sink.iceberg.catalog]\n"
                    f'type = "sql"\nuri = "sqlite:///{tmp_path}/c.db"\nwarehouse = "{tmp_path}"\n')
    assert main(["query", "top", "--backend", "iceberg", "--config", str(toml)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dredge: error: Iceberg: no table dredge.flows"), err
    assert main(["query", "top", "--backend", "iceberg"]) == 2
    assert "[sink.iceberg] of --config" in capsys.readouterr().err
