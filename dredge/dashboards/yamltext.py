"""A small YAML writer for the bundle's files: block mappings and sequences, every string
double-quoted with JSON's escapes (a subset of YAML's double-quoted style), so no value is
ever read back as another type (``"no"``, ``"1.0"``, ``"null"`` stay strings).

Dredge has no YAML library at run time, and Superset reads these files with
``yaml.safe_load``; the unit tests read them back with PyYAML.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# characters YAML refuses raw, or reads as line breaks (NEL, U+2028, U+2029)
_UNPRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
# words YAML 1.1 (PyYAML) reads as booleans or null: such a key stays quoted
_SPECIAL = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _key(key: str) -> str:
    if _PLAIN_KEY.fullmatch(key) and key.lower() not in _SPECIAL:
        return key
    return _scalar(key)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        text = repr(value)
        # YAML 1.1 reads a float only with a dot: 1e-05 would come back as a string
        return text if "." in text or "e" not in text else text.replace("e", ".0e", 1)
    if isinstance(value, str):
        # JSON escapes controls, quotes and backslashes; the rest YAML refuses get \uXXXX
        return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}",
                                json.dumps(value, ensure_ascii=False))
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            head = f"{pad}{_key(str(key))}:"
            if isinstance(item, Mapping | list | tuple) and item:
                out.append(head)
                out.extend(_lines(item, indent + 2))
            else:
                out.append(f"{head} {_empty_or_scalar(item)}")
        return out
    if isinstance(value, Sequence) and not isinstance(value, str):
        for item in value:
            if isinstance(item, Mapping | list | tuple) and item:
                inner = _lines(item, indent + 2)
                out.append(f"{pad}- {inner[0].lstrip()}")
                out.extend(inner[1:])
            else:
                out.append(f"{pad}- {_empty_or_scalar(item)}")
        return out
    return [pad + _scalar(value)]


def _empty_or_scalar(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    return _scalar(value)


def dumps(document: Mapping[str, Any]) -> str:
    """``document`` as YAML text (a mapping at the top, as every bundle file is)."""
    return "\n".join(_lines(document, 0)) + "\n"
