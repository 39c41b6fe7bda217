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
import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from zlib_ng import zlib_ng

from dredge.errors import SourceError
from dredge.flowlog.fields import LONG_LINE_HEAD, MAX_LINE_BYTES

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


# A line past MAX_LINE_BYTES is dropped as it streams, so memory stays bounded by the chunk;
# a long line inside one chunk is marked by flowlog.bounds (the same reason, line_too_long).
# gzip of flow-log text inflates about 4-10x; past this ratio (checked once the output passes
# INFLATION_FLOOR bytes) the file is a bomb: what was read so far is kept, the rest refused.
MAX_INFLATION = 200
INFLATION_FLOOR = 64 << 20
_SALVAGE_STEP = 512  # after a damaged block, re-inflate its input this many bytes at a time


@dataclass(frozen=True)
class LongLine:
    """A line dropped for passing the length limit: where it was and how it began."""

    line: int  # 1-based physical line number in the file's text
    length: int  # bytes seen before the limit (at least MAX_LINE_BYTES)
    head: bytes


@dataclass
class ReadState:
    """What the reader learned while streaming: truncation or corruption of the file."""

    truncated: bool = False
    error: str | None = None
    compressed_bytes: int = 0
    text_bytes: int = 0
    lines: int = 0  # newlines handed out so far
    tail: bytes = field(default=b"", repr=False)  # an unfinished last line of a truncated file
    long_lines: list[LongLine] = field(default_factory=list, repr=False)


def _salvage(saved: Any, data: bytes, max_out: int) -> Iterator[bytes]:
    """Re-inflate ``data`` from the state before it, a few bytes at a time, handing out what
    precedes the damage (``gzip -dc`` keeps it too); ends when the damage is reached."""
    d = saved
    step = _SALVAGE_STEP
    i = 0
    while i < len(data):
        piece = data[i:i + step]
        before = d.copy()
        outs: list[bytes] = []
        try:
            while piece:
                outs.append(d.decompress(piece, max_out))
                if d.eof:
                    break
                piece = d.unconsumed_tail
        except zlib_ng.error:  # type: ignore[misc]
            if step == 1:
                return
            d, step = before, 1  # the damage is in this step: go up to it a byte at a time
            continue
        yield from (out for out in outs if out)
        if d.eof:
            return
        i += step


def _decompress(fh: BinaryIO, state: ReadState, read_size: int, max_out: int) -> Iterator[bytes]:
    """Gzip members one after another; no single output piece is larger than max_out, so a
    file that inflates enormously is streamed, never held whole; one that inflates more than
    MAX_INFLATION times its size is stopped there."""
    d = zlib_ng.decompressobj(wbits=31)
    fed = False
    while True:
        data = fh.read(read_size)
        if not data:
            break
        state.compressed_bytes += len(data)
        while data:
            fed = True
            saved = d.copy()  # type: ignore[attr-defined]
            try:
                out = d.decompress(data, max_out)
            except zlib_ng.error as exc:  # type: ignore[misc]
                for out in _salvage(saved, data, max_out):
                    state.text_bytes += len(out)
                    yield out
                state.truncated, state.error = True, f"corrupt gzip: {exc}"
                return
            if out:
                state.text_bytes += len(out)
                yield out
            if (state.text_bytes > INFLATION_FLOOR
                    and state.text_bytes > MAX_INFLATION * state.compressed_bytes):
                state.truncated = True
                state.error = (f"gzip inflates more than {MAX_INFLATION}x (a gzip bomb?): stopped "
                               f"after {state.text_bytes} bytes from {state.compressed_bytes}")
                return
            if d.eof:
                data = d.unused_data
                d = zlib_ng.decompressobj(wbits=31)
                fed = False
            else:
                data = d.unconsumed_tail
    if fed and not d.eof:
        tail = d.flush()
        if tail:
            state.text_bytes += len(tail)
            yield tail
        state.truncated, state.error = True, "truncated gzip: the file ends inside a member"


def text_chunks(ref: FileRef, kind: str, state: ReadState, chunk_bytes: int = 16 << 20,
                max_line_bytes: int = MAX_LINE_BYTES, read_ahead: int = 0,
                fh: Any = None) -> Iterator[bytes]:
    """The file's text in chunks of about ``chunk_bytes`` ending with a newline (the last may
    not, if the file doesn't).

    A line longer than ``max_line_bytes`` is dropped while it streams (recorded in
    ``state.long_lines``, an empty line in its place keeps the numbering), so memory is
    bounded by the chunk size whatever the file holds. On a truncated or corrupt gzip the
    readable prefix is handed out; a partial last line is left in ``state.tail``. ``fh``: an
    open binary stream to read instead of opening ``ref`` (``dredge parse`` on stdin).

    ``read_ahead`` > 0: a thread of its own reads, inflates and splits up to that many chunks
    ahead of the caller (gunzip releases the GIL, so it runs on a second core while the
    caller parses); ``state`` is complete once the iteration has ended, as without it.
    """
    chunks = _text_chunks(ref, kind, state, chunk_bytes, max_line_bytes, fh)
    return _ahead(chunks, read_ahead) if read_ahead > 0 else chunks


def _ahead(items: Generator[bytes, None, None], depth: int) -> Iterator[bytes]:
    """``items`` produced by a thread, at most ``depth`` ahead; its exceptions are raised here.
    Leaving the loop early stops the thread and closes ``items``."""
    q: queue.Queue[tuple[bytes | None, BaseException | None]] = queue.Queue(depth)
    stop = threading.Event()

    def put(entry: tuple[bytes | None, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((None, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((None, exc))
        finally:
            items.close()

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is None:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _text_chunks(ref: FileRef, kind: str, state: ReadState, chunk_bytes: int,
                 max_line_bytes: int, fh: Any = None) -> Generator[bytes, None, None]:
    """text_chunks in the caller's thread. Each byte is copied once, into the chunk handed
    out: the decompressed pieces wait as they are (``_Pending``) until a chunk's worth is there."""
    fh = open_file(ref) if fh is None else fh
    with fh:
        pieces: Iterator[bytes]
        if kind == "gzip":
            pieces = _decompress(fh, state, 1 << 18, max(chunk_bytes // 2, 1 << 16))
        else:
            pieces = _plain(fh, state, max(chunk_bytes // 2, 1 << 16))
        pending = _Pending()
        skipping: LongLine | None = None  # the long line being dropped
        for piece in pieces:
            if skipping is not None:
                nl = piece.find(b"\n")
                if nl < 0:
                    skipping = LongLine(skipping.line, skipping.length + len(piece), skipping.head)
                    continue
                state.long_lines.append(
                    LongLine(skipping.line, skipping.length + nl, skipping.head))
                skipping = None
                pending.add(piece, nl + 1)
            else:
                pending.add(piece, 0)
            if pending.open > max_line_bytes:
                skipping = pending.drop_open_line(state)
            while pending.size >= chunk_bytes:
                cut = pending.cut(chunk_bytes)
                if not cut:
                    break
                yield _hand_out(state, pending.take(cut))
        if skipping is not None:
            state.long_lines.append(skipping)
        rest = pending.take(pending.size)
        if state.truncated and rest and not rest.endswith(b"\n"):
            cut = rest.rfind(b"\n") + 1
            state.tail = rest[cut:]
            rest = rest[:cut]
        if rest:
            yield _hand_out(state, rest)


class _Pending:
    """Text read but not handed out: (piece, start) pairs, in order, never copied."""

    def __init__(self) -> None:
        self.parts: list[tuple[bytes, int]] = []
        self.size = 0
        self.open = 0  # bytes after the last newline: the unfinished line

    def add(self, piece: bytes, start: int) -> None:
        if start >= len(piece):
            return
        self.parts.append((piece, start))
        self.size += len(piece) - start
        nl = piece.rfind(b"\n", start)
        self.open = self.open + len(piece) - start if nl < 0 else len(piece) - nl - 1

    def cut(self, limit: int) -> int:
        """Bytes up to the last newline within the first ``limit``; else up to the first
        newline after it; 0 if there is none."""
        off = 0
        found = 0
        for piece, start in self.parts:
            n = len(piece) - start
            if off >= limit:
                nl = piece.find(b"\n", start)
                if nl >= 0:
                    return off + nl - start + 1
            else:
                nl = piece.rfind(b"\n", start, start + min(n, limit - off))
                if nl >= 0:
                    found = off + nl - start + 1
                elif found and off + n >= limit:
                    return found
            off += n
            if found and off >= limit:
                return found
        return found

    def take(self, n: int) -> bytes:
        """The first n bytes, as one bytes object (one copy; none if one whole piece)."""
        if n == 0:
            return b""
        views: list[memoryview | bytes] = []
        left = n
        while left:
            piece, start = self.parts[0]
            avail = len(piece) - start
            if avail <= left:
                views.append(piece if start == 0 else memoryview(piece)[start:])
                self.parts.pop(0)
                left -= avail
            else:
                views.append(memoryview(piece)[start:start + left])
                self.parts[0] = (piece, start + left)
                left = 0
        self.size -= n
        if not self.size:
            self.open = 0
        out = views[0] if len(views) == 1 and isinstance(views[0], bytes) else b"".join(views)
        return bytes(out)

    def drop_open_line(self, state: ReadState) -> LongLine:
        """Drop the unfinished line (too long to be a record): an empty line takes its place."""
        length = self.open
        text = self.take(self.size)
        last = len(text) - length
        line = state.lines + text.count(b"\n", 0, last) + 1
        self.add(text[:last] + b"\n", 0)
        return LongLine(line, length, text[last:last + LONG_LINE_HEAD])


def _plain(fh: BinaryIO, state: ReadState, size: int) -> Iterator[bytes]:
    for piece in iter(lambda: fh.read(size), b""):
        state.text_bytes += len(piece)
        yield piece


def _hand_out(state: ReadState, chunk: bytes) -> bytes:
    from dredge.flowlog.kernels import count_newlines  # compiled: 4x bytes.count's speed

    state.lines += int(count_newlines(np.frombuffer(chunk, np.uint8)))
    return chunk
