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
import atexit
import contextlib
import errno
import importlib
import os
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from dredge import __version__
from dredge.errors import CheckpointError, ConfigError, DecodeError, DredgeError, SinkUnavailable
from dredge.telemetry.logging import LEVELS, configure

RUNTIME_ERRORS = (CheckpointError, DecodeError, SinkUnavailable)
_BAD_PATH = (errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP)
LEVEL_ENV = "DREDGE_LOG_LEVEL"
SERVERS = ("run", "serve")
# each verb: its module in dredge.commands and the function that adds its subparser, in the
# order `dredge --help` lists them. A command line naming a verb imports that module only
# (what the others import cost a replay ~40 ms of its start).
COMMANDS = {
    "replay": "add_parser", "query": "add_parser", "parse": "add_parser",
    "generate": "add_parser", "index": "add_index_command", "run": "add_parser",
    "druid": "add_druid_command", "serve": "add_parser", "dashboards": "add_parser",
    "iceberg": "add_parser",
}
_GLOBAL_VALUED = ("--log-level",)  # top-level options that take a value  # long-running: they keep their info logs (and any --every loop)


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


def _verb(argv: Sequence[str]) -> str | None:
    """The verb a command line names (its first word that is not a top-level option), if it
    is one of :data:`COMMANDS`; None for ``dredge --help``, a typo, or no verb."""
    it = iter(argv)
    for word in it:
        if word in _GLOBAL_VALUED:
            next(it, None)
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or (``only``) the top level with that one verb."""
    p: argparse.ArgumentParser = Parser(prog="dredge", description="VPC flow logs, enriched with who owned each IP.")
    p.add_argument("--version", action="version", version=f"dredge {__version__}")
    p.add_argument("--log-level", type=_level, default=None, metavar="LEVEL",
                   help=f"{', '.join(LEVELS)} (default: ${LEVEL_ENV}, else warning; "
                   "serve: info; run: its config's log_level)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for verb, adder in COMMANDS.items():
        if only is None or verb == only:
            getattr(importlib.import_module(f"dredge.commands.{verb}"), adder)(sub)
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
        words = sys.argv[1:] if argv is None else argv
        args = build_parser(_verb(words)).parse_args(words)
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


def entry() -> NoReturn:
    """The ``dredge`` program: :func:`main`, then out without tearing the interpreter down.

    Python's own exit frees every module and object one by one: with numpy, Arrow and DuckDB
    loaded that took ~40 ms, a tenth of a small replay's whole run. Everything that matters at
    exit is done here first: the atexit handlers (logging's flush, thread pools' joins,
    finalizers) and the standard streams. Every command has closed its stores and files by
    the time :func:`main` returns. While any other thread still runs, the exit is Python's own.
    """
    rc = main()
    if threading.active_count() > 1:
        sys.exit(rc)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(rc)


if __name__ == "__main__":
    entry()
