"""``dredge druid spec | init | status | backfill | reconcile`` and the Druid options of
``replay``/``query``.

Connection options, each with an environment override (the option wins)::

    --druid-url          DREDGE_DRUID_URL           the Router (default http://127.0.0.1:8888)
    --druid-overlord-url DREDGE_DRUID_OVERLORD_URL  only when the Router does not proxy it
    --druid-user         DREDGE_DRUID_USER          basic auth
    --druid-password     DREDGE_DRUID_PASSWORD      (prefer the variable: options show in ps)
    --druid-ca-file      DREDGE_DRUID_CA_FILE       https: trust this CA bundle
    --[no-]druid-tls-verify  DREDGE_DRUID_TLS_VERIFY (1/0) https: check certificates
    --druid-datasource   DREDGE_DRUID_DATASOURCE    default dredge_flows
    --druid-staging      DREDGE_DRUID_STAGING       backfill: auto | inline | local:/dir | s3://bucket/prefix/

The supervisor's Kinesis side: ``--stream`` (DREDGE_DRUID_STREAM), ``--kinesis-endpoint``
(DREDGE_DRUID_KINESIS_ENDPOINT: what *Druid* uses to reach Kinesis) and ``--region``
(DREDGE_DRUID_REGION, else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1).

``--config FILE`` (the daemon's TOML) supplies what neither an option nor a variable sets:
the connection from ``[sink.druid]``, the stream, region and endpoint from
``[sink.kinesis_out]`` (the stream the daemon publishes to).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from dredge.commands.options import float_in, int_in, iso_period
from dredge.commands.stores import existing_store
from dredge.errors import ConfigError, DredgeError, SinkError, SinkUnavailable

if TYPE_CHECKING:  # the sinks load pyarrow: imported when a command runs (`dredge --help` stays quick)
    from dredge.replay import ReplaySummary
    from dredge.sinks.base import FileSink
    from dredge.sinks.druid import DruidAPI, DruidConfig, SupervisorConfig
    from dredge.sinks.duckdb import DuckDBSink
    from dredge.sinks.kinesis_out import KinesisOutConfig

ENV = "DREDGE_DRUID_"
_OPTIONS = {  # option dest -> DruidConfig field
    "druid_url": "url", "druid_overlord_url": "overlord_url", "druid_user": "user",
    "druid_password": "password", "druid_ca_file": "ca_file", "druid_datasource": "datasource",
    "druid_staging": "staging",
}


def add_druid_args(p: argparse.ArgumentParser, staging: bool = False) -> None:
    g = p.add_argument_group("Druid", "connection (environment: DREDGE_DRUID_URL, ..._USER, "
                             "..._PASSWORD, ..._CA_FILE, ..._TLS_VERIFY, ..._DATASOURCE)")
    g.add_argument("--config", dest="druid_config_file", metavar="FILE",
                   help="a dredge TOML file: Druid settings from its [sink.druid], the output "
                   "stream from [sink.kinesis_out], the Iceberg ledger from [sink.iceberg] "
                   "(reconcile, --backend iceberg); options and DREDGE_DRUID_* win over it "
                   "(default: none)")
    g.add_argument("--druid-url", help="Druid Router URL (default: http://127.0.0.1:8888)")
    g.add_argument("--druid-overlord-url", help="Overlord URL when the Router does not proxy "
                   "it (default: through the Router)")
    g.add_argument("--druid-user", help="basic auth user (default: none, no auth)")
    g.add_argument("--druid-password", help="basic auth password (prefer "
                   "DREDGE_DRUID_PASSWORD; default: none)")
    g.add_argument("--druid-ca-file", help="https: CA bundle (PEM) to trust (default: the "
                   "system's CAs)")
    g.add_argument("--druid-tls-verify", action=argparse.BooleanOptionalAction, default=None,
                   help="https: check the server certificate (default: yes)")
    g.add_argument("--druid-datasource", help="datasource (default: dredge_flows)")
    if staging:
        g.add_argument("--druid-staging", help="how backfill rows reach Druid: inline (in the "
                       "SQL; small hours), local:/dir (a folder the Druid indexers read at the same "
                       "path), s3://bucket/prefix/ (gzipped objects, deleted after the task; Druid "
                       "needs druid-s3-extensions; S3 endpoint and region from [sink.druid] "
                       "s3_endpoint_url/s3_region or AWS_ENDPOINT_URL/AWS_REGION), or auto (default: "
                       "local next to --db when Druid is on this machine, else inline)")


def _file_sections(args: argparse.Namespace, env: Mapping[str, str]
                   ) -> tuple[DruidConfig | None, KinesisOutConfig | None]:
    """[sink.druid] and [sink.kinesis_out] of ``--config`` (None, None without it)."""
    path = getattr(args, "druid_config_file", None)
    if not path:
        return None, None
    from dredge.config import load_config

    sink = load_config(path, env).sink
    return sink.druid, sink.kinesis_out


def druid_config(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> DruidConfig:
    """Options, then DREDGE_DRUID_* variables, then ``--config``'s [sink.druid], then the
    defaults."""
    from dredge.sinks.druid import DruidConfig

    environ = os.environ if env is None else env
    base, _ = _file_sections(args, environ)
    values: dict[str, Any] = dataclasses.asdict(base) if base is not None else {}
    for dest, name in _OPTIONS.items():
        value = getattr(args, dest, None)
        if value is None:
            value = environ.get(ENV + name.upper())
        if value is not None:
            values[name] = value
    verify = getattr(args, "druid_tls_verify", None)
    if verify is None and (ENV + "TLS_VERIFY") in environ:
        text = environ[ENV + "TLS_VERIFY"].strip().lower()
        if text not in ("1", "true", "yes", "0", "false", "no"):
            raise ConfigError("druid.tls_verify", f"{ENV}TLS_VERIFY must be 1 or 0, not {text!r}")
        verify = text in ("1", "true", "yes")
    if verify is not None:
        values["tls_verify"] = verify
    config = DruidConfig(**values)
    config.validate()
    return config


def _supervisor_config(args: argparse.Namespace) -> SupervisorConfig:
    """Options, then DREDGE_DRUID_* variables, then ``--config``'s [sink.kinesis_out] (the
    stream the daemon publishes to), then the defaults."""
    from dredge.aws import resolve_region
    from dredge.sinks.druid import SupervisorConfig

    _, out = _file_sections(args, os.environ)
    region = resolve_region(args.region or os.environ.get(ENV + "REGION")
                            or (out.region if out else ""))
    config = SupervisorConfig(
        stream=(args.stream or os.environ.get(ENV + "STREAM") or (out.stream if out else "")
                or SupervisorConfig.stream),
        endpoint=(args.kinesis_endpoint or os.environ.get(ENV + "KINESIS_ENDPOINT")
                  or (out.endpoint_url if out else "") or ""),
        region=region, task_count=args.task_count, replicas=args.replicas,
        task_duration=args.task_duration, late_message_rejection=args.late_rejection or "")
    config.validate()
    return config


def _print(obj: object) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")


def cmd_spec(args: argparse.Namespace) -> int:
    from dredge.sinks.druid import supervisor_spec

    _print(supervisor_spec(druid_config(args).datasource, _supervisor_config(args)))
    return 0


def _reachable(api: DruidAPI) -> None:
    from dredge.sinks.druid import DruidUnreachable

    try:
        api.check()
    except DruidUnreachable as exc:  # credentials and certificates say what is wrong already
        raise SinkUnavailable(f"{exc} (is Druid running? `make druid-up` starts the local one)"
                              ) from exc


def cmd_init(args: argparse.Namespace) -> int:
    from dredge.sinks.druid import DruidAPI, supervisor_spec

    if args.create_stream < 0:
        raise ConfigError("create_stream", "a number of shards >= 1")
    config = druid_config(args)
    sup = _supervisor_config(args)
    api = DruidAPI(config)
    _reachable(api)
    if args.create_stream:
        _ensure_stream(sup, args.create_stream)
    supervisor_id = api.submit_supervisor(supervisor_spec(config.datasource, sup))
    status = api.wait_supervisor_running(supervisor_id, args.timeout)
    print(f"supervisor {supervisor_id}: {status.get('detailedState') or status.get('state')} "
          f"(stream {sup.stream}, {status.get('partitions') or 0} shard(s) seen)")
    return 0


def _ensure_stream(sup: SupervisorConfig, shards: int) -> None:
    """Create the output stream with ``shards`` shards unless it exists; wait until ACTIVE."""
    from botocore.exceptions import BotoCoreError, ClientError

    from dredge.aws import error_code
    from dredge.sinks.kinesis_out import KinesisOutConfig, make_client

    client: Any = make_client(KinesisOutConfig(stream=sup.stream, region=sup.region,
                                               endpoint_url=sup.endpoint))
    try:
        try:
            client.describe_stream_summary(StreamName=sup.stream)
            print(f"stream       {sup.stream} exists")
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            client.create_stream(StreamName=sup.stream, ShardCount=shards)
            print(f"stream       {sup.stream} created ({shards} shard(s))")
        client.get_waiter("stream_exists").wait(
            StreamName=sup.stream, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    except (BotoCoreError, ClientError) as exc:
        raise SinkError(f"output stream {sup.stream}: {exc}") from exc


def cmd_status(args: argparse.Namespace) -> int:
    from dredge.sinks.druid import DruidAPI

    config = druid_config(args)
    api = DruidAPI(config)
    _reachable(api)
    out: dict[str, Any] = {"url": config.url, "datasource": config.datasource}
    sups = {s["id"]: s for s in api.supervisors()}
    sup = sups.get(config.datasource)
    if sup is not None:
        st = api.supervisor_status(config.datasource)
        out["supervisor"] = {"state": st.get("state"), "detailed_state": st.get("detailedState"),
                             "stream": st.get("stream"), "lag": st.get("aggregateLag"),
                             "active_tasks": len(st.get("activeTasks") or []),
                             "recent_errors": len(st.get("recentErrors") or [])}
    else:
        out["supervisor"] = None
    ds = config.datasource.replace("'", "''")
    # sys tables refuse MIN/MAX over text: a datasource has few segments, sum them here
    segs = api.sql('SELECT "start", "end", num_rows, is_realtime FROM sys.segments '
                   f"WHERE datasource = '{ds}' AND is_active = 1")
    out["segments"] = {
        "segments": len(segs), "rows": sum(int(g["num_rows"] or 0) for g in segs),
        "realtime": sum(int(g["is_realtime"] or 0) for g in segs),
        "first": min((g["start"] for g in segs), default=None),
        "last": max((g["end"] for g in segs), default=None)}
    if args.json:
        _print(out)
        return 0
    s = out["supervisor"]
    print(f"druid        {config.url} datasource {config.datasource}")
    print("supervisor   " + (f"{s['state']} ({s['detailed_state']}), stream {s['stream']}, "
                             f"lag {s['lag']}, {s['active_tasks']} task(s)" if s else "none"))
    g = out["segments"]
    print(f"segments     {g.get('segments') or 0} ({g.get('realtime') or 0} realtime), "
          f"{g.get('rows') or 0:,} rows, {g.get('first') or '-'} .. {g.get('last') or '-'}")
    return 0


def _push_line(summary: Any) -> str:
    return (f"{summary.hours} hour(s) pushed ({summary.rows:,} rows, {summary.statements} "
            f"REPLACE task(s), {summary.seconds:.1f} s)")


def cmd_backfill(args: argparse.Namespace) -> int:
    from dredge.query.spec import parse_time
    from dredge.sinks.druid_backfill import DruidBackfill
    from dredge.sinks.duckdb import DuckDBConfig, DuckDBSink

    existing_store(args.db)
    config = druid_config(args)
    with DuckDBSink(DuckDBConfig(path=args.db)) as store:
        backfill = DruidBackfill(store, config)
        try:
            marked = backfill.mark_stored(parse_time(args.start, "--from") if args.start else None,
                                          parse_time(args.end, "--to") if args.end else None)
            print(f"marked       {marked} hour(s) of {args.db} for {config.datasource}")
            summary = backfill.push()
        finally:
            backfill.close()
    print(f"druid        {_push_line(summary)}")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Closed hours of Druid rebuilt from the Iceberg ledger ([sink.iceberg] of --config)."""
    from dredge.commands.iceberg import open_ledger
    from dredge.query.spec import parse_duration, parse_time
    from dredge.sinks.druid_reconcile import DruidReconcile

    config = druid_config(args)
    grace = parse_duration(args.grace)
    every = parse_duration(args.every) if args.every else 0
    if args.every and every <= 0:
        raise ConfigError("every", "a duration > 0 (e.g. 10m)")
    reconcile = DruidReconcile(open_ledger(args.druid_config_file), config)
    _reachable(reconcile.api)
    start = parse_time(args.start) if args.start else None
    end = parse_time(args.end) if args.end else None
    if every:
        return _reconcile_every(reconcile, every, start, end, grace)
    summary = reconcile.run(start, end, grace_s=grace, dry_run=args.dry_run)
    out = summary.as_dict()
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
        return 0
    verb = "to rebuild" if args.dry_run else "rebuilt"
    print(f"ledger       snapshot {out['snapshot_id']}: {out['checked']} closed hour(s), "
          f"{out['unchanged']} unchanged since their reconcile")
    print(f"druid        {out['reconciled'] if not args.dry_run else out['pending']} hour(s) "
          f"{verb} in {config.datasource} ({out['rows']:,} rows, {out['statements']} REPLACE "
          f"task(s), {out['seconds']:.1f} s)")
    for hour in out["stray"]:
        print(f"stray        {hour}: Druid has rows the ledger has none of (left as they are)")
    return 0


def _reconcile_every(reconcile: Any, every: float, start: int | None, end: int | None,
                     grace: float) -> int:
    """Reconcile every ``every`` seconds until SIGTERM/SIGINT; a failed run is logged and the
    next one redoes it (exit 0 on a signal)."""
    import signal
    import threading

    from dredge.telemetry.logging import get_logger

    log = get_logger("dredge.druid")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    while not stop.is_set():
        try:
            reconcile.run(start, end, grace_s=grace)
        except DredgeError as exc:  # Druid or the table away: the next run redoes it
            log.error("druid_reconcile_failed", error=str(exc)[:500], retry_in_s=every)
        stop.wait(every)
    return 0


def replay_into_druid(args: argparse.Namespace, store: DuckDBSink,
                      run: Callable[[FileSink], ReplaySummary]
                      ) -> tuple[ReplaySummary, dict[str, Any]]:
    """``replay --sink druid``: replay into the store (the ledger), then push pending hours.

    A push that fails leaves its hours pending (the next run pushes them) and is reported in
    the returned dict (``error``), not raised: the files are stored either way."""
    from dredge.sinks.druid_backfill import DruidBackfill
    from dredge.telemetry.logging import get_logger

    config = druid_config(args)
    if args.window % 60:
        raise ConfigError("window", "--sink druid needs whole minutes (Druid keeps minutes)")
    backfill = DruidBackfill(store, config)
    try:
        summary = run(backfill)
        out: dict[str, Any] = {"datasource": config.datasource, "staging": backfill.staging}
        try:
            out.update(backfill.push().as_dict())
        except SinkError as exc:
            get_logger("dredge.druid").error("druid_push_failed", error=str(exc)[:500])
            out.update(error=str(exc), pending=len(backfill.pending()))
    finally:
        backfill.close()
    return summary, out


def druid_replay_lines(out: dict[str, Any]) -> list[str]:
    if out.get("error"):
        return [f"druid        FAILED, {out['pending']} hour(s) pending (run again): {out['error']}"]
    return [f"druid        {out['hours']} hour(s) pushed to {out['datasource']} ({out['rows']:,} "
            f"rows, {out['statements']} REPLACE task(s), {out['seconds']:.1f} s)"]


def add_druid_command(sub: Any) -> None:
    d = sub.add_parser("druid", help="Apache Druid: supervisor spec, init, status, backfill, "
                       "reconcile")
    dsub = d.add_subparsers(dest="druid_command", required=True)

    def kinesis_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--stream", help="Kinesis output stream (default: dredge-flows)")
        p.add_argument("--kinesis-endpoint", help="Kinesis endpoint Druid uses "
                       "(default: the region's AWS endpoint)")
        p.add_argument("--region", help="AWS region of the stream (default: us-east-1)")
        p.add_argument("--task-count", type=int_in(1, 1000), default=1,
                       help="reading tasks, <= shards (default: %(default)s)")
        p.add_argument("--replicas", type=int_in(1, 10), default=1,
                       help="copies of each reading task (default: %(default)s)")
        p.add_argument("--task-duration", type=iso_period, default="PT1H",
                       help="how long a reading task runs, ISO 8601 period (default: %(default)s)")
        p.add_argument("--late-rejection", type=iso_period,
                       help="drop rows older than this ISO 8601 period, e.g. P1D (default: keep all)")

    s = dsub.add_parser("spec", help="print the Kinesis supervisor spec (JSON)")
    kinesis_args(s)
    add_druid_args(s)
    s.set_defaults(func=cmd_spec)

    i = dsub.add_parser("init", help="submit the supervisor and wait until it runs")
    kinesis_args(i)
    add_druid_args(i)
    i.add_argument("--timeout", type=float_in(0, 86400), default=180.0,
                   help="seconds to wait for RUNNING (default: %(default)s)")
    i.add_argument("--create-stream", type=int, metavar="SHARDS", default=0,
                   help="create the output stream with this many shards if it does not exist "
                   "(at --kinesis-endpoint / [sink.kinesis_out] endpoint_url) (default: 0, no)")
    i.set_defaults(func=cmd_init)

    st = dsub.add_parser("status", help="the supervisor's state and the datasource's segments")
    add_druid_args(st)
    st.add_argument("--json", action="store_true", help="as JSON (default: text)")
    st.set_defaults(func=cmd_status)

    b = dsub.add_parser("backfill", help="rebuild hours in Druid from the DuckDB store (REPLACE)")
    b.add_argument("--db", default="dredge.duckdb", help="DuckDB store (default: %(default)s)")
    b.add_argument("--from", dest="start", help="first hour (default: all the store holds)")
    b.add_argument("--to", dest="end", help="end, exclusive (default: all the store holds)")
    add_druid_args(b, staging=True)
    b.set_defaults(func=cmd_backfill)

    r = dsub.add_parser("reconcile", help="rebuild closed hours from the Iceberg ledger "
                        "(REPLACE; hours unchanged since their last reconcile are skipped)")
    r.add_argument("--from", dest="start", help="first hour (default: all the table holds)")
    r.add_argument("--to", dest="end", help="end, exclusive (default: the last closed hour)")
    r.add_argument("--grace", default="1h", help="an hour is closed this long after it ends "
                   "(default 1h, the supervisor's taskDuration: its task has published the "
                   "hour; s m h d)")
    r.add_argument("--dry-run", action="store_true", help="say which hours would be rebuilt")
    r.add_argument("--every", help="keep running: reconcile this often (e.g. 10m) until "
                   "SIGTERM; a failed run is logged and redone by the next")
    r.add_argument("--json", action="store_true", help="the summary as one JSON object")
    add_druid_args(r, staging=True)
    r.set_defaults(func=cmd_reconcile)


