"""How the DuckDB store writes rolled-up rows: each distinct owner tuple once into the
``owners`` dictionary, the facts (metrics and the two owner ids) into ``flow_facts``."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dredge.arrays import arrow
from dredge.enrich.rollup import Rolled
from dredge.index.snapshot import OWNER_FIELDS
from dredge.sinks.base import Rows

# typed: a bare str would have pyarrow infer its type, which imports dateutil (3-7 ms)
_SEPARATOR = pa.scalar("\x1f", pa.string())


def owned(con: duckdb.DuckDBPyConnection, rows: Rows) -> pa.Table:
    """The facts of rolled-up rows, their owners replaced by ids of the ``owners``
    dictionary (each distinct owner tuple once, keyed by all eight fields); new owners are
    added in ``con``'s transaction. A ``flows``-schema table with strings is accepted too."""
    rolled = rows if isinstance(rows, Rolled) else Rolled.from_table(rows)
    if rolled.num_rows == 0:
        return rolled.facts
    owners = rolled.owners
    key = pc.binary_join_element_wise(
        *[owners.column(f).cast(pa.string()) for f in OWNER_FIELDS], _SEPARATOR,
        null_handling="replace", null_replacement="\x00")
    batch_owners = owners.append_column("key", key).append_column(
        "lid", arrow(np.arange(owners.num_rows, dtype=np.int32)))
    con.register("_dredge_owners", batch_owners)
    try:
        con.execute(f"""
            INSERT INTO owners
            SELECT (SELECT coalesce(max(id), -1) FROM owners) + row_number() OVER (ORDER BY b.lid),
                   b.key, {", ".join("b." + f for f in OWNER_FIELDS)}
            FROM _dredge_owners b ANTI JOIN owners o ON o.key = b.key""")
        mapping: pa.Table = con.sql(  # Arrow, not fetchnumpy: that imports numpy.ma (10 ms)
            "SELECT b.lid, o.id FROM _dredge_owners b JOIN owners o ON o.key = b.key"
        ).to_arrow_table()
    finally:
        con.unregister("_dredge_owners")
    ids = np.empty(owners.num_rows, np.int32)
    ids[mapping.column("lid").to_numpy()] = mapping.column("id").to_numpy()
    facts = rolled.facts
    facts = facts.set_column(1, "src_owner", arrow(ids[facts.column("src_owner").to_numpy()]))
    return facts.set_column(2, "dst_owner", arrow(ids[facts.column("dst_owner").to_numpy()]))


def append(con: duckdb.DuckDBPyConnection, facts: pa.Table, file_ids: np.ndarray | None) -> None:
    """Facts (owner ids) into ``flow_facts`` in ``con``'s transaction; ``file_ids``: each
    row's file (replay), else NULL (the stream's rows)."""
    if facts.num_rows == 0:
        return
    if file_ids is not None:
        facts = facts.append_column("file_id", arrow(np.asarray(file_ids, np.int32)))
    con.register("_dredge_facts", facts)
    try:
        con.execute("INSERT INTO flow_facts BY NAME SELECT * FROM _dredge_facts")
    finally:
        con.unregister("_dredge_facts")
