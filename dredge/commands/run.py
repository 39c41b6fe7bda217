"""``dredge run --config FILE``: the streaming daemon (:mod:`dredge.app` builds and runs it).

``--check`` validates the configuration (every key, the files it names, the places it
writes) and exits without starting anything: 0 and ``config ok``, or 2 and the key.

A SIGTERM/SIGINT that arrives while the config loads is remembered: the daemon then starts
and stops cleanly at once (``dredge.app.early_stop``).
"""

from __future__ import annotations

import argparse
import signal
from typing import Any


def add_parser(sub: Any) -> None:
    r = sub.add_parser("run", help="the streaming daemon: Kinesis -> enrich -> store, with leases")
    r.add_argument("--config", required=True, help="TOML file (see infra/dredge.example.toml);"
                   " DREDGE_<SECTION>__<KEY> environment variables override it (no default: "
                   "required)")
    r.add_argument("--check", action="store_true",
                   help="validate the configuration and exit (0: ok, 2: the bad key)")
    r.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from dredge.app import early_stop, run_daemon

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: early_stop.set())

    from dredge.config import load_config
    from dredge.telemetry.logging import configure

    config = load_config(args.config)
    configure(args.log_level or config.log_level)
    config.require_streams()
    config.check_paths()
    if args.check:
        print(f"config ok: {args.config} ({len(config.streams)} stream(s))")
        return 0
    return run_daemon(config)
