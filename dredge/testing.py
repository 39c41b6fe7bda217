"""Fixtures others can reuse: free ports, real servers on loopback, the CI rule for services,
a clock a test moves by hand.

A service a test needs must be real (moto in server mode, kinesis-local, Druid). When it
cannot be started the test is skipped on a developer's machine and fails when ``CI=true``.
Each server runs in its own process on a free loopback port and has the same shape:
``Server(log_dir)``, ``start()`` (raises RuntimeError when it cannot), ``stop()``, ``endpoint``;
a context manager (:func:`moto_server`, :func:`kinesis_local`) starts it or skips the test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

# kinesis-local as infra/kinesis-local installs it (npm ci; druid.sh deps does it too)
KINESIS_LOCAL_PACKAGE = (Path(__file__).resolve().parents[1] / "infra" / "kinesis-local"
                         / "node_modules" / "kinesis-local")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_unavailable(reason: str) -> None:
    """Skip the calling test locally; fail it in CI."""
    import pytest

    if in_ci():
        pytest.fail(f"service unavailable in CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # the server answered
        except OSError:
            time.sleep(0.2)
    return False


class FakeClock:
    """Time a test moves by hand, for components that take ``clock`` (a callable returning
    seconds, ``time.monotonic`` or ``time.time`` by default): read or set ``now``, or
    ``advance`` it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class LoopbackServer:
    """A server in its own process on a free loopback port; its output goes to
    ``log_dir/<log_name>`` when a folder is given."""

    log_name = "server.log"
    stop_grace_s = 10.0  # SIGTERM, then SIGKILL after this long

    def __init__(self, log_dir: Path | None = None) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_dir = log_dir

    def start(self, timeout: float = 30.0) -> None:
        raise NotImplementedError

    def _spawn(self, argv: list[str], cwd: Path | None = None,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        out = open(self._log_dir / self.log_name, "wb") if self._log_dir else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
        self._proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        return self._proc

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(self.stop_grace_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
            self._proc = None


Server = TypeVar("Server", bound=LoopbackServer)


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    """``server`` started (or the test skipped, failed in CI), stopped on exit."""
    try:
        server.start()
    except RuntimeError as exc:
        service_unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


class MotoServer(LoopbackServer):
    """moto in server mode."""

    log_name = "moto.log"

    def start(self, timeout: float = 30.0) -> None:
        # this interpreter's own moto first: another one on PATH (pyenv's) may be older, and
        # moto 5.2.1 answers pyarrow's CompleteMultipartUpload with an error (Iceberg on S3)
        exe = str(Path(sys.executable).with_name("moto_server"))
        if not Path(exe).exists():
            exe = shutil.which("moto_server") or exe
        if not Path(exe).exists():
            raise RuntimeError("moto_server not installed (pip install 'moto[server]')")
        self._spawn([exe, "-H", "127.0.0.1", "-p", str(self.port)])
        if not wait_http(self.endpoint + "/moto-api/", timeout):
            self.stop()
            raise RuntimeError(f"moto_server did not answer on {self.endpoint}")

    def reset(self) -> None:
        req = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=5).close()

    def env(self) -> dict[str, str]:
        """Environment for a child process (a `dredge run` worker) talking to this server."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }


def moto_server(log_dir: Path | None = None) -> contextlib.AbstractContextManager[MotoServer]:
    return running(MotoServer(log_dir))


class KinesisLocal(LoopbackServer):
    """kinesis-local (kinesis-mock, infra/kinesis-local) on node.

    Unlike moto it reshards as Kinesis does: a split or merged parent keeps its records and
    ends with a null NextShardIterator. Streams live in memory only.
    """

    log_name = "kinesis-local.log"
    # Its graceful shutdown can hang while a client holds a connection open, and there is
    # nothing to save.
    stop_grace_s = 1.0

    def __init__(self, log_dir: Path | None = None, package: Path = KINESIS_LOCAL_PACKAGE) -> None:
        super().__init__(log_dir)
        self._package = package

    def start(self, timeout: float = 60.0) -> None:
        node = shutil.which("node")
        if node is None or not (self._package / "main.js").exists():
            raise RuntimeError("kinesis-local needs node and infra/kinesis-local (npm ci)")
        proc = self._spawn([node, "main.js"], cwd=self._package, env={
            **os.environ, "KINESIS_MOCK_PLAIN_PORT": str(self.port),
            "KINESIS_MOCK_TLS_PORT": str(free_port()), "LOG_LEVEL": "WARN",
            "SPLIT_SHARD_DURATION": "100ms", "MERGE_SHARDS_DURATION": "100ms",
            "CREATE_STREAM_DURATION": "100ms"})
        import boto3  # lazy: every test session imports this module

        client = boto3.client("kinesis", region_name="us-east-1", endpoint_url=self.endpoint,
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            try:  # the port opens before the API answers
                client.list_streams()
                return
            except Exception:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"kinesis-local did not start on {self.endpoint}")


def kinesis_local(log_dir: Path | None = None) -> contextlib.AbstractContextManager[KinesisLocal]:
    return running(KinesisLocal(log_dir))
