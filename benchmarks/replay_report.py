"""What benchmarks/replay.py prints: tables of contenders, the per-stage profile, the goals."""

from __future__ import annotations

import itertools
import pstats
from collections.abc import Iterator
from pathlib import Path

Run = dict[str, object]


def _f(r: Run, key: str) -> float:
    return float(r[key])  # type: ignore[arg-type]


def per_core(r: Run) -> float:
    return _f(r, "flows") / _f(r, "cpu")


def print_table(runs: dict[str, Run], base: str | None) -> None:
    base_rate = per_core(runs[base]) if base and base in runs else None
    print(f"  {'contender':<34} {'flows':>10} {'wall s':>7} {'cpu s':>7} {'flows/s':>11} "
          f"{'flows/s/core':>13} {'vs ' + (base or '-').split()[-1]:>10} {'peak MB':>8}")
    for name, r in runs.items():
        flows, wall, cpu = _f(r, "flows"), _f(r, "wall"), _f(r, "cpu")
        ratio = f"{per_core(r) / base_rate:.2f}x" if base_rate else "-"
        print(f"  {name:<34} {flows:>10,.0f} {wall:>7.2f} {cpu:>7.2f} {flows / wall:>11,.0f} "
              f"{flows / cpu:>13,.0f} {ratio:>10} {_f(r, 'maxrss_mb'):>8.0f}")


# (stage, file suffix, function): cumulative seconds of that function; stages do not nest,
# except where a caller is named (the part of a function's time spent under that caller).
STAGES: tuple[tuple[str, str, str, str | None], ...] = (
    ("index load (--index, --cidrs)", "dredge/commands/index.py", "load_snapshot", None),
    ("gunzip (zlib-ng)", "~", "<method 'decompress' of 'zlib_ng._Decompress' objects>", None),
    ("text read + split in chunks", "dredge/sources/files.py", "_text_chunks", None),
    ("parse text (kernel)", "dredge/flowlog/parser.py", "parse", None),
    ("columns + bounds", "dredge/flowlog/columns.py", "from_parsed", None),
    ("Parquet read + columns", "dredge/pipeline.py", "_parquet", None),
    ("join (2 lookups per flow)", "dredge/enrich/join.py", "enrich", None),
    ("rollup", "dredge/enrich/rollup.py", "add", None),
    ("rollup: rows out", "dredge/enrich/rollup.py", "to_rolled", None),
    ("store: DuckDB insert + commit", "dredge/sinks/duckdb.py", "store_files", None),
    ("store: DuckDB close (checkpoint)", "dredge/sinks/duckdb.py", "close", None),
)


def _cum(stats: dict, suffix: str, func: str, caller: str | None = None) -> float:  # type: ignore[type-arg]
    total = 0.0
    for (file, _line, name), (_cc, _nc, _tt, ct, callers) in stats.items():
        if name == func and file.endswith(suffix):
            if caller is None:
                total += ct
            else:
                total += sum(v[3] for k, v in callers.items() if k[2] == caller)
    return total


def stage_seconds(path: Path) -> Iterator[tuple[str, float]]:
    st = pstats.Stats(str(path))
    stats = st.stats  # type: ignore[attr-defined]
    total = float(st.total_tt)  # type: ignore[attr-defined]
    got = {name: _cum(stats, suffix, func, caller) for name, suffix, func, caller in STAGES}
    # text_chunks' time includes the gunzip it drives; _parquet's the join and rollup it drives
    got["text read + split in chunks"] -= got["gunzip (zlib-ng)"]
    got["Parquet read + columns"] -= _cum(stats, "dredge/pipeline.py", "add_columns", "_parquet")
    yield from got.items()
    yield "start-up (imports), glue, the rest", total - sum(got.values())
    yield "TOTAL (under cProfile)", total


def print_profile(path: Path) -> None:
    for name, sec in stage_seconds(path):
        print(f"  {name:<42} {sec:>7.2f}")


def goals(one: dict[str, Run], walls: dict[str, Run], fixed: dict[str, Run],
          rss: dict[str, Run]) -> list[tuple[str, str, bool]]:
    """(goal, measured, met) for each goal of issue 15 that this run measured."""
    out = []
    whole = one.get("dredge all files")
    if whole:
        rate = per_core(whole)
        out.append(("1. >= 1.0 M flows/s/core end to end (all files, one core)",
                     f"{rate / 1e6:.2f} M ({rate / 1e6 - 1:+.0%} of the goal)", rate >= 1e6))
    v2 = one.get("dredge v2 only")
    start = _f(fixed["after make install"], "cpu") if "after make install" in fixed else 0.0
    for kind in ("v5", "parquet"):
        r = one.get(f"dredge {kind} only")
        if v2 and r:
            # the subsets are small (0.3-1 M flows): compare them past the fixed cost too
            ratio = per_core(r) / per_core(v2)
            net = (_f(r, "flows") / (_f(r, "cpu") - start)) / (_f(v2, "flows") / (_f(v2, "cpu") - start))
            out.append((f"1. {kind} within 20 % of v2 per core",
                         f"{ratio:.2f}x of v2 whole processes, {net:.2f}x past the fixed cost "
                         f"({start:.2f} CPU s)", net >= 0.8))
    for label in ("large files", "small files"):
        w1 = next((r for k, r in walls.items() if k.startswith(label) and k.endswith("workers=1")), None)
        w2 = next((r for k, r in walls.items() if k.startswith(label) and k.endswith("workers=2")), None)
        wd = next((r for k, r in walls.items() if k.startswith(label) and k.endswith("default")), None)
        if w1 and w2:
            sp = _f(w1, "wall") / _f(w2, "wall")
            out.append((f"2. --workers 2 >= 1.8x faster than 1 ({label})",
                         f"{sp:.2f}x ({sp / 1.8 - 1:+.0%} of the goal)", sp >= 1.8))
        one = next((r for k, r in walls.items() if k.startswith(label) and k.endswith("one core")), None)
        if wd and one:
            sp = _f(one, "wall") / _f(wd, "wall")
            out.append((f"2. (both cores) the default vs the same on one core ({label})",
                         f"{sp:.2f}x ({sp / 1.8 - 1:+.0%} of 1.8x)", sp >= 1.8))
        if w1 and w2 and wd:
            best = min(_f(w1, "wall"), _f(w2, "wall"))
            out.append((f"2. the default degree is the best one ({label})",
                         f"default {_f(wd, 'wall'):.2f} s, best {best:.2f} s", _f(wd, "wall") <= best * 1.1))
    floor = fixed.get("imports alone")  # a baseline, not a contender
    for name, r in fixed.items():
        if r is floor:
            continue
        beside = f"; numpy + pyarrow + DuckDB imports alone {_f(floor, 'wall'):.2f} s" if floor else ""
        out.append((f"3. fixed cost <= 0.4 s ({name})",
                     (f"{_f(r, 'wall'):.2f} s wall, {_f(r, 'cpu'):.2f} s CPU "
                      f"({_f(r, 'wall') - 0.4:+.2f} s over)" if _f(r, "wall") > 0.4 else
                      f"{_f(r, 'wall'):.2f} s wall") + beside, _f(r, "wall") <= 0.4))
    sizes = list(rss.items())
    if len(sizes) >= 2:
        (small_n, small), (large_n, large) = sizes[0], sizes[1]
        growth = _f(large, "maxrss_mb") / _f(small, "maxrss_mb")
        out.append(("6. peak RSS does not grow with the input",
                     f"{_f(small, 'maxrss_mb'):.0f} MB for {small_n}, {_f(large, 'maxrss_mb'):.0f} MB for "
                     f"{large_n} flows ({growth:.2f}x)", growth <= 1.2))
    for (small_n, small), (large_n, large) in itertools.pairwise(sizes[1:]):  # past the first large set
        growth = _f(large, "maxrss_mb") / _f(small, "maxrss_mb")
        out.append((f"6. ... nor from {small_n} to {large_n} flows",
                     f"{_f(small, 'maxrss_mb'):.0f} -> {_f(large, 'maxrss_mb'):.0f} MB ({growth:.2f}x)",
                     growth <= 1.2))
    return out


def print_goals(results: list[tuple[str, str, bool]]) -> None:
    print("\ngoals (issue 15):")
    for goal, measured, met in results:
        print(f"  [{'met' if met else 'MISSED'}] {goal}: {measured}")
