"""Boundary validation shared by every public function.

Two kinds of check, and what happens under ``jax.jit`` / ``jax.vmap``:

* **Static checks** (shapes, ranks, dtypes) read only an array's shape and dtype, which are known even
  while tracing. They always run, under ``jit`` and ``vmap`` too, and raise ``ValueError`` (shapes) or
  ``TypeError`` (dtypes).
* **Value checks** (probabilities negative or not summing to one, NaN/inf rewards, ``n < 1`` or
  non-integer ``n``, ``beta <= 0``) need concrete values. They run when the argument is a concrete array or
  Python number and are **skipped** when it is a tracer (inside the caller's ``jit``/``vmap``/``grad``).
  Traced input is then used as given: the functions renormalise probabilities and clip tiny negative
  rounding to zero, but a NaN, a negative ``n`` or a wildly unnormalised vector silently produces
  meaningless numbers. Validate once at your own boundary (e.g. call the function un-jitted on a sample
  input, or call :func:`check_probs` yourself) if your inputs are not trustworthy.

"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np



def is_concrete(*xs: Any) -> bool:
    """True if no argument is a JAX tracer (so its values can be read)."""
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def to_array(x: Any, name: str, *, allow_int: bool = True) -> jax.Array:
    """``jnp.asarray(x)``, raising ``TypeError`` naming ``name`` for non-numeric, bool or complex input."""
    if isinstance(x, jax.core.Tracer):
        arr = x
    else:
        try:
            arr = jnp.asarray(x)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}: {e}") from e
    dt = arr.dtype
    if dt == jnp.bool_ or jnp.issubdtype(dt, jnp.complexfloating):
        raise TypeError(f"{name} must have a real floating (or integer) dtype, got {dt}")
    if not (jnp.issubdtype(dt, jnp.floating) or (allow_int and jnp.issubdtype(dt, jnp.integer))):
        raise TypeError(f"{name} must have a real floating{' or integer' if allow_int else ''} dtype, got {dt}")
    return arr


def float_dtype(*arrays: jax.Array) -> Any:
    """The floating dtype to compute in: the promotion of the floating inputs (default float if none)."""
    floats = [a.dtype for a in arrays if jnp.issubdtype(a.dtype, jnp.floating)]
    if not floats:
        return jnp.result_type(float)
    return jnp.result_type(*floats)


def prob_tolerance(dtype: Any) -> float:
    """Tolerance for a probability vector's sum and negative entries.

    ``1e-6`` in float64, ``3.5e-4`` in float32 (``max(sqrt(eps), 1e-6)``).
    """
    return max(float(np.sqrt(np.finfo(np.dtype(dtype)).eps)), 1e-6)


def check_probs(p: jax.Array, name: str = "ref_probs") -> None:
    """Checks a pmf along the last axis.

    Always: rank ≥ 1 and K ≥ 1. If concrete: finite, every entry ≥ −tol and each sum within
    ``max(tol, 4·sqrt(K)·eps)`` of 1, with ``tol = prob_tolerance(dtype)``.
    """
    if p.ndim < 1 or p.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., K) with K >= 1, got shape {p.shape}")
    if not is_concrete(p):
        return
    dtype = p.dtype if jnp.issubdtype(p.dtype, jnp.floating) else jnp.result_type(float)
    tol = prob_tolerance(dtype)
    v = np.asarray(p, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains NaN or inf")
    if np.any(v < -tol):
        raise ValueError(f"{name} has negative entries (min {v.min():.3g}); probabilities must be >= 0")
    s = v.sum(axis=-1)
    sum_tol = max(tol, 4.0 * np.sqrt(v.shape[-1]) * float(np.finfo(np.dtype(dtype)).eps))
    if np.any(np.abs(s - 1.0) > sum_tol):
        worst = s.flat[np.argmax(np.abs(s - 1.0))]
        raise ValueError(f"{name} must sum to 1 along the last axis (within {sum_tol:.2g}); a sum is {worst:.8g}")


def check_rewards(r: jax.Array, name: str = "rewards") -> None:
    """Checks rewards: rank ≥ 1; if concrete, every entry finite (no NaN or ±inf)."""
    if r.ndim < 1 or r.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., K) with K >= 1, got shape {r.shape}")
    if is_concrete(r) and jnp.issubdtype(r.dtype, jnp.floating):
        if not np.all(np.isfinite(np.asarray(r))):
            raise ValueError(f"{name} contains NaN or inf; rewards must be finite")


def check_same_last_axis(a: jax.Array, b: jax.Array, name_a: str, name_b: str) -> tuple[int, ...]:
    """Checks ``a`` (..., K) and ``b`` (..., K) agree in K and have broadcastable batch shapes.

    Returns:
      The broadcast batch shape.
    """
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of outcomes K (last axis): "
            f"got shapes {a.shape} and {b.shape}"
        )
    try:
        return tuple(np.broadcast_shapes(a.shape[:-1], b.shape[:-1]))
    except ValueError:
        raise ValueError(
            f"{name_a} and {name_b} have incompatible batch shapes {a.shape[:-1]} and {b.shape[:-1]}"
        ) from None


def check_n(n: Any, name: str = "n") -> jax.Array:
    """Converts ``n`` to an array; if concrete, checks it is finite, integer-valued and ≥ 1.

    Raises:
      TypeError: if ``n`` is not a real number (bool and complex are refused).
      ValueError: if a concrete ``n`` is < 1, non-integer, NaN or inf.
    """
    if isinstance(n, bool):
        raise TypeError(f"{name} must be an integer >= 1, got a bool")
    arr = to_array(n, name)
    if is_concrete(arr):
        v = np.asarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite, got {n!r}")
        if np.any(v < 1):
            raise ValueError(f"{name} must be >= 1 (a number of samples), got min {v.min():g}")
        if np.any(v != np.round(v)):
            raise ValueError(f"{name} must be an integer (number of samples), got {n!r}")
    return arr


def check_positive(x: Any, name: str) -> jax.Array:
    """Converts ``x`` to an array; if concrete, checks every entry is > 0 and not NaN (``inf`` allowed)."""
    arr = to_array(x, name)
    if is_concrete(arr):
        v = np.asarray(arr, dtype=np.float64)
        if np.any(np.isnan(v)) or np.any(v <= 0):
            raise ValueError(f"{name} must be > 0, got {x!r}")
    return arr


def broadcast_batch(*arrays: jax.Array, batch_shape: tuple[int, ...]) -> list[jax.Array]:
    """Broadcasts each ``(..., K)`` array explicitly to ``batch_shape + (K,)`` (rank promotion is strict)."""
    return [jnp.broadcast_to(a, tuple(batch_shape) + a.shape[-1:]) for a in arrays]


def pmf_inputs(ref_probs: Any, rewards: Any, reward_name: str = "rewards") -> tuple[jax.Array, jax.Array, tuple[int, ...]]:
    """Validates a reference pmf and rewards ``(..., K)``; returns them as arrays and the batch shape."""
    p = to_array(ref_probs, "ref_probs")
    r = to_array(rewards, reward_name)
    check_probs(p, "ref_probs")
    check_rewards(r, reward_name)
    batch = check_same_last_axis(p, r, "ref_probs", reward_name)
    return p, r, batch


def probs(x: Any, name: str) -> jax.Array:
    """Validates a pmf ``(..., K)`` named ``name``."""
    arr = to_array(x, name)
    check_probs(arr, name)
    return arr


def at_least_one(x: Any, name: str) -> jax.Array:
    """Converts ``x`` to an array; if concrete, checks every entry is ≥ 1 (real-valued, not NaN)."""
    arr = to_array(x, name)
    if is_concrete(arr):
        v = np.asarray(arr, dtype=np.float64)
        if np.any(np.isnan(v)) or np.any(v < 1):
            raise ValueError(f"{name} must be >= 1, got {x!r}")
    return arr
