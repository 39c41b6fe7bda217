"""The index's state on disk: one Arrow IPC file, replaced atomically.

Columns: one row per event of the history (``source`` dictionary-encoded, ``fam``, ``hi``,
``lo``, ``time``, ``kind``, ``seq``, ``owner`` as an id). Schema metadata ``dredge_index``
(JSON) holds the owner tuples the ids refer to, the CIDR maps by source, the providers'
cursors (file offsets, Kinesis sequence numbers), their freshness, and the format version.
Only the owners the events use are written, so a restart also drops unused owner tuples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from dredge.errors import OwnerIndexError
from dredge.index.history import EventLog, Events
from dredge.index.owners import OWNER_FIELDS, Owner, OwnerCatalog

FORMAT = "dredge-index-state/1"
_META = b"dredge_index"


@dataclass
class State:
    log: EventLog
    catalog: OwnerCatalog
    networks: dict[str, pa.Table] = field(default_factory=dict)
    cursors: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # freshness, by source
    saved_at: float = 0.0


def save_state(path: Path, state: State) -> int:
    """Write the state (to a temporary file, then rename). Returns its size in bytes."""
    log = state.log
    used = np.unique(log.events.owner[log.events.owner >= 0])
    used = np.union1d(np.array([0, 1], np.int64), used).astype(np.int64)
    remap = np.full(len(state.catalog), -1, np.int32)
    remap[used] = np.arange(used.size, dtype=np.int32)
    owner = np.where(log.events.owner >= 0, remap[np.maximum(log.events.owner, 0)], -1)
    nets = {name: {"cidr": t.column("cidr").to_pylist(),
                   **{f: t.column(f).to_pylist() for f in OWNER_FIELDS if f in t.column_names}}
            for name, t in state.networks.items()}
    meta = {
        "format": FORMAT,
        "owners": [list(state.catalog.row(int(i))) for i in used],
        "networks": nets,
        "cursors": state.cursors,
        "sources": state.sources,
        "saved_at": state.saved_at,
        "next_seq": log.next_seq,
        "source_names": list(log.sources),
    }
    e = log.events
    table = pa.table({
        "source": pa.DictionaryArray.from_arrays(pa.array(log.src.astype(np.int16)),
                                                 pa.array(list(log.sources) or [""], pa.string())),
        "fam": e.fam, "hi": e.hi, "lo": e.lo, "time": e.time, "kind": e.kind,
        "seq": log.seq, "owner": owner.astype(np.int32),
    }).replace_schema_metadata({_META: orjson.dumps(meta)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, \
                ipc.new_file(sink, table.schema,
                             options=ipc.IpcWriteOptions(compression="zstd")) as writer:
            writer.write_table(table, max_chunksize=1 << 20)
        os.replace(tmp, path)
    except (OSError, pa.ArrowException) as exc:
        raise OwnerIndexError(f"cannot save index state to {path}: {exc}") from exc
    return path.stat().st_size


def load_state(path: Path) -> State:
    try:
        with pa.memory_map(str(path), "r") as src:
            table = ipc.open_file(src).read_all()
    except (OSError, pa.ArrowException) as exc:
        raise OwnerIndexError(f"cannot read index state {path}: {exc}") from exc
    raw = (table.schema.metadata or {}).get(_META)
    if raw is None:
        raise OwnerIndexError(f"{path} is not a dredge index state file")
    meta = orjson.loads(raw)
    if meta.get("format") != FORMAT:
        raise OwnerIndexError(f"{path}: unsupported state format {meta.get('format')!r}")
    owners: list[Owner] = [tuple(r) for r in meta["owners"]]
    catalog = OwnerCatalog(owners)
    if len(catalog) != len(owners):
        raise OwnerIndexError(f"{path}: duplicate owner tuples")
    names = tuple(meta["source_names"])

    def col(name: str, dtype: type) -> np.ndarray:
        out: np.ndarray = table.column(name).to_numpy().astype(dtype, copy=False)
        return out

    src = (table.column("source").combine_chunks().indices.to_numpy(zero_copy_only=False)
           .astype(np.int16) if table.num_rows else np.zeros(0, np.int16))
    events = Events(col("fam", np.int8), col("hi", np.uint64), col("lo", np.uint64),
                    col("time", np.int64), col("kind", np.int8), col("owner", np.int32))
    log = EventLog(names, src, events, col("seq", np.int64), int(meta["next_seq"]))
    networks = {name: pa.table({"cidr": pa.array(cols["cidr"], pa.string()),
                                **{f: pa.array(cols.get(f, [None] * len(cols["cidr"])), pa.string())
                                   for f in OWNER_FIELDS}})
                for name, cols in meta["networks"].items()}
    return State(log, catalog, networks, dict(meta["cursors"]), dict(meta["sources"]),
                 float(meta["saved_at"]))
