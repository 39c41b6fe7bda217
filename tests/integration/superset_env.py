"""The local Superset of infra/superset (make superset-up) as the Superset tests reach it:
where it is, its venv, and importing a bundle with Superset's own importers."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOME = REPO / "infra" / "superset"
SCRIPT = HOME / "superset.sh"
VENV = Path(os.environ.get("SUPERSET_VENV", HOME / ".venv"))
VAR = Path(os.environ.get("SUPERSET_VAR_DIR", HOME / "var"))
PORT = int(os.environ.get("SUPERSET_PORT", "18088"))
URL = f"http://127.0.0.1:{PORT}"
ADMIN = os.environ.get("SUPERSET_ADMIN_USER", "admin")
PASSWORD = os.environ.get("SUPERSET_ADMIN_PASSWORD", "dredge-local-admin")
ROUTER = f"http://127.0.0.1:{os.environ.get('DRUID_ROUTER_PORT', 18888)}"
ARTIFACTS = Path(os.environ.get("DREDGE_TEST_ARTIFACTS", REPO / "test-artifacts")) / "superset"


def venv_missing() -> str | None:
    if not (VENV / "bin" / "superset").exists():
        return f"no Superset venv at {VENV} (make superset-up)"
    if not (VAR / ".initialized").exists():
        return f"Superset metadata not initialized in {VAR} (make superset-up)"
    return None


def server_down() -> str | None:
    try:
        with urllib.request.urlopen(URL + "/health", timeout=5) as resp:
            if resp.read().strip() == b"OK":
                return None
    except OSError as exc:
        return f"Superset not answering at {URL}: {exc} (make superset-up)"
    return f"Superset at {URL} is not healthy (make superset-up)"


def superset_env(var_dir: Path) -> dict[str, str]:
    return {**os.environ, "SUPERSET_CONFIG_PATH": str(HOME / "superset_config.py"),
            "SUPERSET_VAR_DIR": str(var_dir), "FLASK_APP": "superset"}


def import_with_script(*export_options: str) -> None:
    """``superset.sh import``: export the bundle and import it with the assets importer."""
    env = {**os.environ, "DREDGE_DRUID_URL": ROUTER}
    out = subprocess.run([str(SCRIPT), "import", *export_options], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
