"""The C parse kernels (dredge.flowlog._native via kernels.py) against a small pure-Python
reference written from the format's rules, on random and hostile bytes; and the length
checks that keep hostile arguments from reading or writing outside a buffer."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dredge.flowlog import kernels
from dredge.flowlog.fields import CODES, DEFAULT_FORMAT, FIELDS, FlowFormat, Kind
from dredge.flowlog.parser import FlowParser

MASK64 = 2**64 - 1
_V4 = re.compile(rb"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})")
_HEX = re.compile(rb"[0-9a-fA-F]{1,4}")


def ref_v4(t: bytes) -> int | None:
    m = _V4.fullmatch(t)
    if m is None or any(int(o) > 255 for o in m.groups()):
        return None
    return int.from_bytes(bytes(int(o) for o in m.groups()), "big")


def ref_groups(t: bytes, last: bool) -> list[int] | None:
    """Colon-separated hex groups; the address's last group may be a dotted quad (two groups)."""
    if not t:
        return []
    out: list[int] = []
    parts = t.split(b":")
    for i, g in enumerate(parts):
        v4 = ref_v4(g) if last and i == len(parts) - 1 else None
        if v4 is not None:
            out += [v4 >> 16, v4 & 0xFFFF]
        elif _HEX.fullmatch(g):
            out.append(int(g, 16))
        else:
            return None
    return out


def ref_addr(t: bytes) -> tuple[int, int, int]:
    """(family, hi, lo); family -1 for what is not an address."""
    v4 = ref_v4(t)
    if v4 is not None:
        return 4, 0, v4
    if b":" not in t:
        return -1, 0, 0
    halves = t.split(b"::")
    if len(halves) > 2:
        return -1, 0, 0
    if len(halves) == 1:
        groups = ref_groups(t, True)
        if groups is None or len(groups) != 8:
            return -1, 0, 0
    else:
        head, tail = ref_groups(halves[0], False), ref_groups(halves[1], True)
        if head is None or tail is None or len(head) + len(tail) > 7:
            return -1, 0, 0
        groups = head + [0] * (8 - len(head) - len(tail)) + tail
    value = int.from_bytes(b"".join(g.to_bytes(2, "big") for g in groups), "big")
    if value >> 32 == 0xFFFF:  # IPv4-mapped: the IPv4 address itself
        return 4, 0, value & 0xFFFFFFFF
    return 6, value >> 64, value & MASK64


def ref_int(t: bytes) -> tuple[int, bool]:
    """(value wrapped to int64 as the kernel reads it, well-formed)."""
    v = 0
    for c in t:
        v = (v * 10 + c - 48) & MASK64
    return v - (1 << 64) if v >> 63 else v, all(48 <= c <= 57 for c in t) and len(t) <= 18


def ref_parse(fmt: FlowFormat, keep_text: bool, buf: bytes) -> list[dict[str, object]]:
    """Each non-blank line's status, bad field, span and field values."""
    plan = FlowParser(fmt, keep_text=keep_text)
    lines = buf.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out, pos = [], 0
    for no, line in enumerate(lines):
        toks = [(m.start(), m.group()) for m in re.finditer(rb"[^ \t\r]+", line)]
        start, pos = pos, pos + len(line) + 1
        if not toks:
            continue
        st_, bad = kernels.OK, -1
        rec: dict[str, object] = {"no": no, "start": start, "end": start + toks[-1][0] + len(toks[-1][1])}
        for f, name in enumerate(fmt.fields):
            kind, t = FIELDS[name].kind, toks[f][1] if f < len(toks) else None
            null = t is None or t == b"-"
            if plan.str_slots[f] >= 0:
                rec["text:" + name] = None if null else t
            if kind == Kind.INT:
                v, good = (0, True) if null else ref_int(t or b"")
                rec[name] = None if null else v
                err = kernels.BAD_INTEGER if not good else 0
            elif kind == Kind.ADDR:
                fam, hi, lo = (0, 0, 0) if null else ref_addr(t or b"")
                rec[name] = (max(fam, 0), hi, lo)
                err = kernels.BAD_ADDRESS if fam < 0 else 0
            elif kind == Kind.CODE:
                words = CODES[name]
                code = 0 if null or t not in words else words.index(t or b"") + 1
                rec[name] = code
                err = kernels.BAD_WORD if code == 0 and not null else 0
            else:
                err = 0
            if err and st_ == kernels.OK:
                st_, bad = err, f
        if len(toks) != len(fmt.fields) and st_ == kernels.OK:
            st_ = kernels.WRONG_FIELD_COUNT
        rec["status"], rec["bad"] = st_, bad
        out.append(rec)
    return out


def got_parse(fmt: FlowFormat, keep_text: bool, buf: bytes) -> list[dict[str, object]]:
    chunk = FlowParser(fmt, keep_text=keep_text).parse(buf)
    out = []
    for r in range(chunk.n):
        rec: dict[str, object] = {"no": int(chunk.line_no[r]), "start": int(chunk.line_start[r]),
                                  "end": int(chunk.line_end[r])}
        for f, name in enumerate(fmt.fields):
            kind = FIELDS[name].kind
            s = chunk.plan.str_slots[f]
            if s >= 0:
                a, n = int(chunk.str_start[s, r]), int(chunk.str_len[s, r])
                rec["text:" + name] = None if n < 0 else buf[a:a + n]
            if kind == Kind.INT:
                vals, null = chunk.int_column(name)
                rec[name] = None if null[r] else int(vals[r])
            elif kind == Kind.ADDR:
                ad = chunk.addr(name)
                rec[name] = (int(ad.fam[r]), int(ad.hi[r]), int(ad.lo[r]))
            elif kind == Kind.CODE:
                rec[name] = int(chunk.code(name)[r])
        rec["status"], rec["bad"] = int(chunk.status[r]), int(chunk.bad_field[r])
        out.append(rec)
    assert chunk.physical_lines == len(buf.split(b"\n")) - (buf.endswith(b"\n") or not buf)
    return out


TCP = FlowFormat.parse("version vpc-id srcaddr dstaddr srcport dstport pkt-srcaddr protocol bytes "
                       "packets start end action tcp-flags log-status flow-direction")
TOKENS = [b"-", b"0", b"7", b"18446744073709551617", b"123456789012345678", b"1234567890123456789",
          b"1x", b"ACCEPT", b"REJECT", b"OK", b"NODATA", b"SKIPDATA", b"egress", b"ACCEPTED", b"10.0.0.1",
          b"010.000.000.001", b"256.0.0.1", b"1.2.3", b"::", b"::1", b"::ffff:10.0.0.1", b"::FFFF:a00:1",
          b"1::2::3", b"1:2:3:4:5:6:7:8", b"1:2:3:4:5:6:7:8:9", b"1:2:3:4:5:6:1.2.3.4", b"::1.2.3.4",
          b"1.2.3.4::", b"12345::", b"1:", b":1", b":::", b"1::", b"fe80::1%eth0", b"\xff", b"eni-1",
          b"255.255.255.255", b"1..2.3", b"1.2.3.4.", b".1.2.3", b"0001.2.3.4", b"1.2.3.0255",
          b"99.999.9.9", b"1.2.3.4.5.6.7.8"]
_token = st.one_of(st.sampled_from(TOKENS),
                   st.text(alphabet="0123456789.:-abcfABF \t\rx\n\x00", max_size=30).map(str.encode))
_line = st.lists(st.tuples(_token, st.sampled_from([b" ", b"\t", b"  ", b" \r"])), max_size=20).map(
    lambda ts: b"".join(a + b for a, b in ts))
_chunk = st.one_of(st.lists(_line, max_size=8).map(b"\n".join), st.binary(max_size=200))


@settings(max_examples=150, deadline=None)
@given(_chunk, st.sampled_from([(DEFAULT_FORMAT, False), (DEFAULT_FORMAT, True), (TCP, True)]),
       st.sampled_from([b"", b"\n", b"\r\n"]))
def test_parse_lines_matches_reference(buf: bytes, fmt_keep: tuple[FlowFormat, bool], end: bytes) -> None:
    fmt, keep = fmt_keep
    assert got_parse(fmt, keep, buf + end) == ref_parse(fmt, keep, buf + end)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(TOKENS), _token), max_size=20), st.data())
def test_parse_addr_strings_matches_reference(toks: list[bytes], data: st.DataObject) -> None:
    n = len(toks)
    valid = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), np.bool_)
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in toks], dtype=np.int64)]).astype(np.int64)
    fam, hi, lo = np.empty(n, np.int8), np.empty(n, np.uint64), np.empty(n, np.uint64)
    bad = kernels.parse_addr_strings(offsets, np.frombuffer(b"".join(toks), np.uint8), valid, fam, hi, lo)
    want = [(0, 0, 0) if not ok or t in (b"", b"-") else ref_addr(t) for t, ok in zip(toks, valid, strict=True)]
    assert list(zip(fam.tolist(), hi.tolist(), lo.tolist(), strict=True)) == want
    assert bad == sum(w[0] < 0 for w in want)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.lists(st.tuples(st.integers(0, 300), st.integers(-3, 40)), max_size=20))
def test_gather_slices_and_count_newlines(buf: bytes, spans: list[tuple[int, int]]) -> None:
    spans = [(s, n) for s, n in spans if n < 0 or s + n <= len(buf)]
    b = np.frombuffer(buf, np.uint8)
    starts = np.array([s for s, _ in spans], np.int64)
    lens = np.array([n for _, n in spans], np.int32)
    offsets, data = kernels.gather_slices(b, starts, lens)
    assert data.tobytes() == b"".join(buf[s:s + n] for s, n in spans if n > 0)
    assert offsets.tolist() == [0, *np.cumsum([max(n, 0) for _, n in spans]).tolist()]
    assert kernels.count_newlines(b) == buf.count(b"\n")


def test_hostile_arguments_are_refused_not_followed() -> None:
    b = np.frombuffer(b"0123456789", np.uint8)
    with pytest.raises(ValueError, match="outside"):  # a slice past the buffer's end
        kernels.gather_slices(b, np.array([8], np.int64), np.array([3], np.int32))
    with pytest.raises(ValueError, match="outside"):
        kernels.gather_slices(b, np.array([-1], np.int64), np.array([1], np.int32))
    one = np.empty(1, np.uint64)
    with pytest.raises(ValueError, match="offsets"):  # an Arrow offset past the data
        kernels.parse_addr_strings(np.array([0, 11], np.int64), b, np.ones(1, np.bool_),
                                   np.empty(1, np.int8), one, one.copy())
    with pytest.raises(ValueError, match="offsets"):  # fewer offsets than rows
        kernels.parse_addr_strings(np.array([0], np.int64), b, np.ones(1, np.bool_),
                                   np.empty(1, np.int8), one, one.copy())
    with pytest.raises(TypeError, match="fam"):
        kernels.parse_addr_strings(np.array([0, 1], np.int64), b, np.ones(1, np.bool_),
                                   np.empty(1, np.int64), one, one.copy())


def _outputs(plan: FlowParser, cap: int, rows: int | None = None) -> list[np.ndarray]:
    def two(n: int, dt: type) -> np.ndarray:
        return np.empty((n if rows is None else rows, cap), dt)
    return [two(plan.n_int, np.int64), two(plan.n_int, np.bool_), two(plan.n_addr, np.int8),
            two(plan.n_addr, np.uint64), two(plan.n_addr, np.uint64), two(plan.n_code, np.int8),
            two(plan.n_str, np.int64), two(plan.n_str, np.int32), np.empty(cap, np.int64),
            np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.uint8), np.empty(cap, np.int16)]


def test_parse_lines_checks_its_outputs() -> None:
    plan = FlowParser(DEFAULT_FORMAT, keep_text=True)
    args = (plan.kinds, plan.slots, plan.str_slots, plan.code_words, plan.code_lens)
    two_lines = np.frombuffer(b"2 1 eni 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\nx\n", np.uint8)
    assert kernels.parse_lines(two_lines, *args, *_outputs(plan, 3)) == (2, 2)
    with pytest.raises(ValueError, match="more records"):  # room for fewer lines than there are
        kernels.parse_lines(two_lines, *args, *_outputs(plan, 1))
    with pytest.raises(ValueError, match="slot"):  # a field's slot past its output's rows
        kernels.parse_lines(two_lines, *args, *_outputs(plan, 3, rows=1))
    bad_slots = plan.slots.copy()
    bad_slots[0] = -1
    with pytest.raises(ValueError, match="slot"):
        kernels.parse_lines(two_lines, plan.kinds, bad_slots, *args[2:], *_outputs(plan, 3))
    long_word = plan.code_lens.copy()
    long_word[0, 0] = plan.code_words.shape[2] + 1
    with pytest.raises(ValueError, match="longer"):  # a word length past its table
        kernels.parse_lines(two_lines, *args[:4], long_word, *_outputs(plan, 3))
    outs = _outputs(plan, 3)
    outs[11] = np.empty(3, np.int8)
    with pytest.raises(TypeError, match="status"):
        kernels.parse_lines(two_lines, *args, *outs)
