r"""Boundary validation: the one path every public function's arguments go through.

A public function declares the *kind* of each argument once, with :func:`validate`::

    @validation.validate(ref_probs=validation.probs, rewards=validation.rewards, n=validation.sample_size)
    def bon_pmf(ref_probs, rewards, n): ...   # the body sees validated jax arrays

Each kind is a small checker ``check(value, name) -> value`` that converts the argument (to a ``jax.Array``
for array kinds, to a Python ``int`` for static sizes) and raises a ``ValueError``/``TypeError`` that names
the argument. The checkers compose and can be called directly where a decorator does not fit. On top of the
per-argument checks, :func:`validate` checks what ties arguments together:

* arguments of an **outcome kind** (:func:`probs`, :func:`log_probs`, :func:`rewards`) are ``(..., K)``
  arrays over the same K outcomes: their last axes must agree and their batch shapes ``...`` broadcast;
* arguments of a **batch-parameter kind** (:func:`sample_size`, :func:`positive`, :func:`nonnegative`,
  :func:`at_least_one`, :func:`unit_interval`) are one value per distribution: their shapes must broadcast
  with that batch shape (a grid of ``n`` per distribution needs a trailing axis).

The decorated function records its declaration as ``fn.argument_kinds`` (argument name → checker), so a
test can walk every public function and feed each argument the bad inputs of its kind.

What runs under ``jax.jit`` / ``jax.vmap`` / ``jax.grad``:

* **Static checks** (shapes, ranks, dtypes, Python types of static arguments) read only what is known while
  tracing. They always run and raise ``ValueError`` (shapes, sizes) or ``TypeError`` (dtypes, types).
* **Value checks** (probabilities negative or not summing to one, NaN/inf rewards, ``n < 1`` or non-integer
  ``n``, ``beta <= 0``, …) need concrete values. They run when the argument is a concrete array or Python
  number and are **skipped** when it is a tracer. Traced input is then used as given: the functions
  renormalise probabilities and clip tiny negative rounding to zero, but a NaN, a negative ``n`` or a wildly
  unnormalised vector silently produces meaningless numbers. Validate once at your own boundary (e.g. call
  the function un-jitted on a sample input, or call the checkers here yourself) if your inputs are not
  trustworthy.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

Checker = Callable[[Any, str], Any]


def is_concrete(*xs: Any) -> bool:
    """True if no argument is a JAX tracer (so its values can be read)."""
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def _outcome_kind(check: Checker) -> Checker:
    check.outcome_axis = True
    return check


def _batch_parameter(check: Checker) -> Checker:
    check.batch_parameter = True
    return check


def kind(check: Checker, **options: Any) -> Checker:
    """A checker with fixed options (e.g. ``kind(sequences, length=4)``), keeping the kind's flags."""
    bound = functools.partial(check, **options)
    bound.outcome_axis = getattr(check, "outcome_axis", False)
    bound.batch_parameter = getattr(check, "batch_parameter", False)
    bound.__name__ = check.__name__
    return bound


def optional(check: Checker) -> Checker:
    """The kind ``check``, or ``None`` (an argument only some uses need, e.g. a reward for sampled methods)."""

    def check_optional(x: Any, name: str) -> Any:
        return None if x is None else check(x, name)

    check_optional.__name__ = f"optional_{getattr(check, '__name__', 'kind')}"
    check_optional.__wrapped_kind__ = check
    check_optional.outcome_axis = getattr(check, "outcome_axis", False)
    check_optional.batch_parameter = getattr(check, "batch_parameter", False)
    return check_optional


def _values(arr: jax.Array) -> np.ndarray:
    return np.asarray(arr, dtype=np.float64)


# ----------------------------------------------------------------------------------------------------
# Array kinds


def to_array(x: Any, name: str, *, allow_int: bool = True) -> jax.Array:
    """``jnp.asarray(x)``, raising ``TypeError`` naming ``name`` for non-numeric, bool or complex input."""
    if isinstance(x, jax.core.Tracer):
        arr = x
    else:
        if x is None or isinstance(x, (str, bytes)):
            raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}")
        try:
            arr = jnp.asarray(x)
        except (TypeError, ValueError, OverflowError) as e:
            raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}: {e}") from e
    dt = arr.dtype
    if dt == jnp.bool_ or jnp.issubdtype(dt, jnp.complexfloating):
        raise TypeError(f"{name} must have a real floating (or integer) dtype, got {dt}")
    if not (jnp.issubdtype(dt, jnp.floating) or (allow_int and jnp.issubdtype(dt, jnp.integer))):
        raise TypeError(f"{name} must have a real floating{' or integer' if allow_int else ''} dtype, got {dt}")
    return arr


def prob_tolerance(dtype: Any) -> float:
    """Tolerance for a probability vector's sum and negative entries.

    ``1e-6`` in float64, ``3.5e-4`` in float32 (``max(sqrt(eps), 1e-6)``).
    """
    return max(float(np.sqrt(np.finfo(np.dtype(dtype)).eps)), 1e-6)


def _floating(dtype: Any) -> Any:
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)


def _check_outcome_axis(arr: jax.Array, name: str, ndim: int | None) -> None:
    if ndim == 1 and arr.ndim != 1:
        raise ValueError(f"{name} must have shape (K,) (one distribution), got shape {arr.shape}")
    if arr.ndim < 1 or arr.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., K) with K >= 1, got shape {arr.shape}")


def _check_sums_to_one(s: np.ndarray, k: int, dtype: Any, name: str) -> None:
    tol = prob_tolerance(dtype)
    sum_tol = max(tol, 4.0 * np.sqrt(k) * float(np.finfo(np.dtype(dtype)).eps))
    if np.any(np.abs(s - 1.0) > sum_tol):
        worst = s.flat[np.argmax(np.abs(s - 1.0))]
        raise ValueError(f"{name} must sum to 1 along the last axis (within {sum_tol:.2g}); a sum is {worst:.8g}")


@_outcome_kind
def probs(x: Any, name: str = "ref_probs", *, ndim: int | None = None) -> jax.Array:
    """A pmf along the last axis, ``(..., K)`` (``(K,)`` with ``ndim=1``).

    Always: rank ≥ 1 and K ≥ 1. If concrete: finite, every entry ≥ −tol and each sum within
    ``max(tol, 4·sqrt(K)·eps)`` of 1, with ``tol = prob_tolerance(dtype)``.
    """
    p = to_array(x, name)
    _check_outcome_axis(p, name, ndim)
    if not is_concrete(p):
        return p
    dtype = _floating(p.dtype)
    v = _values(p)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains NaN or inf")
    if np.any(v < -prob_tolerance(dtype)):
        raise ValueError(f"{name} has negative entries (min {v.min():.3g}); probabilities must be >= 0")
    _check_sums_to_one(v.sum(axis=-1), v.shape[-1], dtype, name)
    return p


@_outcome_kind
def log_probs(x: Any, name: str = "log_probs", *, ndim: int | None = None) -> jax.Array:
    """A normalised log-pmf along the last axis, ``(..., K)`` (``(K,)`` with ``ndim=1``; ``-inf`` for zero mass).

    Always: rank ≥ 1 and K ≥ 1. If concrete: no NaN and no ``+inf``, entries ≤ tol, and
    ``logsumexp`` of each row within the tolerance of :func:`probs` of 0.
    """
    lp = to_array(x, name)
    _check_outcome_axis(lp, name, ndim)
    if not is_concrete(lp):
        return lp
    dtype = _floating(lp.dtype)
    v = _values(lp)
    if np.any(np.isnan(v)) or np.any(np.isposinf(v)):
        raise ValueError(f"{name} contains NaN or +inf; log-probabilities must be <= 0 (-inf for zero mass)")
    if np.any(v > prob_tolerance(dtype)):
        raise ValueError(f"{name} has entries > 0 (max {v.max():.3g}); log-probabilities must be <= 0")
    with np.errstate(under="ignore"):
        _check_sums_to_one(np.exp(v).sum(axis=-1), v.shape[-1], dtype, f"exp({name})")
    return lp


@_outcome_kind
def rewards(x: Any, name: str = "rewards", *, ndim: int | None = None) -> jax.Array:
    """Rewards ``(..., K)``: rank ≥ 1, K ≥ 1; if concrete, every entry finite (no NaN or ±inf)."""
    r = to_array(x, name)
    _check_outcome_axis(r, name, ndim)
    if is_concrete(r) and jnp.issubdtype(r.dtype, jnp.floating):
        if not np.all(np.isfinite(np.asarray(r))):
            raise ValueError(f"{name} contains NaN or inf; rewards must be finite")
        _warn_if_precision_merges_levels(x, r, name)
    return r


def _warn_if_precision_merges_levels(x: Any, arr: jax.Array, name: str) -> None:
    """Warns when converting ``x`` to ``arr``'s lower precision (float64 → float32, JAX's default) makes
    distinct rewards equal: those outcomes then form one level and every exact answer changes."""
    given = np.asarray(x) if isinstance(x, (np.ndarray, list, tuple, float)) else None
    if given is None or given.dtype.itemsize <= np.dtype(arr.dtype).itemsize or given.size > 10**7:
        return
    low = np.asarray(arr)
    hi_sorted, lo_sorted = np.sort(given.reshape(-1, given.shape[-1]), -1), np.sort(low.reshape(-1, low.shape[-1]), -1)
    distinct_hi = np.sum(np.diff(hi_sorted, axis=-1) != 0)
    distinct_lo = np.sum(np.diff(lo_sorted, axis=-1) != 0)
    if distinct_lo < distinct_hi:
        import warnings

        warnings.warn(f"{name}: {distinct_hi - distinct_lo} distinct {given.dtype} reward value(s) become equal in "
                      f"{arr.dtype} (JAX computes in float32 unless jax_enable_x64 is on), so their outcomes "
                      "merge into one level; enable x64 (jax.config.update('jax_enable_x64', True)) or rescale",
                      RuntimeWarning, stacklevel=4)


@_outcome_kind
def log_densities(x: Any, name: str = "log_probs") -> jax.Array:
    """Log-probabilities of given items (candidates, samples), ``(..., N)``: not a pmf, so any sum.

    Always: rank ≥ 1, N ≥ 1. If concrete: no NaN and no ``+inf`` (``-inf`` is a zero-probability item).
    """
    lp = to_array(x, name)
    _check_outcome_axis(lp, name, None)
    if is_concrete(lp):
        v = _values(lp)
        if np.any(np.isnan(v)) or np.any(np.isposinf(v)):
            raise ValueError(f"{name} contains NaN or +inf; log-probabilities must be < inf (-inf for zero mass)")
    return lp


def array(x: Any, name: str, *, ndim: int | None = None, finite: bool = True, integer: bool = False,
          min_value: float | None = None) -> Any:
    """A non-empty real array of rank ``ndim`` (any rank if ``None``); if concrete, no NaN (and no inf with
    ``finite``), integer-valued with ``integer``, every entry ``>= min_value`` if given.

    Returned **unconverted** (a NumPy input stays NumPy, in its own precision): for the NumPy-side functions.
    """
    arr = to_array(x, name)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if is_concrete(arr):
        v = np.asarray(x if isinstance(x, np.ndarray) else arr, dtype=np.float64)
        if np.any(np.isnan(v)) or (finite and np.any(np.isinf(v))):
            raise ValueError(f"{name} contains NaN{' or inf' if finite else ''}")
        if integer and np.any(v != np.round(v)):
            raise ValueError(f"{name} must hold integers, got {_show(x, v)}")
        if min_value is not None and np.any(v < min_value):
            raise ValueError(f"{name} must be >= {min_value:g}, got {_show(x, v)}")
    return x


def unconverted(check: Checker) -> Checker:
    """The kind ``check``, returning the argument as given (NumPy stays NumPy, float64 stays float64)."""

    def check_unconverted(x: Any, name: str, **options: Any) -> Any:
        check(x, name, **options)
        return x

    check_unconverted.__name__ = getattr(check, "__name__", "kind")
    check_unconverted.__wrapped_kind__ = _base_kind(check)
    check_unconverted.outcome_axis = getattr(check, "outcome_axis", False)
    check_unconverted.batch_parameter = getattr(check, "batch_parameter", False)
    return check_unconverted


def sample_sizes(x: Any, name: str = "ns") -> jax.Array:
    """Several numbers of samples (a grid, not one per distribution): :func:`sample_size` on each entry."""
    if isinstance(x, (list, tuple)) and any(isinstance(v, int) and not -(2**31) <= v < 2**31 for v in x):
        x = [float(v) for v in x]
    arr = sample_size(x, name)
    if arr.size == 0:
        raise ValueError(f"{name} must have at least one entry, got an empty {type(x).__name__}")
    return arr


def values(x: Any, name: str, *, min_size: int = 2, allow_inf: bool = False) -> jax.Array:
    """Per-trial values ``(T,)`` with ``T >= min_size``; if concrete, no NaN (and no inf unless allowed)."""
    arr = to_array(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (1-D, one value per trial), got shape {arr.shape}")
    if arr.shape[0] < min_size:
        what = "for a standard error" if min_size == 2 else ""
        raise ValueError(f"{name} needs at least {min_size} values {what}, got {arr.shape[0]}".rstrip())
    if is_concrete(arr) and jnp.issubdtype(arr.dtype, jnp.floating):
        v = np.asarray(arr)
        if np.any(np.isnan(v)) or (not allow_inf and np.any(np.isinf(v))):
            raise ValueError(f"{name} contains NaN{'' if allow_inf else ' or inf'}")
    return arr


def log_prob_values(x: Any, name: str = "log_probs") -> jax.Array:
    """Per-trial log-probabilities ``(T,)``, T ≥ 2; if concrete, no NaN and every entry ≤ 0.

    Entries in ``(0, 1]`` are named as what they most likely are: probabilities passed where log-probabilities
    are expected.
    """
    arr = values(x, name, allow_inf=True)
    if is_concrete(arr) and jnp.issubdtype(arr.dtype, jnp.floating):
        v = np.asarray(arr)
        if np.any(np.isposinf(v)):
            raise ValueError(f"{name} contains +inf; log-probabilities must be <= 0 (-inf for zero mass)")
        looks_like_probs = bool(np.all(v >= 0) and np.any(v > 0) and v.max() <= 1)
        if looks_like_probs or np.any(v > prob_tolerance(arr.dtype)):
            hint = (" — these look like probabilities: pass their logarithm (jnp.log), or use a function that "
                    "takes probabilities") if looks_like_probs else ""
            raise ValueError(f"{name} has entries > 0 (max {v.max():.3g}); log-probabilities must be <= 0{hint}")
    return arr


def real(x: Any, name: str) -> jax.Array:
    """Any real array; if concrete, no NaN (``±inf`` allowed)."""
    arr = to_array(x, name)
    if is_concrete(arr) and np.any(np.isnan(_values(arr))):
        raise ValueError(f"{name} contains NaN")
    return arr


def sequences(x: Any, name: str = "sequences", *, length: int | None = None) -> jax.Array:
    """Token sequences ``int[..., L]`` (integer dtype, rank ≥ 1, ``L == length`` if given; ids ≥ 0 if concrete)."""
    if x is None or isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an integer array of token ids, got {type(x).__name__}")
    seq = x if isinstance(x, jax.core.Tracer) else jnp.asarray(x)
    if not jnp.issubdtype(seq.dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer array of token ids, got dtype {seq.dtype}")
    if seq.ndim < 1:
        raise ValueError(f"{name} must have shape (..., L), got a scalar")
    if length is not None and seq.shape[-1] != length:
        raise ValueError(f"{name} must have shape (..., L) with L = {length}, got shape {seq.shape}")
    if is_concrete(seq) and seq.size and int(np.min(np.asarray(seq))) < 0:
        raise ValueError(f"{name} must hold token ids >= 0")
    return seq


def prng_key(x: Any, name: str = "key") -> jax.Array:
    """A PRNG key: a typed key (``jax.random.key``) or raw ``uint32[2]`` key data (``jax.random.PRNGKey``)."""
    if isinstance(x, jax.Array) or isinstance(x, jax.core.Tracer):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return x
        if x.dtype == jnp.uint32 and x.shape[-1:] == (2,):
            return x
    raise TypeError(f"{name} must be a PRNG key (jax.random.key(seed)), got {type(x).__name__}"
                    + (f" of dtype {x.dtype}" if hasattr(x, "dtype") else ""))


# ----------------------------------------------------------------------------------------------------
# Batch-parameter kinds (one value per distribution; shapes broadcast with the batch shape)


def _concrete_check(arr: jax.Array, ok: Callable[[np.ndarray], np.ndarray], message: str, x: Any) -> jax.Array:
    if is_concrete(arr):
        v = _values(arr)
        if not np.all(ok(v)):
            raise ValueError(f"{message}, got {_show(x, v)}")
    return arr


def _show(x: Any, v: np.ndarray) -> str:
    if v.size <= 8:
        return repr(x) if not isinstance(x, jax.Array) else repr(v.tolist() if v.ndim else float(v))
    return f"an array with min {np.nanmin(v):g}"


@_batch_parameter
def sample_size(n: Any, name: str = "n") -> jax.Array:
    """A number of samples: converts ``n`` to an array; if concrete, checks it is finite, integer-valued, ≥ 1.

    Python integers beyond the int32 range are converted to floats (exact up to 2**53).

    Raises:
      TypeError: if ``n`` is not a real number (bool and complex are refused).
      ValueError: if a concrete ``n`` is < 1, non-integer, NaN or inf.
    """
    if isinstance(n, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer >= 1, got a bool")
    if isinstance(n, int) and not -(2**31) <= n < 2**31:
        n = float(n)
    arr = to_array(n, name)
    if is_concrete(arr):
        v = _values(arr)
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite, got {n!r}")
        if np.any(v < 1):
            raise ValueError(f"{name} must be >= 1 (a number of samples), got min {v.min():g}")
        if np.any(v != np.round(v)):
            raise ValueError(f"{name} must be an integer (number of samples), got {n!r}")
    return arr


@_batch_parameter
def positive(x: Any, name: str) -> jax.Array:
    """``x > 0`` everywhere (``inf`` allowed; NaN refused; positive subnormals pass, see
    :func:`_positive_or_subnormal`), checked when concrete."""
    return _concrete_check(to_array(x, name), lambda v: v > 0, f"{name} must be > 0", x)


@_batch_parameter
def nonnegative(x: Any, name: str) -> jax.Array:
    """``x >= 0`` everywhere (``inf`` allowed; NaN refused), checked when concrete."""
    return _concrete_check(to_array(x, name), lambda v: v >= 0, f"{name} must be >= 0", x)


@_batch_parameter
def at_least_one(x: Any, name: str) -> jax.Array:
    """``x >= 1`` everywhere (``inf`` allowed; NaN refused), checked when concrete."""
    return _concrete_check(to_array(x, name), lambda v: v >= 1, f"{name} must be >= 1", x)


@_batch_parameter
def unit_interval(x: Any, name: str) -> jax.Array:
    """``0 <= x <= 1`` everywhere (NaN refused), checked when concrete."""
    return _concrete_check(to_array(x, name), lambda v: (v >= 0) & (v <= 1), f"{name} must be in [0, 1]", x)


def finite(x: Any, name: str) -> jax.Array:
    """Finite real values (no NaN or ±inf), checked when concrete."""
    return _concrete_check(to_array(x, name), np.isfinite, f"{name} must be finite", x)


# ----------------------------------------------------------------------------------------------------
# Static (Python) kinds


def static_int(x: Any, name: str, *, minimum: int = 1) -> int:
    """A static Python int ``>= minimum`` (a size that fixes shapes, so it cannot be traced)."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name} must be a Python int (it is static), got {type(x).__name__}")
    if x < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {x}")
    return int(x)


def static_sample_size(x: Any, name: str = "n") -> int:
    """A static number of samples: an int ≥ 1, or an integer-valued float (``4.0``)."""
    if isinstance(x, (float, np.floating)) and math.isfinite(x) and x == round(x):
        x = int(x)
    if isinstance(x, (jax.Array, np.ndarray)) and np.ndim(x) == 0 and is_concrete(x):
        arr = sample_size(x, name)
        return int(np.asarray(arr))
    if isinstance(x, (float, np.floating)):
        raise ValueError(f"{name} must be an integer >= 1 (a number of samples), got {x!r}")
    return static_int(x, name)


def static_shape(x: Any, name: str = "shape") -> tuple[int, ...]:
    """A sample shape: a non-negative int (meaning ``(x,)``) or a sequence of non-negative ints."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        x = (x,)
    if not isinstance(x, Sequence) or isinstance(x, str):
        raise TypeError(f"{name} must be a tuple of ints, got {type(x).__name__}")
    return tuple(static_int(s, f"{name}[{i}]", minimum=0) for i, s in enumerate(x))


def one_of(x: Any, name: str, *, choices: Sequence[Any]) -> Any:
    """``x`` must be one of ``choices``."""
    if not isinstance(x, str) or x not in tuple(choices):
        raise ValueError(f"unknown {name} {x!r}; {name} must be one of {tuple(choices)}")
    return x


def subset_of(x: Any, name: str, *, choices: Sequence[Any]) -> tuple[str, ...]:
    """A sequence of names (not a single string), each one of ``choices``."""
    if isinstance(x, str) or not isinstance(x, Sequence):
        raise TypeError(f"{name} must be a sequence of names from {tuple(choices)}, got {type(x).__name__}")
    bad = [v for v in x if not isinstance(v, str) or v not in tuple(choices)]
    if bad:
        raise ValueError(f"unknown {name} {bad!r}; each must be one of {tuple(choices)}")
    return tuple(x)


def static_number(x: Any, name: str, *, minimum: float | None = None, maximum: float | None = None,
                  open_min: bool = False) -> float:
    """A static Python float (a setting, not an array) within the bounds; refuses NaN, inf, str, None, bool."""
    if isinstance(x, (bool, np.bool_)) or (not isinstance(x, (int, float, np.integer, np.floating)) and not (
            isinstance(x, (jax.Array, np.ndarray)) and np.ndim(x) == 0 and is_concrete(x))):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if minimum is not None and (v <= minimum if open_min else v < minimum):
        raise ValueError(f"{name} must be {'>' if open_min else '>='} {minimum:g}, got {v:g}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {v:g}")
    return v


def path(x: Any, name: str = "path") -> Any:
    """A file path: ``str`` or ``os.PathLike``."""
    if not isinstance(x, (str, bytes)) and not hasattr(x, "__fspath__"):
        raise TypeError(f"{name} must be a file path (str or os.PathLike), got {type(x).__name__}")
    return x


def has_attributes(*attrs: str, what: str) -> Checker:
    """A kind for an object recognised by its attributes (e.g. an optax optimizer: ``init`` and ``update``)."""

    def check(x: Any, name: str) -> Any:
        for attr in attrs:
            if not hasattr(x, attr):
                raise TypeError(f"{name} must be {what} (with .{attr}), got {type(x).__name__}")
        return x

    check.__name__ = "has_attributes"
    return check


levels = has_attributes("log_cdf", "log_cdf_lower", "mass", "reward", what="RewardLevels (from reward_levels)")
optimizer = has_attributes("init", "update", what="an optax GradientTransformation")
module = has_attributes("init", "apply", what="a flax Module")
objective = has_attributes("__call__", what="an objective, called as objective(policy, data, key)")
train_state = has_attributes("policy", "opt_state", "step", "key", what="a TrainState (from init_train_state)")


def mapping(x: Any, name: str) -> Any:
    """A non-empty mapping (``dict``)."""
    if not isinstance(x, Mapping):
        raise TypeError(f"{name} must be a mapping (dict), got {type(x).__name__}")
    if not x:
        raise ValueError(f"{name} must have at least one entry, got an empty {type(x).__name__}")
    return x


def sequence_of(x: Any, name: str) -> Any:
    """A non-empty list or tuple (not a string)."""
    if isinstance(x, (str, bytes)) or not isinstance(x, (Sequence, np.ndarray, jax.Array)):
        raise TypeError(f"{name} must be a list or tuple, got {type(x).__name__}")
    if len(x) == 0:
        raise ValueError(f"{name} must have at least one entry, got an empty {type(x).__name__}")
    return x


def policy(x: Any, name: str = "policy") -> Any:
    """A policy pytree: has ``sample``, ``log_prob`` and ``length``, and its leaves are arrays."""
    for attr in ("sample", "log_prob", "length"):
        if not hasattr(x, attr):
            raise TypeError(f"{name} must be a bontheory Policy (with .{attr}), got {type(x).__name__}")
    _check_pytree_leaves(x, name)
    return x


def reward(x: Any, name: str = "reward") -> Any:
    """A reward: a pytree callable on ``int[..., L]`` sequences whose leaves are arrays, or a plain function."""
    if not callable(x):
        raise TypeError(f"{name} must be callable on int[..., L] sequences, got {type(x).__name__}")
    leaves = jax.tree.leaves(x)
    if not (len(leaves) == 1 and leaves[0] is x):  # a plain function is wrapped later (rewards.reward.as_reward)
        _check_pytree_leaves(x, name)
    return x


def _check_pytree_leaves(obj: Any, name: str) -> None:
    for leaf in jax.tree.leaves(obj):
        if not hasattr(leaf, "dtype"):
            raise TypeError(
                f"{name} must be a pytree whose leaves are arrays (e.g. a flax.struct.dataclass; it is "
                f"passed into jit as an argument), got a leaf of type {type(leaf).__name__}"
            )


# ----------------------------------------------------------------------------------------------------
# What ties arguments together


def same_outcomes(named: Sequence[tuple[str, jax.Array]]) -> tuple[int, ...]:
    """Checks ``(..., K)`` arrays agree in K and have broadcastable batch shapes; returns the batch shape."""
    if not named:
        return ()
    first_name, first = named[0]
    for other_name, other in named[1:]:
        if other.shape[-1] != first.shape[-1]:
            raise ValueError(
                f"{first_name} and {other_name} must have the same number of outcomes K (last axis): "
                f"got shapes {first.shape} and {other.shape}"
            )
    try:
        return tuple(np.broadcast_shapes(*(a.shape[:-1] for _, a in named)))
    except ValueError:
        names = ", ".join(n for n, _ in named)
        shapes = ", ".join(str(a.shape[:-1]) for _, a in named)
        raise ValueError(f"{names} have incompatible batch shapes {shapes}") from None


def broadcasts_with_batch(
    named: Sequence[tuple[str, jax.Array]], batch: tuple[int, ...], outcome_names: Sequence[str]
) -> None:
    """Checks each per-distribution parameter's shape broadcasts with the batch shape ``batch``."""
    for name, arr in named:
        shape = tuple(np.shape(arr))
        try:
            np.broadcast_shapes(batch, shape)
        except ValueError:
            raise ValueError(
                f"{name} of shape {shape} does not broadcast with the batch shape {batch} of "
                f"{', '.join(outcome_names)}: one {name} per distribution needs shape {batch} (or a "
                f"broadcastable one); for a grid of values per distribution give it trailing axes, e.g. "
                f"{shape + (1,) * len(batch)}, and the result gets shape {shape + batch} + (K,) for pmfs"
            ) from None


# (id(array), checker) pairs already validated by an enclosing decorated call: a public function calling
# another with the same arrays does not check their values twice (the enclosing call holds the arrays, so
# their ids cannot be reused while the set is alive).
_VALIDATED: contextvars.ContextVar[set[tuple[int, Any]] | None] = contextvars.ContextVar("validated", default=None)


def _check_once(check: Checker, value: Any, name: str) -> Any:
    seen = _VALIDATED.get()
    if isinstance(value, jax.Array) and (id(value), _identity(check)) in seen:
        return value
    out = check(value, name)
    if isinstance(out, jax.Array):
        seen.add((id(out), _identity(check)))
    return out


def _identity(check: Checker) -> Any:
    if isinstance(check, functools.partial):
        return (check.func, tuple(sorted(check.keywords.items())))
    return check


def validate(**kinds: Checker) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: validates the named arguments by their declared kinds before the function runs.

    Each argument named in ``kinds`` is replaced by ``kinds[name](value, name)``; then arguments of an
    outcome kind must share K and broadcastable batch shapes (:func:`same_outcomes`), and batch-parameter
    arguments must broadcast with that batch shape (:func:`broadcasts_with_batch`). An argument whose
    value is ``None`` and whose default is ``None`` is left alone (an optional argument not given).

    The declaration is kept as ``fn.argument_kinds``.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn)
        unknown = set(kinds) - set(sig.parameters)
        if unknown:
            raise TypeError(f"validate: {fn.__name__} has no argument(s) {sorted(unknown)}")
        ordered = [name for name in sig.parameters if name in kinds]
        optional = {name for name in ordered if sig.parameters[name].default is None}

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = bound.arguments
            seen = _VALIDATED.get()
            token = _VALIDATED.set(set() if seen is None else seen)
            try:
                outcome, params = [], []
                for name in ordered:
                    value = arguments[name]
                    if value is None and name in optional:
                        continue
                    check = kinds[name]
                    arguments[name] = value = _check_once(check, value, name)
                    if getattr(check, "outcome_axis", False):
                        outcome.append((name, value))
                    elif getattr(check, "batch_parameter", False):
                        params.append((name, value))
                batch = same_outcomes(outcome)
                if outcome and params:
                    broadcasts_with_batch(params, batch, [n for n, _ in outcome])
                flags = traced_flags(
                    [(name, kinds[name], arguments[name]) for name in ordered if arguments[name] is not None]
                )
                out = fn(*bound.args, **bound.kwargs)
                return poison(out, flags) if flags else out
            finally:
                _VALIDATED.reset(token)

        wrapper.argument_kinds = dict(kinds)
        return wrapper

    return decorate


# ----------------------------------------------------------------------------------------------------
# Under jit / vmap: bad values poison the result (NaN), and raise inside bontheory.checked


def _base_kind(check: Checker) -> Any:
    while isinstance(check, functools.partial):
        check = check.func
    return getattr(check, "__wrapped_kind__", check)


def _bad_mask(check: Checker, x: jax.Array) -> tuple[jax.Array, str] | None:
    """``(bad, what)`` for a traced argument of a value-checked kind: ``bad`` is True where the value is
    invalid (reduced over the outcome axis for outcome kinds); ``None`` for kinds without value checks."""
    kind = _base_kind(check)
    if not hasattr(x, "dtype") or not (jnp.issubdtype(x.dtype, jnp.floating) or kind is sample_size):
        return None
    v = x.astype(_floating(x.dtype))
    if kind is probs:
        tol = prob_tolerance(v.dtype)
        s = jnp.sum(v, axis=-1)
        bad = jnp.any(jnp.isnan(v) | (v < -tol), axis=-1) | ~(
            jnp.abs(s - 1) <= max(tol, 4 * np.sqrt(v.shape[-1]) * float(jnp.finfo(v.dtype).eps))
        )
        return bad, "a pmf (entries >= 0 summing to 1, no NaN)"
    if kind is log_probs:
        tol = prob_tolerance(v.dtype)
        s = jnp.sum(jnp.exp(v), axis=-1)
        bad = jnp.any(jnp.isnan(v) | (v > tol), axis=-1) | ~(
            jnp.abs(s - 1) <= max(tol, 4 * np.sqrt(v.shape[-1]) * float(jnp.finfo(v.dtype).eps))
        )
        return bad, "a normalised log-pmf"
    if kind is rewards:
        return jnp.any(~jnp.isfinite(v), axis=-1), "finite"
    if kind is log_densities:
        return jnp.any(jnp.isnan(v) | (v == jnp.inf), axis=-1), "log-probabilities (no NaN or +inf)"
    if kind is sample_size:
        return ~(jnp.isfinite(v) & (v >= 1) & (v == jnp.round(v))), "an integer >= 1"
    tests = {
        positive: (_positive_or_subnormal, "> 0"),
        nonnegative: (lambda a: a >= 0, ">= 0"),
        at_least_one: (lambda a: a >= 1, ">= 1"),
        unit_interval: (lambda a: (a >= 0) & (a <= 1), "in [0, 1]"),
        finite: (jnp.isfinite, "finite"),
        real: (lambda a: ~jnp.isnan(a), "not NaN"),
        values: (lambda a: ~jnp.isnan(a), "not NaN"),
    }
    if kind in tests:
        ok, what = tests[kind]
        return ~ok(v), what
    return None


def _positive_or_subnormal(a: jax.Array) -> jax.Array:
    """``a > 0`` for a floating array, counting positive subnormals under ``jit`` too.

    XLA on CPU flushes subnormals (below ``finfo.smallest_normal``, 1.2e-38 in float32) to zero in arithmetic
    and comparisons, eagerly and under ``jit``, while NumPy does not: a concrete ``1e-40`` passes the eager
    check (then computes as 0, its limit), so the traced check reads the bits and passes it as well.
    """
    uint = {2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}[jnp.dtype(a.dtype).itemsize]
    bits = jax.lax.bitcast_convert_type(a, uint)
    normal = np.asarray(jnp.finfo(a.dtype).smallest_normal, a.dtype).view(np.dtype(uint))
    return (a > 0) | ((bits > 0) & (bits < normal))  # +0 is 0; negatives and NaN are >= normal's bits


def traced_flags(named: Sequence[tuple[str, Checker, Any]]) -> list[tuple[jax.Array, bool]]:
    """For the traced arguments: ``(bad, per_row)`` masks (per distribution for outcome and batch-parameter
    kinds, else one flag for the whole call). Each also becomes a :func:`jax.experimental.checkify.debug_check`,
    a no-op unless the call runs inside :func:`checked`."""
    flags = []
    for name, check, value in named:
        if not isinstance(value, jax.core.Tracer):
            continue
        found = _bad_mask(check, value)
        if found is None:
            continue
        bad, what = found
        checkify.debug_check(~jnp.any(bad), f"{name} must be {what}")
        per_row = bool(getattr(check, "outcome_axis", False) or getattr(check, "batch_parameter", False))
        flags.append((bad if per_row else jnp.any(bad), per_row))
    return flags


def poison(out: Any, flags: Sequence[tuple[jax.Array, bool]]) -> Any:
    """NaN where an input was invalid: per batch element where the output's leading axes are the batch shape
    (``S`` or ``S + (K,)``), else the whole floating output."""
    rows = [b for b, per_row in flags if per_row]
    whole = [b for b, per_row in flags if not per_row]
    try:
        row_bad = functools.reduce(jnp.logical_or, rows) if rows else None
    except ValueError:  # masks that do not broadcast together: poison whole outputs
        row_bad, whole = None, whole + [jnp.any(b) for b in rows]
    any_bad = functools.reduce(jnp.logical_or, whole + ([jnp.any(row_bad)] if row_bad is not None else []))

    def leaf(x: Any) -> Any:
        if not hasattr(x, "dtype") or not jnp.issubdtype(x.dtype, jnp.floating):
            return x
        mask = functools.reduce(jnp.logical_or, whole) if whole else jnp.asarray(False)
        if row_bad is not None:
            if x.ndim >= 1 and _broadcasts(row_bad.shape, x.shape[:-1]):
                mask = mask | row_bad[..., None]  # a (..., K) output: one row per distribution
            elif _broadcasts(row_bad.shape, x.shape):
                mask = mask | row_bad
            else:
                mask = any_bad
        return jnp.where(mask, jnp.nan, x)

    return jax.tree.map(leaf, out)


def _broadcasts(small: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return tuple(np.broadcast_shapes(small, target)) == tuple(target)
    except ValueError:
        return False


def checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its boundary value checks raising also under ``jax.jit`` / ``jax.vmap`` (opt-in).

    Without it, traced bad values poison the result (NaN). ``checked(fn)(*args)`` runs ``fn`` under
    :func:`jax.experimental.checkify.checkify` and raises ``ValueError`` naming the argument if a check fails;
    ``fn`` may be jitted (``checked(jax.jit(bon_kl))``) or a function of yours calling bontheory inside ``jit``.
    """

    if not callable(fn):
        raise TypeError(f"fn must be a callable (a bontheory function, jitted or not), got {type(fn).__name__}")

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        err, out = checkify.checkify(fn)(*args, **kwargs)
        message = err.get()
        if message is not None:
            raise ValueError(message.split(" (`check` failed)")[0].strip())
        return out

    return run
