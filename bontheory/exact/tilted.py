r"""The KL-regularised optimum (exponential tilts) and the optimal frontiers BoN is compared with (docs/theory.md §3).

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
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Real

from bontheory import numerics, validation
from bontheory.exact.levels import reward_levels
from bontheory.numerics import kl_from_log_probs, safe_log


class Frontier(NamedTuple):
    """Points of an optimal frontier: ``kl`` and ``value`` (expected reward or win rate), each of shape
    ``broadcast(batch, params.shape)``. Unpacks as ``kl, value = frontier``."""

    kl: jax.Array
    value: jax.Array


def _log_p(p: jax.Array, dtype) -> jax.Array:
    p = jnp.maximum(p.astype(dtype), 0)
    p = p / jnp.sum(p, axis=-1, keepdims=True)
    return safe_log(p)


def _mid_cdf_levels(p: jax.Array, r: jax.Array, batch: tuple[int, ...]) -> jax.Array:
    levels = reward_levels(*(numerics.broadcast_batch(a, batch) for a in (p, r)), compact=False)
    # F⁻ + m/2 from the head below ½, 1 − tail − m/2 from the tail above: both accurate.
    lower = jnp.exp(levels.log_cdf_lower)
    mid = jnp.where(lower < 0.5, lower + 0.5 * levels.mass, 1 - levels.tail - 0.5 * levels.mass)
    return jnp.take_along_axis(mid, levels.level_of, axis=-1)


_mid_cdf_jit = jax.jit(_mid_cdf_levels, static_argnums=2)


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _tilt_core(p, r, strength, batch, kind, frontier):
    """The tilt ``softmax(log p + strength·score)`` (score r for ``kind='reward'`` with strength 1/β, the
    mid-CDF for ``'quantile'``), and optionally its (KL, E[score])."""
    dtype = numerics.floating_dtype(p, r)
    scale, shape = numerics.broadcast_parameter(strength, batch, dtype)
    p, r = (numerics.broadcast_batch(a, batch) for a in (p, r))
    score = r.astype(dtype) if kind == "reward" else _mid_cdf_levels(p, r, batch).astype(dtype)
    log_p, score = (numerics.broadcast_batch(a, shape) for a in (_log_p(p, dtype), score))
    logits = jnp.where(log_p > -jnp.inf, log_p + scale * score, -jnp.inf)
    pi = jax.nn.softmax(logits, axis=-1)
    if not frontier:
        return pi
    kl = kl_from_log_probs(jax.nn.log_softmax(logits, axis=-1), log_p)
    return Frontier(jnp.maximum(kl, 0), jnp.sum(pi * score, axis=-1))


def _beta_strength(beta: jax.Array) -> jax.Array:
    return 1 / beta.astype(numerics.floating_dtype(beta))


_P, _R = Float[ArrayLike, "*batch K"], Real[ArrayLike, "*batch K"]


@validation.validate(ref_probs=validation.probs, rewards=validation.rewards, beta=validation.positive)
def tilted_pmf(ref_probs: _P, rewards: _R, beta: ArrayLike) -> Float[Array, "*batch K"]:
    r"""The KL-regularised optimum :math:`\pi_\beta(y) = p(y)\,e^{r(y)/\beta} / Z_\beta` (computed in log space).

    Args:
      ref_probs: ``(..., K)``; rewards: ``(..., K)``.
      beta: temperature > 0 (``inf`` gives p), scalar or broadcasting with the batch shape.

    Returns:
      ``broadcast(batch, beta.shape) + (K,)``. Differentiable in ``ref_probs``, ``rewards`` and ``beta``
      (docs/theory.md §1.8).
    """
    batch = numerics.batch_shape(ref_probs, rewards)
    return _tilt_core(ref_probs, rewards, _beta_strength(beta), batch, "reward", False)


@validation.validate(ref_probs=validation.probs, rewards=validation.rewards)
def mid_cdf(ref_probs: _P, rewards: _R) -> Float[Array, "*batch K"]:
    r"""The mid-CDF :math:`\bar F(y) = P_p(r(Y) < r(y)) + \tfrac12 P_p(r(Y) = r(y))` of each outcome, ``(..., K)``.

    :math:`W(\pi) = \sum_y \pi(y) \bar F(y)` is the win rate of π against p with ties counted ½. Differentiable in
    ``ref_probs`` (docs/theory.md §1.8).
    """
    return _mid_cdf_jit(ref_probs, rewards, numerics.batch_shape(ref_probs, rewards))


@validation.validate(ref_probs=validation.probs, rewards=validation.rewards, c=validation.nonnegative)
def quantile_tilted_pmf(ref_probs: _P, rewards: _R, c: ArrayLike) -> Float[Array, "*batch K"]:
    r"""The win-rate tilt :math:`\pi_c(y) \propto p(y)\,e^{c\,\bar F(y)}`, :math:`\bar F` the mid-CDF (see module doc).

    Maximises :math:`W(\pi) - \mathrm{KL}(\pi\|p)/c`; invariant to strictly increasing transforms of r.

    Args:
      ref_probs: ``(..., K)``; rewards: ``(..., K)``.
      c: tilt strength ≥ 0, scalar or broadcasting with the batch shape.

    Returns:
      ``broadcast(batch, c.shape) + (K,)``. Differentiable in ``ref_probs`` and ``c``; rewards enter only
      through their order (docs/theory.md §1.8).
    """
    batch = numerics.batch_shape(ref_probs, rewards)
    return _tilt_core(ref_probs, rewards, c, batch, "quantile", False)


@validation.validate(ref_probs=validation.probs, rewards=validation.rewards, betas=validation.positive)
def reward_kl_frontier(ref_probs: _P, rewards: _R, betas: ArrayLike) -> Frontier:
    r"""The optimal reward–KL frontier :math:`\beta \mapsto (\mathrm{KL}(\pi_\beta\|p), E_{\pi_\beta}[r])`.

    Args:
      ref_probs: ``(..., K)``; rewards: ``(..., K)``; betas: temperatures > 0 broadcasting with the batch shape.

    Returns:
      :class:`Frontier` ``(kl, value)``, each ``broadcast(batch, betas.shape)``; differentiable in
      ``ref_probs``, ``rewards`` and ``betas``.
    """
    batch = numerics.batch_shape(ref_probs, rewards)
    return _tilt_core(ref_probs, rewards, _beta_strength(betas), batch, "reward", True)


@validation.validate(ref_probs=validation.probs, rewards=validation.rewards, cs=validation.nonnegative)
def win_rate_kl_frontier(ref_probs: _P, rewards: _R, cs: ArrayLike) -> Frontier:
    r"""The optimal win-rate–KL frontier :math:`c \mapsto (\mathrm{KL}(\pi_c\|p), W(\pi_c))` of the quantile tilt.

    Returns:
      :class:`Frontier` ``(kl, value)``, each ``broadcast(batch, cs.shape)``; differentiable in ``ref_probs``
      and ``cs``.
    """
    batch = numerics.batch_shape(ref_probs, rewards)
    return _tilt_core(ref_probs, rewards, cs, batch, "quantile", True)
