"""An independent computation of what replay must store, for end-to-end tests.

Shares no code with Dredge's hot path: stdlib zlib for gzip, DuckDB's CSV/Parquet readers,
Python's ``ipaddress`` and ``json`` for addresses and ownership, a SQL range join for
"owner at flow time" (latest start wins), and a plain longest-prefix scan for CIDRs.
"""

from __future__ import annotations

import ipaddress
import json
import tempfile
import zlib
from datetime import datetime
from pathlib import Path

import duckdb

PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                             "100.64.0.0/10", "fc00::/7")]
COLS = ("start", "bytes", "packets", "log_status", "srcaddr", "dstaddr", "pkt_srcaddr", "pkt_dstaddr")


def _gunzip_tolerant(src: Path, dst: Path) -> None:
    d = zlib.decompressobj(wbits=31)
    out = bytearray()
    data = src.read_bytes()
    while data:
        try:
            out += d.decompress(data)
        except zlib.error:
            break
        if d.eof:
            data = d.unused_data
            d = zlib.decompressobj(wbits=31)
        else:
            break
    cut = out.rfind(b"\n") + 1  # a partial last line is not a record
    dst.write_bytes(bytes(out[:cut]))


def _epoch(v: object) -> int | None:
    if v is None:
        return None
    if isinstance(v, int | float):
        return int(v)
    return int(datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp())


def _canon(text: str | None) -> str | None:
    if text is None or text == "-":
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return "INVALID"


def reference_totals(gen_dir: Path) -> dict[tuple[str, str, int], tuple[int, int, int]]:
    """(src_app, dst_app, minute epoch) -> (bytes, packets, flows)."""
    con = duckdb.connect()
    tmp = Path(tempfile.mkdtemp(prefix="dredge-ref-"))
    selects = []
    for i, f in enumerate(sorted((gen_dir / "logs").rglob("*"))):
        if not f.is_file():
            continue
        if f.name.endswith(".parquet"):
            names = {
                r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{f}')").fetchall()}
            cols = [f"CAST({c} AS VARCHAR) AS {c}" if c in names else f"NULL::VARCHAR AS {c}" for c in COLS]
            selects.append(f"SELECT {', '.join(cols)} FROM read_parquet('{f}')")
            continue
        plain = tmp / f"{i}.log"
        if f.name.endswith(".gz"):
            _gunzip_tolerant(f, plain)
        else:
            plain.write_bytes(f.read_bytes())
        header = plain.read_bytes().split(b"\n", 1)[0].decode().split()
        if not header:
            continue
        names = {h.replace("-", "_") for h in header}
        rel = (f"read_csv('{plain}', delim=' ', header=true, all_varchar=true, ignore_errors=true, "
               f"null_padding=false, quote='', escape='', auto_detect=false, "
               f"columns={{{', '.join(repr(h) + ': ' + repr('VARCHAR') for h in header)}}})")
        cols = [f'"{c.replace("_", "-")}" AS {c}' if c in names else f"NULL::VARCHAR AS {c}" for c in COLS]
        selects.append(f"SELECT {', '.join(cols)} FROM {rel}")
    con.execute("CREATE TABLE raw AS " + " UNION ALL ".join(selects))

    # addresses: canonical text, or INVALID
    addrs = {r[0] for c in ("srcaddr", "dstaddr", "pkt_srcaddr", "pkt_dstaddr")
             for r in con.execute(f"SELECT DISTINCT {c} FROM raw").fetchall()}
    con.execute("CREATE TABLE canon (text VARCHAR, ip VARCHAR)")
    con.executemany("INSERT INTO canon VALUES (?, ?)", [(a, _canon(a)) for a in addrs if a is not None])

    def num_ok(c: str) -> str:
        return f"({c} IS NULL OR {c} = '-' OR TRY_CAST({c} AS BIGINT) IS NOT NULL)"

    con.execute(f"""
        CREATE TABLE recs AS
        SELECT CAST(NULLIF(r.start, '-') AS BIGINT) AS start,
               COALESCE(CAST(NULLIF(r.bytes, '-') AS BIGINT), 0) AS bytes,
               COALESCE(CAST(NULLIF(r.packets, '-') AS BIGINT), 0) AS packets,
               COALESCE(ps.ip, s.ip) AS src, COALESCE(pd.ip, d.ip) AS dst
        FROM raw r
        LEFT JOIN canon s ON s.text = r.srcaddr LEFT JOIN canon d ON d.text = r.dstaddr
        LEFT JOIN canon ps ON ps.text = r.pkt_srcaddr LEFT JOIN canon pd ON pd.text = r.pkt_dstaddr
        WHERE {num_ok('r.start')} AND {num_ok('r.bytes')} AND {num_ok('r.packets')}
          AND 'INVALID' NOT IN (COALESCE(s.ip, ''), COALESCE(d.ip, ''), COALESCE(ps.ip, ''), COALESCE(pd.ip, ''))
          AND (r.log_status IS NULL OR r.log_status IN ('OK', '-'))
    """)

    owners = []
    for line_no, line in enumerate((gen_dir / "owners.jsonl").read_text().splitlines()):
        rec = json.loads(line)
        end = _epoch(rec.get("end"))
        owners.append((str(ipaddress.ip_address(rec["ip"])), _epoch(rec["start"]),
                       end if end is not None else 2**62, rec.get("app"), line_no))
    con.execute('CREATE TABLE owners (ip VARCHAR, s BIGINT, e BIGINT, app VARCHAR, line BIGINT)')
    con.executemany("INSERT INTO owners VALUES (?, ?, ?, ?, ?)", owners)

    nets = []
    lines = (gen_dir / "networks.csv").read_text().splitlines()
    head = lines[0].split(",")
    for k, line in enumerate(lines[1:]):
        row = dict(zip(head, line.split(","), strict=False))
        nets.append((ipaddress.ip_network(row["cidr"], strict=False), k, row["app"]))

    def fallback(ip: str | None) -> str:
        if ip is None:
            return "unknown"
        a = ipaddress.ip_address(ip)
        best = None
        for net, k, app in nets:
            if net.version == a.version and a in net and (best is None or (net.prefixlen, k) > best[:2]):
                best = (net.prefixlen, k, app)
        if best:
            return best[2]
        return "unknown" if any(a.version == n.version and a in n for n in PRIVATE) else "internet"

    ips = {r[0] for c in ("src", "dst") for r in con.execute(f"SELECT DISTINCT {c} FROM recs").fetchall()}
    con.execute("CREATE TABLE fb (ip VARCHAR, app VARCHAR)")
    con.executemany("INSERT INTO fb VALUES (?, ?)", [(ip, fallback(ip)) for ip in ips if ip is not None])

    rows = con.execute("""
        WITH f AS (SELECT row_number() OVER () AS id, * FROM recs),
        so AS (SELECT f.id, o.app FROM f JOIN owners o ON o.ip = f.src AND o.s <= f.start AND f.start < o.e
               QUALIFY row_number() OVER (PARTITION BY f.id ORDER BY o.s DESC, o.line DESC) = 1),
        do_ AS (SELECT f.id, o.app FROM f JOIN owners o ON o.ip = f.dst AND o.s <= f.start AND f.start < o.e
                QUALIFY row_number() OVER (PARTITION BY f.id ORDER BY o.s DESC, o.line DESC) = 1)
        SELECT COALESCE(so.app, fs.app, 'unknown') AS src_app, COALESCE(do_.app, fd.app, 'unknown') AS dst_app,
               (f.start // 60) * 60 AS minute, SUM(f.bytes), SUM(f.packets), COUNT(*)
        FROM f LEFT JOIN so ON so.id = f.id LEFT JOIN do_ ON do_.id = f.id
        LEFT JOIN fb fs ON fs.ip = f.src LEFT JOIN fb fd ON fd.ip = f.dst
        GROUP BY ALL
    """).fetchall()
    con.close()
    return {(r[0], r[1], int(r[2])): (int(r[3]), int(r[4]), int(r[5])) for r in rows}


def dredge_totals(db: Path) -> dict[tuple[str, str, int], tuple[int, int, int]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""
            SELECT src_app, dst_app, CAST(epoch(window_start) AS BIGINT), SUM(bytes), SUM(packets), SUM(flows)
            FROM flows GROUP BY ALL""").fetchall()
    finally:
        con.close()
    return {(r[0], r[1], int(r[2])): (int(r[3]), int(r[4]), int(r[5])) for r in rows}
