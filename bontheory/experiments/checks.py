"""Checks of an experiment's ``Config`` values, for its ``__post_init__``.

Each check reads one field of the config and raises ``ValueError`` naming the field, the expected domain and
the value given (``n_max must be an integer >= 1, got -5``), so a bad ``--set`` or an edited ``config.json``
fails before any computation. Sequence fields accept tuples and lists.
"""

from __future__ import annotations

import itertools
import math
import numbers as _numbers
from collections.abc import Collection, Sequence
from typing import Any


def _bad(field: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"{field} must be {expected}, got {value!r}")


def _is_int(x: Any) -> bool:
    return isinstance(x, _numbers.Integral) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    return isinstance(x, _numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _bounds(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return " and ".join(parts)


def _in_bounds(x: float, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> bool:
    if lo is not None and (x <= lo if lo_open else x < lo):
        return False
    if hi is not None and (x >= hi if hi_open else x > hi):
        return False
    return True


def _sequence(config: Any, field: str, nonempty: bool) -> Sequence:
    values = getattr(config, field)
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise _bad(field, "a sequence", values)
    if nonempty and not values:
        raise _bad(field, "a non-empty sequence", values)
    return values


def integer(config: Any, field: str, *, min: int | None = None, max: int | None = None) -> None:
    """``config.field`` is an integer (not a bool) in ``[min, max]``."""
    value = getattr(config, field)
    if not _is_int(value) or not _in_bounds(value, min, max, False, False):
        bounds = _bounds(min, max, False, False)
        raise _bad(field, "an integer" + (f" {bounds}" if bounds else ""), value)


def number(config: Any, field: str, *, min: float | None = None, max: float | None = None,
           min_open: bool = False, max_open: bool = False) -> None:
    """``config.field`` is a finite real number within the bounds (closed unless ``*_open``)."""
    value = getattr(config, field)
    if not _is_real(value) or not _in_bounds(value, min, max, min_open, max_open):
        bounds = _bounds(min, max, min_open, max_open)
        raise _bad(field, "a finite number" + (f" {bounds}" if bounds else ""), value)


def probability(config: Any, field: str) -> None:
    """``config.field`` is a probability strictly between 0 and 1."""
    number(config, field, min=0.0, max=1.0, min_open=True, max_open=True)


def boolean(config: Any, field: str) -> None:
    """``config.field`` is ``True`` or ``False``."""
    value = getattr(config, field)
    if not isinstance(value, bool):
        raise _bad(field, "true or false", value)


def integers(config: Any, field: str, *, min: int | None = None, max: int | None = None,
             nonempty: bool = True, increasing: bool = False) -> None:
    """``config.field`` is a sequence of integers in ``[min, max]`` (non-empty, strictly increasing if asked)."""
    values = _sequence(config, field, nonempty)
    bounds = _bounds(min, max, False, False)
    what = "integers" + (f" {bounds}" if bounds else "")
    if any(not _is_int(v) or not _in_bounds(v, min, max, False, False) for v in values):
        raise _bad(field, f"a sequence of {what}", values)
    if increasing and any(a >= b for a, b in itertools.pairwise(values)):
        raise _bad(field, f"strictly increasing {what}", values)


def numbers(config: Any, field: str, *, min: float | None = None, max: float | None = None,
            min_open: bool = False, max_open: bool = False, nonempty: bool = True, increasing: bool = False) -> None:
    """``config.field`` is a sequence of finite numbers within the bounds."""
    values = _sequence(config, field, nonempty)
    bounds = _bounds(min, max, min_open, max_open)
    what = "finite numbers" + (f" {bounds}" if bounds else "")
    if any(not _is_real(v) or not _in_bounds(v, min, max, min_open, max_open) for v in values):
        raise _bad(field, f"a sequence of {what}", values)
    if increasing and any(a >= b for a, b in itertools.pairwise(values)):
        raise _bad(field, f"strictly increasing {what}", values)


def pmf(config: Any, field: str, *, tol: float = 1e-9) -> None:
    """``config.field`` is a non-empty sequence of probabilities ``≥ 0`` summing to 1 (within ``tol``)."""
    numbers(config, field, min=0.0)
    values = getattr(config, field)
    if abs(math.fsum(values) - 1.0) > tol:
        raise _bad(field, "probabilities summing to 1", values)


def one_of(config: Any, field: str, options: Collection) -> None:
    """``config.field`` is one of ``options``."""
    value = getattr(config, field)
    if isinstance(value, (list, dict, set)) or value not in options:
        raise _bad(field, f"one of {', '.join(map(repr, options))}", value)


def choices(config: Any, field: str, options: Collection, *, nonempty: bool = True) -> None:
    """``config.field`` is a sequence of distinct members of ``options``."""
    values = _sequence(config, field, nonempty)
    if any(isinstance(v, (list, dict, set)) or v not in options for v in values) or len(set(values)) != len(values):
        raise _bad(field, f"distinct values among {', '.join(map(repr, options))}", values)


def same_length(config: Any, field: str, other: str) -> None:
    """``config.field`` has one entry per entry of ``config.other``."""
    a, b = getattr(config, field), getattr(config, other)
    if len(a) != len(b):
        raise ValueError(f"{field} must have one entry per entry of {other} ({len(b)}), got {len(a)}: {a!r}")
