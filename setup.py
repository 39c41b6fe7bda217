"""Build Dredge's compiled kernels (C, CPython's stable API only; no numpy headers needed).

Everything else about the package is in pyproject.toml. Each extension is one C file next to
the Python module that wraps it; the wrappers pass numpy arrays through the buffer protocol
and the C code checks every length it is given before it reads or writes.
"""

from setuptools import Extension, setup

FLAGS = ["-O3", "-std=c11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration",
         "-fno-strict-aliasing"]
HEADERS = ["dredge/_buffers.h"]  # the buffer checks the C files share (rebuilt when it changes)


def native(name: str, source: str) -> Extension:
    return Extension(name, [source], extra_compile_args=FLAGS, depends=HEADERS)


setup(ext_modules=[
    # parse: split lines, tokenize, integers and addresses; the rollup's group-by
    native("dredge.flowlog._native", "dredge/flowlog/_native.c"),
    # index: hash-table layout, interval flattening, lookups
    native("dredge.index.kernels._native", "dredge/index/kernels/_native.c"),
    # decode: CloudWatch Logs JSON scan, KPL spans
    native("dredge.decode._native", "dredge/decode/_native.c"),
    # generate: the line formatter (not in decode's: importing dredge.decode costs ~0.1 s)
    native("dredge.generate._native", "dredge/generate/_native.c"),
])
