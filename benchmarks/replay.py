"""Replay throughput: Dredge next to two baselines measured in the same run.

    python benchmarks/replay.py [--flows 2000000] [--hours 1] [--data bench-data]

Contenders, each in its own process (CPU time and peak RSS from the kernel's rusage):
  dredge-1     `dredge replay --workers 1` into a fresh DuckDB file
  dredge-2     `dredge replay --workers 2` (files in parallel; per-core = flows / CPU s)
  python       a plain per-record Python replay: gzip + split + dict/bisect lookups + dict rollup
               (on a subset of files, enough for a stable rate)
  duckdb       DuckDB read_csv/read_parquet + two ASOF JOINs + the same minute rollup, threads=1
Per-core rate = flows / (user + sys CPU seconds) of the contender's process, start-up included.
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

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def measured(cmd: list[str]) -> dict[str, object]:
    """Run cmd; wall time, CPU time and peak RSS of that process alone."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
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
    pcols = ("start, bytes, packets, CAST(protocol AS VARCHAR) AS protocol, action, log_status, "
             "COALESCE(pkt_srcaddr, srcaddr) AS src, COALESCE(pkt_dstaddr, dstaddr) AS dst, "
             "flow_direction, CAST(traffic_path AS VARCHAR) AS traffic_path")
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=2_000_000)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", default=str(ROOT / "bench-data"))
    ap.add_argument("--python-flows", type=int, default=300_000, help="flows for the per-record baseline")
    ap.add_argument("--contender", help=argparse.SUPPRESS)
    ap.add_argument("--skip", default="", help="comma-separated contenders to skip")
    args = ap.parse_args()
    data = Path(args.data) / f"f{args.flows}-h{args.hours:g}-s{args.seed}"
    if args.contender == "python":
        print(json.dumps(python_replay(data, args.python_flows)))
        return
    if args.contender == "duckdb":
        print(json.dumps(duckdb_replay(data)))
        return

    if not (data / "manifest.json").exists():
        print(f"generating {args.flows:,} flows into {data} ...", flush=True)
        subprocess.run([PY, "-m", "dredge.cli", "generate", str(data), "--flows", str(args.flows),
                        "--seed", str(args.seed), "--hours", str(args.hours)], check=True,
                       stdout=subprocess.DEVNULL)
    manifest = json.loads((data / "manifest.json").read_text())
    text_mb = sum(p.stat().st_size for p in (data / "logs").rglob("*") if p.is_file()) / 1e6
    print(f"data: {manifest['flows']:,} flows in {manifest['files']} files ({text_mb:.0f} MB on disk), "
          f"{manifest['intervals']:,} ownership intervals; cores: {os.cpu_count()}")
    skip = set(args.skip.split(","))
    results: dict[str, dict[str, object]] = {}
    for name, workers in (("dredge-1", 1), ("dredge-2", 2)):
        if name in skip:
            continue
        db = Path(tempfile.mkdtemp()) / "dredge.duckdb"
        r = measured([PY, "-m", "dredge.cli", "replay", str(data / "logs"), "--index", str(data / "owners.jsonl"),
                      "--cidrs", str(data / "networks.csv"), "--db", str(db), "--workers", str(workers),
                      "--json", "--no-progress"])
        summary = json.loads(str(r["out"]))
        r["flows"] = summary["flows"]
        r["loop_rate"] = summary["flows_per_s"]
        results[name] = r
    for name in ("python", "duckdb"):
        if name in skip:
            continue
        r = measured([PY, __file__, "--contender", name, "--flows", str(args.flows), "--hours", str(args.hours),
                      "--seed", str(args.seed), "--data", args.data, "--python-flows", str(args.python_flows)])
        r.update(json.loads(str(r["out"])))
        results[name] = r

    base = results.get("duckdb")
    base_rate = float(base["flows"]) / float(base["cpu"]) if base else None  # type: ignore[arg-type]
    print(f"\n{'contender':<10} {'flows':>10} {'wall s':>8} {'cpu s':>8} {'flows/s':>12} "
          f"{'flows/s/core':>13} {'vs duckdb':>10} {'peak MB':>8}")
    for name, r in results.items():
        flows, wall, cpu = float(r["flows"]), float(r["wall"]), float(r["cpu"])  # type: ignore[arg-type]
        per_core = flows / cpu
        ratio = f"{per_core / base_rate:.2f}x" if base_rate else "-"
        print(f"{name:<10} {flows:>10,.0f} {wall:>8.2f} {cpu:>8.2f} {flows / wall:>12,.0f} {per_core:>13,.0f} "
              f"{ratio:>10} {float(r['maxrss_mb']):>8.0f}")  # type: ignore[arg-type]
    for name in ("dredge-1", "dredge-2"):
        if name in results:
            print(f"{name}: replay loop alone (after start-up and index load): {results[name]['loop_rate']:,} flows/s")


if __name__ == "__main__":
    main()
