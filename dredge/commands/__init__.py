"""The verbs of ``dredge``: one module per command, each with ``add_parser(sub)`` and the
function the parsed arguments dispatch to (``args.func``).

``run`` (the daemon), ``replay``, ``query``, ``parse``, ``generate``, ``index``, ``druid``.
``dredge --help`` builds every parser, so a command module imports the pipeline, the
sinks, boto3 and pydruid only when its command runs. (``index.py`` still loads numpy, Arrow
and the compiled address parser at import time, as it did before the move: most of what
``dredge --help`` costs.)
"""
