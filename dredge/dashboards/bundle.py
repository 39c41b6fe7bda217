"""The asset bundle: every file's text, and the ZIP Superset imports.

Layout (one top folder, as Superset exports it)::

    dredge_superset/metadata.yaml            version 1.0.0, type Dashboard (or assets)
    dredge_superset/databases/<name>.yaml
    dredge_superset/datasets/<database>/<table>.yaml
    dredge_superset/charts/<name>_<uuid8>.yaml
    dredge_superset/dashboards/<slug>.yaml

Two importers read it. ``type: Dashboard`` is for Superset's dashboard import (``superset
import-dashboards``, *Import dashboards* in the UI): it creates what is missing but keeps
databases, datasets and charts that already exist (matched by UUID) and replaces only the
dashboards. ``type: assets`` (``--assets``) is for ``POST /api/v1/assets/import/`` (and
infra/superset/import_bundle.py), which overwrites every object: a re-import updates all of
them in place.

The ZIP is byte-for-byte the same for the same settings (fixed timestamps, sorted names), so
a re-export shows no change.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dredge.dashboards import layout
from dredge.dashboards.datasets import (
    DRUID_DATABASE,
    DUCKDB_DATABASE,
    Datasets,
    dataset_document,
    druid_database,
    druid_datasets,
    duckdb_database,
    duckdb_dataset,
)
from dredge.dashboards.yamltext import dumps
from dredge.sinks.druid import DruidConfig

ROOT = "dredge_superset"
PASSWORD_MASK = "XXXXXXXXXX"  # Superset's own: its importer asks for the real password
_EPOCH = (2026, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class BundleOptions:
    druid: DruidConfig
    duckdb_path: str = ""  # add the embedded store as a read-only DuckDB database
    ask_password: bool = False  # a user's password as Superset's mask: its UI asks for it
    assets: bool = False  # type "assets": Superset's assets importer, which overwrites all


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def build(options: BundleOptions) -> dict[str, str]:
    """Path inside the ZIP -> YAML text, for every file of the bundle."""
    ds: Datasets = druid_datasets(options.druid.datasource)
    files: dict[str, dict[str, Any]] = {
        "metadata.yaml": {"version": "1.0.0",
                          "type": "assets" if options.assets else "Dashboard",
                          "timestamp": "2026-01-01T00:00:00+00:00"},
    }
    druid_db = druid_database(options.druid)
    if options.ask_password and options.druid.user:
        druid_db["sqlalchemy_uri"] = druid_db["sqlalchemy_uri"].replace(
            "@", f":{PASSWORD_MASK}@", 1)
    files[f"databases/{_slug(DRUID_DATABASE)}.yaml"] = druid_db
    datasets = ds.all()
    if options.duckdb_path:
        files[f"databases/{_slug(DUCKDB_DATABASE)}.yaml"] = duckdb_database(options.duckdb_path)
        datasets.append(duckdb_dataset())
    for dataset in datasets:
        files[f"datasets/{_slug(dataset.database)}/{dataset.name}.yaml"] = \
            dataset_document(dataset)
    for board in layout.dashboards(ds):
        for chart in board.charts:
            files[f"charts/{_slug(chart.name)}_{chart.uuid[:8]}.yaml"] = chart.document()
        files[f"dashboards/{board.slug}.yaml"] = layout.dashboard_document(board, ds)
    return {f"{ROOT}/{path}": dumps(doc) for path, doc in files.items()}


def write(options: BundleOptions, out: Path) -> dict[str, str]:
    """Write the bundle ZIP to ``out`` (atomically: a temporary file renamed); return the
    files it holds."""
    files = build(options)
    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[path])
    tmp.replace(out)
    return files
