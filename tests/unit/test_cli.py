"""The command line: parse output, clear errors without tracebacks, query output."""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from pathlib import Path

import pytest

from dredge.cli import main

ACCEPT = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"


def run_with_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes, argv: list[str]) -> int:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    return main(argv)


def test_parse_stdin_json_lines(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    rc = run_with_stdin(monkeypatch, (ACCEPT + "\nbroken line\n").encode(), ["parse"])
    out, err = capsysbinary.readouterr()
    assert rc == 1  # one malformed line
    rows = [json.loads(x) for x in out.splitlines()]
    assert rows == [{
        "version": 2, "account_id": "123456789010", "interface_id": "eni-1235b8ca123456789",
        "srcaddr": "172.31.16.139", "dstaddr": "172.31.16.21", "srcport": 20641, "dstport": 22,
        "protocol": 6, "packets": 20, "bytes": 4249, "start": 1418530010, "end": 1418530070,
        "action": "ACCEPT", "log_status": "OK"}]
    assert b"malformed: <stdin>:2: bad_integer (version): broken line" in err


def test_parse_custom_format_and_gzip_file_with_header(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    p = tmp_path / "x.log.gz"
    p.write_bytes(gzip.compress(b"version srcaddr dstaddr pkt-srcaddr tcp-flags\n3 10.0.0.1 10.0.0.2 - 19\n"))
    assert main(["parse", str(p)]) == 0
    out, _ = capsysbinary.readouterr()
    assert json.loads(out) == {"version": 3, "srcaddr": "10.0.0.1", "dstaddr": "10.0.0.2", "pkt_srcaddr": None,
                               "tcp_flags": 19}


def test_bad_format_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rc = run_with_stdin(monkeypatch, b"", ["parse", "--format", "version bogus"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("dredge: error:") and "bogus" in err and "Traceback" not in err


def test_replay_missing_path_and_query_missing_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "nope"), "--db", str(tmp_path / "d.duckdb"), "--no-progress"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["query", "top", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "run `dredge replay` first" in capsys.readouterr().err


def test_replay_then_query(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text(
        "version srcaddr dstaddr start bytes packets action\n"
        "2 10.0.0.1 10.0.0.2 1795600800 100 1 ACCEPT\n2 10.0.0.1 8.8.8.8 1795600810 50 1 REJECT\n")
    (tmp_path / "o.jsonl").write_text('{"ip": "10.0.0.1", "start": 0, "app": "api", "az": "use1-az1"}\n'
                                      '{"ip": "10.0.0.2", "start": 0, "app": "db", "az": "use1-az2"}\n')
    db = tmp_path / "d.duckdb"
    assert main(["replay", str(logs), "--index", str(tmp_path / "o.jsonl"), "--db", str(db), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["query", "top", "--db", str(db), "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rows == [{"src_app": "api", "dst_app": "db", "bytes": 100, "packets": 1, "flows": 1},
                    {"src_app": "api", "dst_app": "internet", "bytes": 50, "packets": 1, "flows": 1}]
    assert main(["query", "cross-az", "--db", str(db), "--json"]) == 0
    cross = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(cross) == 1 and cross[0]["crossing"] == "cross-az" and cross[0]["cost_usd"] == pytest.approx(1e-9)
    assert main(["query", "top", "--db", str(db), "--where", "action=REJECT", "--by", "dst_app"]) == 0
    text = capsys.readouterr().out
    assert "internet" in text and "db" not in text.split("\n", 2)[2]


def test_help_imports_nothing_heavy() -> None:
    """``dredge --help`` builds every command's parser: none may load numpy, Arrow,
    DuckDB, boto3, pydruid or Prometheus at import time (they cost most of a second)."""
    import subprocess

    heavy = ("numpy", "pyarrow", "duckdb", "boto3", "pydruid", "prometheus_client")
    code = ("import sys, dredge.cli; dredge.cli.build_parser(); "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(("argv", "verb"), [
    (["replay", "x.gz"], "replay"),
    (["--log-level", "info", "query", "top"], "query"),
    (["--log-level=info", "serve"], "serve"),
    (["--log-level", "replay", "run"], "run"),  # the option's value is not the verb
    (["--help"], None), (["replai", "x"], None), ([], None),
])
def test_the_verb_of_a_command_line(argv: list[str], verb: str | None) -> None:
    from dredge.cli import _verb

    assert _verb(argv) == verb


def test_a_replay_loads_no_other_command(tmp_path: Path) -> None:
    """A command line naming its verb builds that verb's parser only: a text replay imports
    neither the other commands (the query client, the servers, Druid's and Superset's) nor
    Parquet nor ``prometheus_client`` (it counts, never serves) nor ``numpy.ma`` nor
    ``dateutil``; numpy's OpenBLAS is kept to one thread (it never multiplies matrices) and
    Arrow allocates with jemalloc."""
    import subprocess

    logs = tmp_path / "a.log.gz"
    logs.write_bytes(gzip.compress(f"{ACCEPT}\n".encode()))
    code = ("import json, os, sys, dredge.cli; rc = dredge.cli.main(sys.argv[1:]); "
            "print(json.dumps([rc, sorted(m for m in sys.modules if m.startswith(("
            "'dredge.commands.', 'dredge.serve', 'pyarrow.parquet', 'boto3', "
            "'prometheus_client', 'numpy.ma.', 'dateutil'))), "
            "os.environ['OPENBLAS_NUM_THREADS'], "
            "__import__('pyarrow').default_memory_pool().backend_name]))")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "ARROW_DEFAULT_MEMORY_POOL")}
    out = subprocess.run([sys.executable, "-c", code, "replay", str(logs), "--db",
                          str(tmp_path / "d.duckdb"), "--no-progress"],
                         capture_output=True, text=True, check=True, env=env)
    rc, loaded, threads, pool = json.loads(out.stdout.strip().splitlines()[-1])
    assert rc == 0, out.stderr
    assert threads == "1"
    assert pool == "jemalloc"  # it returns freed memory that mimalloc (pyarrow's default) kept
    assert loaded == ["dredge.commands.druid", "dredge.commands.index", "dredge.commands.options",
                      "dredge.commands.replay", "dredge.commands.stores"]


@pytest.mark.parametrize("other_thread", [False, True])
def test_the_program_exits_with_main_s_status_after_the_atexit_handlers(other_thread: bool) -> None:
    """``entry`` skips the interpreter's teardown, not its promises: the atexit handlers run,
    what was printed is flushed into a pipe, the status is main's; while another thread runs,
    the exit is Python's own (that thread is waited for)."""
    import subprocess

    code = ("import atexit, sys, threading, time\n"
            "from dredge.cli import entry\n"
            "atexit.register(lambda: print('handler ran'))\n"
            "if sys.argv[1] == 'thread':\n"
            "    threading.Thread(target=lambda: (time.sleep(0.2), print('thread done'))).start()\n"
            "print('x' * 100_000)\n"  # more than a pipe's buffer: must be flushed at exit
            "sys.argv[1:] = ['replay', '/no/such/logs']\n"
            "entry()\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as usual
    out = subprocess.run([sys.executable, "-c", code, "thread" if other_thread else "-"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2  # main's status for a path that does not exist
    assert "no such file or folder: /no/such/logs" in out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "x" * 100_000 and lines[-1] == "handler ran"
    assert ("thread done" in lines) is other_thread
