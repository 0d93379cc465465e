r"""The exact Best-of-n policy on a finite outcome space (docs/theory.md §1).

BoN draws :math:`Y_1..Y_n \sim p` i.i.d. and returns a draw of maximal reward, ties broken uniformly at
random among the tied draws. With :math:`F(y) = P_p(r(Y) \le r(y))`, :math:`F^-(y) = P_p(r(Y) < r(y))` and
:math:`m(y) = F(y) - F^-(y)` (the mass of y's reward level),

.. math:: \pi_n(y) = \frac{p(y)}{m(y)} \big(F(y)^n - F^-(y)^n\big).

Every function here evaluates on :class:`~bontheory.exact.levels.RewardLevels` (one sort), so an array
``n`` or ``jax.vmap`` over ``n`` does not re-sort. ``n`` may be a Python int, an array whose shape
broadcasts with the batch shape of the distributions, or a tracer. Results have shape
``broadcast(batch, n.shape)`` (scalars per distribution) or that plus ``(K,)`` (pmfs).

References:
  Beirami et al., "Theoretical guarantees on the best-of-n alignment policy", arXiv 2401.01879 (tie-free
  form :math:`F^n - F^{-n}`); the tie-splitting form is derived in docs/theory.md §1.2.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Int, Real

from bontheory import validation
from bontheory.exact.levels import (
    RewardLevels,
    broadcast_level_array,
    broadcast_levels_n,
    map_over_levels,
    on_reward_levels,
    reward_levels,
    sum_over_levels,
)

# ----------------------------------------------------------------------------------------------------
# On precomputed levels (no checks; n may be traced)


def _kl_terms(lv: RewardLevels, log_q: jax.Array, shape) -> jax.Array:
    pos = log_q > -jnp.inf
    lq = jnp.where(pos, log_q, 0)  # double where: no 0·(−inf) in either branch, nor in its derivative
    log_m = broadcast_level_array(lv.log_mass, shape)
    return jnp.where(pos, jnp.exp(lq) * (lq - jnp.where(pos, log_m, 0)), 0)


def _reward_terms(lv: RewardLevels, log_q: jax.Array, shape) -> jax.Array:
    return jnp.exp(log_q) * broadcast_level_array(lv.reward, shape)


def _loss_terms(lv: RewardLevels, log_q: jax.Array, shape) -> jax.Array:
    return jnp.exp(log_q) * (broadcast_level_array(lv.tail, shape) + 0.5 * broadcast_level_array(lv.mass, shape))


def _log_ratio_values(lv: RewardLevels, log_q: jax.Array, shape) -> jax.Array:
    """``log(q_ℓ/m_ℓ)``: log π_n(y)/p(y) on each level (−inf where q = 0)."""
    log_m = broadcast_level_array(lv.log_mass, shape)
    pos = log_q > -jnp.inf
    return jnp.where(pos, jnp.where(pos, log_q, 0) - jnp.where(pos, log_m, 0), -jnp.inf)


def _ratio_values(lv: RewardLevels, log_q: jax.Array, shape) -> jax.Array:
    """``q_ℓ/m_ℓ``: π_n(y)/p(y) on each level (0 where q = 0); one exp per level, none per outcome."""
    return jnp.exp(_log_ratio_values(lv, log_q, shape))


def _gather_rows(values: jax.Array, index: jax.Array) -> jax.Array:
    """``values[..., index]`` as one gather along the last axis with indices broadcast to every row:
    ``S + (L,)``, ``(..., K)`` -> ``broadcast(S, ...) + (K,)``."""
    shape = jnp.broadcast_shapes(values.shape[:-1], index.shape[:-1])
    values = jnp.broadcast_to(values, shape + values.shape[-1:])
    return jnp.take_along_axis(values, jnp.broadcast_to(index, shape + index.shape[-1:]), axis=-1)


@jax.custom_batching.custom_vmap
def _gather_batched_rows(values: jax.Array, index: jax.Array) -> jax.Array:
    return _gather_rows(values, index)


@_gather_batched_rows.def_vmap
def _gather_batched_rows_vmap(axis_size: int, in_batched: list[bool], values: jax.Array, index: jax.Array):
    # vmap (e.g. over n) adds a leading axis; gathering row by row keeps the result in that (row-major) layout,
    # where JAX's generic rule gathers columns of the batched values and transposes (a K-long copy per n)
    values_batched, index_batched = in_batched
    if not values_batched:
        values = jnp.broadcast_to(values, (axis_size, *values.shape))
    if not index_batched:
        index = jnp.broadcast_to(index, (axis_size, *index.shape))
    pad = lambda a, rank: a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:])
    rank = max(values.ndim, index.ndim)
    return _gather_rows(pad(values, rank), pad(index, rank)), True


@jax.custom_jvp
def _gather_levels(values: jax.Array, index: jax.Array) -> jax.Array:
    return _gather_batched_rows(values, index)


@_gather_levels.defjvp
def _gather_levels_jvp(primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    values, index = primals
    return _gather_levels(values, index), _gather_rows(tangents[0], index)  # linear in the values: transposable


def _per_outcome(levels: RewardLevels, level_values: jax.Array) -> jax.Array:
    """``level_values[..., level_of]``: one value per outcome (``S + (L,)`` -> ``S + (K,)``)."""
    return _gather_levels(level_values, broadcast_level_array(levels.level_of, level_values.shape[:-1]))


@validation.validate(levels=validation.levels, n=validation.sample_size)
@jax.jit
def bon_log_pmf_from_levels(levels: RewardLevels, n: jax.Array) -> jax.Array:
    r""":math:`\log \pi_n(y) = \log p(y) - \log m(y) + \log(F(y)^n - F^-(y)^n)` on precomputed levels.

    Returns:
      ``broadcast(B, n.shape) + (K,)``, ``-inf`` where :math:`p(y) = 0`.
    """
    # π_n/p is constant on a level: one value per level (real levels only), then a single gather per outcome
    log_ratio_y = _per_outcome(levels, map_over_levels(levels, n, _log_ratio_values, -jnp.inf))
    log_p = broadcast_level_array(levels.log_probs, log_ratio_y.shape[:-1])
    pos = log_p > -jnp.inf
    return jnp.where(pos, log_p + jnp.where(pos, log_ratio_y, 0), -jnp.inf)


@validation.validate(levels=validation.levels, n=validation.sample_size)
@jax.jit
def bon_pmf_from_levels(levels: RewardLevels, n: jax.Array) -> jax.Array:
    r""":math:`\pi_n(y) = p(y)\,q_{\ell(y)}(n)/m_{\ell(y)}` on precomputed levels (the ratio is computed per level and
    gathered, so the per-outcome work is one gather and one product).

    Returns:
      ``broadcast(B, n.shape) + (K,)``.
    """
    ratio_y = _per_outcome(levels, map_over_levels(levels, n, _ratio_values, 0.0))
    p = jnp.exp(levels.log_probs)
    return broadcast_level_array(p, ratio_y.shape[:-1]) * ratio_y


@validation.validate(levels=validation.levels, n=validation.sample_size)
@jax.jit
def bon_kl_from_levels(levels: RewardLevels, n: jax.Array) -> jax.Array:
    r""":math:`\mathrm{KL}(\pi_n \| p) = \sum_\ell q_\ell \log(q_\ell / m_\ell)`, with
    :math:`q_\ell = F_\ell^n - F_\ell^{-n}`.

    Rounding can make the sum a few ulps negative (at n = 1); it is clipped at 0. The sum runs over blocks of
    real levels only (``exact.levels.sum_over_levels``), so padding costs nothing per n.

    Returns:
      ``broadcast(B, n.shape)``.
    """
    return jnp.maximum(sum_over_levels(levels, n, _kl_terms), 0)


@validation.validate(levels=validation.levels, n=validation.sample_size)
@jax.jit
def bon_expected_reward_from_levels(levels: RewardLevels, n: jax.Array) -> jax.Array:
    r""":math:`E_{\pi_n}[r] = \sum_\ell r_\ell (F_\ell^n - F_\ell^{-n})`. Returns ``broadcast(B, n.shape)``."""
    return sum_over_levels(levels, n, _reward_terms)


@validation.validate(levels=validation.levels, n=validation.sample_size)
@jax.jit
def bon_win_rate_from_levels(levels: RewardLevels, n: jax.Array) -> jax.Array:
    r"""Win rate of :math:`\pi_n` against p, ties counted ½:
    :math:`W_n = \tfrac12 \sum_\ell q_\ell (F_\ell + F^-_\ell) = 1 - \sum_\ell q_\ell (1 - F_\ell + m_\ell/2)`
    (the second form, used here, is accurate when :math:`W_n \approx 1`). Returns ``broadcast(B, n.shape)``.
    """
    return 1 - sum_over_levels(levels, n, _loss_terms)


# ----------------------------------------------------------------------------------------------------
# Public API on (ref_probs, rewards)


# the level fields each function reads (on CPU each K-length field costs a copy out of the host construction)
_Q_FIELDS = ("log_cdf", "log_ratio")
_KL_FIELDS = (*_Q_FIELDS, "log_mass")
_REWARD_FIELDS = (*_Q_FIELDS, "reward")
_LOSS_FIELDS = (*_Q_FIELDS, "tail", "mass")
_LOG_PMF_FIELDS = (*_KL_FIELDS, "level_of", "log_probs")
_SAMPLE_FIELDS = ("log_cdf", "order", "level_of", "log_probs", "count")


_validated = validation.validate(ref_probs=validation.probs, rewards=validation.rewards, n=validation.sample_size)


@_validated
def bon_log_pmf(
    ref_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], n: ArrayLike
) -> Float[Array, "*batch K"]:
    r"""Exact log-pmf of the best-of-n policy (ties split ∝ p), computed in log space.

    .. math:: \log \pi_n(y) = \log p(y) - \log m(y) + n \log F(y)
              + \log\!\big(-\mathrm{expm1}(n \log(F^-(y)/F(y)))\big)

    Args:
      ref_probs: ``(..., K)`` reference pmf p.
      rewards: ``(..., K)`` rewards (batch shape broadcasts with ``ref_probs``).
      n: integer ≥ 1, scalar or array broadcasting with the batch shape; may be traced.

    Returns:
      ``broadcast(batch, n.shape) + (K,)``; ``-inf`` where p(y) = 0. Accurate for n up to 1e6 and
      probabilities down to 1e-30 in float32 and float64.

    Differentiable in ``ref_probs`` (docs/theory.md §1.8); rewards enter only through their order (zero gradient).
    """
    return on_reward_levels(ref_probs, rewards, n, bon_log_pmf_from_levels, _LOG_PMF_FIELDS)


@_validated
def bon_pmf(
    ref_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], n: ArrayLike
) -> Float[Array, "*batch K"]:
    r"""Exact pmf of the best-of-n policy: :math:`\pi_n(y) = \frac{p(y)}{m(y)}(F(y)^n - F^-(y)^n)`.

    Ties are broken uniformly among tied *draws*, which splits a level's mass ∝ p (docs/theory.md §1.2). Shapes as
    :func:`bon_log_pmf`.

    Differentiable in ``ref_probs`` (docs/theory.md §1.8); rewards enter only through their order (zero gradient).
    """
    return on_reward_levels(ref_probs, rewards, n, bon_pmf_from_levels, _LOG_PMF_FIELDS)


@_validated
def bon_kl(
    ref_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], n: ArrayLike
) -> Float[Array, "*batch"]:
    r"""Exact KL of BoN to the reference over reward levels.

    :math:`\mathrm{KL}(\pi_n \| p) = \sum_\ell (F_\ell^n - F_\ell^{-n}) \log\frac{F_\ell^n - F_\ell^{-n}}{m_\ell}`.

    (Within a level :math:`\pi_n/p` is constant, so the KL is a sum over levels.) Always
    ≤ :func:`~bontheory.exact.bounds.bon_kl_bound` ``(n)``.

    Differentiable in ``ref_probs`` (docs/theory.md §1.8); rewards enter only through their order (zero gradient).

    Returns:
      ``broadcast(batch, n.shape)``.
    """
    return on_reward_levels(ref_probs, rewards, n, bon_kl_from_levels, _KL_FIELDS)


@_validated
def bon_expected_reward(
    ref_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], n: ArrayLike
) -> Float[Array, "*batch"]:
    r""":math:`E_{\pi_n}[r] = \sum_\ell r_\ell (F_\ell^n - F_\ell^{-n})`. Returns ``broadcast(batch, n.shape)``.

    Differentiable in ``ref_probs`` and in ``rewards`` (:math:`\partial E/\partial r(y) = \pi_n(y)`; with ties, along
    moves that keep them) (docs/theory.md §1.8).
    """
    return on_reward_levels(ref_probs, rewards, n, bon_expected_reward_from_levels, _REWARD_FIELDS)


@_validated
def bon_win_rate(
    ref_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], n: ArrayLike
) -> Float[Array, "*batch"]:
    r"""Win rate of BoN against a fresh reference draw, ties ½: :math:`\tfrac12\sum_\ell q_\ell (F_\ell + F^-_\ell)`.

    Equals ``win_rate(bon_pmf(p, r, n), p, r)``; ≤ n/(n+1). Returns ``broadcast(batch, n.shape)``.
    Differentiable in ``ref_probs``; rewards enter only through their order (docs/theory.md §1.8).
    """
    return on_reward_levels(ref_probs, rewards, n, bon_win_rate_from_levels, _LOSS_FIELDS)


# ----------------------------------------------------------------------------------------------------
# Exact sampling


def _segmented_cumsum(values: jax.Array, starts: jax.Array) -> jax.Array:
    """Inclusive cumulative sum restarting at each ``starts`` flag (exact within a segment, no cancellation)."""

    def op(a, b):
        av, af = a
        bv, bf = b
        return jnp.where(bf, bv, av + bv), af | bf

    out, _ = jax.lax.associative_scan(op, (values, starts))
    return out


@functools.partial(jax.jit, static_argnums=3)
def _sample_1d(key: jax.Array, levels: RewardLevels, n: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    dtype = levels.log_cdf.dtype
    k_level, k_within = jax.random.split(key)
    # Max of n uniforms is U^{1/n}; in log space log V = log(U)/n, U in (0, 1].
    u = jax.random.uniform(k_level, shape, dtype)
    log_v = jnp.log1p(-u) / n.astype(dtype)
    log_cdf = jax.lax.cummax(levels.log_cdf)  # guard against ulp-level non-monotonicity at F = 1/2
    lvl = jnp.searchsorted(log_cdf, log_v, side="left").astype(jnp.int32)
    lvl = jnp.minimum(lvl, levels.num_levels - 1)
    # Within the level, an outcome ∝ p: binary search on a per-level cumulative sum.
    order = levels.order
    ps = jnp.exp(levels.log_probs[order])
    seg = levels.level_of[order]
    starts_flag = jnp.concatenate([jnp.ones((1,), bool), seg[1:] != seg[:-1]])
    seg_cum = _segmented_cumsum(ps, starts_flag)
    start = jnp.cumsum(levels.count) - levels.count
    # materialise the tables once: otherwise XLA may fuse (recompute) them into every gather below
    seg_cum, start, order = jax.lax.optimization_barrier((seg_cum, start, order))
    lo = start[lvl]
    hi = lo + levels.count[lvl] - 1
    total = seg_cum[hi]
    t = jax.random.uniform(k_within, shape, dtype) * total
    # binary search for the first position in [lo, hi] with seg_cum > t; the loop runs
    # ⌈log2(largest level size)⌉ + 1 times (zero times when all rewards are distinct)

    def not_done(c):
        lo, hi = c
        return jnp.any(lo < hi)

    def step(c):
        lo, hi = c
        mid = (lo + hi) // 2
        left = seg_cum[mid] > t
        return jnp.where(left, lo, jnp.minimum(mid + 1, hi)), jnp.where(left, mid, hi)

    lo, _ = jax.lax.while_loop(not_done, step, (lo, hi))
    return order[lo]


@validation.validate(
    key=validation.prng_key, ref_probs=validation.probs, rewards=validation.rewards, n=validation.sample_size,
    shape=validation.static_shape,
)
def bon_sample_exact(
    key: jax.Array,
    ref_probs: Float[ArrayLike, "*batch K"],
    rewards: Real[ArrayLike, "*batch K"],
    n: ArrayLike,
    shape: Sequence[int] | int = (),
) -> Int[Array, "*shape *batch"]:
    r"""Exact best-of-n samples by the inverse-CDF trick; the cost does not grow with n.

    The maximum of n uniforms is :math:`V = U^{1/n}` (:math:`\log V = \log U / n`); the chosen level is the
    first whose CDF reaches V (binary search over the sorted level CDF), and the outcome within it is drawn
    ∝ p (binary search on a per-level cumulative sum). Cost :math:`O(K \log K)` once for the sort plus
    :math:`O(\log K)` per draw.

    Args:
      key: a PRNG key.
      ref_probs: ``(..., K)`` reference pmf.
      rewards: ``(..., K)`` rewards.
      n: integer ≥ 1, scalar or broadcasting with the batch shape; may be traced.
      shape: sample shape.

    Returns:
      int32 outcome indices of shape ``tuple(shape) + batch``.
    """
    levels = reward_levels(ref_probs, rewards, fields=_SAMPLE_FIELDS)  # validated by the decorator
    return _sample_batched(key, levels, n, shape)  # for many n from one sort: bon_sample_exact_from_levels


@validation.validate(
    key=validation.prng_key, levels=validation.levels, n=validation.sample_size, shape=validation.static_shape
)
def bon_sample_exact_from_levels(
    key: jax.Array, levels: RewardLevels, n: ArrayLike, shape: Sequence[int] | int = ()
) -> Int[Array, ...]:
    r"""Exact best-of-n samples on precomputed levels: many n from one sort (no checks; ``n`` may be traced).

    Args:
      key: a PRNG key.
      levels: from :func:`~bontheory.exact.levels.reward_levels`, batch shape ``B``.
      n: integers ≥ 1. With unbatched levels (``B = ()``) any shape ``N``: each n gets its own draws; otherwise
        broadcasting with ``B``.
      shape: sample shape.

    Returns:
      int32 outcome indices: ``shape + N`` for unbatched levels, else ``shape + B``.
    """
    shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
    n = jnp.asarray(n)
    if levels.batch_shape or n.ndim == 0:
        return _sample_batched(key, levels, n, shape)
    return _sample_many_n(key, levels, n, shape)


@functools.partial(jax.jit, static_argnums=3)
def _sample_many_n(key: jax.Array, levels: RewardLevels, n: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    keys = jax.random.split(key, n.size)
    out = jax.vmap(lambda kk, nn: _sample_1d(kk, levels, nn, shape))(keys, n.reshape(-1))
    return jnp.moveaxis(out, 0, -1).reshape(shape + n.shape)


@functools.partial(jax.jit, static_argnums=3)
def _sample_batched(key: jax.Array, levels: RewardLevels, n: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    batch = levels.batch_shape
    if not batch:
        return _sample_1d(key, levels, jnp.asarray(n), shape)
    nb, _ = broadcast_levels_n(levels, n)
    nb = jnp.broadcast_to(nb[..., 0], batch)
    size = math.prod(batch)
    flat = jax.tree.map(lambda x: x.reshape((size,) + x.shape[len(batch):]), levels)
    keys = jax.random.split(key, size)
    out = jax.vmap(lambda kk, lv, nn: _sample_1d(kk, lv, nn, shape))(keys, flat, nb.reshape(size))
    out = jnp.moveaxis(out, 0, -1)  # shape + (size,)
    return out.reshape(shape + batch)
