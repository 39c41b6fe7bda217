"""The DuckDB store's tables and the ``flows`` view users query.

``flow_facts`` holds ids and metrics; ``owners`` each distinct owner tuple once; ``flows`` joins
them back into the rows of ``enrich.rollup.FLOWS_SCHEMA``; ``ingested`` records each replayed
file. The store's records about itself are :mod:`dredge.sinks.duckdb_meta`'s.
"""

from __future__ import annotations

from dredge.index.snapshot import OWNER_FIELDS

OWNERS_DDL = """
CREATE TABLE IF NOT EXISTS owners (
  id INTEGER PRIMARY KEY,
  key VARCHAR NOT NULL UNIQUE,
  app VARCHAR, cluster VARCHAR, account VARCHAR, region VARCHAR,
  az VARCHAR, vpc VARCHAR, subnet VARCHAR, type VARCHAR
)"""

FACTS_DDL = """
CREATE TABLE IF NOT EXISTS flow_facts (
  window_start TIMESTAMP NOT NULL,
  src_owner INTEGER NOT NULL, dst_owner INTEGER NOT NULL,
  protocol SMALLINT, action TINYINT, flow_direction TINYINT, traffic_path TINYINT,
  bytes BIGINT NOT NULL, packets BIGINT NOT NULL, flows BIGINT NOT NULL,
  port INTEGER
)"""


def _side(alias: str, prefix: str) -> str:
    return ", ".join(f"{alias}.{f} AS {prefix}_{f}" for f in OWNER_FIELDS)


# The table users query: the facts with their owners spelled out.
def flows_view(visible_below: int | None = None) -> str:
    """The ``flows`` view. ``visible_below``: the id of the oldest file being stored in parts
    (``open_files``): rows of it and of later files are left out until it is whole. The
    writer sets it as files open and close, so a query of a store where none is open (the
    usual case) has no filter at all: read from ``open_files`` in the view, it cost 7-24 %."""
    hide = "" if visible_below is None else (
        f"\nWHERE f.file_id IS NULL OR f.file_id < {int(visible_below)}")
    return f"""
CREATE OR REPLACE VIEW flows AS
SELECT f.window_start, {_side("s", "src")}, {_side("d", "dst")},
       f.protocol,
       CASE f.action WHEN 1 THEN 'ACCEPT' WHEN 2 THEN 'REJECT' END AS action,
       CASE f.flow_direction WHEN 1 THEN 'ingress' WHEN 2 THEN 'egress' END AS flow_direction,
       f.traffic_path, f.bytes, f.packets, f.flows, f.port
FROM flow_facts f JOIN owners s ON s.id = f.src_owner JOIN owners d ON d.id = f.dst_owner{hide}"""


INGESTED_DDL = """
CREATE TABLE IF NOT EXISTS ingested (
  hash VARCHAR PRIMARY KEY,
  path VARCHAR NOT NULL,
  size BIGINT NOT NULL,
  records BIGINT NOT NULL,
  nodata BIGINT NOT NULL,
  skipdata BIGINT NOT NULL,
  malformed BIGINT NOT NULL,
  truncated BOOLEAN NOT NULL,
  rows BIGINT NOT NULL,
  seconds DOUBLE NOT NULL,
  ingested_at TIMESTAMP NOT NULL
)"""
