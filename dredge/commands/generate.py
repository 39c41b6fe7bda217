"""``dredge generate OUT``: deterministic sample data (flow logs, ownership history, CIDR map).

Prints one line (what was written and where its manifest is); the manifest, with every file
counted, is ``OUT/manifest.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dredge.commands.options import float_in, int_in
from dredge.errors import ConfigError


def add_parser(sub: Any) -> None:
    g = sub.add_parser("generate", help="write realistic sample flow logs, ownership history and CIDR map")
    g.add_argument("out", help="folder to write (created; an earlier sample there is replaced)")
    g.add_argument("--flows", type=int_in(0, 10**10), default=1_000_000,
                   help="flow records, log-status OK (default: %(default)s)")
    g.add_argument("--seed", type=int_in(0, 2**63 - 1), default=7,
                   help="random seed: the same arguments give the same bytes (default: %(default)s)")
    g.add_argument("--start", help="first hour (default: 2026-11-25T00:00Z)")
    g.add_argument("--hours", type=float_in(1 / 3600, 744), default=None,
                   help="hours the flows span (default: 24)")
    g.set_defaults(func=cmd_generate)


def _check_out(out: Path) -> None:
    """The output folder: not a file, and creatable (a ConfigError naming OUT, not an OSError
    half way through)."""
    if out.exists() and not out.is_dir():
        raise ConfigError("out", f"{out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".dredge-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError("out", f"{out}: cannot be written ({exc.strerror or exc})") from None


def cmd_generate(args: argparse.Namespace) -> int:
    from dredge.generate import generate
    from dredge.times import parse_time

    kwargs: dict[str, Any] = {"flows": args.flows, "seed": args.seed}
    if args.start:
        kwargs["start"] = parse_time(args.start, "--start")
    if args.hours is not None:
        kwargs["hours"] = args.hours
    out = Path(args.out)
    _check_out(out)
    m = generate(out, **kwargs)
    print(f"wrote {out}: {m['flows']:,} flows in {m['files']} files ({m['bytes']:,} bytes), "
          f"{m['intervals']:,} ownership intervals, {m['cidrs']} CIDRs; manifest: "
          f"{out / 'manifest.json'}")
    return 0
