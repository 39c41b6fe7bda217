"""dredge.testing: the fake clock, the servers' shared lifecycle, the skip-or-fail rule."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from dredge.testing import FakeClock, KinesisLocal, LoopbackServer, running


def test_fake_clock_reads_sets_and_advances() -> None:
    clock = FakeClock()
    assert clock() == clock.now == 1000.0
    assert clock.advance(2.5) == 1002.5 and clock() == 1002.5
    clock.now = 5.0
    assert clock() == 5.0
    assert FakeClock(100)() == 100


class Sleeper(LoopbackServer):
    """A child that ignores SIGTERM: only SIGKILL stops it."""

    log_name = "sleeper.log"
    stop_grace_s = 0.5

    def start(self, timeout: float = 30.0) -> None:
        proc = self._spawn([sys.executable, "-c", "import signal, time; "
                            "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
                            "time.sleep(60)"])
        deadline = time.monotonic() + timeout
        while self._log_dir is not None and b"up" not in (self._log_dir / self.log_name).read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)


def test_stop_kills_what_sigterm_does_not_stop(tmp_path: Path) -> None:
    server = Sleeper(tmp_path)
    assert server.endpoint == f"http://127.0.0.1:{server.port}"
    with running(server):
        proc = server._proc
        assert proc is not None and proc.poll() is None
        t0 = time.monotonic()
    assert proc.returncode == -9  # SIGKILL, once the grace was over
    assert 0.4 < time.monotonic() - t0 < 5
    assert server._proc is None
    server.stop()  # again: nothing to do


class Broken(LoopbackServer):
    def start(self, timeout: float = 30.0) -> None:
        raise RuntimeError("no such server here")


def test_a_server_that_cannot_start_skips_locally_and_fails_in_ci(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no such server here"), running(Broken()):
        pass
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="in CI: no such server here"), running(Broken()):
        pass


def test_kinesis_local_without_its_package_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"infra/kinesis-local \(npm ci\)"):
        KinesisLocal(tmp_path, package=tmp_path / "missing").start()
