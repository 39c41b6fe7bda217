"""How many cores this process may run on: ``taskset``, cgroup CPU sets and container
``--cpuset-cpus`` included (``os.cpu_count()`` counts the machine's). Replay picks its
workers from it and the DuckDB store its threads: threads beyond these cores only contend."""

from __future__ import annotations

import os


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
