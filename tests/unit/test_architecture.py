"""The architecture as a test: the layer order, no import cycles, modules of a readable size.

The layers follow the data's journey (README "Architecture"). A module may import from its
own layer or a lower one, never a higher one, and the module graph has no cycle, counting
every import (module level, inside functions and under ``TYPE_CHECKING``): a lazy import is
still a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dredge"

# Lowest first. A module's layer is that of the longest prefix listed here.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("dredge", "dredge.errors", "dredge.aws", "dredge.times", "dredge.settings",
     "dredge.telemetry"),
    ("dredge.flowlog", "dredge.decode", "dredge.generate"),
    ("dredge.index",),
    ("dredge.sources",),
    ("dredge.index.providers",),
    ("dredge.enrich",),
    ("dredge.sinks",),
    ("dredge.query",),
    ("dredge.pipeline", "dredge.batcher", "dredge.replay", "dredge.snapshots"),
    ("dredge.serve", "dredge.dashboards"),
    ("dredge.config", "dredge.app"),
    ("dredge.commands",),
    ("dredge.cli", "dredge.testing", "dredge.__main__"),
)

MAX_LINES = 450  # aim ~400 (STYLE.md); exceptions must be listed here with the reason
LONG_MODULES: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, name: str, known: set[str]) -> Iterator[str]:
    """The dredge modules that ``path`` imports (a ``from pkg import sub`` names the
    submodule when ``sub`` is one)."""
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "dredge":
                    yield _existing(alias.name, known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "dredge":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in known else _existing(base, known)


def _existing(name: str, known: set[str]) -> str:
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def layer(name: str) -> int:
    best, rank = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    return rank


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: {m for m in imports(path, name, known) if m != name}
            for name, path in mods.items()}


def test_every_module_has_a_layer() -> None:
    assert [m for m in modules() if layer(m) < 0] == []


def test_no_lower_layer_imports_a_higher_one() -> None:
    g = graph()
    upward = sorted(f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
                    for m, targets in g.items() for t in targets
                    # a package's __init__ may re-export its own submodules
                    if layer(t) > layer(m) and not t.startswith(m + "."))
    assert upward == []


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(g):
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in g:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(g[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_import_cycles() -> None:
    g = graph()
    # a package importing its own submodules (re-exports) is not a cycle by itself
    g = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in g.items()}
    assert cycles(g) == []


def test_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_module_size() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines())
             for name, path in modules().items() if name not in LONG_MODULES}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}
