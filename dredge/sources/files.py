"""Replay source: flow-log files on local disk or in S3, with the bytes of each file.

Paths may be files, folders (walked recursively) or ``s3://bucket/prefix``; S3 layouts
(``AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/...``, hive-style too) are just
prefixes. Text files are gzip or plain, with or without a header line; Parquet files are
recognized by their magic bytes. Text is handed out in chunks that end on a line boundary.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from zlib_ng import zlib_ng

from dredge.errors import SourceError

TEXT_SUFFIXES = (".gz", ".log", ".txt")
PARQUET_SUFFIXES = (".parquet",)
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class FileRef:
    path: str  # local path or s3://bucket/key
    size: int

    @property
    def is_s3(self) -> bool:
        return self.path.startswith("s3://")

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def _s3_client() -> Any:
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency
        raise SourceError("reading s3:// paths needs boto3") from exc
    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


def _wanted(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.endswith(TEXT_SUFFIXES + PARQUET_SUFFIXES)


def discover(paths: list[str]) -> tuple[list[FileRef], list[str]]:
    """Files to replay, in a stable order, and the paths passed over (with why)."""
    found: list[FileRef] = []
    skipped: list[str] = []
    for p in paths:
        if p.startswith("s3://"):
            bucket, _, prefix = p[5:].partition("/")
            client = _s3_client()
            try:
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                    for obj in page.get("Contents", []):
                        if _wanted(obj["Key"]):
                            found.append(FileRef(f"s3://{bucket}/{obj['Key']}", int(obj["Size"])))
            except Exception as exc:  # botocore errors have no common importable base here
                raise SourceError(f"cannot list {p}: {exc}") from exc
            continue
        path = Path(p)
        if path.is_file():
            found.append(FileRef(str(path), path.stat().st_size))
        elif path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file():
                    if _wanted(f.name):
                        found.append(FileRef(str(f), f.stat().st_size))
                    else:
                        skipped.append(f"{f}: not a flow-log file name")
        else:
            raise SourceError(f"no such file or folder: {p}")
    found.sort(key=lambda r: r.path)
    return found, skipped


def open_file(ref: FileRef) -> BinaryIO:
    if ref.is_s3:
        bucket, _, key = ref.path[5:].partition("/")
        try:
            body = _s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise SourceError(f"cannot read {ref.path}: {exc}") from exc
        return io.BytesIO(body)
    try:
        return open(ref.path, "rb")
    except OSError as exc:
        raise SourceError(f"cannot read {ref.path}: {exc}") from exc


def file_digest(ref: FileRef) -> str:
    with open_file(ref) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()  # type: ignore[arg-type]


def sniff(ref: FileRef) -> str:
    """'parquet', 'gzip' or 'text', from the first bytes."""
    with open_file(ref) as fh:
        head = fh.read(4)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    return "text"


@dataclass
class ReadState:
    """What the reader learned while streaming: truncation or corruption of the file."""

    truncated: bool = False
    error: str | None = None
    compressed_bytes: int = 0
    text_bytes: int = 0
    tail: bytes = field(default=b"", repr=False)  # an unfinished last line of a truncated file


def _decompress(fh: BinaryIO, state: ReadState, read_size: int, max_out: int) -> Iterator[bytes]:
    """Gzip members one after another; no single output piece is larger than max_out, so a
    file that inflates enormously is streamed, never held whole."""
    d = zlib_ng.decompressobj(wbits=31)
    fed = False
    while True:
        data = fh.read(read_size)
        if not data:
            break
        state.compressed_bytes += len(data)
        while data:
            fed = True
            try:
                out = d.decompress(data, max_out)
            except zlib_ng.error as exc:  # type: ignore[misc]
                state.truncated, state.error = True, f"corrupt gzip: {exc}"
                return
            if out:
                yield out
            if d.eof:
                data = d.unused_data
                d = zlib_ng.decompressobj(wbits=31)
                fed = False
            else:
                data = d.unconsumed_tail
    if fed and not d.eof:
        tail = d.flush()
        if tail:
            yield tail
        state.truncated, state.error = True, "truncated gzip: the file ends inside a member"


def text_chunks(ref: FileRef, kind: str, state: ReadState, chunk_bytes: int = 16 << 20
                ) -> Iterator[bytes]:
    """The file's text in chunks of about ``chunk_bytes`` ending with a newline (the last may
    not, if the file doesn't).

    On a truncated or corrupt gzip the readable prefix is handed out; a partial last line
    is left in ``state.tail`` rather than parsed.
    """
    fh = open_file(ref)
    with fh:
        pieces: Iterator[bytes]
        if kind == "gzip":
            pieces = _decompress(fh, state, 1 << 18, max(chunk_bytes // 2, 1 << 16))
        else:
            pieces = iter(lambda: fh.read(max(chunk_bytes // 2, 1 << 16)), b"")
        buf: list[bytes] = []
        size = 0
        for piece in pieces:
            buf.append(piece)
            size += len(piece)
            state.text_bytes += len(piece)
            if size < chunk_bytes:
                continue
            joined = b"".join(buf)
            start = 0
            while len(joined) - start >= chunk_bytes:
                cut = joined.rfind(b"\n", start, start + chunk_bytes) + 1
                if cut <= start:  # a line longer than a chunk: cut after it
                    cut = joined.find(b"\n", start + chunk_bytes) + 1
                    if cut <= 0:
                        break
                yield joined[start:cut]
                start = cut
            rest = joined[start:]
            buf, size = ([rest], len(rest)) if rest else ([], 0)
        rest = b"".join(buf)
        if state.truncated and rest and not rest.endswith(b"\n"):
            cut = rest.rfind(b"\n") + 1
            state.tail = rest[cut:]
            rest = rest[:cut]
        if rest:
            yield rest
