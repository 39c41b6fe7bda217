"""Settings dataclasses from TOML and ``DREDGE_*`` environment variables, and their checks.

Every component declares its settings as a frozen dataclass beside its code: the field
defaults *are* the defaults, ``validate()`` raises :class:`ConfigError` naming the key. This
module is what turns a mapping (a TOML document) into such a tree and nothing else; it knows
no component. :mod:`dredge.config` composes the components' dataclasses into ``DredgeConfig``
and calls :func:`load`.

- :func:`build`: a dataclass from a mapping; unknown keys and wrong types are refused by
  their dotted name (``pipeline.flush_intervall: unknown key``). An optional section
  (``X | None``) is on when present.
- :func:`apply_env`: ``DREDGE_`` + the key's path in upper case with ``__`` between levels
  (list items by index) folded into the mapping, typed by the target field.
- :func:`sub_validate`: run a nested section's ``validate()`` and make the key it names a
  full dotted path (``streams[0].start_position``).
- One check per rule shared by many sections: :func:`check_positive`, :func:`check_url`.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from dredge.errors import ConfigError

ENV_PREFIX = "DREDGE_"

T = TypeVar("T")


# -- checks ----------------------------------------------------------------------------


def sub_validate(prefix: str, validate: Callable[[], None]) -> None:
    """Run a component's validate() and make the field it names a full dotted path."""
    try:
        validate()
    except ConfigError as exc:
        if exc.field.startswith(prefix + ".") or exc.field == prefix:
            raise
        message = str(exc)[len(exc.field) + 2:]
        raise ConfigError(f"{prefix}.{exc.field}", message) from None


def check_positive(section: object, *names: str, prefix: str = "") -> None:
    """Each named number field must be > 0 (``<prefix><name>: must be > 0``)."""
    for name in names:
        if not getattr(section, name) > 0:
            raise ConfigError(prefix + name, "must be > 0")


def check_url(key: str, url: str) -> None:
    """An endpoint setting: empty (the default endpoint) or an http(s) URL."""
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(key, "an http:// or https:// URL")


# -- loading -----------------------------------------------------------------------------


def load(cls: type[T], path: Path | str | None, env: Mapping[str, str]) -> T:
    """Read a TOML file (None: defaults only), apply ``DREDGE_*`` overrides, build ``cls``
    (not yet validated)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError("config", f"cannot read {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"{path} is not valid TOML: {exc}") from exc
    apply_env(cls, data, env)
    built: T = build(cls, data, "")
    return built


def build(cls: type[Any], data: Mapping[str, Any], path: str) -> Any:
    """A dataclass from a mapping; unknown keys and wrong types are refused by dotted name."""
    if not isinstance(data, Mapping):
        raise ConfigError(path or "config", "must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key not in names:
            raise ConfigError(where, "unknown key")
        kwargs[key] = _convert(hints[key], value, where)
    return cls(**kwargs)


def _section(hint: Any) -> Any:
    """``X`` for an optional section ``X | None`` (X a dataclass), else ``hint`` itself."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and dataclasses.is_dataclass(args[0]):
            return args[0]
    return hint


def _convert(hint: Any, value: Any, where: str) -> Any:
    hint = _section(hint)  # an optional section is on when it is present
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return build(hint, value, where)
    if origin is dict:  # a table of free-form string settings (a library's properties)
        return _properties(value, where)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(where, "must be a list")
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(where, "unsupported type")  # no optional fields: defaults are values
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(where, "must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(where, "must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(where, "must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(where, "must be a string")
        return value
    raise ConfigError(where, f"unsupported type {hint}")


def _properties(value: Any, where: str, prefix: str = "") -> dict[str, str]:
    """A ``dict[str, str]`` field: nested tables flattened with dots (``s3.endpoint = "..."``
    and ``"s3.endpoint" = "..."`` are the same key); numbers and booleans as text."""
    if not isinstance(value, Mapping):
        raise ConfigError(where, "must be a table")
    out: dict[str, str] = {}
    for key, v in value.items():
        name = f"{prefix}{key}"
        if isinstance(v, Mapping):
            out.update(_properties(v, where, f"{name}."))
        elif isinstance(v, bool):
            out[name] = "true" if v else "false"
        elif isinstance(v, str | int | float):
            out[name] = str(v)
        else:
            raise ConfigError(f"{where}.{name}", "must be a string, number or boolean")
    return out


def apply_env(root: type[Any], data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Fold ``DREDGE_A__B=v`` into ``data['a']['b']``, typed by the field of ``root``'s tree.

    A variable naming a known section with an unknown key is refused like a bad file key;
    other ``DREDGE_*`` variables (``DREDGE_LOG_JSON``) are not configuration and are ignored.
    """
    top = {f.name: f for f in dataclasses.fields(root)}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        if parts[0] not in top or (len(parts) == 1 and name.count("__")):
            continue  # not configuration (DREDGE_LOG_JSON, DREDGE_CONFIG)
        hint: Any = root
        node: Any = data
        where = ""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if typing.get_origin(hint) is list:
                if not part.isdigit():
                    raise ConfigError(f"{where}.{part}", f"{name}: a list index is needed here")
                idx = int(part)
                while len(node) <= idx:
                    node.append({})
                where = f"{where}[{idx}]"
                hint = typing.get_args(hint)[0]
                if last:
                    raise ConfigError(where, f"{name}: set the item's keys, not the item")
                node = node[idx]
                continue
            if typing.get_origin(hint) is dict:  # DREDGE_..._CATALOG__S3__ENDPOINT: s3.endpoint
                node[".".join(parts[i:])] = env[name]
                break
            hints = typing.get_type_hints(hint)
            where = f"{where}.{part}" if where else part
            if part not in hints:
                raise ConfigError(where, f"unknown key (from environment variable {name})")
            hint = _section(hints[part])
            if last:
                node[part] = _env_value(hint, env[name], where)
            else:
                node = node.setdefault(part, [] if typing.get_origin(hint) is list else {})


def _env_value(hint: Any, raw: str, where: str) -> Any:
    if hint is str:
        return raw
    if typing.get_origin(hint) is list:
        text = raw.strip()
        if text.startswith("["):
            return _toml_value(text, where)
        return [p.strip() for p in text.split(",") if p.strip()]
    if hint is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(where, f"must be true or false, not {raw!r}")
    return _toml_value(raw.strip(), where)


def _toml_value(text: str, where: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        raise ConfigError(where, f"cannot read {text!r}") from None
