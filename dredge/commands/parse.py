"""``dredge parse [FILE...]``: flow-log records (files or stdin, gzip or plain) as JSON lines;
malformed lines to stderr with their file and line number (exit code 1 if any)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # the parser loads numba: imported when the command runs
    from dredge.flowlog.fields import FlowFormat


def add_parser(sub: Any) -> None:
    pa_ = sub.add_parser("parse", help="flow-log lines -> JSON lines (stdin or files)")
    pa_.add_argument("files", nargs="*")
    pa_.add_argument("--format", help="field names or ${field} syntax; default: header line, else v2")
    pa_.set_defaults(func=cmd_parse)


def cmd_parse(args: argparse.Namespace) -> int:
    from dredge.flowlog.fields import DEFAULT_FORMAT, FlowFormat, looks_like_header
    from dredge.flowlog.parser import FlowParser
    from dredge.pipeline import dead_letters_of
    from dredge.sources.files import FileRef, ReadState, sniff, text_chunks

    fixed = FlowFormat.parse(args.format) if args.format else None
    out = sys.stdout.buffer
    bad = 0

    def emit(data: bytes, origin: str, fmt: FlowFormat | None, line_base: int) -> tuple[FlowFormat, int]:
        nonlocal bad
        if fmt is None:
            nl = data.find(b"\n")
            first = data[: nl if nl >= 0 else len(data)]
            if fixed is None and looks_like_header(first):
                fmt = FlowFormat.parse(first.decode("utf-8", "replace"))
                data = data[nl + 1:] if nl >= 0 else b""
                line_base += 1
            else:
                fmt = fixed or DEFAULT_FORMAT
        chunk = FlowParser(fmt, keep_text=True).parse(data)
        table = chunk.to_arrow()
        good = chunk.status == 0
        for row, ok in zip(table.to_pylist(), good, strict=True):
            if ok:
                out.write(orjson.dumps(row) + b"\n")
        for d in dead_letters_of(chunk, {"file": origin}, line_base):
            bad += 1
            sys.stderr.write(f"malformed: {d['file']}:{d['line']}: {d['reason']}"
                             f"{' (' + d['field'] + ')' if d['field'] else ''}: {d['text']}\n")
        return fmt, line_base + data.count(b"\n")

    if args.files:
        for f in args.files:
            ref = FileRef(f, os.path.getsize(f) if not f.startswith("s3://") else 0)
            state = ReadState()
            fmt, base = None, 0
            for chunk in text_chunks(ref, sniff(ref), state, 4 << 20):
                fmt, base = emit(chunk, f, fmt, base)
            if state.truncated:
                sys.stderr.write(f"warning: {f}: {state.error}\n")
    else:
        data = sys.stdin.buffer.read()
        emit(data, "<stdin>", None, 0)
    return 1 if bad else 0
