"""Druid: supervisor spec, REPLACE statements, settings from options and environment, the
backfill's ledger of pending hours (against a scripted API; the real Druid is in
tests/integration/test_druid_sink.py), and query parameters as literals."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dredge.enrich.rollup import DIMENSIONS, FLOWS_SCHEMA, Rolled
from dredge.errors import ConfigError, SinkError
from dredge.query.druid import inline_parameters, literal, result_schema
from dredge.query.spec import QuerySpec
from dredge.sinks.base import IngestRecord
from dredge.sinks.druid import DruidConfig, DruidUnreachable, SupervisorConfig, supervisor_spec
from dredge.sinks.druid_backfill import DruidBackfill, replace_statement
from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

H = 3600
T0 = 1795564800  # 2026-11-25T00:00Z


def test_supervisor_spec_has_every_dimension_and_the_granularities() -> None:
    spec = supervisor_spec("dredge_flows", SupervisorConfig(stream="out",
                                                            endpoint="http://127.0.0.1:14568"))
    schema = spec["spec"]["dataSchema"]
    names = [d if isinstance(d, str) else d["name"] for d in schema["dimensionsSpec"]["dimensions"]]
    assert names == [d for d in DIMENSIONS if d != "window_start"]
    assert {"type": "long", "name": "protocol"} in schema["dimensionsSpec"]["dimensions"]
    assert schema["timestampSpec"] == {"column": "window_start", "format": "iso"}
    assert schema["metricsSpec"] == [{"type": "longSum", "name": m, "fieldName": m}
                                     for m in ("bytes", "packets", "flows")]
    assert schema["granularitySpec"] == {"type": "uniform", "segmentGranularity": "hour",
                                         "queryGranularity": "minute", "rollup": True}
    io = spec["spec"]["ioConfig"]
    assert io["stream"] == "out" and io["endpoint"] == "http://127.0.0.1:14568"
    assert "region" not in io and io["useEarliestSequenceNumber"] is True
    aws = supervisor_spec("x", SupervisorConfig(region="eu-west-1"))["spec"]["ioConfig"]
    assert aws["region"] == "eu-west-1" and "endpoint" not in aws
    assert spec["spec"]["tuningConfig"]["resetOffsetAutomatically"] is False


def test_replace_statement_overwrites_exactly_its_hours() -> None:
    sql = replace_statement("dredge_flows", T0, T0 + 2 * H, {"type": "inline", "data": "{'x'}"})
    assert ("OVERWRITE WHERE \"__time\" >= TIMESTAMP '2026-11-25 00:00:00' AND "
            "\"__time\" < TIMESTAMP '2026-11-25 02:00:00'") in sql
    assert "PARTITIONED BY HOUR" in sql and "TIME_FLOOR(TIME_PARSE(\"window_start\"), 'PT1M')" in sql
    assert '"protocol" BIGINT' in sql and '"src_app" VARCHAR' in sql
    assert "{''x''}" in sql  # the data's quotes doubled inside the SQL literal
    assert "GROUP BY 1, 2, " in sql and f", {len(DIMENSIONS)}\n" in sql


def test_druid_config_options_beat_environment(tmp_path: Path) -> None:
    import ssl

    from dredge.commands.druid import druid_config

    args = argparse.Namespace(druid_url="https://druid:9088", druid_user=None, druid_password=None,
                              druid_tls_verify=None, druid_datasource=None)
    env = {"DREDGE_DRUID_URL": "http://ignored:1", "DREDGE_DRUID_USER": "u",
           "DREDGE_DRUID_PASSWORD": "p", "DREDGE_DRUID_TLS_VERIFY": "0"}
    c = druid_config(args, env)
    assert (c.url, c.user, c.password, c.tls_verify) == ("https://druid:9088", "u", "p", False)
    ctx = c.ssl_context()
    assert ctx is not None and ctx.verify_mode == ssl.CERT_NONE
    with pytest.raises(ConfigError, match="ca_file"):
        druid_config(args, {**env, "DREDGE_DRUID_CA_FILE": str(tmp_path / "missing.pem")})
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="ca_file"):
        druid_config(args, {**env, "DREDGE_DRUID_CA_FILE": str(tmp_path / "bad.pem")}).ssl_context()
    args.druid_tls_verify = True
    assert druid_config(args, env).tls_verify is True
    with pytest.raises(ConfigError, match="tls_verify"):
        druid_config(argparse.Namespace(), {"DREDGE_DRUID_TLS_VERIFY": "maybe"})


def test_druid_config_validation() -> None:
    DruidConfig().validate()
    for bad, field in ((DruidConfig(url="localhost:8888"), "url"),
                       (DruidConfig(password="x"), "user"),
                       (DruidConfig(staging="local:relative"), "staging"),
                       (DruidConfig(max_num_tasks=1), "max_num_tasks")):
        with pytest.raises(ConfigError, match=field):
            bad.validate()


def test_s3_staging_setting_is_checked() -> None:
    from dredge.sinks.druid_staging import parse_s3_url

    assert parse_s3_url("s3://flows-stage/dredge/backfill") == ("flows-stage", "dredge/backfill/")
    assert parse_s3_url("s3://flows.stage-1/a/") == ("flows.stage-1", "a/")
    assert parse_s3_url("s3://flows-stage") == ("flows-stage", "")
    assert parse_s3_url("s3://flows-stage/") == ("flows-stage", "")
    DruidConfig(staging="s3://flows-stage/dredge/", s3_endpoint_url="http://127.0.0.1:15055",
                s3_region="eu-west-1").validate()
    for staging in ("s3://", "s3:///x/", "s3://Flows/x/", "s3://ab/x", "s3://a..b/x",
                    "s3://bucket_1/x", "s3://b" + "x" * 63, "s3://bucket/a//b/",
                    "s3://bucket/a b/", "s3:/bucket/x/", "S3://bucket/x/"):
        with pytest.raises(ConfigError, match=r"druid\.staging"):
            DruidConfig(staging=staging).validate()
    with pytest.raises(ConfigError, match=r"druid\.s3_endpoint_url"):
        DruidConfig(staging="s3://bucket/x/", s3_endpoint_url="127.0.0.1:15055").validate()
    # auto stays local-or-inline; s3 is taken as given
    assert DruidConfig(staging="s3://b-1/x/").resolved_staging("x.duckdb") == "s3://b-1/x/"


def test_s3_staging_stages_gzipped_hours_once_and_deletes_them(tmp_path: Path) -> None:
    """Against moto (in process): one .json.gz object per hour, the REPLACE reads their
    s3:// URIs, retries reuse them, and they are deleted after success and after failure."""
    import gzip

    import boto3
    from moto import mock_aws

    seen: list[dict[str, bytes]] = []

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="stage")

        class Peek(ScriptedAPI):
            def submit_sql_task(self, query: str, context: dict[str, Any]) -> str:
                uris = json.loads(query.split("EXTERN('")[1].split("', '")[0])["uris"]
                seen.append({u: gzip.decompress(s3.get_object(
                    Bucket="stage", Key=u.removeprefix("s3://stage/"))["Body"].read())
                    for u in uris})
                return super().submit_sql_task(query, context)

        api = Peek([DruidUnreachable("refused"), "SUCCESS", "FAILED", "FAILED"])
        store, b = backfill(tmp_path, api, staging="s3://stage/bf/")
        b.store_files([(flows([0, 0, 1]), rec("a"))])
        assert b.push().statements == 1
        assert len(seen) == 2 and seen[0] == seen[1]  # a retry reads the same objects
        objects = seen[0]
        assert [u.removeprefix("s3://stage/bf/dredge-dredge_flows-1795564800-").split("/")[1]
                for u in objects] == ["2026-11-25T00.json.gz", "2026-11-25T01.json.gz"]
        assert [v.count(b"\n") for v in objects.values()] == [2, 1]
        assert b'"src_app":"api"' in next(iter(objects.values()))
        assert s3.list_objects_v2(Bucket="stage").get("KeyCount") == 0
        # a statement that fails every attempt: staged once, deleted too, hours pending
        b.mark_stored()
        with pytest.raises(SinkError, match="failed 2 times"):
            b.push()
        assert len(seen) == 4 and seen[2].keys() == seen[3].keys() != objects.keys()
        assert s3.list_objects_v2(Bucket="stage").get("KeyCount") == 0
        assert b.pending() == [T0, T0 + H]
        # no such bucket: a clear error before Druid is asked, hours still pending
        store2, b2 = backfill(tmp_path / "2", ScriptedAPI([]), staging="s3://missing-bucket/x/")
        b2.store_files([(flows([0]), rec("a"))])
        with pytest.raises(SinkError, match="bucket 'missing-bucket' does not exist"):
            b2.push()
        assert b2.pending() == [T0]
        for x in (b, store, b2, store2):
            x.close()


def test_s3_staging_reports_access_denied() -> None:
    from botocore.exceptions import ClientError

    from dredge.sinks.druid_staging import Staging

    class Denied:
        def put_object(self, **kw: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                               "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject")

        def delete_objects(self, **kw: Any) -> dict[str, Any]:
            raise AssertionError("nothing was staged")

    stager = Staging("s3://stage/x/", "ds", client=Denied())
    with pytest.raises(SinkError, match=r"access denied \(AccessDenied\).*s3:PutObject"), \
            stager.staged(T0, [(T0, b"{}\n")]):
        pass


def test_auto_staging_is_local_only_when_druid_is_on_this_machine() -> None:
    local = DruidConfig(url="http://127.0.0.1:18888").resolved_staging("d/x.duckdb")
    assert local.startswith("local:/") and local.endswith("/d/x.duckdb.druid-staging")
    assert DruidConfig(url="https://druid.internal:9088").resolved_staging("x.duckdb") == "inline"
    assert DruidConfig(staging="inline").resolved_staging("x.duckdb") == "inline"


def test_query_parameters_become_literals_outside_quotes() -> None:
    sql, params = QuerySpec("cross-az", filters=()).sql()
    assert "(-gov)?" in sql
    spec = QuerySpec("top", filters=())
    from dredge.query.spec import Filter

    spec = QuerySpec("top", filters=(Filter.parse("src_app=it's|*"), Filter.parse("protocol=6")))
    sql, params = spec.sql()
    out = inline_parameters(sql, params)
    assert "src_app IN ('it''s', '*')" in out and "protocol IN (6)" in out and "?" not in out
    assert literal(1.5) == "1.5"
    with pytest.raises(ValueError):
        inline_parameters("x = ?", [])


def test_result_schema_matches_duckdb_types() -> None:
    s = result_schema(QuerySpec("timeseries", by=("protocol",)))
    assert s.names == ["t", "protocol", "bytes", "packets", "flows"]
    assert s.field("t").type == pa.timestamp("us") and s.field("protocol").type == pa.int16()
    assert result_schema(QuerySpec("cross-az")).names[-2:] == ["flows", "cost_usd"]


# -- the backfill's ledger --------------------------------------------------------------


class ScriptedAPI:
    """Submits and answers task status from a script: per submit, "SUCCESS", "FAILED" or an
    exception (Druid away)."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.statements: list[str] = []
        self.visible: list[str] = []

    def submit_sql_task(self, query: str, context: dict[str, Any]) -> str:
        step = self.script.pop(0) if self.script else "SUCCESS"
        if isinstance(step, Exception):
            raise step
        self.statements.append(query)
        return f"task-{len(self.statements)}:{step}"

    def task_status(self, task: str) -> dict[str, Any]:
        return {"statusCode": task.split(":")[1], "errorMsg": "boom"}

    def sql(self, query: str, context: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.visible.append(query)  # the Broker answers at once here
        return [{"n": 1}]


def flows(hours: list[int]) -> pa.Table:
    n = len(hours)
    cols = {name: pa.nulls(n, FLOWS_SCHEMA.field(name).type) for name in FLOWS_SCHEMA.names}
    cols["window_start"] = pa.array([T0 + h * H + 60 for h in hours], pa.timestamp("s"))
    cols["src_app"] = pa.array(["api"] * n)
    cols["dst_app"] = pa.array(["db"] * n)
    for m in ("bytes", "packets", "flows"):
        cols[m] = pa.array([1] * n, pa.int64())
    return pa.table(cols, schema=FLOWS_SCHEMA)


def rec(h: str) -> IngestRecord:
    return IngestRecord(h, f"/logs/{h}", 1, 1, 0, 0, 0, False, 1, 0.0)


def backfill(tmp_path: Path, api: ScriptedAPI, **kw: Any) -> tuple[DuckDBSink, DruidBackfill]:
    store = DuckDBSink(DuckDBConfig(path=str(tmp_path / "s.duckdb")))
    store.open()
    config = DruidConfig(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.01, **kw)
    return store, DruidBackfill(store, config, api, sleep=lambda s: None)  # type: ignore[arg-type]


def test_pending_hours_are_pushed_in_runs_and_unmarked(tmp_path: Path) -> None:
    api = ScriptedAPI([])
    store, b = backfill(tmp_path, api, max_statement_hours=2)
    assert b.store_files([(Rolled.from_table(flows([0, 1, 2])), rec("a")),
                          (flows([5]), rec("b"))]) == [True, True]
    assert b.pending() == [T0, T0 + H, T0 + 2 * H, T0 + 5 * H]
    summary = b.push()
    # 0-1 (two hours at most), 2, then 5 (not consecutive)
    assert [s.split("OVERWRITE WHERE")[1].split("\n")[0] for s in api.statements] == [
        f" \"__time\" >= TIMESTAMP '2026-11-25 0{a}:00:00' AND \"__time\" < TIMESTAMP "
        f"'2026-11-25 0{z}:00:00'" for a, z in ((0, 2), (2, 3), (5, 6))]
    assert (summary.hours, summary.statements, summary.rows, summary.pending) == (4, 3, 4, 0)
    assert b.pending() == []
    # the same file again: stored nothing, and re-pushing the hour is harmless
    assert b.store_files([(flows([5]), rec("b"))]) == [False]
    assert b.push().statements == 1
    b.close()
    store.close()


def test_a_failed_push_keeps_its_hours_for_the_next_run(tmp_path: Path) -> None:
    api = ScriptedAPI([DruidUnreachable("refused"), "FAILED"])
    store, b = backfill(tmp_path, api)
    b.store_files([(flows([0]), rec("a"))])
    with pytest.raises(SinkError, match=r"failed 2 times; the hours stay pending.*boom"):
        b.push()
    assert b.pending() == [T0]
    assert b.push().hours == 1 and b.pending() == []
    assert b.mark_stored() == 1 and b.pending() == [T0]  # `dredge druid backfill`: re-push all
    b.close()
    store.close()


def test_push_returns_when_the_broker_answers_for_the_replaced_hours(tmp_path: Path) -> None:
    """A task ends when the segments are loaded; the Broker may still say the datasource is
    "not found" (it learns the columns a moment later): push waits until its SQL counts rows."""

    class LateBroker(ScriptedAPI):
        def sql(self, query: str, context: dict[str, Any] | None = None) -> list[dict[str, Any]]:
            self.visible.append(query)
            if len(self.visible) == 1:
                raise SinkError("Druid POST /druid/v2/sql: HTTP 400: Object 'ds' not found")
            return [{"n": 0}] if len(self.visible) == 2 else [{"n": 3}]

    api = LateBroker([])
    store, b = backfill(tmp_path, api)
    b.store_files([(flows([0, 0, 0]), rec("a"))])
    assert b.push().statements == 1
    assert len(api.visible) == 3
    assert "__time >= TIMESTAMP '2026-11-25 00:00:00' AND __time < TIMESTAMP " \
           "'2026-11-25 01:00:00'" in api.visible[-1]
    b.close()
    store.close()


def test_inline_staging_refuses_an_hour_too_big(tmp_path: Path) -> None:
    api = ScriptedAPI([])
    store, b = backfill(tmp_path, api, max_inline_bytes=1024, staging="inline")
    b.store_files([(flows([0] * 10), rec("a"))])
    with pytest.raises(SinkError, match="local:/dir"):
        b.push()
    assert b.pending() == [T0] and api.statements == []
    b.close()
    store.close()


def test_local_staging_writes_a_file_druid_reads_and_removes_it(tmp_path: Path) -> None:
    seen: list[str] = []

    class Peek(ScriptedAPI):
        def submit_sql_task(self, query: str, context: dict[str, Any]) -> str:
            path = query.split('"files": ["')[1].split('"')[0]
            seen.append(Path(path).read_text())
            return super().submit_sql_task(query, context)

    store, b = backfill(tmp_path, Peek([]), staging=f"local:{tmp_path / 'stage'}")
    b.store_files([(flows([0, 0]), rec("a"))])
    b.push()
    assert len(seen) == 1 and seen[0].count("\n") == 2 and '"src_app":"api"' in seen[0]
    assert list((tmp_path / "stage").iterdir()) == []
    b.close()
    store.close()


def test_init_and_status_exit_1_with_one_line_when_druid_is_unreachable(
        capsys: pytest.CaptureFixture[str]) -> None:
    from dredge.cli import main
    from dredge.testing import free_port

    url = f"http://127.0.0.1:{free_port()}"
    for cmd in (["druid", "init", "--stream", "s"], ["druid", "status"]):
        assert main([*cmd, "--druid-url", url]) == 1  # a run-time failure, not a refused setup
        err = capsys.readouterr().err
        assert err.startswith("dredge: error: Druid unreachable at " + url) and "make druid-up" in err
        assert err.count("\n") == 1
    assert main(["druid", "init", "--create-stream", "-2", "--druid-url", url]) == 2
    err = capsys.readouterr().err
    assert err == "dredge: error: create_stream: a number of shards >= 1\n"


def test_spec_command_reads_options_and_environment(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from dredge.cli import main

    monkeypatch.setenv("DREDGE_DRUID_STREAM", "from-env")
    monkeypatch.setenv("DREDGE_DRUID_REGION", "eu-west-1")
    assert main(["druid", "spec", "--druid-datasource", "flows2"]) == 0
    spec = json.loads(capsys.readouterr().out)
    io = spec["spec"]["ioConfig"]
    assert (io["stream"], io["region"], spec["spec"]["dataSchema"]["dataSource"]) == (
        "from-env", "eu-west-1", "flows2")
    assert main(["druid", "spec", "--stream", "opt", "--kinesis-endpoint", "http://k:1"]) == 0
    io = json.loads(capsys.readouterr().out)["spec"]["ioConfig"]
    assert io["stream"] == "opt" and io["endpoint"] == "http://k:1" and "region" not in io


def test_config_file_supplies_what_options_and_environment_leave_unset(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """--config: [sink.druid] for the connection, [sink.kinesis_out] for the supervisor's
    stream; an option or a DREDGE_DRUID_* variable still wins over the file."""
    import json

    from dredge.cli import main
    from dredge.commands.druid import druid_config

    conf = tmp_path / "dredge.toml"
    conf.write_text('[sink.druid]\nurl = "https://druid.internal:9088"\nuser = "dredge"\n'
                    'password = "secret"\ndatasource = "from_file"\ntls_verify = false\n\n'
                    '[sink.kinesis_out]\nstream = "flows-out"\nregion = "eu-central-1"\n'
                    'endpoint_url = "http://kinesis.internal:4567"\n')
    args = argparse.Namespace(druid_config_file=str(conf), druid_url=None,
                              druid_datasource="from_option")
    c = druid_config(args, {"DREDGE_DRUID_USER": "env-user"})
    assert (c.url, c.user, c.password, c.datasource, c.tls_verify) == (
        "https://druid.internal:9088", "env-user", "secret", "from_option", False)
    # the file's own environment overrides apply too
    c = druid_config(args, {"DREDGE_SINK__DRUID__URL": "http://other:8888"})
    assert c.url == "http://other:8888"

    for name in ("DREDGE_DRUID_STREAM", "DREDGE_DRUID_REGION", "DREDGE_DRUID_KINESIS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert main(["druid", "spec", "--config", str(conf)]) == 0
    spec = json.loads(capsys.readouterr().out)
    io = spec["spec"]["ioConfig"]
    assert (io["stream"], io["endpoint"]) == ("flows-out", "http://kinesis.internal:4567")
    assert spec["spec"]["dataSchema"]["dataSource"] == "from_file"
    assert main(["druid", "spec", "--config", str(conf), "--kinesis-endpoint", ""]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["ioConfig"]["endpoint"] == (
        "http://kinesis.internal:4567")  # an empty option is unset
    conf2 = tmp_path / "aws.toml"
    conf2.write_text('[sink.kinesis_out]\nstream = "flows-out"\nregion = "eu-central-1"\n')
    assert main(["druid", "spec", "--config", str(conf2)]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["ioConfig"]["region"] == "eu-central-1"
    assert main(["druid", "spec", "--config", str(conf), "--stream", "opt"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["ioConfig"]["stream"] == "opt"

    conf.write_text('[sink.druid]\nurl = "druid:8888"\n')
    with pytest.raises(ConfigError, match=r"sink\.druid\.url"):
        druid_config(args, {})


def test_refused_credentials_and_untrusted_certificates_are_not_retried(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A 401 and a certificate Dredge does not trust are plain SinkErrors (a retry would meet
    the same answer), with one line saying what to set; a refused connection stays retryable."""
    import io
    import ssl
    import urllib.error
    import urllib.request

    from dredge.sinks.druid import DruidAPI

    cert = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cert.verify_message = "self-signed certificate in certificate chain"
    failures: list[BaseException] = [
        urllib.error.HTTPError("https://druid:9088/x", 401, "Unauthorized", {},  # type: ignore[arg-type]
                               io.BytesIO(b"<html>401</html>")),
        urllib.error.URLError(cert),
        urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
    ]

    def urlopen(*a: object, **kw: object) -> None:
        raise failures.pop(0)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    api = DruidAPI(DruidConfig(url="https://druid:9088", user="dredge", password="x"))
    with pytest.raises(SinkError) as err:
        api.request("GET", "/x")
    assert not isinstance(err.value, DruidUnreachable)
    assert str(err.value) == ("Druid GET https://druid:9088/x: HTTP 401: user 'dredge' or its "
                              "password refused (--druid-user/--druid-password, "
                              "DREDGE_DRUID_USER/DREDGE_DRUID_PASSWORD)")
    with pytest.raises(SinkError) as err:
        api.request("GET", "/x")
    assert not isinstance(err.value, DruidUnreachable)
    assert str(err.value) == ("Druid at https://druid:9088/x: TLS certificate not trusted "
                              "(self-signed certificate in certificate chain): give its CA with "
                              "--druid-ca-file (DREDGE_DRUID_CA_FILE), or skip the check with "
                              "--no-druid-tls-verify")
    with pytest.raises(DruidUnreachable, match="Connection refused"):
        api.request("GET", "/x")
