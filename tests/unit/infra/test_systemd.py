"""infra/systemd/dredge.service: `systemd-analyze verify` clean (with ExecStart pointed at this
venv's real `dredge`), an exposure score of at most 2 (`systemd-analyze security`), and the
settings the daemon's shutdown and state need."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from dredge.config import PipelineConfig
from tests.unit.infra.conftest import INFRA, tool

UNIT = INFRA / "systemd" / "dredge.service"


def unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart at this venv's dredge (verify checks the executable exists)."""
    text = UNIT.read_text().replace("/opt/dredge/bin/dredge", str(Path(sys.executable).with_name("dredge")))
    out = tmp_path / "dredge.service"
    out.write_text(text)
    return out


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    proc = subprocess.run([tool("systemd-analyze"), "verify", str(unit_here(tmp_path))],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stdout + proc.stderr


def test_exposure_is_low(tmp_path: Path) -> None:
    proc = subprocess.run([tool("systemd-analyze"), "security", "--offline=true", "--threshold=20",  # tenths: 2.0
                           str(unit_here(tmp_path))], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr


def test_shutdown_has_time_to_flush_and_state_is_the_services() -> None:
    s = service()
    pipeline = PipelineConfig()
    graceful = pipeline.shutdown_flush_attempts * pipeline.sink_retry_max_s
    assert float(s["TimeoutStopSec"]) > graceful + 60  # the final flush's retries, then the index save
    assert s["KillSignal"] == "SIGTERM" and s["KillMode"] == "mixed"
    assert s["User"] != "root" and s["NoNewPrivileges"] == "yes"
    assert s["StateDirectory"] == "dredge" and s["ProtectSystem"] == "strict"
    assert s["Restart"] == "on-failure" and s["RestartPreventExitStatus"] == "2"
    assert s["WorkingDirectory"] == "/var/lib/dredge"  # relative store paths land in the state
