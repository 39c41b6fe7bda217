"""Every ``dredge`` command in the README's shell code blocks, run as written, in README order,
in a temporary directory: the by-hand steps first set up the demo (``demo/``, its store), so
each later example meets the files it names.

Commands run through ``bash`` with the venv's ``dredge`` first on PATH (pipes and comments as a
reader pastes them). Each must exit 0 without a traceback and print something; a query must
find rows. Two kinds are adapted, not skipped: ``dredge serve`` gets ``--port 0`` (a free port:
other tests may hold 9108), runs until it answers ``/healthz``, and then ``--server
http://127.0.0.1:9108`` points at it. Skipped, each for the reason in ``SKIP``: the commands
that need AWS or Druid.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEFAULT_SERVER = "http://127.0.0.1:9108"

# (text in the command, why it is not run here)
SKIP: list[tuple[str, str]] = [
    ("dredge run --config", "the streaming daemon: Kinesis streams and DynamoDB leases (AWS)"),
    ("--state /var/lib/dredge/index.arrow", "the daemon's saved live index (EC2, Kinesis: AWS)"),
    ("--backend druid", "needs Druid"),
    ("--sink druid", "needs Druid"),
    ("dredge dashboards export", "the Druid dashboards, configured by a dredge.toml's [sink.druid]"),
    ("dredge druid reconcile", "needs Druid and a dredge.toml's [sink.iceberg] ledger"
     " (tests/integration/test_iceberg_reconcile.py runs it)"),
]
SHELL_FENCES = ("```sh", "```")  # toml, json, ... blocks hold no commands
COMMAND = re.compile(r"(^|\|)\s*dredge\s")


@dataclass(frozen=True)
class Example:
    line: int  # where it starts in README.md
    text: str  # continuation lines joined

    def skip_reason(self) -> str | None:
        return next((why for what, why in SKIP if what in self.text), None)


def examples(text: str) -> list[Example]:
    """The ``dredge`` commands of the README's shell code blocks, in order."""
    out: list[Example] = []
    fence: str | None = None
    pending: tuple[int, str] | None = None
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if line.startswith("```"):
            fence = None if fence is not None else line
            continue
        if fence not in SHELL_FENCES:
            continue
        start, sofar = pending if pending else (no, "")
        joined = sofar + (" " if sofar else "") + line.strip()
        if joined.endswith("\\"):
            pending = (start, joined[:-1].rstrip())
            continue
        pending = None
        code = joined.split(" #", 1)[0] if not joined.startswith("#") else ""
        if COMMAND.search(code):
            out.append(Example(start, joined))
    return out


def shell(cmd: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


class Server:
    """``dredge serve`` from the README, on a free port, until the test ends."""

    def __init__(self, cmd: str, cwd: Path, env: dict[str, str]) -> None:
        argv = [*shlex.split(cmd, comments=True), "--port", "0"]
        self.log = cwd / "serve.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            m = re.search(rb"(http://127\.0\.0\.1:\d+)/", self.log.read_bytes())
            if m:
                self.url = m.group(1).decode()
                with urllib.request.urlopen(self.url + "/healthz", timeout=30) as resp:
                    assert resp.status == 200
                return
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"{cmd!r} did not start: {self.log.read_text()}")

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=60)


def test_the_examples_are_found() -> None:
    found = examples(README.read_text(encoding="utf-8"))
    texts = [e.text for e in found]
    assert len(found) >= 15 and texts[0].startswith("dredge generate demo/")
    assert any("| dredge parse" in t for t in texts)  # piped commands count
    for what, _ in SKIP:  # every skip names a command that is there
        assert any(what in t for t in texts), what


def check(example: Example, proc: subprocess.CompletedProcess[str]) -> None:
    where = f"README.md:{example.line}: {example.text}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, where
    assert proc.returncode == 0, where
    assert proc.stdout.strip(), where
    assert "dredge: error" not in proc.stderr, where
    if " query " in example.text:
        assert "(no rows)" not in proc.stdout, where  # an example that finds nothing misleads
    if " index lookup " in example.text:
        # the comment says who owned it then and who next, from when: the answer must agree
        m = re.fullmatch(r"\s*([a-z-]+) then \(([a-z-]+) from (\d\d:\d\d)\)\s*",
                         example.text.split("#", 1)[1])
        assert m, where
        got = orjson.loads(proc.stdout)
        assert got["owner"]["app"] == m[1], where
        starts = {(h["app"], time.strftime("%H:%M", time.gmtime(h["start"]))) for h in got["history"]}
        assert (m[2], m[3]) in starts, where


def test_every_readme_command_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DREDGE_LOG_LEVEL": "warning"}
    env.pop("DREDGE_DRUID_URL", None)
    servers: list[Server] = []
    ran: list[int] = []
    skipped: dict[int, str] = {}
    try:
        for example in examples(README.read_text(encoding="utf-8")):
            why = example.skip_reason()
            if why:
                skipped[example.line] = why
                continue
            if example.text.startswith("dredge serve "):
                servers.append(Server(example.text, tmp_path, env))
                ran.append(example.line)
                continue
            cmd = example.text
            if DEFAULT_SERVER in cmd:
                assert servers, f"README.md:{example.line}: no server started before it"
                cmd = cmd.replace(DEFAULT_SERVER, servers[-1].url)
            check(example, shell(cmd, tmp_path, env))
            ran.append(example.line)
    finally:
        codes = [s.stop() for s in servers]
    assert codes and all(c == 0 for c in codes)
    assert len(ran) >= 12 and len(skipped) <= 10, (ran, skipped)  # two run, one --state, two reconcile, ...
    print(f"ran {len(ran)} README commands; skipped {sorted(skipped.items())}")
