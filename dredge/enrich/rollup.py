"""Roll enriched flows up into time windows: group by integer keys, sum bytes/packets/flows.

Keys are packed into two uint64 words per row and aggregated with a compiled hash table (C,
in ``dredge.flowlog._native``); owner ids become strings only at the end, on the (far fewer)
rolled-up rows. The words:

- ``k1``: window number (32 bits) | source owner id (32);
- ``k2``: destination owner id (31 bits: ids are non-negative int32) | protocol + 1 (9) |
  service port + 1 (16; 0 = none) | action (2) | flow direction (2) | traffic path (4).

The service port (:mod:`dredge.flowlog.ports`) is folded to 0 past ``ephemeral_from``, a
rollup setting like the window (both recorded in the store). Sums saturate
at the int64 maximum instead of wrapping: the plausibility bounds (``flowlog.bounds``) cap
one record, not how many records share a group, so hostile input could otherwise store a
negative sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dredge.arrays import arrow
from dredge.flowlog import _native
from dredge.flowlog.columns import FlowColumns
from dredge.flowlog.fields import CODES
from dredge.flowlog.ports import EPHEMERAL_FROM, check_ephemeral_from, fold_ephemeral
from dredge.index.snapshot import OWNER_FIELDS

DIMENSIONS = (
    ["window_start"]
    + [f"src_{f}" for f in OWNER_FIELDS]
    + [f"dst_{f}" for f in OWNER_FIELDS]
    + ["protocol", "port", "action", "flow_direction", "traffic_path"]
)
METRICS = ["bytes", "packets", "flows"]

# What the embedded store keeps: owners as ids into a dictionary table, words as codes.
FACTS_SCHEMA = pa.schema([
    ("window_start", pa.timestamp("s")), ("src_owner", pa.int32()), ("dst_owner", pa.int32()),
    ("protocol", pa.int16()), ("action", pa.int8()), ("flow_direction", pa.int8()),
    ("traffic_path", pa.int8()), ("bytes", pa.int64()), ("packets", pa.int64()), ("flows", pa.int64()),
    ("port", pa.int32()),  # the service port; NULL: none (not TCP/UDP/SCTP, no ports)
])

FLOWS_SCHEMA = pa.schema(
    [("window_start", pa.timestamp("s"))]  # UTC
    + [(f"{side}_{f}", pa.string()) for side in ("src", "dst") for f in OWNER_FIELDS]
    + [("protocol", pa.int16()), ("action", pa.string()), ("flow_direction", pa.string()),
       ("traffic_path", pa.int8()), ("bytes", pa.int64()), ("packets", pa.int64()),
       ("flows", pa.int64()), ("port", pa.int32())]
)


INT64_MAX = np.iinfo(np.int64).max  # where the rolled-up sums saturate


def _aggregate(k1: np.ndarray, k2: np.ndarray, b: np.ndarray, p: np.ndarray, f: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by (k1, k2) in first-seen order, bytes/packets/flows summed per group.

    A compiled hash table (``dredge.flowlog._native.aggregate``, without the GIL); sums
    saturate at the int64 maximum instead of wrapping."""
    k1 = np.ascontiguousarray(k1, np.uint64)
    n = k1.shape[0]
    ins = [np.ascontiguousarray(x, dt) for x, dt in
           ((k2, np.uint64), (b, np.int64), (p, np.int64), (f, np.int64))]
    if any(x.shape[0] != n for x in ins):
        raise ValueError("keys and sums differ in length")
    out = [np.empty(n, dt) for dt in (np.uint64, np.uint64, np.int64, np.int64, np.int64)]
    m = _native.aggregate(k1, *ins, *out)
    ok1, ok2, ob, op, of = (x[:m].copy() for x in out)
    return ok1, ok2, ob, op, of


class Rollup:
    """Accumulates rolled-up groups for one index snapshot's owner ids."""

    def __init__(self, window_s: int = 60, ephemeral_from: int = EPHEMERAL_FROM) -> None:
        if window_s <= 0:
            raise ValueError("window must be positive")
        why = check_ephemeral_from(ephemeral_from)
        if why:
            raise ValueError(f"ephemeral_from: {why}")
        self.window_s = window_s
        self.ephemeral_from = ephemeral_from
        self._parts: list[tuple[np.ndarray, ...]] = []
        self.flows = 0

    def add(self, cols: FlowColumns, src_owner: np.ndarray, dst_owner: np.ndarray) -> None:
        if cols.n == 0:
            return
        window = (cols.start // self.window_s).astype(np.uint64)
        k1 = (window << np.uint64(32)) | src_owner.astype(np.uint32).astype(np.uint64)
        k2 = pack_k2(dst_owner, cols.protocol, fold_ephemeral(cols.port, self.ephemeral_from),
                     cols.action, cols.flow_direction, cols.traffic_path)
        ones = np.ones(cols.n, np.int64)
        self._parts.append(_aggregate(k1, k2, cols.bytes, cols.packets, ones))
        self.flows += cols.n
        if len(self._parts) >= 16:
            self._compact()

    @property
    def groups(self) -> int:
        """Rolled-up rows held: exact after :meth:`compact`, else an upper bound."""
        return sum(int(p[0].size) for p in self._parts)

    def compact(self) -> None:
        """Merge the batches' groups into one set (the same key once)."""
        self._compact()

    def _compact(self) -> None:
        if len(self._parts) > 1:
            cat = [np.concatenate([p[i] for p in self._parts]) for i in range(5)]
            self._parts = [_aggregate(*cat)]

    def to_rolled(self, owners: pa.Table) -> Rolled:
        """The rolled-up rows as facts with owner ids, plus the owners they reference."""
        self._compact()
        if not self._parts:
            return Rolled(FACTS_SCHEMA.empty_table(), owners.slice(0, 0))
        k1, k2, b, p, f = self._parts[0]
        window = (k1 >> np.uint64(32)).astype(np.int64) * self.window_s
        src = (k1 & np.uint64(0xFFFFFFFF)).astype(np.int32)
        dst, proto, port, action, direction, path = unpack_k2(k2)
        # keep only the owners this batch references, renumbered 0..k-1
        both = np.concatenate([src, dst])
        used = np.flatnonzero(np.bincount(both, minlength=owners.num_rows))
        remap = np.zeros(owners.num_rows, np.int32)
        remap[used] = np.arange(used.size, dtype=np.int32)
        local = remap[both]
        facts = pa.table({
            "window_start": arrow(window, pa.timestamp("s")),
            "src_owner": arrow(local[: src.size]),
            "dst_owner": arrow(local[src.size:]),
            "protocol": arrow(proto, mask=proto < 0),
            "port": arrow(port, mask=port < 0),
            "action": arrow(action),
            "flow_direction": arrow(direction),
            "traffic_path": arrow(path, mask=path == 0),
            "bytes": arrow(b),
            "packets": arrow(p),
            "flows": arrow(f),
        }, schema=FACTS_SCHEMA)
        return Rolled(facts, owners.take(arrow(used)))

    def to_table(self, owners: pa.Table) -> pa.Table:
        """The rolled-up rows in the ``flows`` schema (strings), for sinks that want them."""
        return self.to_rolled(owners).materialize()


@dataclass(frozen=True)
class Rolled:
    """Rolled-up rows: ``facts`` reference rows of ``owners`` by number (a dictionary)."""

    facts: pa.Table  # FACTS_SCHEMA
    owners: pa.Table  # OWNER_FIELDS columns; row i is owner id i of the facts

    @property
    def num_rows(self) -> int:
        return int(self.facts.num_rows)

    def materialize(self) -> pa.Table:
        """Facts joined with their owners: the ``flows`` schema with strings."""
        f = self.facts
        src_t, dst_t = self.owners.take(f.column("src_owner")), self.owners.take(f.column("dst_owner"))
        cols: dict[str, pa.Array | pa.ChunkedArray] = {"window_start": f.column("window_start")}
        for fld in OWNER_FIELDS:
            cols[f"src_{fld}"] = src_t.column(fld)
        for fld in OWNER_FIELDS:
            cols[f"dst_{fld}"] = dst_t.column(fld)
        cols["protocol"] = f.column("protocol")
        cols["action"] = _words("action", f.column("action").to_numpy())
        cols["flow_direction"] = _words("flow-direction", f.column("flow_direction").to_numpy())
        cols["traffic_path"] = f.column("traffic_path")
        for m in METRICS:
            cols[m] = f.column(m)
        cols["port"] = f.column("port")
        return pa.table(cols, schema=FLOWS_SCHEMA)

    @classmethod
    def concat(cls, parts: list[Rolled]) -> Rolled:
        """Several batches as one: their owner dictionaries merged (each owner once)."""
        from dredge.index.build import encode_owners

        parts = [p for p in parts if p.num_rows]
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls(FACTS_SCHEMA.empty_table(), pa.table({f: pa.array([], pa.string()) for f in OWNER_FIELDS}))
        owners, ids = encode_owners(*[p.owners for p in parts])
        facts = []
        for p, mapping in zip(parts, ids, strict=True):
            f = p.facts
            f = f.set_column(1, "src_owner", pa.array(mapping[f.column("src_owner").to_numpy()]))
            f = f.set_column(2, "dst_owner", pa.array(mapping[f.column("dst_owner").to_numpy()]))
            facts.append(f)
        return cls(pa.concat_tables(facts), owners)

    @classmethod
    def from_table(cls, table: pa.Table) -> Rolled:
        """The inverse of :meth:`materialize`: a ``flows``-schema table back to facts + owners."""
        from dredge.index.build import encode_owners

        src = table.select([f"src_{f}" for f in OWNER_FIELDS]).rename_columns(list(OWNER_FIELDS))
        dst = table.select([f"dst_{f}" for f in OWNER_FIELDS]).rename_columns(list(OWNER_FIELDS))
        owners, (src_ids, dst_ids) = encode_owners(src, dst)
        facts = pa.table({
            "window_start": table.column("window_start").cast(pa.timestamp("s")),
            "src_owner": pa.array(src_ids),
            "dst_owner": pa.array(dst_ids),
            "protocol": table.column("protocol").cast(pa.int16()),
            "action": _codes("action", table.column("action")),
            "flow_direction": _codes("flow-direction", table.column("flow_direction")),
            "traffic_path": table.column("traffic_path").cast(pa.int8()),
            "bytes": table.column("bytes"),
            "packets": table.column("packets"),
            "flows": table.column("flows"),
            # a table from a store or a sink written before the port existed: none known
            "port": (table.column("port").cast(pa.int32()) if "port" in table.column_names
                     else pa.nulls(table.num_rows, pa.int32())),
        }, schema=FACTS_SCHEMA)
        return cls(facts, owners)


def pack_k2(dst_owner: np.ndarray, protocol: np.ndarray, port: np.ndarray, action: np.ndarray,
            direction: np.ndarray, path: np.ndarray) -> np.ndarray:
    """The second key word (see the module docstring); -1 is null for protocol and port."""
    u = np.uint64
    # shifted in place, one field at a time: fewer temporaries than OR-ing shifted copies
    k2: np.ndarray = dst_owner.astype(u) << u(9)  # owner ids are >= 0
    k2 |= (protocol + 1).astype(u)
    k2 <<= u(16)
    k2 |= (port + 1).astype(u)
    k2 <<= u(2)
    k2 |= action.astype(u)
    k2 <<= u(2)
    k2 |= direction.astype(u)
    k2 <<= u(4)
    k2 |= path.astype(u)
    return k2


def unpack_k2(k2: np.ndarray) -> tuple[np.ndarray, ...]:
    """The inverse of :func:`pack_k2`: dst owner (int32), protocol (int16), port (int32),
    action, direction, traffic path (int8)."""
    u = np.uint64
    return ((k2 >> u(33)).astype(np.int32),
            ((k2 >> u(24)) & u(0x1FF)).astype(np.int16) - 1,
            ((k2 >> u(8)) & u(0xFFFF)).astype(np.int32) - 1,
            ((k2 >> u(6)) & u(0x3)).astype(np.int8),
            ((k2 >> u(4)) & u(0x3)).astype(np.int8),
            (k2 & u(0xF)).astype(np.int8))


def _codes(field: str, words: pa.ChunkedArray | pa.Array) -> pa.Array:
    out = np.zeros(len(words), np.int8)
    for i, w in enumerate(CODES[field]):
        out[pc.fill_null(pc.equal(words, w.decode()), False).to_numpy(zero_copy_only=False)] = i + 1
    return pa.array(out)


def _words(field: str, codes: np.ndarray) -> pa.Array:
    """int8 codes (0 = null) -> the field's words."""
    dictionary = pa.array([None] + [w.decode() for w in CODES[field]], pa.string())
    return dictionary.take(pa.array(codes.astype(np.int32)))
