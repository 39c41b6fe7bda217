"""``dredge parse [FILE...]``: flow-log records (files or stdin; gzip, plain or Parquet) as JSON
lines; malformed lines to stderr with their file and line number (exit code 1 if any).

The same reader as ``replay`` (bounded memory: a line past 1 MiB is dropped as
``line_too_long``, a gzip bomb stopped) and the same plausibility bounds
(:mod:`dredge.flowlog.bounds`: ``out_of_range``); a record whose text fields are not UTF-8
is ``bad_utf8``. A reported line shows at most 4 KiB of its text.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from dredge.settings import check_input_file

if TYPE_CHECKING:  # the parser loads numpy and pyarrow: imported when the command runs
    import pyarrow as pa

    from dredge.flowlog.fields import FlowFormat
    from dredge.sources.files import ReadState

MAX_TEXT = 4096


def add_parser(sub: Any) -> None:
    pa_ = sub.add_parser("parse", help="flow-log lines -> JSON lines (stdin or files)")
    pa_.add_argument("files", nargs="*", metavar="FILE",
                     help="flow-log files: gzip, plain text or Parquet (default: stdin)")
    pa_.add_argument("--format", help="field names or ${field} syntax (default: the file's "
                     "header line, else the v2 default format)")
    pa_.set_defaults(func=cmd_parse)


class _Prefixed:
    """A binary stream with its first bytes (read to sniff it) put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head, self.rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if not self.head:
            return self.rest.read(n)
        if n < 0:
            out, self.head = self.head + self.rest.read(), b""
        else:
            out, self.head = self.head[:n], self.head[n:]
        return out

    def close(self) -> None:
        pass

    def __enter__(self) -> _Prefixed:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _rows(table: pa.Table) -> list[dict[str, Any] | None]:
    """The table's rows; None for a row whose text is not UTF-8 (looked for row by row only
    when the whole table cannot be converted)."""
    try:
        rows: list[dict[str, Any] | None] = table.to_pylist()
        return rows
    except UnicodeDecodeError:
        out: list[dict[str, Any] | None] = []
        for i in range(table.num_rows):
            try:
                out.append(table.slice(i, 1).to_pylist()[0])
            except UnicodeDecodeError:
                out.append(None)
        return out


def _report(origin: str, line: int, reason: str, field: str | None, text: str) -> None:
    if len(text) > MAX_TEXT:
        text = f"{text[:MAX_TEXT]}... ({len(text)} characters)"
    sys.stderr.write(f"malformed: {origin}:{line}: {reason}"
                     f"{' (' + field + ')' if field else ''}: {text}\n")


class _Printer:
    """Parses chunks of one input and prints its records; counts what it reports."""

    def __init__(self, fixed: FlowFormat | None) -> None:
        self.fixed = fixed
        self.bad = 0
        self.out = sys.stdout.buffer

    def text(self, chunks: Iterator[bytes], origin: str, state: ReadState) -> None:
        from dredge.flowlog.fields import DEFAULT_FORMAT, FlowFormat, looks_like_header

        fmt, base = None, 0
        for data in chunks:
            if fmt is None:
                data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
                nl = data.find(b"\n")
                first = data[: nl if nl >= 0 else len(data)]
                if self.fixed is None and looks_like_header(first):
                    fmt = FlowFormat.parse(first.decode("utf-8", "replace"))
                    data = data[nl + 1:] if nl >= 0 else b""
                    base += 1
                else:
                    fmt = self.fixed or DEFAULT_FORMAT
            self._chunk(data, origin, fmt, base)
            base += data.count(b"\n")
        for long in state.long_lines:
            self.bad += 1
            _report(origin, long.line, "line_too_long", None,
                    f"{long.head.decode('utf-8', 'replace')}... ({long.length} bytes or more)")
        if state.truncated:
            sys.stderr.write(f"warning: {origin}: {state.error}\n")
            if state.tail:
                self.bad += 1
                _report(origin, base + 1, "truncated_line", None,
                        state.tail.decode("utf-8", "replace"))

    def _chunk(self, data: bytes, origin: str, fmt: FlowFormat, line_base: int) -> None:
        from dredge.flowlog import bounds
        from dredge.flowlog.parser import FlowParser
        from dredge.pipeline import dead_letters_of

        chunk = FlowParser(fmt, keep_text=True).parse(data)
        bounds.mark(chunk)
        good = chunk.status == 0
        for rec, (row, ok) in enumerate(zip(_rows(chunk.to_arrow()), good, strict=True)):
            if ok and row is not None:
                self.out.write(orjson.dumps(row) + b"\n")
            elif ok:
                self.bad += 1
                _report(origin, line_base + int(chunk.line_no[rec]) + 1, "bad_utf8", None,
                        chunk.line_text(rec))
        for d in dead_letters_of(chunk, {"file": origin}, line_base):
            self.bad += 1
            _report(d["file"], d["line"], d["reason"], d["field"], d["text"])

    def parquet(self, path: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from dredge.errors import ParseError
        from dredge.flowlog import bounds

        try:
            pf = pq.ParquetFile(path)
            base = 0
            for batch in pf.iter_batches(batch_size=1 << 16):
                table = pa.Table.from_batches([batch])
                odd, which = bounds.out_of_range(bounds.arrow_column(table), table.num_rows,
                                                 bounds.clock(None))
                for i, row in enumerate(_rows(table)):
                    if row is None:
                        self.bad += 1
                        _report(path, base + i + 1, "bad_utf8", None, "")
                    elif odd[i]:
                        self.bad += 1
                        field = bounds.FIELD_ORDER[which[i]].replace("-", "_")
                        _report(path, base + i + 1, "out_of_range", field, orjson.dumps(row).decode())
                    else:
                        self.out.write(orjson.dumps(row) + b"\n")
                base += table.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise ParseError(f"cannot read Parquet file {path}: {exc}") from exc


def cmd_parse(args: argparse.Namespace) -> int:
    from dredge.flowlog.fields import FlowFormat
    from dredge.sources.files import (
        GZIP_MAGIC,
        PARQUET_MAGIC,
        FileRef,
        ReadState,
        sniff,
        text_chunks,
    )

    printer = _Printer(FlowFormat.parse(args.format) if args.format else None)
    for i, f in enumerate(args.files):
        check_input_file(f"files[{i}]" if len(args.files) > 1 else "file", f)
    for f in args.files:
        ref = FileRef(f, 0)
        kind = sniff(ref)
        if kind == "parquet":
            printer.parquet(f)
            continue
        state = ReadState()
        printer.text(text_chunks(ref, kind, state, 4 << 20), f, state)
    if not args.files:
        stdin = sys.stdin.buffer
        head = stdin.read(4)
        if head.startswith(PARQUET_MAGIC):
            from dredge.errors import ConfigError

            raise ConfigError("stdin", "Parquet needs a file: dredge parse FILE.parquet")
        state = ReadState()
        kind = "gzip" if head.startswith(GZIP_MAGIC) else "text"
        printer.text(text_chunks(FileRef("<stdin>", 0), kind, state, 4 << 20,
                                 fh=_Prefixed(head, stdin)), "<stdin>", state)
    return 1 if printer.bad else 0
