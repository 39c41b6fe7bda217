"""Replay throughput and cost (issue 15): Dredge next to two baselines measured in the same run.

    python benchmarks/replay.py [--flows 2000000] [--data bench-data] [--skip rss,python,...]

Every figure comes from whole processes (CPU time and peak RSS from the kernel's rusage):
  one core     `taskset -c 0 dredge replay --workers 1` on the whole data set and on its v2, v5
               and Parquet files alone; per-core rate = flows / (user + sys CPU s), start-up
               included (goal: >= 1.0 M flows/s/core; v5 and Parquet within 20 % of v2)
  workers      `dredge replay --workers 1` and `--workers 2`, wall time, on the data set (a few
               large files) and on the same flows spread over 24 hours (many small files);
               goal: 2 workers >= 1.8x faster; `default` is what the command picks by itself;
               and the default under `taskset -c 0`: both cores against one, whatever the
               workers (one worker already keeps more than a core busy)
  fixed cost   one small file, an index of 10k intervals, start to exit, after `make install`
               (the C kernels are built and the bytecode written then: a first run compiles
               nothing), on one core and on all; goal <= 0.4 s; the imports of numpy, pyarrow
               and DuckDB alone are timed beside it (the floor)
  memory       peak RSS of the one-core replay of 2M and of 20M flows (goal: no growth)
  phases       where the second core is lost: CPU seconds of the one-core replay before the first
               file (start-up, index, store open), over the files, after the last file (last
               commit, close); the serial parts bound what 2 workers can gain (Amdahl)
  baselines    DuckDB read_csv/read_parquet + two ASOF JOINs + the same minute rollup,
               threads=1; and a plain per-record Python replay (gzip + split + dict/bisect
               lookups + dict rollup, on a subset of files)
  profile      the one-core replay under cProfile, seconds per stage
The machine's load average is printed: timings taken beside other work are noisy.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from replay_report import goals, print_goals, print_profile, print_table

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def measured(cmd: list[str], env: dict[str, str] | None = None,
             cwd: Path | None = None) -> dict[str, object]:
    """Run cmd; wall time, CPU time and peak RSS of that process alone."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, cwd=cwd)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} failed with status {status}")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "maxrss_mb": ru.ru_maxrss / 1024,
            "out": out.decode()}


# -- contender: per-record Python ------------------------------------------------------------

def python_replay(data: Path, min_flows: int) -> dict[str, int]:
    owners: dict[str, list[tuple[int, int, tuple[str, ...]]]] = {}
    from datetime import datetime

    def epoch(v: object) -> int:
        if v is None:
            return 2**62
        if isinstance(v, int | float):
            return int(v)
        return int(datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp())

    for line in (data / "owners.jsonl").read_text().splitlines():
        r = json.loads(line)
        owners.setdefault(r["ip"], []).append(
            (epoch(r["start"]), epoch(r.get("end")),
             tuple(r.get(k) for k in ("app", "cluster", "account", "region", "az", "vpc", "subnet", "type"))))
    starts = {ip: [iv[0] for iv in sorted(ivs)] for ip, ivs in owners.items()}
    owners = {ip: sorted(ivs) for ip, ivs in owners.items()}
    unknown = ("unknown",) + (None,) * 7

    def owner(ip: str, t: int) -> tuple[str | None, ...]:
        ivs = owners.get(ip)
        if ivs:
            i = bisect.bisect_right(starts[ip], t) - 1
            if i >= 0 and t < ivs[i][1]:
                return ivs[i][2]
        return unknown

    rollup: dict[tuple[object, ...], list[int]] = {}
    flows = 0
    files = sorted(p for p in (data / "logs").rglob("*.log.gz"))
    for f in files:
        try:
            with gzip.open(f, "rt") as fh:
                header = fh.readline().split()
                idx = {name: i for i, name in enumerate(header)}
                n = len(header)
                for line in fh:
                    p = line.split()
                    if len(p) != n or p[idx["log-status"]] != "OK":
                        continue
                    try:
                        start = int(p[idx["start"]])
                        b = int(p[idx["bytes"]])
                        pk = int(p[idx["packets"]])
                    except ValueError:
                        continue
                    src = p[idx["pkt-srcaddr"]] if "pkt-srcaddr" in idx and p[idx["pkt-srcaddr"]] != "-" else p[idx["srcaddr"]]
                    dst = p[idx["pkt-dstaddr"]] if "pkt-dstaddr" in idx and p[idx["pkt-dstaddr"]] != "-" else p[idx["dstaddr"]]
                    key = (start // 60, owner(src, start), owner(dst, start), p[idx["protocol"]], p[idx["action"]])
                    acc = rollup.get(key)
                    if acc is None:
                        rollup[key] = [b, pk, 1]
                    else:
                        acc[0] += b
                        acc[1] += pk
                        acc[2] += 1
                    flows += 1
        except (EOFError, OSError):
            pass
        if flows >= min_flows:
            break
    return {"flows": flows, "groups": len(rollup)}


# -- contender: DuckDB -------------------------------------------------------------------------

def duckdb_replay(data: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(Path(tempfile.mkdtemp()) / "baseline.duckdb"))
    con.execute("SET threads=1")
    manifest = json.loads((data / "manifest.json").read_text())
    truncated = manifest.get("truncated", {}).get("path")
    texts = [str(p) for p in sorted((data / "logs").rglob("*.log.gz"))
             if not (truncated and str(p).endswith(truncated))]
    parquets = [str(p) for p in sorted((data / "logs").rglob("*.parquet"))]
    t = "CASE WHEN regexp_full_match({c}, '[0-9]+') THEN CAST({c} AS BIGINT) ELSE CAST(epoch(CAST({c} AS TIMESTAMPTZ)) AS BIGINT) END"
    con.execute(f"""
        CREATE TABLE owners AS
        SELECT ip, {t.format(c='start')} AS s, COALESCE({t.format(c='"end"')}, 4611686018427387904) AS e,
               app, cluster, account, region, az, vpc, subnet, type
        FROM read_json('{data / "owners.jsonl"}', format='newline_delimited',
             columns={{ip: 'VARCHAR', start: 'VARCHAR', "end": 'VARCHAR', app: 'VARCHAR', cluster: 'VARCHAR',
                      account: 'VARCHAR', region: 'VARCHAR', az: 'VARCHAR', vpc: 'VARCHAR', subnet: 'VARCHAR',
                      type: 'VARCHAR'}})""")
    cols = ('"start" AS start, bytes, packets, protocol, action, "log-status" AS log_status, '
            'COALESCE(NULLIF("pkt-srcaddr", \'-\'), srcaddr) AS src, COALESCE(NULLIF("pkt-dstaddr", \'-\'), dstaddr) AS dst, '
            '"flow-direction" AS flow_direction, "traffic-path" AS traffic_path')
    have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({parquets!r}, union_by_name=true)")
            .fetchall()} if parquets else set()

    def pq_col(name: str, pkt: str | None = None) -> str:
        if pkt and pkt in have:
            return f"COALESCE({pkt}, {name})"
        return name if name in have else "NULL"

    pcols = (f"start, bytes, packets, CAST(protocol AS VARCHAR) AS protocol, action, log_status, "
             f"{pq_col('srcaddr', 'pkt_srcaddr')} AS src, {pq_col('dstaddr', 'pkt_dstaddr')} AS dst, "
             f"{pq_col('flow_direction')} AS flow_direction, CAST({pq_col('traffic_path')} AS VARCHAR) AS traffic_path")
    con.execute(f"""
        CREATE TABLE f AS
        SELECT TRY_CAST(start AS BIGINT) AS start, TRY_CAST(bytes AS BIGINT) AS bytes,
               TRY_CAST(packets AS BIGINT) AS packets, protocol, action, flow_direction, traffic_path, src, dst
        FROM (SELECT {cols} FROM read_csv({texts!r}, delim=' ', header=true, union_by_name=true,
                                          all_varchar=true, ignore_errors=true)
              UNION ALL BY NAME
              SELECT {pcols} FROM read_parquet({parquets!r}, union_by_name=true))
        WHERE log_status = 'OK'""")
    owner_cols = ", ".join(f"{a}.{c} AS {a}_{c}" for a in ("s", "d")
                           for c in ("app", "cluster", "account", "region", "az", "vpc", "subnet", "type"))
    con.execute(f"""
        CREATE TABLE rolled AS
        SELECT time_bucket(INTERVAL 60 SECOND, to_timestamp(f.start)) AS w, {owner_cols},
               f.protocol, f.action, f.flow_direction, f.traffic_path,
               SUM(f.bytes) AS bytes, SUM(f.packets) AS packets, COUNT(*) AS flows
        FROM f ASOF LEFT JOIN owners s ON s.ip = f.src AND f.start >= s.s
               ASOF LEFT JOIN owners d ON d.ip = f.dst AND f.start >= d.s
        WHERE (s.e IS NULL OR f.start < s.e) AND (d.e IS NULL OR f.start < d.e)
        GROUP BY ALL""")
    flows = con.execute("SELECT SUM(flows), COUNT(*) FROM rolled").fetchone()
    assert flows is not None
    return {"flows": int(flows[0]), "groups": int(flows[1])}


def dataset(root: Path, flows: int, hours: float, seed: int) -> Path:
    data = root / f"f{flows}-h{hours:g}-s{seed}"
    if not (data / "manifest.json").exists():
        print(f"generating {flows:,} flows over {hours:g} h into {data} ...", flush=True)
        subprocess.run([PY, "-m", "dredge.cli", "generate", str(data), "--flows", str(flows),
                        "--seed", str(seed), "--hours", str(hours)], check=True, stdout=subprocess.DEVNULL)
    return data


def replay_cmd(data: Path, paths: list[str], workers: int | None, one_core: bool,
               index: Path | None = None) -> list[str]:
    cmd = ["taskset", "-c", "0"] if one_core else []
    cmd += [PY, "-m", "dredge.cli", "replay", *paths, "--index", str(index or data / "owners.jsonl"),
            "--cidrs", str(data / "networks.csv"), "--db", str(Path(tempfile.mkdtemp()) / "d.duckdb"),
            "--json", "--no-progress"]
    return cmd + (["--workers", str(workers)] if workers else [])


def dredge_run(data: Path, paths: list[str], workers: int | None = 1, one_core: bool = True,
               index: Path | None = None, env: dict[str, str] | None = None) -> dict[str, object]:
    r = measured(replay_cmd(data, paths, workers, one_core, index), env)
    summary = json.loads(str(r["out"]))
    r["flows"] = summary["flows"]
    r["loop_rate"] = summary["flows_per_s"]
    return r


# Runs the command line with CPU time (every thread) noted at replay's phase boundaries.
PHASES = """
import json, resource, sys
from dredge import replay as R
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
marks = {}
inner, ordered = R.replay, R._ordered_map
def files(*a, **k):
    yield from ordered(*a, **k)
    marks["files"] = cpu()
def replay(*a, **k):
    marks["start"] = cpu()
    return inner(*a, **k)
R.replay, R._ordered_map = replay, files
from dredge.cli import main
main(sys.argv[1:])
print(json.dumps({"before": marks["start"], "files": marks["files"] - marks["start"],
                  "after": cpu() - marks["files"]}), file=sys.stderr)
"""


def phases(data: Path) -> dict[str, float]:
    """CPU seconds of the one-core replay (workers=1) before, over and after the files."""
    cmd = replay_cmd(data, [str(data / "logs")], 1, True)
    cmd[cmd.index("-m"):cmd.index("replay")] = ["-c", PHASES]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    got: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return got


def by_format(data: Path) -> dict[str, list[str]]:
    """The data set's files by format (v2, v5 text; Parquet), from its manifest."""
    out: dict[str, list[str]] = {}
    for f in json.loads((data / "manifest.json").read_text())["file_list"]:
        kind = "parquet" if f["kind"] == "parquet" else f["format"]
        out.setdefault(kind, []).append(str(data / f["path"]))
    return out


def index_10k(root: Path, big: Path) -> Path:
    """The fixed cost's index: the first 10k intervals of ``big``'s ownership file."""
    index = root / "owners-10k.jsonl"
    if not index.exists():
        with (big / "owners.jsonl").open() as src:
            index.write_text("".join(line for _, line in zip(range(10_000), src, strict=False)))
    return index


def fixed_cost(big: Path, root: Path, seed: int) -> dict[str, dict[str, object]]:
    """One small file with a 10k-interval index, start to exit; best of five, on one core
    and on all of them (a second core loads the index beside the store and the file)."""
    small = dataset(root, 2000, 1.0, seed)
    file = by_format(small)["v2"][0]
    index = index_10k(root, big)
    # as `make install` leaves it: every module's bytecode current (an edit since, under
    # PYTHONDONTWRITEBYTECODE, would have each run compile the changed sources again)
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "dredge")], check=True,
                   stdout=subprocess.DEVNULL)
    out = {}
    for name, one_core in (("after make install", True), ("after make install, all cores", False)):
        tries = [dredge_run(small, [file], None, one_core, index) for _ in range(5)]
        out[name] = min(tries, key=lambda r: float(r["wall"]))  # type: ignore[arg-type]
    # the floor under it: the libraries a replay needs, imported and nothing else
    imports = [measured(["taskset", "-c", "0", PY, "-c", IMPORTS]) for _ in range(5)]
    out["imports alone"] = min(imports, key=lambda r: float(r["wall"]))  # type: ignore[arg-type]
    return out


# a text replay needs no Parquet; out the way `dredge` leaves (no interpreter teardown)
IMPORTS = ("import atexit, os, numpy, pyarrow, pyarrow.compute, duckdb; "
           "atexit._run_exitfuncs(); os._exit(0)")


def profile(data: Path, out: Path) -> None:
    """The one-core replay under cProfile, timed in CPU seconds of its (only) thread."""
    argv = [*replay_cmd(data, [str(data / "logs")], 1, False)[3:], "--read-ahead", "0"]
    code = ("import cProfile, sys, time; from dredge.cli import main; "
            "p = cProfile.Profile(time.thread_time); p.runcall(main, sys.argv[2:]); "
            "p.dump_stats(sys.argv[1])")
    subprocess.run(["taskset", "-c", "0", PY, "-c", code, str(out), *argv],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=2_000_000)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", default=str(ROOT / "bench-data"))
    ap.add_argument("--python-flows", type=int, default=300_000, help="flows for the per-record baseline")
    ap.add_argument("--rss-flows", default="20000000",
                    help="the large data set(s) for peak RSS, comma-separated (e.g. 20000000,40000000: "
                         "whether the peak still grows past 20M)")
    ap.add_argument("--contender", help=argparse.SUPPRESS)
    ap.add_argument("--skip", default="",
                    help="comma-separated: formats, workers, phases, fixed, rss, profile, python, "
                         "duckdb")
    args = ap.parse_args()
    root = Path(args.data)
    data = root / f"f{args.flows}-h{args.hours:g}-s{args.seed}"
    if args.contender == "python":
        print(json.dumps(python_replay(data, args.python_flows)))
        return
    if args.contender == "duckdb":
        print(json.dumps(duckdb_replay(data)))
        return

    skip = set(args.skip.split(","))
    data = dataset(root, args.flows, args.hours, args.seed)
    manifest = json.loads((data / "manifest.json").read_text())
    mb = sum(p.stat().st_size for p in (data / "logs").rglob("*") if p.is_file()) / 1e6
    print(f"data: {manifest['flows']:,} flows in {manifest['files']} files ({mb:.0f} MB on disk), "
          f"{manifest['intervals']:,} ownership intervals; cores: {os.cpu_count()}; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    logs = [str(data / "logs")]
    one: dict[str, dict[str, object]] = {"dredge all files": dredge_run(data, logs)}
    if "formats" not in skip:
        for kind, files in sorted(by_format(data).items()):
            one[f"dredge {kind} only"] = dredge_run(data, files)
    for name in ("duckdb", "python"):
        if name not in skip:
            r = measured(["taskset", "-c", "0", PY, __file__, "--contender", name, "--flows", str(args.flows),
                          "--hours", str(args.hours), "--seed", str(args.seed), "--data", args.data,
                          "--python-flows", str(args.python_flows)])
            r.update(json.loads(str(r["out"])))
            one[f"baseline {name}"] = r
    print("\none core (taskset -c 0, --workers 1):")
    print_table(one, "baseline duckdb")

    walls: dict[str, dict[str, object]] = {}
    if "workers" not in skip:
        many = dataset(root, args.flows, 24.0, args.seed)
        for label, d in (("large files", data), ("small files", many)):
            n = len(list((d / "logs").rglob("*.*")))
            for workers in (1, 2, None):
                name = f"{label} ({n}) workers={workers or 'default'}"
                walls[name] = dredge_run(d, [str(d / "logs")], workers, one_core=False)
            # the same replay confined to one core: what both cores gain over one, whatever
            # the workers (one worker already keeps more than a core busy: read-ahead, DuckDB)
            walls[f"{label} ({n}) one core"] = dredge_run(d, [str(d / "logs")], None, one_core=True)
        print("\nwall time (both cores, and the default confined to one):")
        print_table(walls, None)
    if "phases" not in skip:
        print("\nwhere the second core is lost (CPU s of the one-core replay; bound = what 2 perfect "
              "workers gain with the serial parts as they are):")
        for label, d in (("large files", data), ("small files", dataset(root, args.flows, 24.0, args.seed))):
            p = phases(d)
            total = p["before"] + p["files"] + p["after"]
            bound = total / (p["before"] + p["files"] / 2 + p["after"])
            print(f"  {label:<12} before the files {p['before']:.2f}  files {p['files']:.2f}  after the "
                  f"last file {p['after']:.2f}  serial {(p['before'] + p['after']) / total:.0%}  "
                  f"bound for 2 workers {bound:.2f}x")

    fixed = {} if "fixed" in skip else fixed_cost(data, root, args.seed)
    if fixed:
        print("\nfixed cost: one small file, 10k intervals:")
        for name, r in fixed.items():
            print(f"  {name:<20} wall {float(r['wall']):.2f} s  cpu {float(r['cpu']):.2f} s  "  # type: ignore[arg-type]
                  f"peak {float(r['maxrss_mb']):.0f} MB")  # type: ignore[arg-type]

    rss = {}
    if "rss" not in skip:
        rss[f"{args.flows:,}"] = one["dredge all files"]
        for n in (int(x) for x in args.rss_flows.split(",") if x):
            large = dataset(root, n, args.hours, args.seed)
            rss[f"{n:,}"] = dredge_run(large, [str(large / "logs")])
        print("\npeak RSS (one core, --workers 1):")
        print_table(rss, None)

    if "profile" not in skip:
        prof = Path(tempfile.mkdtemp()) / "replay.prof"
        profile(data, prof)
        print("\nper-stage profile (cProfile, CPU s of the one thread; one core, all files, --read-ahead 0):")
        print_profile(prof)

    print_goals(goals(one, walls, fixed, rss))


if __name__ == "__main__":
    main()
