r"""Divergences between pmfs on a finite space, and the win rate of a policy against the reference.

All functions reduce over the last axis ``K`` of ``(..., K)`` arrays whose batch shapes broadcast.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Real

from bontheory import numerics, validation
from bontheory.exact.levels import RewardLevels, reward_levels

_pmf_pair = validation.validate(p=validation.probs, q=validation.probs)


@_pmf_pair
def kl_divergence(p: Float[ArrayLike, "*batch K"], q: Float[ArrayLike, "*batch K"]) -> Float[Array, "*batch"]:
    r""":math:`\mathrm{KL}(p\|q) = \sum_y p(y)\log\frac{p(y)}{q(y)}`, with :math:`0 \log 0 = 0` and
    :math:`+\infty` if p puts mass where q has none.

    Args:
      p, q: ``(..., K)`` pmfs (batch shapes broadcast).

    Returns:
      ``(...)``.
    """
    return _kl_core(*numerics.broadcast_outcomes(p, q))


_kl_core = jax.jit(numerics.kl_from_probs)


@_pmf_pair
def chi2_divergence(p: Float[ArrayLike, "*batch K"], q: Float[ArrayLike, "*batch K"]) -> Float[Array, "*batch"]:
    r""":math:`\chi^2(p\|q) = \sum_y \frac{(p(y) - q(y))^2}{q(y)} = \sum_y p^2/q - 1` (:math:`+\infty` off q's support).

    Args:
      p, q: ``(..., K)`` pmfs.

    Returns:
      ``(...)``.
    """
    return _chi2_core(*numerics.broadcast_outcomes(p, q))


@jax.jit
def _chi2_core(p: jax.Array, q: jax.Array) -> jax.Array:
    qpos = q > 0
    terms = jnp.where(qpos, (p - q) ** 2 / jnp.where(qpos, q, 1), jnp.where(p > 0, jnp.inf, 0))
    return jnp.sum(terms, axis=-1)


@_pmf_pair
def total_variation(p: Float[ArrayLike, "*batch K"], q: Float[ArrayLike, "*batch K"]) -> Float[Array, "*batch"]:
    r""":math:`\mathrm{TV}(p, q) = \tfrac12 \sum_y |p(y) - q(y)|`. Returns ``(...)``."""
    p, q = numerics.broadcast_outcomes(p, q)
    return 0.5 * jnp.sum(jnp.abs(p - q), axis=-1)


@validation.validate(policy_probs=validation.probs, ref_probs=validation.probs, rewards=validation.rewards)
def win_rate(
    policy_probs: Float[ArrayLike, "*batch K"],
    ref_probs: Float[ArrayLike, "*batch K"],
    rewards: Real[ArrayLike, "*batch K"],
) -> Float[Array, "*batch"]:
    r"""Win rate of a policy against the reference, ties counted ½:

    .. math:: W(\pi) = P(r(Y) > r(Y')) + \tfrac12 P(r(Y) = r(Y')),\quad Y\sim\pi,\ Y'\sim p,
              = \sum_y \pi(y)\big(F^-(y) + \tfrac12 m(y)\big) = 1 - \sum_y \pi(y)\big(1 - F(y) + \tfrac12 m(y)\big).

    The reward levels of ``(ref_probs, rewards)`` are built once over *their* batch shape: a batch of N
    policies against one reference sorts K outcomes once, not N times.

    Args:
      policy_probs: ``(..., K)`` the policy's pmf.
      ref_probs: ``(..., K)`` the reference pmf.
      rewards: ``(..., K)``.

    Returns:
      ``(...)`` (broadcast batch shape).
    """
    return _win_rate_core(policy_probs, reward_levels(ref_probs, rewards))


@jax.jit
def _win_rate_core(pi: jax.Array, levels: RewardLevels) -> jax.Array:
    loss = levels.tail + 0.5 * levels.mass  # 1 − F + m/2 per level
    loss_y = jnp.take_along_axis(loss, levels.level_of, axis=-1)
    pi, loss_y = numerics.broadcast_outcomes(pi, loss_y)
    return 1 - jnp.sum(pi * loss_y, axis=-1)
