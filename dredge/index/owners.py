"""Owners and their encoding: what every part of the index shares about *who* owns an address.

An owner is a tuple of :data:`OWNER_FIELDS` (app, cluster, account, region, az, vpc,
subnet, type), any of them null. A snapshot's owners are the rows of an Arrow table and an
owner id is a row number; ids 0 and 1 are always ``unknown`` (private space nobody owns) and
``internet`` (public space nobody owns).

- :func:`owner_columns` / :func:`encode_owners`: owner columns of Arrow tables -> distinct
  owners and ids, vectorized (static builds, the rollup);
- :class:`OwnerCatalog`: owners interned one by one to ids stable for the catalog's life
  (the live index).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dredge.arrays import arrow

OWNER_FIELDS = ("app", "cluster", "account", "region", "az", "vpc", "subnet", "type")
UNKNOWN, INTERNET = 0, 1
Owner = tuple[str | None, ...]  # values of OWNER_FIELDS, in order
SPECIAL_OWNERS: tuple[Owner, Owner] = (
    ("unknown", None, None, None, None, None, None, "unknown"),
    ("internet", None, None, None, None, None, None, "internet"),
)


def owner_of(record: Mapping[str, Any]) -> Owner:
    """The owner tuple of a record (a JSON object): its owner fields as text, else null."""
    return tuple(None if record.get(f) is None else str(record[f]) for f in OWNER_FIELDS)


def owners_table(rows: Sequence[Owner]) -> pa.Table:
    """Owner tuples as an Arrow table of the owner fields (strings)."""
    return pa.table({f: pa.array([r[i] for r in rows], pa.string())
                     for i, f in enumerate(OWNER_FIELDS)})


def owner_columns(table: pa.Table, keep: Sequence[str] = ()) -> pa.Table:
    """The ``keep`` columns of a table, then its owner fields as strings (missing: null)."""
    cols = {k: table.column(k).cast(pa.string()) for k in keep}
    for f in OWNER_FIELDS:
        if f in table.column_names:
            col = table.column(f)
            cols[f] = col.cast(pa.string()) if col.type != pa.string() else col
        else:
            cols[f] = pa.nulls(table.num_rows, pa.string())
    return pa.table(cols)


def encode_owners(*tables: pa.Table) -> tuple[pa.Table, list[np.ndarray]]:
    """Distinct owner tuples (in order of first appearance) and each table's owner ids."""
    combined = pa.concat_tables([owner_columns(t) for t in tables]).combine_chunks()
    n = combined.num_rows
    codes = []
    cards = []
    for f in OWNER_FIELDS:
        enc = pc.dictionary_encode(combined.column(f), null_encoding="encode").combine_chunks()
        codes.append(enc.indices.to_numpy(zero_copy_only=False).astype(np.int64))
        cards.append(max(len(enc.dictionary), 1))
    if float(np.prod(np.array(cards, np.float64))) < 2**62:
        key = np.zeros(n, np.int64)
        for c, card in zip(codes, cards, strict=True):
            key = key * card + c
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:  # too many distinct values for one int64 key: rows of codes
        _, first, inverse = np.unique(np.stack(codes, axis=1), axis=0, return_index=True,
                                      return_inverse=True)
    order = np.argsort(first, kind="stable")  # ids in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    ids = rank[inverse.ravel()].astype(np.int32)
    owners = combined.take(arrow(first[order]))
    out, pos = [], 0
    for t in tables:
        out.append(ids[pos:pos + t.num_rows])
        pos += t.num_rows
    return owners, out


class OwnerCatalog:
    """Owner tuples interned to int32 ids, stable for the life of the catalog; ids 0 and 1
    are ``unknown`` and ``internet``. Not thread-safe: the index manager guards it."""

    def __init__(self, rows: Iterable[Owner] = SPECIAL_OWNERS) -> None:
        self._rows: list[Owner] = []
        self._ids: dict[Owner, int] = {}
        for r in rows:
            self.intern(r)

    def __len__(self) -> int:
        return len(self._rows)

    def intern(self, owner: Owner) -> int:
        got = self._ids.get(owner)
        if got is None:
            got = len(self._rows)
            self._rows.append(owner)
            self._ids[owner] = got
        return got

    def intern_table(self, table: pa.Table) -> np.ndarray:
        """Owner ids of a table's rows (its owner-field columns), vectorized over rows."""
        distinct, (ids,) = encode_owners(owner_columns(table))
        cols = [distinct.column(f).to_pylist() for f in OWNER_FIELDS]
        remap = np.array([self.intern(tuple(c[i] for c in cols)) for i in range(distinct.num_rows)]
                         or [0], np.int32)
        out: np.ndarray = remap[ids]
        return out

    def row(self, owner_id: int) -> Owner:
        return self._rows[owner_id]

    def rows(self) -> list[Owner]:
        return list(self._rows)

    def table(self) -> pa.Table:
        return owners_table(self._rows)


__all__ = [
    "INTERNET",
    "OWNER_FIELDS",
    "SPECIAL_OWNERS",
    "UNKNOWN",
    "Owner",
    "OwnerCatalog",
    "encode_owners",
    "owner_columns",
    "owner_of",
    "owners_table",
]
