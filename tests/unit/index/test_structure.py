"""The index package's shape: the settings modules stay light, the shared value types add up.
(Layers and import cycles, the core never importing its providers included, are checked for
the whole package by tests/unit/test_architecture.py.)"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from dredge.index.history import Events
from dredge.index.snapshot import LookupStats
from dredge.times import epoch_seconds


def test_settings_modules_are_light() -> None:
    code = ("import sys, dredge.index.providers.config, dredge.index.config; "
            "print(sorted(m for m in ('numpy', 'pyarrow', 'botocore', 'aiobotocore') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lookup_stats_add_up() -> None:
    total = LookupStats(1, 2, 3, 4) + LookupStats(10, 20, 30, 40)
    assert total == LookupStats(11, 22, 33, 44)
    assert total.lookups == 110


def test_events_remap_owners_keeps_releases() -> None:
    ev = Events.of(["10.0.0.1", "10.0.0.2", "10.0.0.3"], [1, 2, 3], [0, -1, 2])
    remapped = ev.remap_owners(np.array([5, 6, 7], np.int32))
    assert remapped.owner.tolist() == [5, -1, 7]
    assert remapped.time.tolist() == [1, 2, 3]


def test_epoch_seconds() -> None:
    assert epoch_seconds(1795600800) == 1795600800
    assert epoch_seconds(1795600800.9) == 1795600800
    assert epoch_seconds("2026-11-25T10:00:00Z") == 1795600800
