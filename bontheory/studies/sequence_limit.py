r"""BoN against the KL-regularised optimum on long sequences (docs/theory.md §3.3).

For a memoryless ``p(y) = Π_t q(y_t)`` over sequences of length L and an additive integer reward
``R(y) = Σ_t s(y_t)``:

* every BoN quantity (KL, expected reward) depends on ``(p, R)`` only through the law of ``R`` under ``p``,
  which :func:`bontheory.reward_distribution` computes exactly in log space (masses far below 1e-300 survive);
  BoN is evaluated on that law at ``log n`` itself, so ``n = e^{cL}`` may be far beyond float64
  (``e^{1600}`` at L = 4096);
* the tilted optimum factorises, ``π_β(y) = Π_t q(y_t) e^{s(y_t)/β} / z(β)``, so its KL and reward are L
  times the per-token values.

Yang et al. (arXiv 2404.01730) show that BoN with ``log n ∝ L`` is asymptotically equivalent to the tilted
optimum: the per-token reward gap at equal KL vanishes as L grows. :func:`bon_tilted_gap_per_token`
computes that gap exactly, and :func:`power_law_rate` measures how fast it vanishes.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from bontheory import validation

#: Below this ``log n`` (``n < 2^52``) n is rounded to an integer; above, rounding changes nothing in float64.
_ROUND_BELOW = 52 * math.log(2)


def _log_neg_log1m(log_x: np.ndarray) -> np.ndarray:
    r""":math:`\log(-\log(1-x))` from :math:`\log x` (:math:`x \in [0, 1]`), accurate for tiny x
    (:math:`-\log(1-x) = x(1 + x/2 + O(x^2))`) and ``+inf`` at x = 1."""
    with np.errstate(divide="ignore", over="ignore", under="ignore"):
        x = np.exp(log_x)
        small = log_x < -30
        return np.where(small, log_x + x / 2, np.log(-np.log1p(-np.where(small, 0.5, x))))


@validation.validate(log_probs=validation.unconverted(validation.log_densities),
                     log_n=validation.kind(validation.array, min_value=0))
def bon_level_log_probs_at_log_n(log_probs: Any, log_n: Any) -> np.ndarray:
    r"""The level law of best-of-n in log space, at ``log n`` (n may overflow float64), from a level law in log
    space (e.g. :func:`bontheory.reward_distribution`):

    .. math:: \log q_\ell = -e^{\log n + \log(-\log F_\ell)}
              + \log\big(-\mathrm{expm1}(-e^{\log n + \log(-\log(F^-_\ell/F_\ell))})\big)

    (:math:`q_\ell = F_\ell^n - (F^-_\ell)^n`, docs/theory.md §1.4, §3.3), with :math:`-\log F_\ell` taken from
    the tail :math:`1 - F_\ell` when :math:`F_\ell > 1/2` and :math:`-\log(F^-_\ell/F_\ell) = -\log(1 - m_\ell/F_\ell)`
    from :math:`\log(m_\ell/F_\ell)`, so neither n, nor a tiny tail, nor a tiny level mass next to the top is
    formed outside an exponent: levels of mass :math:`e^{-800}` keep :math:`\log q_\ell \approx \log(n m_\ell)`.
    NumPy, float64 (a function of a fixed reference law: nothing to differentiate or compile).

    Args:
      log_probs: ``float[A]`` log-masses of the levels in increasing reward (renormalised here).
      log_n: ``float[...]`` values of ``log n ≥ 0``.

    Returns:
      ``float[..., A]``; ``-inf`` on levels of zero mass.
    """
    log_m = np.asarray(log_probs, np.float64)
    log_m = log_m - np.logaddexp.reduce(log_m)
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        log_f = np.logaddexp.accumulate(log_m)
        tail_incl = np.logaddexp.accumulate(log_m[::-1])[::-1]
        log_tail = np.append(tail_incl[1:], -np.inf)  # log(1 − F_ℓ)
        head = log_f < -np.log(2)
        log_neg_log_f = np.where(head, np.log(-np.where(head, log_f, -1.0)), _log_neg_log1m(log_tail))
        log_x = log_m - np.where(head, log_f, -np.exp(log_neg_log_f))  # log(m_ℓ/F_ℓ)
        ln = np.asarray(log_n, np.float64)[..., None]
        s = ln + _log_neg_log1m(np.minimum(log_x, 0.0))
        log_body = np.where(s < -30, s, np.log(-np.expm1(-np.exp(np.minimum(s, 700.0)))))
        return np.where(log_m > -np.inf, -np.exp(ln + log_neg_log_f) + log_body, -np.inf)


def _bon_at_log_n(values: np.ndarray, log_m: np.ndarray, log_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KL(π_n‖p) and E_{π_n}[R] (``float[...]`` each) from the level law ``(values, log_m)`` at ``log n``."""
    values = np.asarray(values, np.float64)
    log_m = np.asarray(log_m, np.float64)
    log_m = log_m - np.logaddexp.reduce(log_m)
    log_q = bon_level_log_probs_at_log_n(log_m, log_n)
    with np.errstate(under="ignore", invalid="ignore"):
        q = np.exp(log_q)
        pos = q > 0
        kl = np.sum(np.where(pos, q * (log_q - np.where(pos, log_m, 0.0)), 0.0), axis=-1)
    return np.maximum(kl, 0.0), np.sum(q * values, axis=-1)


@validation.validate(
    token_probs=validation.unconverted(validation.kind(validation.probs, ndim=1)),
    token_scores=validation.kind(validation.array, ndim=1),
    beta=validation.unconverted(validation.positive),
)
def token_tilt_kl_reward(token_probs: Any, token_scores: Any, beta: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-token KL and expected score of the tilt ``q_β ∝ q e^{s/β}``: ``(KL(q_β‖q), E_{q_β}[s])``."""
    q = np.asarray(token_probs, np.float64)
    s = np.asarray(token_scores, np.float64)
    beta = np.asarray(beta, np.float64)[..., None]
    logits = np.log(q) + s / beta
    logz = np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    qb = np.exp(logits - logz)
    kl = np.sum(qb * (s / beta - logz), axis=-1)
    return np.maximum(kl, 0.0), np.sum(qb * s, axis=-1)


def _beta_for_token_kl(q, s, target_kl: np.ndarray) -> np.ndarray:
    """β with per-token KL(q_β‖q) = target (bisection on log β; KL decreases in β)."""
    lo = np.full(np.shape(target_kl), -12.0)
    hi = np.full(np.shape(target_kl), 40.0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        kl, _ = token_tilt_kl_reward(q, s, np.exp(mid))
        big = kl > target_kl
        lo, hi = np.where(big, mid, lo), np.where(big, hi, mid)
    return np.exp(0.5 * (lo + hi))


class BoNTiltGap(NamedTuple):
    """Per-token comparison of BoN with the tilted optimum at equal KL (each ``float[...]``)."""

    kl_per_token: np.ndarray  # KL(π_n‖p)/L
    bon_reward_per_token: np.ndarray  # E_{π_n}[R]/L
    tilt_reward_per_token: np.ndarray  # E_{q_β}[s] with KL(q_β‖q) = KL(π_n‖p)/L
    gap_per_token: np.ndarray  # tilt − BoN (≥ 0 up to rounding)
    log_n: np.ndarray  # the log n used: log round(e^{log n}) below 2^52, else log n itself (0 when n = 1)


@validation.validate(
    token_probs=validation.unconverted(validation.kind(validation.probs, ndim=1)),
    token_scores=validation.kind(validation.array, ndim=1, integer=True),
    length=validation.static_int,
    log_n=validation.kind(validation.array, min_value=0),
)
def bon_tilted_gap_per_token(token_probs: Any, token_scores: Any, length: int, log_n: Any) -> BoNTiltGap:
    r"""Exact per-token reward gap between the tilted optimum and BoN at BoN's own KL.

    The law of ``R`` under the memoryless policy is :func:`bontheory.reward_distribution` of a memoryless
    :class:`~bontheory.TabularPolicy` and a :class:`~bontheory.TokenScoreReward` (in log space, no level
    dropped); BoN's KL and expected reward are evaluated on it at ``log n`` directly (docs/theory.md §1.5 on
    the level law, §8), so ``n = e^{cL}`` far beyond float64 is exact. ``n`` is rounded to an integer where
    that matters (``n < 2^52``). The tilt side is per token, exact; its β solves
    ``KL(q_β‖q) = KL(π_n‖p)/L`` by bisection on ``log β``.

    Args:
      token_probs: ``float[V]`` per-token pmf ``q`` (positive).
      token_scores: ``int[V]`` per-token scores ``s`` (integer-valued).
      length: L ≥ 1.
      log_n: ``float[...]`` values of ``log n ≥ 0`` (n may be astronomically large, e.g. ``log n = c L``).

    Returns:
      :class:`BoNTiltGap`.

    Raises:
      ValueError: if the scores are not integers, ``length < 1`` or a ``log n`` is negative.
    """
    from bontheory.lifted.distribution import reward_distribution
    from bontheory.policies.tabular import tabular_policy_from_logits
    from bontheory.rewards.toy import TokenScoreReward

    q = np.asarray(token_probs, np.float64)
    s = np.asarray(token_scores, np.float64)
    if q.ndim != 1 or s.shape != q.shape:
        raise ValueError(f"token_probs and token_scores must be 1-D of equal length, got {q.shape} and {s.shape}")
    if not np.all(s == np.round(s)):
        raise ValueError("token_scores must be integers (so R lives on a lattice)")
    if not (isinstance(length, (int, np.integer)) and length >= 1):
        raise ValueError(f"length must be an integer >= 1, got {length!r}")
    log_n = np.asarray(log_n, np.float64)
    if not np.all(log_n >= 0):
        raise ValueError(f"log_n must be >= 0 (n >= 1), got {log_n}")
    length = int(length)
    log_n = np.where(log_n < _ROUND_BELOW, np.log(np.round(np.exp(np.minimum(log_n, _ROUND_BELOW)))), log_n)
    logits = np.broadcast_to(np.log(q), (length, len(q)))
    policy = tabular_policy_from_logits(jnp.asarray(logits), order=0)
    reward = TokenScoreReward(scores=jnp.asarray(np.broadcast_to(s, (length, len(s)))))
    dist = reward_distribution(policy, reward)
    log_m = np.asarray(dist.log_probs, np.float64)
    log_m = log_m - np.logaddexp.reduce(log_m)
    kl, rew = _bon_at_log_n(np.asarray(dist.values), np.asarray(log_m), log_n)
    beta = _beta_for_token_kl(q, s, kl / length)
    _, tilt = token_tilt_kl_reward(q, s, beta)
    return BoNTiltGap(
        kl_per_token=kl / length,
        bon_reward_per_token=rew / length,
        tilt_reward_per_token=tilt,
        gap_per_token=tilt - rew / length,
        log_n=log_n,
    )


class PowerLawRate(NamedTuple):
    """A least-squares line ``log y = log a + slope · log x`` (``y ≈ a x^slope``)."""

    slope: float
    prefactor: float  # a
    r2: float
    num_points: int


@validation.validate(x=validation.kind(validation.array, ndim=1), y=validation.kind(validation.array, ndim=1))
def power_law_rate(x: Any, y: Any) -> PowerLawRate:
    r"""The rate at which ``y`` vanishes (or grows) in ``x``: the least-squares slope of ``log y`` on ``log x``.

    Used for the per-token gap of BoN to the tilted optimum against L (a slope of −1 is a gap of order 1/L).
    Points with ``y ≤ 0`` (e.g. cells where BoN is ``p`` itself, ``n = 1``) are left out; NaN or inf is refused.

    Args:
      x: ``float[N]`` positive abscissae; y: ``float[N]``.

    Returns:
      :class:`PowerLawRate` (slope, prefactor ``a``, R² of the log-log fit, number of points used).

    Raises:
      ValueError: if the shapes differ, an ``x`` is not positive, or fewer than 2 points remain.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
    if not np.all(x > 0):
        raise ValueError("x must be positive")
    keep = np.isfinite(y) & (y > 0)
    if keep.sum() < 2:
        raise ValueError(f"need at least 2 points with y > 0, got {int(keep.sum())}")
    lx, ly = np.log(x[keep]), np.log(y[keep])
    slope, intercept = np.polyfit(lx, ly, 1)
    fitted = intercept + slope * lx
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ly - fitted) ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    return PowerLawRate(float(slope), float(np.exp(intercept)), r2, int(keep.sum()))
