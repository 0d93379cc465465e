r"""BoN against the KL-regularised optimum on long sequences (memoryless policy, additive reward).

For ``p(y) = Π_t q(y_t)`` over sequences of length L and ``R(y) = Σ_t s(y_t)``:

* every BoN quantity (pmf over reward levels, KL, expected reward, win rate) depends on ``(p, R)`` only
  through the distribution of ``R`` under ``p``; with integer token scores that is an L-fold convolution
  on ``≤ L (s_max − s_min) + 1`` atoms, computed here in log space (so masses far below 1e-300 survive);
* the tilted optimum factorises, ``π_β(y) = Π_t q(y_t) e^{s(y_t)/β} / z(β)``, so its KL and reward are L
  times the per-token values.

Yang et al. (arXiv 2404.01730) show that BoN with ``log n ∝ L`` is asymptotically equivalent to the tilted
optimum: the per-token reward gap at equal KL vanishes as L grows. :func:`bon_tilted_gap_per_token`
computes that gap exactly.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


def _log_conv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log of the convolution of exp(a) and exp(b) (1-D, log-space, exact up to rounding)."""
    m = a[:, None] + b[None, :]
    size = len(a) + len(b) - 1
    out = np.full(size, -np.inf)
    idx = np.add.outer(np.arange(len(a)), np.arange(len(b))).ravel()
    vals = m.ravel()
    top = np.full(size, -np.inf)
    np.maximum.at(top, idx, vals)
    safe = np.where(np.isfinite(top), top, 0.0)
    acc = np.zeros(size)
    np.add.at(acc, idx, np.exp(vals - safe[idx]))
    with np.errstate(divide="ignore"):
        out = np.where(np.isfinite(top), safe + np.log(acc), -np.inf)
    return out


def additive_reward_distribution(token_probs: Any, token_scores: Any, length: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Distribution of ``R = Σ_{t=1}^L s(Y_t)``, ``Y_t ~ q`` i.i.d., for integer token scores.

    Args:
      token_probs: ``float[V]`` per-token pmf ``q``.
      token_scores: ``int[V]`` per-token scores ``s`` (integer-valued).
      length: L ≥ 1.

    Returns:
      ``(values float[A], log_masses float[A])`` over the ``A = L (s_max − s_min) + 1`` lattice points
      (``-inf`` log-mass for unreachable sums); binary powering of a log-space convolution.
    """
    q = np.asarray(token_probs, np.float64)
    s = np.asarray(token_scores)
    if not np.all(s == np.round(s)):
        raise ValueError("token_scores must be integers (so R lives on a lattice)")
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    s = s.astype(np.int64)
    lo, hi = int(s.min()), int(s.max())
    base = np.full(hi - lo + 1, -np.inf)
    with np.errstate(divide="ignore"):
        for v, pv in zip(s, q):
            base[v - lo] = np.logaddexp(base[v - lo], np.log(pv))
    result = np.zeros(1)  # log of the delta at 0
    power = base
    k = int(length)
    while k:
        if k & 1:
            result = _log_conv(result, power)
        k >>= 1
        if k:
            power = _log_conv(power, power)
    values = lo * length + np.arange(len(result), dtype=np.float64)
    return values, result


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
    log_n: np.ndarray


def bon_tilted_gap_per_token(token_probs: Any, token_scores: Any, length: int, log_n: Any) -> BoNTiltGap:
    r"""Exact per-token reward gap between the tilted optimum and BoN at BoN's own KL.

    BoN's KL and expected reward come from :func:`bontheory.exact.bon_kl` and
    :func:`bontheory.exact.bon_expected_reward` on the level distribution of ``R`` (levels with
    log-mass below the float64 range, ``< e^{-700}``, are dropped; their total is reported nowhere and is
    negligible for the n used here). The tilt side is per token, exact.

    Args:
      token_probs: ``float[V]``; token_scores: ``int[V]``; length: L.
      log_n: ``float[...]`` values of ``log n`` (n may be astronomically large, e.g. ``log n = c L``).

    Returns:
      :class:`BoNTiltGap`.
    """
    import jax.numpy as jnp

    from bontheory.exact.bon import bon_expected_reward, bon_kl

    values, log_m = additive_reward_distribution(token_probs, token_scores, length)
    keep = log_m > -700
    values, log_m = values[keep], log_m[keep]
    m = np.exp(log_m - np.logaddexp.reduce(log_m))
    log_n = np.asarray(log_n, np.float64)
    n = np.round(np.exp(log_n))
    kl = np.asarray(bon_kl(jnp.asarray(m), jnp.asarray(values), jnp.asarray(n)))
    rew = np.asarray(bon_expected_reward(jnp.asarray(m), jnp.asarray(values), jnp.asarray(n)))
    q = np.asarray(token_probs, np.float64)
    s = np.asarray(token_scores, np.float64)
    beta = _beta_for_token_kl(q, s, kl / length)
    _, tilt = token_tilt_kl_reward(q, s, beta)
    return BoNTiltGap(
        kl_per_token=kl / length,
        bon_reward_per_token=rew / length,
        tilt_reward_per_token=tilt,
        gap_per_token=tilt - rew / length,
        log_n=log_n,
    )
