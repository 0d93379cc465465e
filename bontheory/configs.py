"""Experiment configs on the command line: their fields, and ``--set key=value`` overrides.

A config is a (frozen) dataclass; nested dataclass fields are addressed as ``outer.inner``. A value given
as text is converted according to the field's annotation:

=====================  ==========================================================
annotation             accepted text
=====================  ==========================================================
``int``                ``1000``, ``1_000``, ``1e3`` (an integral value)
``float``              ``0.5``, ``1e-3``, ``inf``
``bool``               ``true``/``false``, ``yes``/``no``, ``on``/``off``, ``1``/``0``
``str``                anything
``Literal[a, b]``      one of the choices
``X | None``           ``none`` (or ``null``), or a value of ``X``
``tuple[X, ...]``      ``1,2,4``, ``(1,2,4)`` or ``[1,2,4]``; ``()`` is empty
``tuple[X, Y]``        exactly two items
=====================  ==========================================================
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

_TRUE = {"true", "yes", "on", "1", "t", "y"}
_FALSE = {"false", "no", "off", "0", "f", "n"}
_NONE = {"none", "null"}


def type_name(tp: Any) -> str:
    """A short readable name of an annotation: ``int``, ``tuple[int, ...]``, ``int | None``."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    if tp is Any:
        return "Any"
    return str(tp).replace("typing.", "")


def config_fields(config: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Every settable key of a dataclass config (nested dataclasses as ``a.b``) → ``(annotation, value)``."""
    try:
        hints = typing.get_type_hints(type(config))
    except NameError:  # an annotation that cannot be evaluated: such fields cannot be set from text
        hints = {}
    out: dict[str, tuple[Any, Any]] = {}
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(config_fields(value, prefix=f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = (hints.get(f.name, Any), value)
    return out


def describe_fields(config: Any) -> str:
    """One line per settable key: ``  key: type = value``."""
    return "\n".join(f"  {key}: {type_name(tp)} = {value!r}" for key, (tp, value) in config_fields(config).items())


def _int(text: str) -> int:
    try:
        d = Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        d = Decimal("NaN")
    if not d.is_finite() or d != d.to_integral_value():
        raise ValueError(f"{text!r} is not an integer")
    return int(d)


def _items(text: str) -> list[str]:
    t = text.strip()
    if len(t) >= 2 and t[0] + t[-1] in ("()", "[]"):
        t = t[1:-1]
    parts = [p.strip() for p in t.split(",")] if t.strip() else []
    return parts[:-1] if parts and parts[-1] == "" else parts  # "7," is (7,)


def convert_value(text: str, tp: Any) -> Any:
    """Converts the command-line string ``text`` to a value of annotation ``tp`` (see the module's table).

    Raises:
      ValueError: if ``text`` is not a valid value of ``tp``, or ``tp`` cannot be given as text.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    t = text.strip()
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and t.lower() in _NONE:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return convert_value(text, option)
            except ValueError:
                pass
        raise ValueError(f"{text!r} is not a valid {type_name(tp)}")
    if origin is typing.Literal:
        for choice in args:
            if t == str(choice):
                return choice
        raise ValueError(f"{text!r} is not one of {', '.join(map(repr, args))}")
    if origin is tuple:
        parts = _items(text)
        if args and args[-1] is Ellipsis:
            return tuple(convert_value(p, args[0]) for p in parts)
        if len(parts) != len(args):
            raise ValueError(f"{text!r} has {len(parts)} items; {type_name(tp)} needs {len(args)}")
        return tuple(convert_value(p, a) for p, a in zip(parts, args, strict=True))
    if tp is bool:
        if t.lower() in _TRUE | _FALSE:
            return t.lower() in _TRUE
        raise ValueError(f"{text!r} is not a boolean (use true or false)")
    if tp is int:
        return _int(text)
    if tp is float:
        try:
            return float(t.replace("_", ""))
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if tp is str:
        return text
    raise ValueError(f"fields of type {type_name(tp)} cannot be set from the command line")


def _replace(config: Any, path: list[str], value: Any) -> Any:
    if len(path) > 1:
        value = _replace(getattr(config, path[0]), path[1:], value)
    return dataclasses.replace(config, **{path[0]: value})


def apply_overrides(config: Any, assignments: Sequence[str]) -> Any:
    """A copy of the dataclass ``config`` with ``key=value`` assignments applied, each type-checked.

    Raises:
      ValueError: for a malformed assignment, an unknown key (the message lists the valid keys), a value
        that does not convert to the field's type, or a value the config itself rejects (its
        ``__post_init__``); the message names the key.
    """
    fields = config_fields(config)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {assignment!r}")
        if key not in fields:
            cls = type(config)
            raise ValueError(f"unknown config key {key!r} for {cls.__module__}.{cls.__qualname__}; "
                             f"valid keys:\n{describe_fields(config)}")
        tp = fields[key][0]
        try:
            value = convert_value(text, tp)
        except ValueError as e:
            raise ValueError(f"bad value for {key} ({type_name(tp)}): {e}") from None
        try:
            config = _replace(config, key.split("."), value)
        except (ValueError, TypeError) as e:
            raise ValueError(f"the config rejects {key}={text}: {e}") from None
    return config
