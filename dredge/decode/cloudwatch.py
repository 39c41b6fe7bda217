"""CloudWatch Logs subscription payloads: bounded gunzip, parse, and build them.

A subscription filter delivering to Kinesis writes one gzip-compressed JSON document per
record::

    {"messageType": "DATA_MESSAGE", "owner": "123456789012",
     "logGroup": "vpc-flow-logs", "logStream": "eni-0abc1234def567890-all",
     "subscriptionFilters": ["to-kinesis"],
     "logEvents": [{"id": "3811...", "timestamp": 1764000000000, "message": "2 1234... OK"}]}

For VPC flow logs each event's message is one flow-log line (no header) and the log stream
is named after the network interface, ``eni-<hex>-all`` (or ``-accept``, ``-reject``, or
bare). ``CONTROL_MESSAGE`` documents are CloudWatch Logs checking that the destination is
reachable; they carry no flow logs.

Inflation is bounded: output is taken from zlib in chunks and the payload is refused as
soon as it passes the limit, so a small record that inflates to gigabytes (a gzip bomb)
costs at most the limit in memory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

import orjson
from zlib_ng import zlib_ng

from dredge.decode.reasons import EnvelopeError

GZIP_MAGIC = b"\x1f\x8b"
DATA_MESSAGE = "DATA_MESSAGE"
CONTROL_MESSAGE = "CONTROL_MESSAGE"
DEFAULT_TIMESTAMP_MS = 1_764_000_000_000  # a fixed instant keeps encoded fixtures reproducible

_CHUNK = 256 * 1024  # inflate this much at a time: bounds the overshoot past the limit
_ENI_LOG_STREAM = re.compile(r"(eni-[0-9a-f]+)(?:-[a-z]+)?")
_message = itemgetter("message")
_ZlibError = cast(type[Exception], zlib_ng.error)  # the zlib_ng stub types it as an instance


@dataclass(frozen=True, slots=True)
class CloudWatchMessage:
    """One decoded subscription payload; ``lines`` joins the event messages with ``b"\\n"``."""

    message_type: str
    owner: str
    log_group: str
    log_stream: str
    lines: bytes
    events: int

    @property
    def eni(self) -> str | None:
        return eni_from_log_stream(self.log_stream)


def eni_from_log_stream(log_stream: str) -> str | None:
    """The network interface a flow-log stream is named after, or ``None``."""
    match = _ENI_LOG_STREAM.fullmatch(log_stream)
    return match.group(1) if match else None


def inflate_gzip(data: bytes, max_bytes: int) -> bytearray:
    """Gunzip ``data`` (one or more members), never holding more than ``max_bytes`` of output.

    Raises ``EnvelopeError`` with reason ``inflated_too_large``, ``corrupt_gzip`` or
    ``truncated_gzip``. Trailing zero bytes after the last member are ignored, as gzip does.
    """
    out = bytearray()
    pending = data
    while True:
        inflater = zlib_ng.decompressobj(wbits=31)  # 31: gzip header and trailer
        tail = pending
        while not inflater.eof:
            room = max_bytes - len(out)
            want = min(_CHUNK, room + 1)  # one byte past the room is enough to know
            try:
                chunk = inflater.decompress(tail, want)
            except _ZlibError as exc:
                raise EnvelopeError("corrupt_gzip", str(exc)) from exc
            if len(chunk) > room:
                raise EnvelopeError(
                    "inflated_too_large", f"inflates past the limit of {max_bytes} bytes"
                )
            out += chunk
            # short of ``want`` without reaching the end: zlib has used up all the input
            if not inflater.eof and len(chunk) < want:
                raise EnvelopeError("truncated_gzip", f"stream ends after {len(out)} bytes")
            tail = inflater.unconsumed_tail
        pending = inflater.unused_data
        if pending[:2] != GZIP_MAGIC:
            if pending.strip(b"\x00"):
                raise EnvelopeError("corrupt_gzip", "trailing bytes after the gzip stream")
            return out


def parse_cloudwatch(payload: bytes | bytearray) -> CloudWatchMessage:
    """Parse an inflated subscription payload; raise ``EnvelopeError`` if it is not one."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("bad_cwl_json", str(exc)) from exc
    if not isinstance(doc, dict):
        raise EnvelopeError("bad_cwl_schema", f"a JSON {type(doc).__name__}, not an object")
    message_type = doc.get("messageType")
    if not isinstance(message_type, str):
        raise EnvelopeError("bad_cwl_schema", "messageType is missing or not a string")
    if message_type not in (DATA_MESSAGE, CONTROL_MESSAGE):
        raise EnvelopeError("unknown_cwl_message_type", message_type[:64])
    events = doc.get("logEvents", [])
    if not isinstance(events, list):
        raise EnvelopeError("bad_cwl_schema", "logEvents is not a list")
    lines = b""
    if message_type == DATA_MESSAGE:
        try:
            # map/itemgetter/join walk the events in C: no Python bytecode per line
            lines = "\n".join(map(_message, events)).encode("utf-8", "replace")
        except (TypeError, KeyError) as exc:
            raise EnvelopeError(
                "bad_cwl_schema", f"a log event without a string message: {exc}"
            ) from exc
    return CloudWatchMessage(
        message_type=message_type,
        owner=_string(doc, "owner"),
        log_group=_string(doc, "logGroup"),
        log_stream=_string(doc, "logStream"),
        lines=lines,
        events=len(events),
    )


def _string(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name, "")
    if not isinstance(value, str):
        raise EnvelopeError("bad_cwl_schema", f"{name} is not a string")
    return value


def encode_cloudwatch(
    lines: Sequence[bytes],
    *,
    log_stream: str,
    owner: str,
    log_group: str = "vpc-flow-logs",
    message_type: str = DATA_MESSAGE,
    timestamp_ms: int = DEFAULT_TIMESTAMP_MS,
    subscription_filters: Sequence[str] = ("dredge",),
    level: int = 6,
) -> bytes:
    """A subscription payload as CloudWatch Logs writes it to Kinesis: gzip of the JSON.

    One log event per line (lines are UTF-8 and hold no newline), all stamped
    ``timestamp_ms``; event ids are 56 digits like the real ones, and reproducible.
    """
    doc = {
        "messageType": message_type,
        "owner": owner,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": list(subscription_filters),
        "logEvents": [
            {
                "id": f"{timestamp_ms:020d}{i:036d}",
                "timestamp": timestamp_ms,
                "message": line.decode(),
            }
            for i, line in enumerate(lines)
        ],
    }
    deflater = zlib_ng.compressobj(level, zlib_ng.DEFLATED, 31)
    return deflater.compress(orjson.dumps(doc)) + deflater.flush()
