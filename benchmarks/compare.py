"""A/B of two revisions, side by side in the same run: the replay's cost on one core and its
fixed cost, interleaved round by round so that the machine's drift hits both alike.

    python benchmarks/compare.py REV [--rounds 5] [--flows 2000000] [--cases one-core,fixed]

Cases (``--cases``, comma-separated): ``one-core`` the replay of the data set on one core
(`taskset -c 0 --workers 1`), CPU s; ``fixed`` one small file, 10k intervals, one core, wall
s; ``both-cores`` the data set with the default workers on every core, wall s (goal 2: the
serial parts show here, not on one core); ``small-files`` the same flows over 24 hours as
170 files, default workers, every core, wall s. Default: one-core,fixed.

REV (a commit, branch or tag) is checked out in a temporary git worktree; the working tree is
the other side. Both run as `python -S -m dredge.cli` from their own folder with this venv's
libraries, so each imports its own `dredge`. The C kernels are built once, by `make install`:
REV must have the same C sources (the built extensions are copied into its worktree), else
this refuses. Prints, per side, the median and every run, and the ratio of the medians.
Single runs on a 2-core VM vary by 10-15 %: trust medians of 5 or more rounds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from replay import PY, ROOT, by_format, dataset, index_10k, measured, replay_cmd

KERNELS = ("*.c", "*.h")


def worktree(rev: str) -> Path:
    """REV in a temporary worktree, with this tree's built kernels and current bytecode."""
    if subprocess.run(["git", "diff", "--quiet", rev, "--", *[f"dredge/**/{k}" for k in KERNELS],
                       *[f"dredge/{k}" for k in KERNELS]], cwd=ROOT).returncode != 0:
        raise SystemExit(f"the C kernels differ between {rev} and the working tree: build {rev} "
                         "in a clone of its own (make install) and compare by hand")
    where = Path(tempfile.mkdtemp(prefix="dredge-compare-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--quiet", "--detach", str(where), rev], cwd=ROOT,
                   check=True)
    for so in (ROOT / "dredge").rglob("*.so"):
        shutil.copy2(so, where / so.relative_to(ROOT))
    for tree in (where, ROOT):
        subprocess.run([PY, "-m", "compileall", "-q", str(tree / "dredge")], check=True,
                       stdout=subprocess.DEVNULL)
    return where


def run(tree: Path, cmd: list[str]) -> dict[str, object]:
    """``cmd`` (a replay_cmd) as `python -S -m dredge.cli` of ``tree``."""
    at = cmd.index("-m")
    cmd = [*cmd[:at], "-S", *cmd[at:]]
    libs = sysconfig.get_paths()["purelib"]
    return measured(cmd, {"PYTHONPATH": f"{tree}:{libs}"}, cwd=tree)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--flows", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", default=str(ROOT / "bench-data"))
    ap.add_argument("--cases", default="one-core,fixed",
                    help="comma-separated: one-core, fixed, both-cores, small-files")
    args = ap.parse_args()
    wanted = args.cases.split(",")
    unknown = set(wanted) - {"one-core", "fixed", "both-cores", "small-files"}
    if unknown:
        raise SystemExit(f"unknown case(s): {', '.join(sorted(unknown))}")
    root = Path(args.data)
    data = dataset(root, args.flows, 1.0, args.seed)
    small = dataset(root, 2000, 1.0, args.seed)
    index = index_10k(root, data)
    one_file = [by_format(small)["v2"][0]]
    base = worktree(args.rev)
    sides = {args.rev: base, "working tree": ROOT}
    # name: (data set, paths, index, what, workers (None: the default), on one core)
    every: dict[str, tuple[str, tuple[Path, list[str], Path | None, str, int | None, bool]]] = {
        "one-core": (f"one core, {args.flows:,} flows: CPU s",
                     (data, [str(data / "logs")], None, "cpu", 1, True)),
        "fixed": ("fixed cost (one file, 10k intervals, one core): wall s",
                  (small, one_file, index, "wall", 1, True)),
        "both-cores": (f"both cores, default workers, {args.flows:,} flows: wall s",
                       (data, [str(data / "logs")], None, "wall", None, False)),
    }
    if "small-files" in wanted:
        many = dataset(root, args.flows, 24.0, args.seed)
        every["small-files"] = (f"both cores, default workers, {args.flows:,} flows in small "
                                "files (24 h): wall s", (many, [str(many / "logs")], None, "wall",
                                                         None, False))
    cases = dict(every[c] for c in wanted)
    got: dict[tuple[str, str], list[float]] = {}
    try:
        for r in range(args.rounds):
            for case, (d, paths, idx, what, workers, one_core) in cases.items():
                for name, tree in sides.items():
                    res = run(tree, replay_cmd(d, paths, workers, one_core, idx))
                    got.setdefault((case, name), []).append(float(res[what]))  # type: ignore[arg-type]
            print(f"round {r + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    for case in cases:
        print(case)
        meds = {}
        for name in sides:
            runs = got[(case, name)]
            meds[name] = statistics.median(runs)
            print(f"  {name:<14} median {meds[name]:.3f}  runs {' '.join(f'{v:.3f}' for v in runs)}")
        a, b = meds[args.rev], meds["working tree"]
        print(f"  working tree / {args.rev}: {b / a:.3f}x ({(b - a) / a:+.1%})")


if __name__ == "__main__":
    main()
