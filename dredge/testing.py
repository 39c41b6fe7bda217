"""Fixtures others can reuse: free ports, real servers on loopback, the CI rule for services.

A service a test needs must be real (moto in server mode, kinesis-local, Druid). When it
cannot be started the test is skipped on a developer's machine and fails when ``CI=true``.
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


class MotoServer:
    """moto in server mode, in its own process, on a free loopback port."""

    def __init__(self, log_dir: Path | None = None) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_dir = log_dir

    def start(self, timeout: float = 30.0) -> None:
        exe = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
        if not Path(exe).exists():
            raise RuntimeError("moto_server not installed (pip install 'moto[server]')")
        out = open(self._log_dir / "moto.log", "wb") if self._log_dir else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
        self._proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(self.port)], stdout=out, stderr=subprocess.STDOUT
        )
        if not wait_http(self.endpoint + "/moto-api/", timeout):
            self.stop()
            raise RuntimeError(f"moto_server did not answer on {self.endpoint}")

    def reset(self) -> None:
        req = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=5).close()

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None

    def env(self) -> dict[str, str]:
        """Environment for a child process (a `dredge run` worker) talking to this server."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }


@contextlib.contextmanager
def moto_server(log_dir: Path | None = None) -> Iterator[MotoServer]:
    server = MotoServer(log_dir)
    try:
        server.start()
    except RuntimeError as exc:
        service_unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()
