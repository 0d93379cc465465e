r"""The KL-regularised optimum (exponential tilts) and the optimal frontiers BoN is compared with (THEORY §3).

* Reward: :math:`\pi_\beta(y) \propto p(y)\,e^{r(y)/\beta}` maximises :math:`E_\pi[r] - \beta\,\mathrm{KL}(\pi\|p)`.
* Win rate: the win rate of π against p (ties ½) is *linear* in π,
  :math:`W(\pi) = E_\pi[\bar F(r(Y))]` with the **mid-CDF** :math:`\bar F(y) = (F(y) + F^-(y))/2 = F^-(y) + m(y)/2`.
  So :math:`\pi_c(y) \propto p(y)\,e^{c \bar F(y)}` maximises :math:`W(\pi) - \mathrm{KL}(\pi\|p)/c`, and sweeping c
  traces the exact optimal win-rate–KL frontier, with or without ties. (Gui et al. write
  :math:`p\,e^{c F(r)}` for continuous rewards, where :math:`F = F^- = \bar F`; with ties the mid-CDF is the
  choice that makes the tilt optimal for win rate with ties counted ½.)

References:
  Gui, Gârbacea, Veitch, "BoNBoN alignment for large language models and the sweetness of best-of-n
  sampling", arXiv 2406.00832.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from bontheory import _checks
from bontheory.exact.levels import _reward_levels

__all__ = [
    "Frontier",
    "mid_cdf",
    "quantile_tilted_pmf",
    "reward_kl_frontier",
    "tilted_pmf",
    "win_rate_kl_frontier",
]


class Frontier(NamedTuple):
    """Points of an optimal frontier: ``kl`` and ``value`` (expected reward or win rate), each of shape
    ``broadcast(batch, params.shape)``. Unpacks as ``kl, value = frontier``."""

    kl: jax.Array
    value: jax.Array


def _inputs(ref_probs, rewards):
    p = _checks.to_array(ref_probs, "ref_probs")
    r = _checks.to_array(rewards, "rewards")
    _checks.check_probs(p, "ref_probs")
    _checks.check_rewards(r, "rewards")
    batch = _checks.check_same_last_axis(p, r, "ref_probs", "rewards")
    dtype = _checks.float_dtype(p, r)
    return p, r, batch, dtype


@jax.jit
def _tilt(log_p: jax.Array, score: jax.Array, scale: jax.Array) -> jax.Array:
    """``softmax(log p + scale·score)`` over the last axis, shapes ``S + (K,)`` and ``S + (1,)``."""
    logits = jnp.where(log_p > -jnp.inf, log_p + scale * score, -jnp.inf)
    return jax.nn.softmax(logits, axis=-1)


def _expand(x: jax.Array, batch: tuple[int, ...], dtype) -> tuple[jax.Array, tuple[int, ...]]:
    shape = tuple(jnp.broadcast_shapes(batch, x.shape))
    return jnp.broadcast_to(x.astype(dtype), shape)[..., None], shape


def _log_p(p: jax.Array, dtype) -> jax.Array:
    p = jnp.maximum(p.astype(dtype), 0)
    p = p / jnp.sum(p, axis=-1, keepdims=True)
    return jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1)), -jnp.inf)


def tilted_pmf(ref_probs: jax.Array, rewards: jax.Array, beta: jax.Array | float) -> jax.Array:
    r"""The KL-regularised optimum :math:`\pi_\beta(y) = p(y)\,e^{r(y)/\beta} / Z_\beta` (computed in log space).

    Args:
      ref_probs: ``(..., K)``; rewards: ``(..., K)``.
      beta: temperature > 0 (``inf`` gives p), scalar or broadcasting with the batch shape.

    Returns:
      ``broadcast(batch, beta.shape) + (K,)``.
    """
    p, r, batch, dtype = _inputs(ref_probs, rewards)
    beta = _checks.check_positive(beta, "beta")
    inv, shape = _expand(1 / beta.astype(dtype), batch, dtype)
    log_p, rr = _checks.broadcast_batch(_log_p(p, dtype), r.astype(dtype), batch_shape=shape)
    return _tilt(log_p, rr, inv)


def mid_cdf(ref_probs: jax.Array, rewards: jax.Array) -> jax.Array:
    r"""The mid-CDF :math:`\bar F(y) = P_p(r(Y) < r(y)) + \tfrac12 P_p(r(Y) = r(y))` of each outcome, ``(..., K)``.

    :math:`W(\pi) = \sum_y \pi(y) \bar F(y)` is the win rate of π against p with ties counted ½.
    """
    p, r, batch, dtype = _inputs(ref_probs, rewards)
    return _mid_cdf_core(p, r, batch)


@functools.partial(jax.jit, static_argnums=2)
def _mid_cdf_core(p: jax.Array, r: jax.Array, batch: tuple[int, ...]) -> jax.Array:
    levels = _reward_levels(p, r, batch)
    # F⁻ + m/2 = 1 − tail − m/2; both tail and m are accurate, and the head form is used below ½.
    lower = jnp.exp(levels.log_cdf_lower)
    mid = jnp.where(lower < 0.5, lower + 0.5 * levels.mass, 1 - levels.tail - 0.5 * levels.mass)
    return jnp.take_along_axis(mid, levels.level_of, axis=-1)


def quantile_tilted_pmf(ref_probs: jax.Array, rewards: jax.Array, c: jax.Array | float) -> jax.Array:
    r"""The win-rate tilt :math:`\pi_c(y) \propto p(y)\,e^{c\,\bar F(y)}`, :math:`\bar F` the mid-CDF (see module doc).

    Maximises :math:`W(\pi) - \mathrm{KL}(\pi\|p)/c`; invariant to strictly increasing transforms of r.

    Args:
      ref_probs: ``(..., K)``; rewards: ``(..., K)``.
      c: tilt strength ≥ 0, scalar or broadcasting with the batch shape.

    Returns:
      ``broadcast(batch, c.shape) + (K,)``.
    """
    p, r, batch, dtype = _inputs(ref_probs, rewards)
    c = _checks.to_array(c, "c")
    if _checks.is_concrete(c) and bool(jnp.any(~(c >= 0))):
        raise ValueError(f"c must be >= 0, got {c!r}")
    f = mid_cdf(p, r)
    cc, shape = _expand(c, batch, dtype)
    log_p, ff = _checks.broadcast_batch(_log_p(p, dtype), f.astype(dtype), batch_shape=shape)
    return _tilt(log_p, ff, cc)


@jax.jit
def _kl_and_mean(pi: jax.Array, log_p: jax.Array, score: jax.Array) -> tuple[jax.Array, jax.Array]:
    pos = pi > 0
    log_pi = jnp.log(jnp.where(pos, pi, 1))
    kl = jnp.sum(jnp.where(pos, pi * (log_pi - jnp.where(pos, log_p, 0)), 0), axis=-1)
    return jnp.maximum(kl, 0), jnp.sum(pi * score, axis=-1)


def reward_kl_frontier(ref_probs: jax.Array, rewards: jax.Array, betas: jax.Array) -> Frontier:
    r"""The optimal reward–KL frontier :math:`\beta \mapsto (\mathrm{KL}(\pi_\beta\|p), E_{\pi_\beta}[r])`.

    Args:
      ref_probs: ``(..., K)``; rewards: ``(..., K)``; betas: temperatures > 0 broadcasting with the batch shape.

    Returns:
      :class:`Frontier` ``(kl, value)``, each ``broadcast(batch, betas.shape)``.
    """
    p, r, batch, dtype = _inputs(ref_probs, rewards)
    pi = tilted_pmf(p, r, betas)
    shape = pi.shape[:-1]
    log_p, rr = _checks.broadcast_batch(_log_p(p, dtype), r.astype(dtype), batch_shape=shape)
    return Frontier(*_kl_and_mean(pi, log_p, rr))


def win_rate_kl_frontier(ref_probs: jax.Array, rewards: jax.Array, cs: jax.Array) -> Frontier:
    r"""The optimal win-rate–KL frontier :math:`c \mapsto (\mathrm{KL}(\pi_c\|p), W(\pi_c))` of the quantile tilt.

    Returns:
      :class:`Frontier` ``(kl, value)``, each ``broadcast(batch, cs.shape)``.
    """
    p, r, batch, dtype = _inputs(ref_probs, rewards)
    pi = quantile_tilted_pmf(p, r, cs)
    shape = pi.shape[:-1]
    log_p, ff = _checks.broadcast_batch(_log_p(p, dtype), mid_cdf(p, r).astype(dtype), batch_shape=shape)
    return Frontier(*_kl_and_mean(pi, log_p, ff))
