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

from bontheory import validation
from bontheory.numerics import kl_from_log_probs, safe_log
from bontheory.exact.levels import _reward_levels



class Frontier(NamedTuple):
    """Points of an optimal frontier: ``kl`` and ``value`` (expected reward or win rate), each of shape
    ``broadcast(batch, params.shape)``. Unpacks as ``kl, value = frontier``."""

    kl: jax.Array
    value: jax.Array


def _inputs(ref_probs, rewards):
    p = validation.to_array(ref_probs, "ref_probs")
    r = validation.to_array(rewards, "rewards")
    validation.check_probs(p, "ref_probs")
    validation.check_rewards(r, "rewards")
    batch = validation.check_same_last_axis(p, r, "ref_probs", "rewards")
    dtype = validation.float_dtype(p, r)
    return p, r, batch, dtype


def _log_p(p: jax.Array, dtype) -> jax.Array:
    p = jnp.maximum(p.astype(dtype), 0)
    p = p / jnp.sum(p, axis=-1, keepdims=True)
    return safe_log(p)


def _mid_cdf_levels(p: jax.Array, r: jax.Array, batch: tuple[int, ...]) -> jax.Array:
    levels = _reward_levels(p, r, batch)
    # F⁻ + m/2 from the head below ½, 1 − tail − m/2 from the tail above: both accurate.
    lower = jnp.exp(levels.log_cdf_lower)
    mid = jnp.where(lower < 0.5, lower + 0.5 * levels.mass, 1 - levels.tail - 0.5 * levels.mass)
    return jnp.take_along_axis(mid, levels.level_of, axis=-1)


_mid_cdf_jit = jax.jit(_mid_cdf_levels, static_argnums=2)


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _tilt_core(p, r, strength, batch, kind, frontier):
    """The tilt ``softmax(log p + strength·score)`` (score r for ``kind='reward'`` with strength 1/β, the
    mid-CDF for ``'quantile'``), and optionally its (KL, E[score])."""
    dtype = validation.float_dtype(p, r)
    shape = tuple(jnp.broadcast_shapes(batch, strength.shape))
    scale = jnp.broadcast_to(strength.astype(dtype), shape)[..., None]
    p, r = validation.broadcast_batch(p, r, batch_shape=batch)
    score = r.astype(dtype) if kind == "reward" else _mid_cdf_levels(p, r, batch).astype(dtype)
    log_p, score = validation.broadcast_batch(_log_p(p, dtype), score, batch_shape=shape)
    logits = jnp.where(log_p > -jnp.inf, log_p + scale * score, -jnp.inf)
    pi = jax.nn.softmax(logits, axis=-1)
    if not frontier:
        return pi
    kl = kl_from_log_probs(jax.nn.log_softmax(logits, axis=-1), log_p)
    return Frontier(jnp.maximum(kl, 0), jnp.sum(pi * score, axis=-1))


def _beta_strength(beta) -> jax.Array:
    beta = validation.check_positive(beta, "beta")
    return 1 / beta.astype(validation.float_dtype(beta))


def _c_strength(c) -> jax.Array:
    c = validation.to_array(c, "c")
    if validation.is_concrete(c):
        import numpy as np

        if np.any(~(np.asarray(c, dtype=np.float64) >= 0)):
            raise ValueError(f"c must be >= 0, got {c!r}")
    return c


def tilted_pmf(ref_probs: jax.Array, rewards: jax.Array, beta: jax.Array | float) -> jax.Array:
    r"""The KL-regularised optimum :math:`\pi_\beta(y) = p(y)\,e^{r(y)/\beta} / Z_\beta` (computed in log space).

    Args:
      ref_probs: ``(..., K)``; rewards: ``(..., K)``.
      beta: temperature > 0 (``inf`` gives p), scalar or broadcasting with the batch shape.

    Returns:
      ``broadcast(batch, beta.shape) + (K,)``.
    """
    p, r, batch, _ = _inputs(ref_probs, rewards)
    return _tilt_core(p, r, _beta_strength(beta), batch, "reward", False)


def mid_cdf(ref_probs: jax.Array, rewards: jax.Array) -> jax.Array:
    r"""The mid-CDF :math:`\bar F(y) = P_p(r(Y) < r(y)) + \tfrac12 P_p(r(Y) = r(y))` of each outcome, ``(..., K)``.

    :math:`W(\pi) = \sum_y \pi(y) \bar F(y)` is the win rate of π against p with ties counted ½.
    """
    p, r, batch, _ = _inputs(ref_probs, rewards)
    return _mid_cdf_jit(p, r, batch)


def quantile_tilted_pmf(ref_probs: jax.Array, rewards: jax.Array, c: jax.Array | float) -> jax.Array:
    r"""The win-rate tilt :math:`\pi_c(y) \propto p(y)\,e^{c\,\bar F(y)}`, :math:`\bar F` the mid-CDF (see module doc).

    Maximises :math:`W(\pi) - \mathrm{KL}(\pi\|p)/c`; invariant to strictly increasing transforms of r.

    Args:
      ref_probs: ``(..., K)``; rewards: ``(..., K)``.
      c: tilt strength ≥ 0, scalar or broadcasting with the batch shape.

    Returns:
      ``broadcast(batch, c.shape) + (K,)``.
    """
    p, r, batch, _ = _inputs(ref_probs, rewards)
    return _tilt_core(p, r, _c_strength(c), batch, "quantile", False)


def reward_kl_frontier(ref_probs: jax.Array, rewards: jax.Array, betas: jax.Array) -> Frontier:
    r"""The optimal reward–KL frontier :math:`\beta \mapsto (\mathrm{KL}(\pi_\beta\|p), E_{\pi_\beta}[r])`.

    Args:
      ref_probs: ``(..., K)``; rewards: ``(..., K)``; betas: temperatures > 0 broadcasting with the batch shape.

    Returns:
      :class:`Frontier` ``(kl, value)``, each ``broadcast(batch, betas.shape)``.
    """
    p, r, batch, _ = _inputs(ref_probs, rewards)
    return _tilt_core(p, r, _beta_strength(betas), batch, "reward", True)


def win_rate_kl_frontier(ref_probs: jax.Array, rewards: jax.Array, cs: jax.Array) -> Frontier:
    r"""The optimal win-rate–KL frontier :math:`c \mapsto (\mathrm{KL}(\pi_c\|p), W(\pi_c))` of the quantile tilt.

    Returns:
      :class:`Frontier` ``(kl, value)``, each ``broadcast(batch, cs.shape)``.
    """
    p, r, batch, _ = _inputs(ref_probs, rewards)
    return _tilt_core(p, r, _c_strength(cs), batch, "quantile", True)
