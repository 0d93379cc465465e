r"""χ²-pessimism: the χ²-regularised target of InferenceTimePessimism (Huang et al., arXiv 2503.21878).

.. math:: π_β = \arg\max_π\; E_π[\hat r] - \tfrac{β}{2} χ^2(π\|p), \qquad
          π_β(y) = p(y)\,\frac{(\hat r(y) - λ)_+}{β}, \quad E_p[(\hat r - λ)_+] = β.

(Stationarity of the Lagrangian gives ``π/p = (r̂ − ν)_+/β``; normalisation fixes ``ν = λ``.)
``g(λ) = E_p[(r̂ − λ)_+]`` is continuous, piecewise linear and strictly decreasing below the top reward,
so λ is found exactly: sort the levels, evaluate ``g`` at each level's reward, take the lowest level ℓ with
``g(r_ℓ) ≤ β``; the active set is the levels ``≥ ℓ`` and
``λ = (Σ_{j≥ℓ} m_j r_j − β) / Σ_{j≥ℓ} m_j``.  ``β → ∞`` gives ``p``; ``β → 0`` gives ``p`` restricted to
the top level.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Real

from bontheory import validation
from bontheory.exact.levels import RewardLevels, reward_levels


def threshold_from_levels(lv: RewardLevels, beta: jax.Array) -> jax.Array:
    """λ solving E_p[(r − λ)_+] = β on precomputed reward levels; shape ``broadcast(batch, beta.shape)``.

    No checks (``beta`` may be traced); used by :func:`chi2_pessimism_threshold` and by the finite-N
    pessimism sampler on the empirical levels of its first N candidates.
    """
    top, gap = _top_and_gap(lv, beta)
    return top - gap


def _top_and_gap(lv: RewardLevels, beta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(top, top − λ)``: the top reward and the gap to λ, computed without forming λ, so that ``r − λ`` stays
    accurate for β far below the top level's mass times the float spacing at the top reward (β → 0)."""
    dtype = lv.mass.dtype
    shape = tuple(jnp.broadcast_shapes(lv.batch_shape, jnp.shape(beta)))
    k = lv.mass.shape[-1]
    b = jnp.broadcast_to(jnp.asarray(beta, dtype), shape)[..., None]
    mass = jnp.broadcast_to(lv.mass, shape + (k,))
    tail = jnp.broadcast_to(lv.tail, shape + (k,))
    top = jnp.max(jnp.broadcast_to(lv.reward, shape + (k,)), axis=-1, keepdims=True)
    rel = jnp.broadcast_to(lv.reward, shape + (k,)) - top  # <= 0: shifted for accuracy
    upper_mass = tail + mass  # Σ_{j≥ℓ} m_j
    s1 = jnp.flip(jnp.cumsum(jnp.flip(mass * rel, -1), -1), -1)  # Σ_{j≥ℓ} m_j r_j (relative)
    g = s1 - rel * upper_mass  # E_p[(r − r_ℓ)_+] (nonincreasing in ℓ; 0 on padding levels)
    ell = jnp.sum(g > b, axis=-1, keepdims=True)  # lowest level with g ≤ β
    s1_l = jnp.take_along_axis(s1, ell, axis=-1)
    pm_l = jnp.take_along_axis(upper_mass, ell, axis=-1)
    return top[..., 0], ((b - s1_l) / pm_l)[..., 0]


_pessimism_inputs = validation.validate(
    ref_probs=validation.probs, rewards=validation.rewards, beta=validation.positive
)


@_pessimism_inputs
def chi2_pessimism_threshold(
    ref_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], beta: ArrayLike
) -> Float[Array, "*batch"]:
    r"""The threshold λ with ``E_p[(r̂ − λ)_+] = β`` (exact; sort once, closed form on the active suffix).

    Args:
      ref_probs: ``float[..., K]`` pmf ``p`` (for the empirical λ̂ of n samples, pass ``1/n`` weights).
      rewards: ``float[..., K]``.
      beta: ``β > 0`` (scalar or broadcastable with the batch shape; may be traced).

    Returns:
      ``float[...]`` λ (≤ the top reward; equals ``E_p[r̂] − β`` once every outcome is active); differentiable
      like :func:`chi2_pessimism_pmf`.
    """
    return threshold_from_levels(reward_levels(ref_probs, rewards), beta)


@_pessimism_inputs
def chi2_pessimism_pmf(
    ref_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], beta: ArrayLike
) -> Float[Array, "*batch K"]:
    r"""The χ²-regularised optimum ``π_β(y) = p(y)(r̂(y) − λ)_+/β`` with ``E_p[(r̂ − λ)_+] = β``.

    Maximises ``E_π[r̂] − (β/2) χ²(π‖p)`` over pmfs π; its density ratio is at most ``(r̂_max − λ)/β``.

    Args:
      ref_probs: ``float[..., K]`` reference pmf ``p``.
      rewards: ``float[..., K]`` proxy rewards ``r̂``.
      beta: regularisation ``β > 0`` (scalar or broadcastable with the batch shape; may be traced).

    Returns:
      ``float[..., K]`` pmf (renormalised by its sum, which differs from 1 only by rounding). Differentiable in
      ``ref_probs``, ``rewards`` and ``beta`` while the active set of levels is unchanged (docs/theory.md §1.8).

    Raises:
      ValueError: bad pmf, non-finite rewards, or ``β ≤ 0`` (values checked only when concrete).

    References:
      Huang, Block, Liu, Jiang, Foster, Krishnamurthy, "Is Best-of-N the Best of Them? Coverage, Scaling,
      and Optimality in Inference-Time Alignment", arXiv 2503.21878.
    """
    lv = reward_levels(ref_probs, rewards)
    dtype = lv.mass.dtype
    top, gap = _top_and_gap(lv, beta)
    shape = top.shape
    k = lv.log_probs.shape[-1]  # outcomes; the level arrays may be shorter (compacted levels)
    r = jnp.broadcast_to(jnp.asarray(rewards, dtype), shape + (k,))
    p = jnp.exp(jnp.broadcast_to(lv.log_probs, shape + (k,)))
    # (r − λ)_+ as (r − top) + (top − λ): exact on the top level however small β is (β → 0: the top level);
    # the 1/β factor cancels in the normalisation
    pi = p * jnp.maximum((r - top[..., None]) + gap[..., None], 0.0)
    return pi / jnp.sum(pi, axis=-1, keepdims=True)
