"""The command line: ``dredge run | replay | query | parse | generate | index | druid | serve |
dashboards | iceberg``.

Argument parsing and dispatch only: each verb lives in :mod:`dredge.commands` (one module per
verb, which adds its own subparser). Bad input never ends in a traceback: a DredgeError prints
one ``dredge: error:`` line and exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from dredge import __version__
from dredge.commands import (
    dashboards,
    druid,
    generate,
    iceberg,
    index,
    parse,
    query,
    replay,
    run,
    serve,
)
from dredge.errors import DredgeError
from dredge.telemetry.logging import configure


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dredge", description="VPC flow logs, enriched with who owned each IP.")
    p.add_argument("--version", action="version", version=f"dredge {__version__}")
    p.add_argument("--log-level", default=os.environ.get("DREDGE_LOG_LEVEL", "info"))
    sub = p.add_subparsers(dest="command", required=True)
    for add in (replay.add_parser, query.add_parser, parse.add_parser, generate.add_parser,
                index.add_index_command, run.add_parser, druid.add_druid_command, serve.add_parser,
                dashboards.add_parser, iceberg.add_parser):
        add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure(args.log_level)
    try:
        rc: int = args.func(args)
        return rc
    except DredgeError as exc:
        sys.stderr.write(f"dredge: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("dredge: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
