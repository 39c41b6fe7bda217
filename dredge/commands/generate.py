"""``dredge generate OUT``: deterministic sample data (flow logs, ownership history, CIDR map)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson


def add_parser(sub: Any) -> None:
    g = sub.add_parser("generate", help="write realistic sample flow logs, ownership history and CIDR map")
    g.add_argument("out")
    g.add_argument("--flows", type=int, default=1_000_000)
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--start", help="first hour (default 2026-11-25T00:00Z)")
    g.add_argument("--hours", type=float)
    g.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from dredge.generate import generate
    from dredge.query.spec import parse_time

    kwargs: dict[str, Any] = {"flows": args.flows, "seed": args.seed}
    if args.start:
        kwargs["start"] = parse_time(args.start)
    if args.hours is not None:
        kwargs["hours"] = args.hours
    summary = generate(Path(args.out), **kwargs)
    sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    return 0
