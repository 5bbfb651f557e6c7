"""Turn the domain's frozen dataclasses (and named tuples) into plain JSON values and back.

Classes freeze their compiled timeline, and persist their state, as JSON. The
conversion follows the dataclasses' own type hints, so a field added to a value
(with a default) needs no change here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from enum import Enum
from functools import cache
from typing import Any, TypeVar

from classroom.domain.errors import DomainError

T = TypeVar("T")


class DecodeError(DomainError):
    """Stored JSON that no longer matches the value it should hold."""


def to_plain(value: Any) -> Any:
    """A JSON-ready copy of ``value`` (records become dicts, enums their values)."""
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, str | int | float):
        return value
    names = _field_names(value.__class__)
    if names is not None:
        return {name: to_plain(getattr(value, name)) for name in names}
    if isinstance(value, tuple | list):
        return [to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {to_plain(k): to_plain(v) for k, v in value.items()}
    return value


def from_plain(cls: type[T], data: Any) -> T:
    """Rebuild a ``cls`` from what :func:`to_plain` made of one."""
    try:
        result: T = _build(cls, data)
    except (TypeError, ValueError, KeyError) as exc:
        raise DecodeError(f"can't read a {cls.__name__} from stored data: {exc}") from exc
    return result


@cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """A record's field names (None for anything else), looked up once per class.

    Records are dataclasses and named tuples; a plain tuple has no field names.
    """
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return tuple(cls._fields)
    return None


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        options = typing.get_args(tp)
        if data is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _build(option, data)
            except (TypeError, ValueError, KeyError) as exc:
                errors.append(exc)
        raise ValueError(f"{data!r} fits none of {options}: {errors}")
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], item) for item in data)
        return tuple(_build(a, item) for a, item in zip(args, data, strict=True))
    if origin is list:
        (arg,) = typing.get_args(tp)
        return [_build(arg, item) for item in data]
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        return {_build(key_type, k): _build(value_type, v) for k, v in data.items()}
    names = _field_names(tp) if isinstance(tp, type) else None
    if names is not None:
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {tp.__name__}, got {type(data).__name__}")
        hints = _hints(tp)
        kwargs = {name: _build(hints[name], data[name]) for name in names if name in data}
        return tp(**kwargs)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    if tp is Any:
        return data
    if tp is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if isinstance(tp, type) and not isinstance(data, tp):
        raise TypeError(f"expected {tp.__name__}, got {type(data).__name__}")
    return data
