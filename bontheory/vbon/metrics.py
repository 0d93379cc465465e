"""Exact measurements of how well a trained policy approximates BoN, and the reward–KL Pareto frontier."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Real

from bontheory import validation as _V
from bontheory.vbon.divergences import reverse_kl


class ApproximationMetrics(NamedTuple):
    """Exact approximation error of a policy q with respect to the BoN pmf π_n (each ``(...)``).

    Attributes:
      kl_to_bon: KL(q‖π_n) (the vBoN loss).
      kl_from_bon: KL(π_n‖q).
      kl_to_ref: KL(q‖p).
      bon_kl_to_ref: KL(π_n‖p).
      reward: E_q[r].
      bon_reward: E_{π_n}[r].
      reward_gap: E_{π_n}[r] − E_q[r].
      win_rate_vs_ref: P(r(Y) > r(Y')) + ½P(=) for Y∼q, Y'∼p.
      win_rate_vs_bon: the same against Y'∼π_n (½ means q is as good as BoN).
      bon_win_rate_vs_ref: BoN's own win rate against p.
    """

    kl_to_bon: Float[Array, "*batch"]
    kl_from_bon: Float[Array, "*batch"]
    kl_to_ref: Float[Array, "*batch"]
    bon_kl_to_ref: Float[Array, "*batch"]
    reward: Float[Array, "*batch"]
    bon_reward: Float[Array, "*batch"]
    reward_gap: Float[Array, "*batch"]
    win_rate_vs_ref: Float[Array, "*batch"]
    win_rate_vs_bon: Float[Array, "*batch"]
    bon_win_rate_vs_ref: Float[Array, "*batch"]


@_V.validate(log_probs=_V.log_probs, ref_log_probs=_V.log_probs, rewards=_V.rewards, bon_log_probs=_V.log_probs)
def approximation_metrics(
    log_probs: Float[ArrayLike, "*batch K"],
    ref_log_probs: Float[ArrayLike, "*batch K"],
    rewards: Real[ArrayLike, "*batch K"],
    bon_log_probs: Float[ArrayLike, "*batch K"],
) -> ApproximationMetrics:
    r"""Exact approximation error of a policy q with respect to the BoN pmf π_n, over all outcomes.

    Args:
      log_probs: ``(..., K)`` log q(y) of the trained policy (e.g. ``policy.log_prob(all_sequences)``).
      ref_log_probs: ``(..., K)`` log p(y) of the reference.
      rewards: ``(..., K)`` r(y).
      bon_log_probs: ``(..., K)`` log π_n(y) (``vbon_target_log_probs(..., target="exact")``).

    Returns:
      :class:`ApproximationMetrics` of ``(...)`` arrays.
    """
    from bontheory.exact.divergences import win_rate

    lq, lp, lb, r = log_probs, ref_log_probs, bon_log_probs, rewards
    q, p, b = jnp.exp(lq), jnp.exp(lp), jnp.exp(lb)
    reward = jnp.sum(q * r, axis=-1)
    bon_reward = jnp.sum(b * r, axis=-1)
    return ApproximationMetrics(
        kl_to_bon=reverse_kl(lq, lb),
        kl_from_bon=reverse_kl(lb, lq),
        kl_to_ref=reverse_kl(lq, lp),
        bon_kl_to_ref=reverse_kl(lb, lp),
        reward=reward,
        bon_reward=bon_reward,
        reward_gap=bon_reward - reward,
        win_rate_vs_ref=win_rate(q, p, r),
        win_rate_vs_bon=win_rate(q, b, r),
        bon_win_rate_vs_ref=win_rate(b, p, r),
    )


@_V.validate(kl=_V.finite, reward=_V.finite)
def pareto_frontier(kl: ArrayLike, reward: ArrayLike, *, tol: float = 1e-9) -> np.ndarray:
    """Which (KL to p, expected reward) points are on the Pareto frontier (lower KL, higher reward).

    A point is on the frontier if no other point has KL ≤ its KL and reward ≥ its reward with at least
    one strict by more than ``tol`` (so duplicates are all kept).

    Args:
      kl: ``(P,)`` KL(π‖p) of each point.
      reward: ``(P,)`` expected reward of each point.
      tol: tolerance for "strictly better".

    Returns:
      bool ``(P,)`` NumPy mask.
    """
    k = np.asarray(kl, dtype=float)
    r = np.asarray(reward, dtype=float)
    if k.shape != r.shape or k.ndim != 1:
        raise ValueError(f"kl and reward must be 1-D of equal length, got {k.shape} and {r.shape}")
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(r))):
        raise ValueError("kl and reward must be finite")
    no_worse = (k[None, :] <= k[:, None] + tol) & (r[None, :] >= r[:, None] - tol)
    strictly = (k[None, :] < k[:, None] - tol) | (r[None, :] > r[:, None] + tol)
    dominated = np.any(no_worse & strictly, axis=1)
    return ~dominated
