r"""Regularised Best-of-N (Jinnai et al., arXiv 2404.01054): BoN under the score ``r̂ + β log p``.

Draw ``Y_1..Y_n ~ p`` and return ``argmax_i r̂(Y_i) + β log p(Y_i)`` (ties uniformly). This *is* BoN with a
modified score, so its exact pmf is :func:`bontheory.exact.bon.bon_pmf` on that score; outcomes with
``p = 0`` (never drawn) get a finite score below every other one so they never form a level with mass.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Real

from bontheory import numerics, validation
from bontheory.exact.bon import bon_pmf
from bontheory.numerics import safe_log


@validation.validate(ref_probs=validation.probs, rewards=validation.rewards, beta=validation.nonnegative)
def regularized_bon_score(
    ref_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], beta: ArrayLike
) -> Float[Array, "*batch K"]:
    r"""The regularised-BoN score ``r̂(y) + β log p(y)``, ``float[..., K]``.

    Outcomes with ``p(y) = 0`` get ``min(score over the support) − 1`` (finite, below the support).

    Args:
      ref_probs: ``float[..., K]``; rewards: ``float[..., K]``; beta: ``β ≥ 0`` scalar or batch-shaped.
    """
    dtype = numerics.floating_dtype(ref_probs, rewards)
    p = ref_probs.astype(dtype)
    support = p > 0
    log_p = jnp.where(support, safe_log(p), 0.0)  # finite off the support (replaced by the floor below)
    b = jnp.asarray(beta, dtype)[..., None]
    score = rewards.astype(dtype) + b * log_p
    floor = jnp.min(jnp.where(support, score, jnp.inf), axis=-1, keepdims=True) - 1.0
    return jnp.where(support, score, floor)


@validation.validate(
    ref_probs=validation.probs, rewards=validation.rewards, n=validation.sample_size, beta=validation.nonnegative
)
def regularized_bon_pmf(
    ref_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], n: ArrayLike, beta: ArrayLike
) -> Float[Array, "*batch K"]:
    r"""Exact pmf of regularised BoN: :func:`~bontheory.exact.bon.bon_pmf` under the score ``r̂ + β log p``.

    .. math:: π^{reg}_{n,β}(y) = \frac{p(y)}{m_s(y)}\big(F_s(y)^n - F_s^-(y)^n\big),
              \quad s = \hat r + β \log p,

    with ``F_s``, ``F_s^-``, ``m_s`` the CDFs and level mass of the score ``s`` under ``p``. ``β = 0`` is BoN.
    Note that ``β > 0`` favours *likely* outcomes, so large β concentrates on the mode of ``p``.

    Args:
      ref_probs: ``float[..., K]`` reference pmf.
      rewards: ``float[..., K]`` proxy rewards ``r̂``.
      n: integer ``n ≥ 1`` (scalar or broadcastable; may be traced).
      beta: ``β ≥ 0`` (scalar or batch-shaped; may be traced).

    Returns:
      ``float[..., K]`` pmf; differentiable in ``ref_probs`` and ``beta`` where the scores do not tie
      (docs/theory.md §1.8).

    References:
      Jinnai, Morimura, Ariu, Abe, "Regularized Best-of-N Sampling with Minimum Bayes Risk Objective for
      Language Model Alignment", arXiv 2404.01054.
    """
    score = regularized_bon_score(ref_probs, rewards, beta)
    p = jnp.broadcast_to(jnp.asarray(ref_probs), score.shape)
    return bon_pmf(p, score, n)
