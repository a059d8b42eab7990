"""Strict conversion of a plain nested dict (what Hydra composed) into typed dataclasses.

Why not ``cfg.get(key, default)``: a YAML typo (``critic.vote_rule``) would be silently ignored
and the run would train with the default. Here every unknown key, wrong type or bad value is a
``ConfigError`` naming the full key path, raised before any actor starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration mistake, reported with the key path (e.g. ``critic.k``)."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _convert(value, opt, path)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[-1] if errors else f"{path}: unexpected null")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path}: {value!r} is not one of {list(allowed)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        (item_tp, *_rest) = get_args(tp) or (Any,)
        items = [_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        _k, v_tp = get_args(tp) or (Any, Any)
        return {str(k): _convert(v, v_tp, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported config type {_type_name(tp)}")


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys; missing keys take the
    dataclass field defaults (the YAML files mirror them, so the defaults live in one place)."""
    where = path or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of fields, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = unknown[0]
        near = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(
            f"{where}: unknown key {key!r}{hint}; valid keys: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name in fields:
        if name in data:
            sub = f"{path}.{name}" if path else name
            kwargs[name] = _convert(data[name], hints[name], sub)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        msg = str(err)
        raise ConfigError(f"{path}.{msg}" if path and not msg.startswith(path) else msg) from None
    except TypeError as err:  # a required field without default was not given
        raise ConfigError(f"{where}: {err}") from None


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain dict (for logging the resolved config into the run directory)."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def check(cond: bool, message: str) -> None:
    """Raise ``ConfigError(message)`` unless ``cond``: used by ``__post_init__`` validators."""
    if not cond:
        raise ConfigError(message)


__all__ = ["ConfigError", "from_dict", "to_dict", "check"]
