"""CIDR maps as a provider: CSV files and AWS ``ip-ranges.json``, reloaded when they change.

Each file is its own source (``cidr/<path>``). A file is re-read when its mtime or size
changes, and handed to the index only if its content hash changed too (a ``touch`` costs
one read, not a rebuild). A file that cannot be read or parsed keeps its previous map and
is reported (log, ``dredge_index_provider_errors_total``); it never empties the map.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

from dredge.errors import OwnerIndexError
from dredge.index.loaders import load_networks
from dredge.index.providers.base import IndexFeed, PollingProvider, SourceSink
from dredge.index.providers.config import CidrConfig
from dredge.telemetry.logging import get_logger

log = get_logger(__name__)
KIND = "cidr"


@dataclass
class _Seen:
    mtime_ns: int = -1
    size: int = -1
    digest: bytes = b""


class CidrFiles(PollingProvider):
    """Provider: one source per file."""

    name = KIND

    def __init__(self, config: CidrConfig, manager: IndexFeed) -> None:
        config.validate()
        super().__init__(config.poll_interval_s)
        self.config = config
        self._sinks: dict[str, SourceSink] = {p: manager.sink(f"cidr/{p}", KIND) for p in config.paths}
        self._seen = {p: _Seen() for p in config.paths}

    async def poll(self) -> int:
        return await asyncio.to_thread(self.check)

    def check(self) -> int:
        """Reload what changed (blocking). Returns the number of maps handed to the index."""
        changed = 0
        for path, sink in self._sinks.items():
            seen = self._seen[path]
            try:
                st = Path(path).stat()
                if (st.st_mtime_ns, st.st_size) == (seen.mtime_ns, seen.size):
                    sink.touch()
                    continue
                data = Path(path).read_bytes()
                digest = hashlib.blake2b(data, digest_size=16).digest()
                seen.mtime_ns, seen.size = st.st_mtime_ns, st.st_size
                if digest == seen.digest:
                    sink.touch()
                    continue
                table = load_networks(Path(path))
            except (OSError, OwnerIndexError) as exc:
                self.report_error(sink, exc, "cidr_map_unreadable", file=path)
                continue
            seen.digest = digest
            sink.set_networks(table)
            changed += 1
            log.info("cidr_map_loaded", file=path, networks=table.num_rows)
        return changed
