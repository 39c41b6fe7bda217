"""``[sink.iceberg]``: where the Iceberg ledger table is and how often the daemon commits to it.

``catalog`` is passed as is to ``pyiceberg.catalog.load_catalog(catalog_name, **catalog)``:
any catalog pyiceberg knows (``type = "sql"`` with ``uri = "sqlite:///..."`` or PostgreSQL,
``"glue"`` with ``glue.endpoint``/``glue.region``, ``"rest"`` with ``uri``, ...), and its
FileIO settings (``warehouse = "s3://bucket/wh"`` or a local path, ``s3.endpoint``,
``s3.region``, ...). Nested TOML tables are flattened with dots (``s3.endpoint = "..."`` is the
property ``s3.endpoint``); environment: ``DREDGE_SINK__ICEBERG__CATALOG__S3__ENDPOINT``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from dredge.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# catalog types pyiceberg 0.12 loads by name (a custom one: py-catalog-impl)
CATALOG_TYPES = ("sql", "glue", "dynamodb", "rest", "hive", "bigquery", "in-memory")


@dataclass(frozen=True)
class IcebergConfig:
    """The ledger table (``[sink.iceberg]``; off unless present)."""

    catalog: dict[str, str] = field(default_factory=dict)  # pyiceberg catalog properties
    catalog_name: str = "dredge"  # the catalog's name (the SQL catalog keeps it in its rows)
    namespace: str = "dredge"
    table: str = "flows"
    commit_interval_s: float = 60.0  # the daemon commits this often (and at a graceful stop)
    # Rows waiting for a commit at most; past it (the table unreachable) the daemon takes no
    # new batches until a commit succeeds (back-pressure: readers wait, memory stays bounded).
    max_buffered_rows: int = 2_000_000
    # The daemon rebuilds every closed hour of Druid ([sink.druid]) from this table this often,
    # as `dredge druid reconcile` does (0: off; then run the command by cron or `--every`).
    reconcile_every_s: float = 0.0
    # An hour is closed this long after it ends (the live stream's task holds it until then).
    reconcile_grace_s: float = 3600.0

    def validate(self) -> None:
        kind = self.catalog.get("type", "")
        if not kind and "py-catalog-impl" not in self.catalog and "uri" not in self.catalog:
            raise ConfigError("catalog", "set type (sql, glue, rest, ...) and its properties")
        if kind and kind not in CATALOG_TYPES:
            raise ConfigError("catalog.type", f"one of {list(CATALOG_TYPES)}")
        if kind == "sql" and not self.catalog.get("uri"):
            raise ConfigError("catalog.uri", "the SQL catalog needs uri (sqlite:///path.db, postgresql+psycopg2://...)")
        if kind in ("sql", "dynamodb", "in-memory") and not self.catalog.get("warehouse"):
            raise ConfigError("catalog.warehouse", "where the table's files go (s3://bucket/path or a folder)")
        for key in ("catalog_name", "namespace", "table"):
            if not _NAME.match(getattr(self, key)):
                raise ConfigError(key, "letters, digits and _ (not starting with a digit)")
        if not (math.isfinite(self.commit_interval_s) and self.commit_interval_s > 0):
            raise ConfigError("commit_interval_s", "must be a finite number > 0")
        for key in ("reconcile_every_s", "reconcile_grace_s"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(key, "must be a finite number >= 0")
        if self.max_buffered_rows < 1:
            raise ConfigError("max_buffered_rows", "must be >= 1")

    @property
    def identifier(self) -> tuple[str, str]:
        return (self.namespace, self.table)

    def describe(self) -> str:
        """For logs: the table and its catalog, no secrets."""
        where = self.catalog.get("warehouse", "")  # the uri may hold a password
        return f"{self.namespace}.{self.table} ({self.catalog.get('type', 'custom')} catalog {where})"
