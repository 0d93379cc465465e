r"""Quantile truncation: the E_M-regularised optimum (p restricted to the top 1/M quantile of the reward).

Sriraman & Block (arXiv 2603.05739) show that

.. math:: π_M = \arg\max_π\; E_π[\hat r] - R_{\max}\, E_M(π \| p), \qquad E_M(q\|p) = E_p[(q/p - M)_+],

is p restricted to the top ``1/M`` quantile of ``r̂``. On a finite space: fill density ratio ``M`` from the
top reward level down until the mass is 1, and split the boundary level ``∝ p``. With ``T_ℓ = P_p(r > r_ℓ)``
and ``T^-_ℓ = P_p(r ≥ r_ℓ)``, the mass placed on level ℓ is ``min(1, M T^-_ℓ) − min(1, M T_ℓ)``, so

.. math:: π_M(y) = \frac{p(y)}{m(y)}\big(\min(1, M\,T^-(y)) - \min(1, M\,T(y))\big).

``M = 1`` gives ``p``; ``M ≥ 1/m_top`` gives ``p`` restricted to the top level. Tails are exact reverse
cumulative sums (:func:`bontheory.exact.levels.reward_levels`), accurate when small.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Real

from bontheory import validation
from bontheory.exact.levels import reward_levels


def _gather(level_values: jax.Array, level_of: jax.Array) -> jax.Array:
    return jnp.take_along_axis(level_values, level_of, axis=-1)


@validation.validate(ref_probs=validation.probs, rewards=validation.rewards, m=validation.at_least_one)
def quantile_truncated_pmf(
    ref_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], m: ArrayLike
) -> Float[Array, "*batch K"]:
    r"""The E_M-regularised (quantile-truncated) policy ``π_M``.

    .. math:: π_M(y) = \frac{p(y)}{m(y)}\big(\min(1, M\,T^-(y)) - \min(1, M\,T(y))\big),
              \quad T(y) = P_p(r > r(y)),\; T^-(y) = P_p(r \ge r(y)),

    where ``m(y)`` is the p-mass of y's reward level (ties at the boundary split ``∝ p``). The density
    ratio ``π_M/p`` is ``M`` above the boundary level, between 0 and ``M`` on it and 0 below; ``KL = log M``
    and the win rate against ``p`` is ``1 − 1/(2M)`` when the reward has no atoms.

    Args:
      ref_probs: ``float[..., K]`` reference pmf ``p``.
      rewards: ``float[..., K]`` rewards ``r̂`` (batch shape broadcasts with ``ref_probs``).
      m: density-ratio cap ``M ≥ 1`` (scalar or broadcastable with the batch shape; may be traced).

    Returns:
      ``float[..., K]`` pmf; piecewise linear in ``m`` and in the masses, differentiable away from the kinks
      (where ``M T`` crosses 1); rewards enter only through their order (docs/theory.md §1.8).

    Raises:
      ValueError: bad pmf, non-finite rewards or ``M < 1`` (values checked only when concrete).

    References:
      Sriraman & Block, "Scaling-monotonic inference-time alignment via quantile truncation",
      arXiv 2603.05739 (COLT 2026).
    """
    lv = reward_levels(ref_probs, rewards)
    dtype = lv.mass.dtype
    m = jnp.asarray(m, dtype)
    shape = tuple(jnp.broadcast_shapes(lv.batch_shape, m.shape))
    mm = jnp.broadcast_to(m, shape)[..., None]
    mass = jnp.broadcast_to(lv.mass, shape + lv.mass.shape[-1:])
    tail = jnp.broadcast_to(lv.tail, shape + lv.tail.shape[-1:])
    # M·x with M·0 = 0, so M = ∞ (the top level, BoN's limit) is exact rather than ∞·0 = NaN
    upper = jnp.where(tail + mass > 0, mm * (tail + mass), 0.0)
    m_tail = jnp.where(tail > 0, mm * tail, 0.0)
    level_q = jnp.where(upper <= 1, jnp.where(mass > 0, mm * mass, 0.0), jnp.where(m_tail >= 1, 0.0, 1 - m_tail))
    level_of = jnp.broadcast_to(lv.level_of, shape + lv.level_of.shape[-1:])
    log_probs = jnp.broadcast_to(lv.log_probs, shape + lv.log_probs.shape[-1:])
    q_y = _gather(level_q, level_of)
    mass_y = _gather(mass, level_of)
    ratio = jnp.where(mass_y > 0, q_y / jnp.where(mass_y > 0, mass_y, 1), 0.0)
    return jnp.exp(log_probs) * ratio


def _expected_min_binomial(n: jax.Array, k: jax.Array, t: jax.Array) -> jax.Array:
    r"""``E[min(X, k)]``, ``X ~ Bin(n, t)``: ``k P(X ≥ k) + n t P(Bin(n−1, t) ≤ k−2)`` (regularised betas).

    ``P(X ≥ j) = I_t(j, n − j + 1)``; ``k = 1`` uses ``1 − (1 − t)^n = −expm1(n log1p(−t))``.
    """
    t = jnp.clip(t, 0.0, 1.0)
    # the branch a where does not select gets safe arguments too (finite values and derivatives)
    mid = (k > 1) & (k < n)
    kk = jnp.where(mid, k, 2.0)
    nn = jnp.where(mid, n, 3.0)
    inner = (t > 0) & (t < 1)  # I_0 = 0 and I_1 = 1; betainc's derivatives are not finite at the ends
    ts = jnp.where(inner, t, 0.5)
    ge_k = jnp.where(inner, jax.scipy.special.betainc(kk, nn - kk + 1, ts), jnp.where(t > 0, 1.0, 0.0))
    ge_km1 = jnp.where(inner, jax.scipy.special.betainc(kk - 1, nn - kk + 1, ts), jnp.where(t > 0, 1.0, 0.0))
    general = kk * ge_k + nn * t * (1 - ge_km1)
    general = jnp.where(k >= n, n * t, general)  # min(X, n) = X
    below = t < 1
    one = jnp.where(below, -jnp.expm1(n * jnp.log1p(-jnp.where(below, t, 0.0))), 1.0)
    return jnp.where(k <= 1, one, general)


@validation.validate(
    ref_probs=validation.probs, rewards=validation.rewards, n=validation.sample_size, m=validation.at_least_one
)
def quantile_truncation_sampler_pmf(
    ref_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], n: ArrayLike, m: ArrayLike
) -> Float[Array, "*batch K"]:
    r"""Exact law of the finite-N quantile-truncation sampler (draw N, uniform among the top ``k = ⌈N/M⌉``).

    The returned draw is the J-th largest of the N draws with J uniform on ``{1..k}`` (ties in uniformly
    random order, which splits a level ∝ p). With ``X^-_ℓ ~ Bin(N, T^-_ℓ)`` the number of draws at or above
    level ℓ and ``X_ℓ ~ Bin(N, T_ℓ)`` strictly above,

    .. math:: P(\text{level } ℓ) = \frac{1}{k}\Big(E[\min(X^-_ℓ, k)] - E[\min(X_ℓ, k)]\Big),
              \qquad π^{QT}_{N,M}(y) = \frac{p(y)}{m(y)} P(\text{level of } y).

    ``k = 1`` (``M ≥ N``) is BoN; ``k = N`` (``M = 1``) is ``p``; ``N → ∞`` at fixed M gives
    :func:`quantile_truncated_pmf`. ``E[min(X, k)]`` uses regularised incomplete beta functions, so the cost
    is ``O(K)`` whatever N; the absolute accuracy is ~1e-14 in float64 (relative accuracy of tiny levels far
    below the boundary is not guaranteed).

    Args:
      ref_probs: ``float[..., K]``; rewards: ``float[..., K]``.
      n: sample budget ``N ≥ 1`` (integer; scalar or broadcastable; may be traced).
      m: ``M ≥ 1`` (scalar or broadcastable; may be traced).

    Returns:
      ``float[..., K]`` pmf; differentiable in ``ref_probs``; a step function of ``m`` (derivative 0 between
      the steps of ``⌈N/M⌉``) (docs/theory.md §1.8).
    """
    lv = reward_levels(ref_probs, rewards)
    dtype = lv.mass.dtype
    nn = jnp.asarray(n, dtype)
    mm = jnp.asarray(m, dtype)
    shape = tuple(jnp.broadcast_shapes(lv.batch_shape, nn.shape, mm.shape))
    nn = jnp.broadcast_to(nn, shape)[..., None]
    mm = jnp.broadcast_to(mm, shape)[..., None]
    k = jnp.clip(jnp.ceil(nn / mm - 1e-9), 1, nn)
    kdim = lv.log_probs.shape[-1]  # outcomes; the level arrays may be shorter (compacted levels)
    mass = jnp.broadcast_to(lv.mass, shape + lv.mass.shape[-1:])
    tail = jnp.broadcast_to(lv.tail, shape + lv.tail.shape[-1:])
    upper = jnp.minimum(tail + mass, 1.0)
    level_q = (_expected_min_binomial(nn, k, upper) - _expected_min_binomial(nn, k, tail)) / k
    level_q = jnp.where(mass > 0, jnp.maximum(level_q, 0.0), 0.0)
    level_of = jnp.broadcast_to(lv.level_of, shape + (kdim,))
    log_probs = jnp.broadcast_to(lv.log_probs, shape + (kdim,))
    q_y = _gather(level_q, level_of)
    mass_y = _gather(mass, level_of)
    ratio = jnp.where(mass_y > 0, q_y / jnp.where(mass_y > 0, mass_y, 1), 0.0)
    return jnp.exp(log_probs) * ratio
