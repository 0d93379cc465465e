r"""Divergences between pmfs on a finite space, and the win rate of a policy against the reference.

All functions reduce over the last axis ``K`` of ``(..., K)`` arrays whose batch shapes broadcast.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from bontheory import validation
from bontheory.numerics import kl_from_probs
from bontheory.exact.levels import _reward_levels



def _pair(p, q, name_p: str, name_q: str) -> tuple[jax.Array, jax.Array]:
    p = validation.to_array(p, name_p)
    q = validation.to_array(q, name_q)
    validation.check_probs(p, name_p)
    validation.check_probs(q, name_q)
    batch = validation.check_same_last_axis(p, q, name_p, name_q)
    dtype = validation.float_dtype(p, q)
    p, q = validation.broadcast_batch(p.astype(dtype), q.astype(dtype), batch_shape=batch)
    return p, q


def kl_divergence(p: jax.Array, q: jax.Array) -> jax.Array:
    r""":math:`\mathrm{KL}(p\|q) = \sum_y p(y)\log\frac{p(y)}{q(y)}`, with :math:`0 \log 0 = 0` and
    :math:`+\infty` if p puts mass where q has none.

    Args:
      p, q: ``(..., K)`` pmfs (batch shapes broadcast).

    Returns:
      ``(...)``.
    """
    p, q = _pair(p, q, "p", "q")
    return _kl_core(p, q)


_kl_core = jax.jit(kl_from_probs)


def chi2_divergence(p: jax.Array, q: jax.Array) -> jax.Array:
    r""":math:`\chi^2(p\|q) = \sum_y \frac{(p(y) - q(y))^2}{q(y)} = \sum_y p^2/q - 1` (:math:`+\infty` off q's support).

    Args:
      p, q: ``(..., K)`` pmfs.

    Returns:
      ``(...)``.
    """
    p, q = _pair(p, q, "p", "q")
    return _chi2_core(p, q)


@jax.jit
def _chi2_core(p: jax.Array, q: jax.Array) -> jax.Array:
    qpos = q > 0
    terms = jnp.where(qpos, (p - q) ** 2 / jnp.where(qpos, q, 1), jnp.where(p > 0, jnp.inf, 0))
    return jnp.sum(terms, axis=-1)


def total_variation(p: jax.Array, q: jax.Array) -> jax.Array:
    r""":math:`\mathrm{TV}(p, q) = \tfrac12 \sum_y |p(y) - q(y)|`. Returns ``(...)``."""
    p, q = _pair(p, q, "p", "q")
    return 0.5 * jnp.sum(jnp.abs(p - q), axis=-1)


def win_rate(policy_probs: jax.Array, ref_probs: jax.Array, rewards: jax.Array) -> jax.Array:
    r"""Win rate of a policy against the reference, ties counted ½:

    .. math:: W(\pi) = P(r(Y) > r(Y')) + \tfrac12 P(r(Y) = r(Y')),\quad Y\sim\pi,\ Y'\sim p,
              = \sum_y \pi(y)\big(F^-(y) + \tfrac12 m(y)\big) = 1 - \sum_y \pi(y)\big(1 - F(y) + \tfrac12 m(y)\big).

    Args:
      policy_probs: ``(..., K)`` the policy's pmf.
      ref_probs: ``(..., K)`` the reference pmf.
      rewards: ``(..., K)``.

    Returns:
      ``(...)`` (broadcast batch shape).
    """
    pi = validation.to_array(policy_probs, "policy_probs")
    p = validation.to_array(ref_probs, "ref_probs")
    r = validation.to_array(rewards, "rewards")
    validation.check_probs(pi, "policy_probs")
    validation.check_probs(p, "ref_probs")
    validation.check_rewards(r, "rewards")
    b1 = validation.check_same_last_axis(p, r, "ref_probs", "rewards")
    b2 = validation.check_same_last_axis(pi, r, "policy_probs", "rewards")
    batch = tuple(jnp.broadcast_shapes(b1, b2))
    return _win_rate_core(pi, p, r, batch)


@functools.partial(jax.jit, static_argnums=3)
def _win_rate_core(pi: jax.Array, p: jax.Array, r: jax.Array, batch: tuple[int, ...]) -> jax.Array:
    levels = _reward_levels(*validation.broadcast_batch(p, r, batch_shape=batch), batch)
    loss = levels.tail + 0.5 * levels.mass
    loss_y = jnp.take_along_axis(loss, levels.level_of, axis=-1)
    (pi,) = validation.broadcast_batch(pi.astype(loss_y.dtype), batch_shape=batch)
    return 1 - jnp.sum(pi * loss_y, axis=-1)
