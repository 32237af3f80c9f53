"""``key=value`` settings of a frozen config dataclass: one grammar for every command that takes ``--set``.

Grammar:

- ``key=value`` sets one field, parsed as the field's type: an int (``1000``, ``1_000``, ``1e6``), a float
  (``3e-4``), a bool (``true``/``false``, ``yes``/``no``, ``1``/``0``), a string, ``none`` for an optional field.
- A comma list is a grid of values: ``beta=1,3,10`` is three configs (where the command takes grids).
- A tuple field's elements are joined by commas, as layer widths are usually written: ``critic_hidden=512,512``
  is one value. A grid of tuples separates its tuples with ``/``: ``critic_hidden=256,256/512,512``.

Values from a config file (JSON or YAML mapping) or from Python are checked the same way: a list is a grid,
except for a tuple field, where a list of numbers is one tuple and a list of lists is a grid; a string is read
with the grammar above.

Types and unknown fields are checked here; ranges are the config class's own ``__post_init__`` checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

TUPLE_GRID_SEPARATOR = "/"
"""Separates the tuples of a grid of tuple values (the comma joins a tuple's elements)."""

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NONE = ("none", "null")


@cache
def field_types(config_class: type) -> dict[str, Any]:
    """Each init field of the dataclass ``config_class`` and its resolved type hint, in field order."""
    hints = typing.get_type_hints(config_class)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_class) if f.init}


def check_field(config_class: type, key: str, owner: str | None = None) -> None:
    """Raise a one-line ValueError unless ``key`` is a field of ``config_class`` (``owner`` names it there)."""
    names = list(field_types(config_class))
    if key in names:
        return
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    owner = owner or config_class.__name__
    raise ValueError(f"{owner} has no field {key!r}{hint}; valid fields: {', '.join(names)}")


def _optional_inner(hint: Any) -> Any | None:
    """X for ``X | None`` / ``Optional[X]``, else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def _is_int_tuple(hint: Any) -> bool:
    return typing.get_origin(hint) is tuple and typing.get_args(hint) in ((int, ...),)


def _describe(hint: Any) -> str:
    """What a value of ``hint`` looks like, for error messages."""
    inner = _optional_inner(hint)
    if inner is not None:
        return f"{_describe(inner)}, or none"
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if _is_int_tuple(hint):
        return "integers joined by commas (e.g. 256,256)"
    return str(hint)


def _bad(key: str, value: Any, hint: Any) -> ValueError:
    shown = value if isinstance(value, str) else repr(value)
    return ValueError(f"{key}={shown} is not valid: {key} takes {_describe(hint)}")


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        number = float(text)  # 1e6: an integer written as a float
        if math.isfinite(number) and number.is_integer():
            return int(number)
        raise


def _parse_text(key: str, text: str, hint: Any) -> Any:
    text = text.strip()
    inner = _optional_inner(hint)
    if inner is not None:
        return None if text.lower() in _NONE else _parse_text(key, text, inner)
    try:
        if hint is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
        if hint is int:
            return _parse_int(text)
        if hint is float:
            return float(text)
        if hint is str:
            return text
        if _is_int_tuple(hint):
            return tuple(_parse_int(part) for part in text.split(",")) if text else ()
    except ValueError:
        raise _bad(key, text, hint) from None
    raise ValueError(f"{key} has a type that --set cannot write ({hint})")


def coerce_value(config_class: type, key: str, value: Any, owner: str | None = None) -> Any:
    """``value`` (a string in the ``--set`` grammar, or a JSON/YAML/Python value) as field ``key``'s type.

    One value, not a grid. Ints become floats in float fields (``beta=1`` and ``beta=1.0`` are one config);
    lists become tuples in tuple fields.
    """
    check_field(config_class, key, owner)
    hint = field_types(config_class)[key]
    if isinstance(value, str):
        return _parse_text(key, value, hint)
    return _coerce_native(key, value, hint)


def _coerce_native(key: str, value: Any, hint: Any) -> Any:
    inner = _optional_inner(hint)
    if inner is not None:
        return None if value is None else _coerce_native(key, value, inner)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and is_number and math.isfinite(value) and float(value).is_integer():
        return int(value)
    if hint is float and is_number:
        return float(value)
    if hint is str and isinstance(value, str):
        return value
    if _is_int_tuple(hint) and isinstance(value, list | tuple):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
    raise _bad(key, value, hint)


def grid_values(config_class: type, key: str, value: Any, owner: str | None = None) -> list[Any]:
    """The values a setting stands for: several for a grid (``beta=1,3``, a list in a file), else one."""
    check_field(config_class, key, owner)
    hint = field_types(config_class)[key]
    tuple_field = _is_int_tuple(hint) or _is_int_tuple(_optional_inner(hint))
    if isinstance(value, str):
        parts = value.split(TUPLE_GRID_SEPARATOR) if tuple_field else value.split(",")
    elif isinstance(value, list | tuple) and not (tuple_field and not any(isinstance(v, list | tuple) for v in value)):
        parts = list(value)  # a list is a grid, except a tuple field's list of numbers (one tuple)
    else:
        parts = [value]
    if not parts or (isinstance(value, str) and any(p.strip() == "" for p in parts) and len(parts) > 1):
        raise ValueError(f"{key}={value}: empty value in the list; write {key}=A,B,C")
    values = [coerce_value(config_class, key, part, owner) for part in parts]
    unique = list(dict.fromkeys(values))
    if len(unique) != len(values):
        raise ValueError(f"{key}={value}: a value is repeated in the grid")
    return unique


def split_assignment(item: str) -> tuple[str, str]:
    """``"key=value"`` -> (key, value); one line naming the item when it has no ``=``."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"bad setting {item!r}: write key=value (e.g. beta=3)")
    return key.strip(), value


def parse_settings(
    config_class: type,
    items: Iterable[str],
    *,
    grid: bool = True,
    owner: str | None = None,
    item_prefix: str | None = None,
) -> dict[str, list[Any]]:
    """``key=value`` strings -> {field: its values}, in the order given.

    With ``grid=False`` every field takes one value (a comma in a scalar field is then an error) and a field given
    twice takes the later value; with grids, a field given twice is an error. With
    ``item_prefix`` (e.g. ``"bad override"``), an error starts with it and the item: ``bad override 'x=1': ...``.
    """
    settings: dict[str, list[Any]] = {}
    for item in items:
        try:
            key, text = split_assignment(item)
            if key in settings and grid:  # a grid or the last value? ambiguous, so refused
                raise ValueError(f"{key} is set twice; give several values as one grid ({key}=A,B)")
            values = grid_values(config_class, key, text, owner)
            if not grid and len(values) > 1:
                raise ValueError(f"{key}={text}: one value only here (this command takes no grids)")
        except ValueError as err:
            if item_prefix is None:
                raise
            raise ValueError(f"{item_prefix} {item!r}: {err}") from None
        settings[key] = values
    return settings


def settings_from_mapping(
    config_class: type, mapping: Mapping[str, Any], *, owner: str | None = None
) -> dict[str, list[Any]]:
    """A config file's mapping of field -> value or list of values -> {field: its values}."""
    return {str(key): grid_values(config_class, str(key), value, owner) for key, value in mapping.items()}


def expand_grid(settings: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the settings' values (the first field varies slowest); one empty dict for none."""
    keys = list(settings)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(settings[k] for k in keys))]


def apply_settings(config: Any, items: Iterable[str], *, item_prefix: str | None = None) -> Any:
    """``config`` with ``key=value`` strings applied (one value each); the config class checks the ranges."""
    settings = parse_settings(type(config), items, grid=False, item_prefix=item_prefix)
    return dataclasses.replace(config, **{key: values[0] for key, values in settings.items()})


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """A config file's mapping of field -> value or list of values: JSON (``.json``) or YAML (any other name)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"cannot read config file {str(path)!r}: {err.strerror}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"config file {str(path)!r} is not valid JSON: {err.msg} at line {err.lineno}") from None
    else:
        try:
            import yaml
        except ImportError:
            raise ValueError(
                f"config file {str(path)!r}: YAML needs PyYAML (pip install pyyaml); or write it as .json"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            where = getattr(err, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            raise ValueError(f"config file {str(path)!r} is not valid YAML{line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of field: value, not a {type(data).__name__}")
    return data
