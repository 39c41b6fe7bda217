"""Rolled-up rows as JSON records for the output stream (what Druid's Kinesis supervisor reads).

One JSON object per rolled-up row, in the ``flows`` schema (``window_start`` as ISO 8601 UTC);
the partition key is the application pair (``src_app|dst_app``), so one pair's rows stay in one
shard. Rows of one pair are packed into records (newline-separated, up to ``pack_bytes``;
Druid's JSON reader takes several objects per record): a shard takes 1000 records/s but 1 MB/s,
so one row per record would waste most of it. JSON is built on columns: each owner tuple is
serialized once with orjson into a fragment, rows are joined from fragments and number columns
by Arrow. The same lines feed Druid's backfill (:mod:`dredge.sinks.druid_backfill`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dredge.enrich.rollup import METRICS, Rolled
from dredge.flowlog.fields import CODES
from dredge.index.snapshot import OWNER_FIELDS

MAX_KEY_CHARS = 256  # Kinesis partition key, Unicode characters

_JSON_WORDS = {
    name: pa.array(["null"] + [orjson.dumps(w.decode()).decode() for w in CODES[code]])
    for name, code in (("action", "action"), ("flow_direction", "flow-direction"))
}


def _owner_fragments(owners: pa.Table, side: str) -> pa.Array:
    """One JSON fragment per owner: ``"src_app":"api","src_cluster":null,...`` (orjson)."""
    cols = [owners.column(f).to_pylist() for f in OWNER_FIELDS]
    frags = []
    for values in zip(*cols, strict=True):
        body = orjson.dumps({f"{side}_{f}": v for f, v in zip(OWNER_FIELDS, values, strict=True)})
        frags.append(body[1:-1].decode())
    return pa.array(frags, pa.string())


def _number(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return pc.fill_null(pc.cast(col, pa.string()), "null")


def encode(rows: Rolled | pa.Table) -> tuple[list[bytes], list[str]]:
    """Rolled-up rows -> (one JSON object per row, its partition key), in row order."""
    rolled = rows if isinstance(rows, Rolled) else Rolled.from_table(rows)
    f = rolled.facts
    if f.num_rows == 0:
        return [], []
    src_ids, dst_ids = f.column("src_owner"), f.column("dst_owner")
    src = _owner_fragments(rolled.owners, "src").take(src_ids)
    dst = _owner_fragments(rolled.owners, "dst").take(dst_ids)
    when = pc.strftime(pc.cast(f.column("window_start"), pa.timestamp("s", tz="UTC")),
                       format="%Y-%m-%dT%H:%M:%SZ")
    parts: list[Any] = ['{"window_start":"', when, '",', src, ",", dst,
                        ',"protocol":', _number(f.column("protocol"))]
    for name in ("action", "flow_direction"):
        codes = pc.cast(f.column(name), pa.int32())
        parts += [f',"{name}":', _JSON_WORDS[name].take(codes)]
    parts += [',"traffic_path":', _number(f.column("traffic_path"))]
    for m in METRICS:
        parts += [f',"{m}":', _number(f.column(m))]
    parts += [',"port":', _number(f.column("port"))]
    parts.append("}")
    lines = pc.binary_join_element_wise(*parts, "")
    apps = rolled.owners.column("app")
    key = pc.binary_join_element_wise(
        apps.take(src_ids), apps.take(dst_ids), "|", null_handling="replace", null_replacement="")
    key = pc.utf8_slice_codeunits(key, 0, MAX_KEY_CHARS)
    return pc.cast(lines, pa.binary()).to_pylist(), key.to_pylist()


@dataclass(frozen=True)
class Packed:
    """Kinesis records: newline-separated JSON rows of one partition key each."""

    data: list[bytes]
    keys: list[str]
    rows: np.ndarray  # rows per record


def pack(lines: list[bytes], keys: list[str], max_bytes: int) -> Packed:
    """Rows of the same key joined with newlines into records of at most ``max_bytes``
    (0: one row per record). Keys keep their first-seen order; rows keep theirs."""
    if max_bytes <= 0:
        return Packed(lines, keys, np.ones(len(lines), np.int64))
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    data: list[bytes] = []
    out_keys: list[str] = []
    counts: list[int] = []
    for key, idx in groups.items():
        chunk: list[bytes] = []
        size = 0
        for i in idx:
            n = len(lines[i]) + 1
            if chunk and size + n > max_bytes:
                data.append(b"\n".join(chunk))
                out_keys.append(key)
                counts.append(len(chunk))
                chunk, size = [], 0
            chunk.append(lines[i])
            size += n
        data.append(b"\n".join(chunk))
        out_keys.append(key)
        counts.append(len(chunk))
    return Packed(data, out_keys, np.asarray(counts, np.int64))
