"""Shared helpers of the hostile-input suite: run ``dredge`` on bad input and check the promise.

The promise (README): bad input never ends in a traceback; what is refused is said in one
``dredge: error:`` line with exit status 2 (usage, configuration, an input that cannot be
used) or 1 (a runtime failure); what is dropped is dead-lettered (capped in size) and the
rest is kept. Two ways to run a command:

- :func:`cli`: in this process through :func:`dredge.cli.main` (fast: no interpreter start,
  the compiled kernels loaded once), stdout/stderr/stdin replaced; an exception escaping
  ``main`` is recorded as a traceback in ``err``, so the checks see it as the user would.
- :func:`sub`: a subprocess under an address-space limit (``RLIMIT_AS``), where memory or
  the real exit status matters.

:func:`refused` and :func:`accepted` assert the outcome; the suite's cases use nothing else.
"""

from __future__ import annotations

import io
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

BUG = re.compile(r"unexpected [A-Z]\w*:")  # cli.py's catch-all line for an unforeseen exception
MEMORY_LIMIT = 3 << 30  # address space of a subprocess: far below what a bomb would take
REPO = Path(__file__).resolve().parents[2]

# One flow-log record of the default (v2) format, and a header naming the same fields.
HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
          "bytes start end action log-status")
RECORD = ("2 123456789012 eni-0a1b2c3d 10.0.0.1 10.0.0.2 443 50000 6 10 840 "
          "1795600800 1795600860 ACCEPT OK")


@dataclass
class Result:
    rc: int
    out: bytes
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("dredge: error:")]

    def __str__(self) -> str:
        return f"rc={self.rc}\n--- stderr ---\n{self.err[-3000:]}\n--- stdout ---\n{self.out[:500]!r}"


def cli(*argv: str | Path, stdin: bytes = b"", env: Mapping[str, str] | None = None,
        deadline: float = 60.0) -> Result:
    """``dredge ARGV`` in this process. A command still running after ``deadline`` seconds
    (``serve`` or ``run`` that accepted what it should have refused) gets a SIGTERM, as a
    user's Ctrl-C; the signal handlers it installed are put back afterwards."""
    from dredge.cli import main

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    timer = threading.Timer(deadline, os.kill, (os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()

    out, err = io.BytesIO(), io.BytesIO()
    streams = (sys.stdin, sys.stdout, sys.stderr)
    wrappers = (io.TextIOWrapper(io.BytesIO(stdin)), io.TextIOWrapper(out, write_through=True),
                io.TextIOWrapper(err, write_through=True))  # kept: closing one closes its buffer
    sys.stdin, sys.stdout, sys.stderr = wrappers
    try:
        with mock.patch.dict(os.environ, env or {}):
            try:
                rc = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse: --help, usage errors
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # what the user would see: a traceback
                sys.stderr.write(traceback.format_exc())
                rc = -1
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        sys.stdin, sys.stdout, sys.stderr = streams
        timer.cancel()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    result = Result(rc, out.getvalue(), err.getvalue().decode("utf-8", "replace"))
    del wrappers
    return result


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def sub(*argv: str | Path, stdin: bytes = b"", env: Mapping[str, str] | None = None,
        timeout: float = 120.0, cwd: Path | None = None) -> Result:
    """``dredge ARGV`` as a subprocess under :data:`MEMORY_LIMIT` of address space."""
    full_env = {**os.environ, **(env or {})}
    p = subprocess.run([sys.executable, "-m", "dredge.cli", *map(str, argv)], input=stdin,
                       capture_output=True, env=full_env, timeout=timeout, cwd=cwd or REPO,
                       preexec_fn=_limited)
    return Result(p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"))


def refused(r: Result, rc: int, *says: str) -> Result:
    """Exit status ``rc`` (2 usage/config/input, 1 runtime), no traceback, exactly one
    ``dredge: error:`` line and it says each of ``says`` (case-insensitive)."""
    assert "Traceback" not in r.err, str(r)
    assert r.rc == rc, str(r)
    assert len(r.error_lines) == 1, str(r)
    line = r.error_lines[0].lower()
    for s in says:
        assert s.lower() in line, str(r)
    assert not BUG.search(line), str(r)  # the catch-all of a bug, not a clear message
    return r


def accepted(r: Result, rc: int = 0) -> Result:
    """Exit status ``rc`` (0, or 1 where dropped records make it so), no traceback, no
    ``dredge: error:`` line."""
    assert "Traceback" not in r.err, str(r)
    assert r.rc == rc, str(r)
    assert not r.error_lines, str(r)
    return r


def no_traceback(r: Result) -> Result:
    """For generated input whose outcome varies: a status of 0, 1 or 2 and no traceback;
    a non-zero status is either dropped records or one clear error line."""
    assert "Traceback" not in r.err, str(r)
    assert r.rc in (0, 1, 2), str(r)
    assert len(r.error_lines) <= 1, str(r)
    if r.error_lines:
        assert not BUG.search(r.error_lines[0]), str(r)
    return r


@pytest.fixture(scope="session", autouse=True)
def _scratch_cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commands run in a scratch folder: a default path (``dredge.duckdb``, the dead-letter
    file) never lands in the checkout."""
    saved = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(saved)


@pytest.fixture
def flowlog(tmp_path: Path) -> Path:
    """A small well-formed flow-log file (header + 3 records)."""
    p = tmp_path / "ok.log"
    p.write_text(f"{HEADER}\n{RECORD}\n{RECORD}\n{RECORD}\n")
    return p


@pytest.fixture
def owners(tmp_path: Path) -> Path:
    p = tmp_path / "owners.jsonl"
    p.write_text('{"ip": "10.0.0.1", "start": 0, "app": "api"}\n'
                 '{"ip": "10.0.0.2", "start": 0, "app": "db"}\n')
    return p


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small replayed Dredge store (3 flows api -> db), for the query and serve cases."""
    d = tmp_path_factory.mktemp("store")
    (d / "ok.log").write_text(f"{HEADER}\n{RECORD}\n{RECORD}\n{RECORD}\n")
    (d / "owners.jsonl").write_text('{"ip": "10.0.0.1", "start": 0, "app": "api"}\n'
                                    '{"ip": "10.0.0.2", "start": 0, "app": "db"}\n')
    db = d / "s.duckdb"
    accepted(cli("replay", d / "ok.log", "--index", d / "owners.jsonl", "--db", db,
                 "--no-progress"))
    return db
