r"""The log/exp tricks, written once: logarithms with :math:`\log 0 = -\infty`, the KL and entropy kernels
with :math:`0 \log 0 = 0`, and the batch broadcasting every ``(..., K)`` function shares.

Every function here is safe to differentiate: the branch a ``where`` does not select is made finite too,
so ``jax.grad`` never sees ``log(0)`` or ``0 · inf`` (the double-``where`` trick, or
:func:`jax.scipy.special.rel_entr`, which does it internally). Nothing here validates its input: the
public functions validate at their boundary (:mod:`bontheory.validation`) and call these kernels.

KL divergences, all reducing over the last axis ``K``:

* :func:`kl_from_probs` — :math:`\sum_y p(y) \log(p(y)/q(y))` from probabilities (``rel_entr``);
* :func:`kl_from_log_probs` — the same from log-probabilities (``-inf`` for zero mass);
* :func:`entropy_from_log_probs` — :math:`-\sum_y p(y) \log p(y)`.

In each, an outcome with :math:`p(y) = 0` contributes 0 and one with :math:`p(y) > 0 = q(y)` gives
:math:`+\infty`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import rel_entr
from jax.typing import ArrayLike
from jaxtyping import Array, Float


def safe_log(x: ArrayLike) -> Array:
    r""":math:`\log x` for :math:`x \ge 0`, with :math:`\log 0 = -\infty` and a zero (not NaN) gradient at 0."""
    x = jnp.asarray(x)
    pos = x > 0
    return jnp.where(pos, jnp.log(jnp.where(pos, x, 1)), -jnp.inf)


def kl_from_probs(p: Float[ArrayLike, "*batch K"], q: Float[ArrayLike, "*batch K"]) -> Float[Array, "*batch"]:
    r""":math:`\mathrm{KL}(p\|q) = \sum_y p(y) \log\frac{p(y)}{q(y)}` over the last axis (``rel_entr`` terms)."""
    return jnp.sum(rel_entr(p, q), axis=-1)


def log_prob_kl_terms(
    log_p: Float[ArrayLike, "*batch K"], log_q: Float[ArrayLike, "*batch K"]
) -> Float[Array, "*batch K"]:
    r"""The terms :math:`p(y)\,(\log p(y) - \log q(y))` with :math:`p = e^{\log p}`: 0 where :math:`p(y) = 0`
    (whatever :math:`\log q(y)`), :math:`+\infty` where :math:`p(y) > 0` and :math:`\log q(y) = -\infty`."""
    log_p = jnp.asarray(log_p)
    log_q = jnp.asarray(log_q)
    p = jnp.exp(log_p)
    pos = p > 0
    diff = jnp.where(pos, log_p - jnp.where(pos, log_q, 0.0), 0.0)
    return jnp.where(pos, p * diff, 0.0)


def kl_from_log_probs(
    log_p: Float[ArrayLike, "*batch K"], log_q: Float[ArrayLike, "*batch K"]
) -> Float[Array, "*batch"]:
    r""":math:`\mathrm{KL}(p\|q) = \sum_y p(y)(\log p(y) - \log q(y))` from log-probabilities, over the last axis."""
    return jnp.sum(log_prob_kl_terms(log_p, log_q), axis=-1)


def entropy_from_log_probs(log_p: Float[ArrayLike, "*batch K"]) -> Float[Array, "*batch"]:
    r""":math:`H(p) = -\sum_y p(y) \log p(y)` from log-probabilities (:math:`0 \log 0 = 0`), over the last axis."""
    log_p = jnp.asarray(log_p)
    return -kl_from_log_probs(log_p, jnp.zeros_like(log_p))


def floating_dtype(*arrays: Any) -> Any:
    """The floating dtype to compute in: the promotion of the floating inputs (JAX's default float if none)."""
    floats = [a.dtype for a in arrays if jnp.issubdtype(a.dtype, jnp.floating)]
    if not floats:
        return jnp.result_type(float)
    return jnp.result_type(*floats)


def batch_shape(*arrays: Any) -> tuple[int, ...]:
    """The broadcast of the batch shapes ``a.shape[:-1]`` of ``(..., K)`` arrays."""
    return tuple(jnp.broadcast_shapes(*(a.shape[:-1] for a in arrays)))


def broadcast_batch(x: ArrayLike, batch: tuple[int, ...]) -> Array:
    """``x`` of shape ``(..., K)`` broadcast explicitly to ``batch + (K,)`` (rank promotion is strict)."""
    x = jnp.asarray(x)
    return jnp.broadcast_to(x, tuple(batch) + x.shape[-1:])


def broadcast_outcomes(*arrays: ArrayLike, batch: tuple[int, ...] | None = None) -> tuple[Array, ...]:
    """``(..., K)`` arrays cast to their common floating dtype and broadcast to one batch shape.

    Args:
      *arrays: arrays with the same last axis K.
      batch: the batch shape to broadcast to (default: the broadcast of the arrays' own batch shapes).
    """
    arrs = [jnp.asarray(a) for a in arrays]
    dtype = floating_dtype(*arrs)
    shape = batch_shape(*arrs) if batch is None else tuple(batch)
    return tuple(broadcast_batch(a.astype(dtype), shape) for a in arrs)


def broadcast_parameter(x: ArrayLike, batch: tuple[int, ...], dtype: Any) -> tuple[Array, tuple[int, ...]]:
    """A per-distribution parameter (``n``, β, M, …) broadcast with a batch shape, with a trailing axis.

    Returns:
      ``(x', shape)``: ``x'`` of shape ``shape + (1,)`` in ``dtype``, ``shape = broadcast(batch, x.shape)``.
    """
    x = jnp.asarray(x)
    shape = tuple(jnp.broadcast_shapes(tuple(batch), x.shape))
    return jnp.broadcast_to(x.astype(dtype), shape)[..., None], shape


def _two_sum_combine(x: tuple[Array, Array], y: tuple[Array, Array]) -> tuple[Array, Array]:
    """``(hi, lo)`` pairs added as double-word numbers (Knuth's TwoSum on the high parts)."""
    (a, ca), (b, cb) = x, y
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return s, err + ca + cb


def compensated_cumsum(x: ArrayLike) -> tuple[Array, Array]:
    """Inclusive prefix sums of a 1-D array as double-word ``(hi, lo)`` pairs (``hi + lo`` accurate to
    ~eps² of the running total instead of ~n·eps): one associative scan of TwoSum."""
    x = jnp.asarray(x)
    return jax.lax.associative_scan(_two_sum_combine, (x, jnp.zeros_like(x)))


def sorted_segment_sum(x: ArrayLike, segment_ids: ArrayLike, num_segments: int) -> Array:
    """``jax.ops.segment_sum`` for sorted ``segment_ids`` (0, 1, … without gaps), accurate for long segments.

    A segment of m terms summed one by one loses up to ~m·eps (a tied level of 10⁶ outcomes lost 0.9 % of its
    mass in float32); here each sum is a difference of compensated prefix sums (:func:`compensated_cumsum`),
    accurate to ~eps of the total. Short segments (≤ 64 terms), where the plain sum is already accurate also
    relative to a tiny segment's own size, keep the plain sum.
    """
    x = jnp.asarray(x)
    ids = jnp.asarray(segment_ids)
    plain = jax.ops.segment_sum(x, ids, num_segments=num_segments, indices_are_sorted=True)
    count = jax.ops.segment_sum(jnp.ones_like(ids), ids, num_segments=num_segments, indices_are_sorted=True)
    hi, lo = compensated_cumsum(x)
    # the last position of each segment, and the prefix just before its first position
    last = jnp.cumsum(count) - 1
    valid = count > 0
    last_c = jnp.clip(last, 0, x.shape[0] - 1)
    before = last_c - count
    hi_end, lo_end = hi[last_c], lo[last_c]
    hi_start = jnp.where(before >= 0, hi[jnp.clip(before, 0, x.shape[0] - 1)], 0)
    lo_start = jnp.where(before >= 0, lo[jnp.clip(before, 0, x.shape[0] - 1)], 0)
    long = (hi_end - hi_start) + (lo_end - lo_start)
    return jnp.where(valid, jnp.where(count > 64, long, plain), 0)
