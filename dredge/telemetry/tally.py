"""Tally: a dataclass of counters that adds up field by field.

Per-run counts (records by outcome, lookups by result, ...) are small dataclasses of ints;
``a.add(b)`` adds every field of ``b`` (any object with the same attribute names, such as a
frozen per-batch result) into ``a``, so no count class writes its own ``add``.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class Tally:
    """Mixin for ``@dataclass`` counters (every field a number)."""

    def add(self, other: Any) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
