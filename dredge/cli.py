"""The command line: ``dredge run | replay | query | parse | generate | index | druid | serve |
dashboards | iceberg``.

Argument parsing and dispatch only: each verb lives in :mod:`dredge.commands` (one module per
verb, which adds its own subparser). Bad input never ends in a traceback; errors are caught
once, here, and printed as one ``dredge: error:`` line:

- exit 2: what Dredge refuses on purpose (a :class:`DredgeError`: a bad option, setting,
  file, store, format, credentials; argparse's errors too, as one line), and an ``OSError``
  naming a path that does not exist or cannot be one (ENOENT, ENOTDIR, EISDIR, ENAMETOOLONG);
- exit 1: a failure at run time that is nobody's input (:data:`RUNTIME_ERRORS`: a lost
  lease or checkpoint; a sink down or out of retries; the OS refusing a write: EACCES, ENOSPC, EIO; out of memory) and a
  bug, said as one line (``DREDGE_TRACEBACK=1`` shows where). Commands return 1 themselves
  for records or files they had to drop (``parse``, ``replay``).

One-shot commands log warnings and errors only (stderr stays quiet on success); the servers
keep their info logs (``dredge run`` at its config's ``log_level``). ``--log-level`` or ``DREDGE_LOG_LEVEL`` override.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

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
from dredge.errors import CheckpointError, ConfigError, DecodeError, DredgeError, SinkUnavailable
from dredge.telemetry.logging import LEVELS, configure

RUNTIME_ERRORS = (CheckpointError, DecodeError, SinkUnavailable)
_BAD_PATH = (errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP)
LEVEL_ENV = "DREDGE_LOG_LEVEL"
SERVERS = ("run", "serve")  # long-running: they keep their info logs (and any --every loop)


def _long_running(args: argparse.Namespace) -> bool:
    """The servers, and a command told to keep going (``druid reconcile --every``)."""
    return args.command in SERVERS or bool(getattr(args, "every", None))


class UsageError(Exception):
    """argparse refused the command line; the message is argparse's."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised (printed by :func:`main` as one line)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _level(text: str) -> str:
    if text.strip().lower() not in LEVELS or text != text.strip():
        raise argparse.ArgumentTypeError(f"one of {', '.join(LEVELS)}, not {text!r}")
    return text.lower()


def build_parser() -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = Parser(prog="dredge", description="VPC flow logs, enriched with who owned each IP.")
    p.add_argument("--version", action="version", version=f"dredge {__version__}")
    p.add_argument("--log-level", type=_level, default=None, metavar="LEVEL",
                   help=f"{', '.join(LEVELS)} (default: ${LEVEL_ENV}, else warning; "
                   "serve: info; run: its config's log_level)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (replay.add_parser, query.add_parser, parse.add_parser, generate.add_parser,
                index.add_index_command, run.add_parser, druid.add_druid_command, serve.add_parser,
                dashboards.add_parser, iceberg.add_parser):
        add(sub)
    return p


def _log_level(args: argparse.Namespace) -> str | None:
    """--log-level, else $DREDGE_LOG_LEVEL (checked), else None (the command's default)."""
    if args.log_level:
        return str(args.log_level)
    env = os.environ.get(LEVEL_ENV)
    if env is None:
        return None
    try:
        return _level(env)
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(LEVEL_ENV, str(exc)) from None


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"dredge: error: {' '.join(message.split())}\n")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        level = _log_level(args)
        args.log_level = level
        configure(level or ("info" if _long_running(args) else "warning"))
        rc: int = args.func(args)
        return rc
    except UsageError as exc:
        return _fail(str(exc), 2)
    except DredgeError as exc:
        return _fail(str(exc), 1 if isinstance(exc, RUNTIME_ERRORS) else 2)
    except KeyboardInterrupt:
        sys.stderr.write("dredge: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a path the commands did not check: said as the OS says it
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", 2 if exc.errno in _BAD_PATH else 1)
    except MemoryError:
        return _fail("out of memory", 1)
    except Exception as exc:  # a bug: one line, the traceback on request
        if os.environ.get("DREDGE_TRACEBACK") == "1":
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (a bug; run with "
                     "DREDGE_TRACEBACK=1 to see where, and please report it)", 1)


if __name__ == "__main__":
    sys.exit(main())
