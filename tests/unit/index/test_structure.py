"""The index package's shape: no import circle inside it, the core never imports its
providers (nor anything above the index), and the settings modules stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np

from dredge.index.history import Events
from dredge.index.snapshot import LookupStats
from dredge.times import epoch_seconds

INDEX = Path(__file__).parents[3] / "dredge" / "index"


def _imports() -> dict[str, set[str]]:
    """Module -> the dredge modules it imports anywhere in its text (TYPE_CHECKING and
    function-level imports included)."""
    names = {}
    for p in INDEX.rglob("*.py"):
        parts = list(p.relative_to(INDEX.parents[1]).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    out: dict[str, set[str]] = {}
    for mod, p in names.items():
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dredge"):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    deps.add(full if full in names else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("dredge")}
        out[mod] = deps - {mod}
    return out


def test_no_import_cycle_in_the_index() -> None:
    graph = _imports()
    done: set[str] = set()

    def visit(mod: str, path: list[str]) -> None:
        if mod in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(mod):], mod]))
        if mod in done or mod not in graph:
            return
        for dep in sorted(graph[mod]):
            visit(dep, [*path, mod])
        done.add(mod)

    for mod in sorted(graph):
        visit(mod, [])


def test_core_imports_downward_only() -> None:
    allowed = ("dredge.errors", "dredge.telemetry", "dredge.times", "dredge.flowlog",
               "dredge.index")
    for mod, deps in _imports().items():
        if mod.startswith("dredge.index.providers"):
            continue
        for dep in deps:
            assert dep.startswith(allowed), f"{mod} imports {dep}"
            assert not dep.startswith("dredge.index.providers") or mod == "dredge.index", \
                f"{mod} (core) imports the provider module {dep}"


def test_settings_modules_are_light() -> None:
    code = ("import sys, dredge.index.providers.config, dredge.index.config; "
            "print(sorted(m for m in ('numba', 'pyarrow', 'botocore', 'aiobotocore') "
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
