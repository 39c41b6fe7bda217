"""The verbs of ``dredge``: one module per command, each with ``add_parser(sub)`` and the
function the parsed arguments dispatch to (``args.func``).

``run`` (the daemon), ``replay``, ``query``, ``parse``, ``generate``, ``index``, ``druid``,
``serve``, ``dashboards``; shared by them: :mod:`~dredge.commands.options` (argparse value
types: a bad value is argparse's one-line error) and :mod:`~dredge.commands.stores` (the
``--db`` store, checked before any work).
``dredge --help`` builds every parser, so a command module imports only the standard
library, orjson and the error and logging modules at import time; numpy, Arrow, the compiled
kernels, the sinks, boto3 and pydruid when its command runs.
"""
