"""Boundary validation for bontheory.alternatives, built on :mod:`bontheory._checks`.

Static checks (shapes, dtypes) always run; value checks run on concrete values only and are skipped for
tracers (see :mod:`bontheory._checks`).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from bontheory import _checks


def pmf_inputs(ref_probs: Any, rewards: Any, reward_name: str = "rewards") -> tuple[jax.Array, jax.Array, tuple[int, ...]]:
    """Validates a reference pmf and rewards ``(..., K)``; returns them as arrays and the batch shape."""
    p = _checks.to_array(ref_probs, "ref_probs")
    r = _checks.to_array(rewards, reward_name)
    _checks.check_probs(p, "ref_probs")
    _checks.check_rewards(r, reward_name)
    batch = _checks.check_same_last_axis(p, r, "ref_probs", reward_name)
    return p, r, batch


def probs(x: Any, name: str) -> jax.Array:
    """Validates a pmf ``(..., K)`` named ``name``."""
    arr = _checks.to_array(x, name)
    _checks.check_probs(arr, name)
    return arr


def at_least_one(x: Any, name: str) -> jax.Array:
    """Converts ``x`` to an array; if concrete, checks every entry is ≥ 1 (real-valued, not NaN)."""
    arr = _checks.to_array(x, name)
    if _checks.is_concrete(arr):
        v = np.asarray(arr, dtype=np.float64)
        if np.any(np.isnan(v)) or np.any(v < 1):
            raise ValueError(f"{name} must be >= 1, got {x!r}")
    return arr


check_n = _checks.check_n
check_positive = _checks.check_positive
float_dtype = _checks.float_dtype
to_array = _checks.to_array
is_concrete = _checks.is_concrete
