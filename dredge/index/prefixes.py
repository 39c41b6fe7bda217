"""Delegated prefixes: ownership of whole networks, time-versioned like single addresses.

An interface can carry prefixes (EKS/ECS prefix delegation: IPv4 /28, IPv6 /80) whose
addresses are handed to pods and tasks without ever being listed. IPv4 prefixes this small
are expanded by the provider into ordinary address events (16 per /28); an IPv6 /80 cannot
be (2^48 addresses), so its ownership is kept per network:

- **History**: a source's prefixes of one length live in a companion source
  ``<source>#prefix/<length>`` of the same event log, keyed by the network address. So they
  get everything addresses get: late events sort into place, compaction, the state file,
  freshness, and ``assigned()`` after a restart (:func:`assigned_prefixes`).
- **Snapshot**: :class:`PrefixTables`, one hash table per (family, length), longest first,
  keyed by the network address and holding time segments (an
  :class:`~dredge.index.tables.AddrTable`, overlaps settled as for addresses: the latest
  start wins). ``IndexSnapshot.lookup`` consults it after an exact-address miss and before
  the static CIDR maps: an address in a delegated prefix gets the prefix's owner *at the
  flow's time*.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from dredge.flowlog.parser import Addr
from dredge.index.history import Intervals
from dredge.index.owners import Owner
from dredge.index.tables import CidrTable, addr_table

MARK = "#prefix/"
_COMPANION = re.compile(r"^(.*)#prefix/(\d{1,3})$")
EXPAND_V4_MIN_LENGTH = 24  # IPv4 prefixes of at most 256 addresses are expanded


def prefix_source(source: str, length: int) -> str:
    """The companion source holding ``source``'s prefixes of one length."""
    return f"{source}{MARK}{length}"


def companion_of(name: str) -> tuple[str, int] | None:
    """(owning source, prefix length) if ``name`` is a companion source, else None."""
    m = _COMPANION.match(name)
    return (m.group(1), int(m.group(2))) if m else None


def is_prefix(key: str) -> bool:
    return "/" in key


def split_keys(keys: Sequence[str], owners: Sequence[Owner | None]
               ) -> tuple[list[str], list[Owner | None], dict[int, tuple[list[str], list[Owner | None]]]]:
    """Keys of a diff (addresses and ``network/length``) -> (addresses, their owners,
    length -> (network addresses, owners))."""
    ips: list[str] = []
    ip_owners: list[Owner | None] = []
    nets: dict[int, tuple[list[str], list[Owner | None]]] = {}
    for key, owner in zip(keys, owners, strict=True):
        if not is_prefix(key):
            ips.append(key)
            ip_owners.append(owner)
            continue
        try:
            net = ipaddress.ip_network(key, strict=False)
        except ValueError:
            ips.append(key)  # counted invalid by the sink
            ip_owners.append(owner)
            continue
        bucket = nets.setdefault(net.prefixlen, ([], []))
        bucket[0].append(str(net.network_address))
        bucket[1].append(owner)
    return ips, ip_owners, nets


def expand_v4(prefix: str) -> list[str] | None:
    """The addresses of a small IPv4 prefix (``10.0.1.32/28`` -> 16 addresses); None for
    IPv6 or a larger network (kept as a prefix)."""
    try:
        net = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return None
    if net.version != 4 or net.prefixlen < EXPAND_V4_MIN_LENGTH:
        return None
    return [str(a) for a in net]


def companions(source: str, names: Iterable[str]) -> dict[str, int]:
    """Companion source name -> prefix length, for the companions of ``source``."""
    out = {}
    for name in names:
        c = companion_of(name)
        if c is not None and c[0] == source:
            out[name] = c[1]
    return out


@dataclass(frozen=True)
class PrefixTables:
    """Time-versioned network -> owner tables, longest prefix first (immutable)."""

    tables: tuple[CidrTable, ...]
    intervals: int = 0

    def lookup(self, addr: Addr, t: np.ndarray) -> np.ndarray:
        """Owner id at ``t`` (epoch s, int64) of the longest delegated prefix holding each
        address then; -1 where none does."""
        out = np.full(addr.fam.shape[0], -1, np.int32)
        tmp = np.empty(addr.fam.shape[0], np.int32)
        for c in self.tables:
            pending = out < 0
            if not pending.any():
                break
            c.table.lookup(c.mask(addr), t, tmp)
            take = pending & (tmp >= 0)
            out[take] = tmp[take]
        return out

    @property
    def prefixes(self) -> int:
        return sum(c.table.addresses for c in self.tables)

    @property
    def nbytes(self) -> int:
        return sum(c.table.nbytes for c in self.tables)


def split_intervals(iv: Intervals, sources: Sequence[str]
                    ) -> tuple[Intervals, PrefixTables | None]:
    """The intervals of address sources, and the prefix tables built from the companions'."""
    length_of = _lengths(sources)
    if not length_of:
        return iv, None
    lengths = np.full(len(sources), -1, np.int16)
    for i, n in length_of.items():
        lengths[i] = n
    row_len = lengths[iv.src.astype(np.int64)]
    addr_rows = np.flatnonzero(row_len < 0)
    tables = []
    for fam, n in sorted({(int(f), int(x)) for f, x in
                          zip(iv.fam[row_len >= 0], row_len[row_len >= 0], strict=True)},
                         key=lambda fn: -(fn[1] + (96 if fn[0] == 4 else 0))):
        rows = np.flatnonzero((row_len == n) & (iv.fam == fam))
        table = addr_table(iv.fam[rows], iv.hi[rows], iv.lo[rows], iv.start[rows],
                           iv.end[rows], iv.owner[rows])
        tables.append(CidrTable(fam, n, table))
    return _take(iv, addr_rows), PrefixTables(tuple(tables), int(iv.src.size - addr_rows.size))


def containing(iv: Intervals, sources: Sequence[str], fam: int, hi: int, lo: int) -> np.ndarray:
    """Rows of ``iv``: exact intervals of the address (address sources) and intervals of
    delegated prefixes holding it (companion sources); for ``dredge index lookup``."""
    keep = np.zeros(len(iv), np.bool_)
    length_of = _lengths(sources)
    exact = (iv.fam == fam) & (iv.hi == np.uint64(hi)) & (iv.lo == np.uint64(lo))
    keep |= exact & ~np.isin(iv.src, list(length_of))
    for i, n in length_of.items():
        width = 128 if fam == 6 else 32
        value = ((hi << 64) | lo) if fam == 6 else lo
        net = (value >> (width - n)) << (width - n) if n else 0
        keep |= ((iv.src == i) & (iv.fam == fam) & (iv.hi == np.uint64(net >> 64 if fam == 6 else 0))
                 & (iv.lo == np.uint64(net & ((1 << 64) - 1))))
    return np.flatnonzero(keep)


def _lengths(sources: Sequence[str]) -> dict[int, int]:
    """Source index -> prefix length, for the companion sources among ``sources``."""
    return {i: c[1] for i, name in enumerate(sources) if (c := companion_of(name))}


def _take(iv: Intervals, rows: np.ndarray) -> Intervals:
    return Intervals(iv.src[rows], iv.fam[rows], iv.hi[rows], iv.lo[rows], iv.start[rows],
                     iv.end[rows], iv.owner[rows])


__all__ = [
    "PrefixTables",
    "companion_of",
    "companions",
    "containing",
    "expand_v4",
    "prefix_source",
    "split_intervals",
    "split_keys",
]
