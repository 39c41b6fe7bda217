"""The verbs of ``dredge``: one module per command, each with ``add_parser(sub)`` and the
function the parsed arguments dispatch to (``args.func``).

``run`` (the daemon), ``replay``, ``query``, ``parse``, ``generate``, ``index``, ``druid``.
A command module imports only light modules at import time (``dredge --help`` builds every
parser); the pipeline, the sinks, boto3 and the compiled kernels are imported when the
command runs.
"""
