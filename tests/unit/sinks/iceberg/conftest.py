"""A SQL catalog (SQLite) with a local warehouse in tmp_path: a real pyiceberg catalog, no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from dredge.sinks.iceberg.config import IcebergConfig


@pytest.fixture
def iceberg_config(tmp_path: Path) -> IcebergConfig:
    wh = tmp_path / "warehouse"
    wh.mkdir()
    return IcebergConfig(catalog={"type": "sql", "uri": f"sqlite:///{tmp_path / 'catalog.db'}",
                                  "warehouse": f"file://{wh}"}, commit_interval_s=1.0)
