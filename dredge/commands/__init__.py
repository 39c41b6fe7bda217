"""The verbs of ``dredge``: one module per command, each with ``add_parser(sub)`` and the
function the parsed arguments dispatch to (``args.func``).

``run`` (the daemon), ``replay``, ``query``, ``parse``, ``generate``, ``index``, ``druid``.
``dredge --help`` builds every parser, so a command module imports only the standard
library, orjson and the error and logging modules at import time; numpy, Arrow, the compiled
kernels, the sinks, boto3 and pydruid when its command runs.
"""
