r"""The folk KL formula, Beirami et al.'s estimator and the gap bounds (docs/theory.md §2).

Beirami's estimator has one name per idea: :func:`beirami_kl_estimator` (the per-draw value D̂(ε) from a
probability ε), :func:`beirami_kl_expectation` (its exact mean under π_n) and, in :mod:`bontheory.mc`,
``beirami_kl_estimate`` (the Monte Carlo mean over draws, from their log-probabilities, with a standard error).
``bon_kl_estimator`` and ``bon_kl_estimate`` are deprecated aliases of the first two.

References:
  A. Beirami, A. Agarwal, J. Berant, A. D'Amour, J. Eisenstein, C. Nagpal, A. T. Suresh, "Theoretical
  guarantees on the best-of-n alignment policy", arXiv 2401.01879.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
from jax.scipy.special import rel_entr
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Real

from bontheory import numerics, validation
from bontheory.exact.bon import bon_log_pmf_from_levels
from bontheory.exact.levels import reward_levels


def _float(n: jax.Array) -> jax.Array:
    return n.astype(numerics.floating_dtype(n))


@validation.validate(n=validation.sample_size)
def bon_kl_bound(n: ArrayLike) -> Float[Array, "*n"]:
    r"""The folk formula :math:`\log n - (n-1)/n`: exact KL(π_n‖p) when the reward law under p has no atoms,
    an upper bound for every p, r (strict for discrete p and n ≥ 2). Shape of ``n``.
    """
    nf = _float(n)
    return jnp.log(nf) - (nf - 1) / nf


@validation.validate(eps=validation.unit_interval, n=validation.sample_size)
def beirami_kl_estimator(eps: ArrayLike, n: ArrayLike) -> Float[Array, ...]:
    r"""Beirami et al.'s estimator of KL(π_n‖p) at one draw, from its **probability** :math:`\varepsilon = p(y)`:

    .. math:: \hat D(\varepsilon) = (1-\varepsilon)^n\big[\log n + (n-1)\log(1-\varepsilon) - \tfrac{n-1}{n}\big]
              + \big(1-(1-\varepsilon)^n\big)\log\frac{1-(1-\varepsilon)^n}{\varepsilon}

    computed with :math:`a = n\,\mathrm{log1p}(-\varepsilon)`, :math:`(1-\varepsilon)^n = e^a`,
    :math:`1-(1-\varepsilon)^n = -\mathrm{expm1}(a)`, so it is stable for tiny ε and large n.
    :math:`\hat D(0) = \log n - (n-1)/n`, :math:`\hat D(1) = 0`; it is the exact KL when p is one top atom of
    mass ε plus an atomless rest. Its Monte Carlo average over draws :math:`y \sim \pi_n` (from their
    log-probabilities) is :func:`bontheory.beirami_kl_estimate`; its exact expectation under :math:`\pi_n` is
    :func:`beirami_kl_expectation` (docs/theory.md §2).

    Args:
      eps: probabilities in [0, 1], any shape.
      n: integer ≥ 1, broadcasting with ``eps``.

    Returns:
      ``broadcast(eps.shape, n.shape)``.
    """
    dtype = numerics.floating_dtype(eps, n)
    shape = tuple(jnp.broadcast_shapes(eps.shape, n.shape))
    e = jnp.broadcast_to(eps.astype(dtype), shape)
    nf = jnp.broadcast_to(n.astype(dtype), shape)
    return _estimator_unchecked(e, nf)


@validation.validate(ref_probs=validation.probs, rewards=validation.rewards, n=validation.sample_size)
def beirami_kl_expectation(
    ref_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], n: ArrayLike
) -> Float[Array, "*batch"]:
    r"""The exact expectation of Beirami's estimator under BoN: :math:`E_{y\sim\pi_n}[\hat D(p(y))]`
    (:func:`beirami_kl_estimator` averaged over :math:`\pi_n`; no sampling).

    (The paper conjectures it is ≥ the exact KL; it is ≤ the folk formula.)

    Args:
      ref_probs: ``(..., K)``; rewards: ``(..., K)``; n: integer ≥ 1 broadcasting with the batch shape.

    Returns:
      ``broadcast(batch, n.shape)``.
    """
    return _estimate_core(reward_levels(ref_probs, rewards), n)


@validation.validate(eps=validation.unit_interval, n=validation.sample_size)
def bon_kl_estimator(eps: ArrayLike, n: ArrayLike) -> Float[Array, ...]:
    """Deprecated name of :func:`beirami_kl_estimator` (same arguments, same values)."""
    warnings.warn("bon_kl_estimator is deprecated: use beirami_kl_estimator (the same function)",
                  DeprecationWarning, stacklevel=2)
    return beirami_kl_estimator(eps, n)


@validation.validate(ref_probs=validation.probs, rewards=validation.rewards, n=validation.sample_size)
def bon_kl_estimate(ref_probs: ArrayLike, rewards: ArrayLike, n: ArrayLike) -> Float[Array, "*batch"]:
    """Deprecated name of :func:`beirami_kl_expectation` (same arguments, same values)."""
    warnings.warn("bon_kl_estimate is deprecated: use beirami_kl_expectation (the same function)",
                  DeprecationWarning, stacklevel=2)
    return beirami_kl_expectation(ref_probs, rewards, n)


@jax.jit
def _estimate_core(levels, n: jax.Array) -> jax.Array:
    log_pi = bon_log_pmf_from_levels(levels, n)
    shape = log_pi.shape[:-1]
    eps = jnp.exp(numerics.broadcast_batch(levels.log_probs, shape))
    nn = jnp.broadcast_to(n.astype(log_pi.dtype), shape)[..., None]
    d = _estimator_unchecked(eps, nn)
    pi = jnp.exp(log_pi)
    return jnp.sum(jnp.where(pi > 0, pi * d, 0), axis=-1)


@jax.jit
def _estimator_unchecked(eps: jax.Array, nf: jax.Array) -> jax.Array:
    folk = jnp.log(nf) - (nf - 1) / nf
    inner = jnp.where(eps < 1, eps, 0)
    a = nf * jnp.log1p(-inner)
    stay = jnp.exp(a)
    moved = -jnp.expm1(a)
    first = stay * (folk + (nf - 1) * jnp.log1p(-inner))
    second = rel_entr(moved, jnp.where(eps > 0, eps, 1))  # moved · log(moved/ε), 0 when moved = 0
    est = first + jnp.where(eps > 0, second, 0)
    return jnp.where(eps >= 1, 0, jnp.where(eps > 0, est, folk))


def _n_and_collision(p: jax.Array, n: jax.Array) -> tuple[jax.Array, jax.Array]:
    """n and the collision probability :math:`\\sum_y p(y)^2`, both as floats of shape
    ``broadcast(batch, n.shape)``."""
    dtype = numerics.floating_dtype(p, n)
    p = p.astype(dtype)
    collision = jnp.sum(p * p, axis=-1)
    shape = tuple(jnp.broadcast_shapes(collision.shape, n.shape))
    nf = jnp.broadcast_to(n.astype(dtype), shape)
    return nf, jnp.broadcast_to(collision, shape)


_gap_inputs = validation.validate(ref_probs=validation.probs, n=validation.sample_size)


@_gap_inputs
def bon_kl_gap_bound(ref_probs: Float[ArrayLike, "*batch K"], n: ArrayLike) -> Float[Array, "*batch"]:
    r"""Beirami et al.'s bound on the folk formula's error: :math:`0 \le \log n - \tfrac{n-1}{n} - \mathrm{KL}(\pi_n\|p)
    \le 2n(n-1)\sum_y p(y)^2`. Holds with and without ties.

    Args:
      ref_probs: ``(..., K)``; n: integer ≥ 1 broadcasting with the batch shape.

    Returns:
      ``broadcast(batch, n.shape)``.
    """
    nf, collision = _n_and_collision(ref_probs, n)
    return 2 * nf * (nf - 1) * collision


@validation.validate(n=validation.sample_size)
def bon_win_rate_bound(n: ArrayLike) -> Float[Array, "*n"]:
    r"""The continuous-case win rate of BoN against p, :math:`n/(n+1)` — an upper bound on :math:`W_n`."""
    nf = _float(n)
    return nf / (nf + 1)


@_gap_inputs
def bon_win_rate_gap_bound(ref_probs: Float[ArrayLike, "*batch K"], n: ArrayLike) -> Float[Array, "*batch"]:
    r"""Beirami et al.'s bound :math:`n/(n+1) - W_n \le \tfrac{n-1}{2}\sum_y p(y)^2`.

    **Valid only when distinct outcomes have distinct rewards** (the paper's assumption). With ties (counted
    ½) it can fail (docs/theory.md §2.5 records 364 failures in 7 775 tie-heavy random cases); do not apply it then.

    Returns:
      ``broadcast(batch, n.shape)``.
    """
    nf, collision = _n_and_collision(ref_probs, n)
    return 0.5 * (nf - 1) * collision
