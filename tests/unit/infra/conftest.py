"""Shared helpers of the infra tests: the repository's infra/ folder and tools found beside
the venv's Python or on PATH (a tool the tests need but cannot find skips locally, fails in CI)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from dredge.testing import service_unavailable

ROOT = Path(__file__).resolve().parents[3]
INFRA = ROOT / "infra"


def tool(name: str, *extra: Path) -> str:
    """Path of an executable: the venv's bin, then ``extra`` places, then PATH."""
    for candidate in (Path(sys.executable).with_name(name), *extra):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        service_unavailable(f"{name} not installed (.ci/run installs it)")
        raise AssertionError("unreachable")
    return found


@pytest.fixture(scope="session")
def infra() -> Path:
    return INFRA
