"""Fixtures shared by unit tests: one small generated sample per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from dredge.generate import generate


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dredge generate`` output (one hour, 4000 flows, 2% malformed lines, a truncated and
    an empty file, Parquet too); read-only: copy what a test changes."""
    out = tmp_path_factory.mktemp("small-sample")
    generate(out, flows=4000, seed=5, hours=1, malformed_share=0.02)
    return out


def manifest(sample: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((sample / "manifest.json").read_bytes())
    return data
