"""Generated data sets for the integration tests, each made once per session and parameter set
(see conftest.py), and the `dredge replay` command line for one.

A data set is shared by every test that asks for the same parameters: tests read it and never
write into it (a test that needs to change files copies them into its own ``tmp_path``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from dredge.generate import generate
from tests.integration.streams import Sample, make_sample


class Samples:
    """``logs(...)``: the folder ``dredge generate`` writes (``logs/``, ``owners.jsonl``,
    ``networks.csv``); ``stream(...)``: v2 lines for Kinesis and their index files. Both take
    the generator's parameters and cache by them."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._logs: dict[tuple[tuple[str, Any], ...], Path] = {}
        self._streams: dict[tuple[int, int], Sample] = {}

    def logs(self, *, flows: int, seed: int, hours: float, **params: Any) -> Path:
        key = tuple(sorted({"flows": flows, "seed": seed, "hours": hours, **params}.items()))
        if key not in self._logs:
            out = self._tmp.mktemp(f"gen-{flows}-{seed}")
            generate(out, flows=flows, seed=seed, hours=hours, **params)
            self._logs[key] = out
        return self._logs[key]

    def stream(self, *, flows: int, seed: int) -> Sample:
        key = (flows, seed)
        if key not in self._streams:
            self._streams[key] = make_sample(self._tmp.mktemp(f"stream-{flows}-{seed}"), flows, seed)
        # a list of its own: the lines may be sliced, shuffled or appended to
        return dataclasses.replace(self._streams[key], lines=list(self._streams[key].lines))


def replay_args(logs: Path, db: Path, *extra: str) -> list[str]:
    """``dredge replay`` of a generated data set into ``db``."""
    return ["replay", str(logs / "logs"), "--index", str(logs / "owners.jsonl"),
            "--cidrs", str(logs / "networks.csv"), "--db", str(db), "--no-progress", *extra]
