"""Stable UUIDs: uuid5 of a kind and a name, so the same bundle exported twice (or by two
machines) carries the same ids and a re-import updates Superset's objects in place."""

from __future__ import annotations

import uuid

# uuid5(NAMESPACE_URL, "https://dredge.invalid/superset"): fixed forever, changing it would
# make every re-import create new objects beside the old ones
NAMESPACE = uuid.UUID("7971043b-3653-56b9-a55b-e524ea1be9df")


def stable_uuid(kind: str, name: str) -> str:
    """The UUID of a Superset object of ``kind`` (database, dataset, chart, dashboard,
    filter) called ``name``."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))
