r"""The exact finite-N law of InferenceTimePessimism (Huang et al., arXiv 2503.21878), docs/theory.md §4.3.1.

The sampler (:func:`bontheory.pessimism_sample`) draws ``2N + 1`` candidates from p: the first N give the
empirical threshold λ̂ with ``(1/N) Σ_i (r_i − λ̂)_+ = β``; each of the next N is accepted with probability
``a(r; λ̂) = min(1, (r − λ̂)_+/(R_max − λ̂))``; the first accepted one is returned, else the last candidate.
Given λ̂, with ``A(λ) = Σ_ℓ m_ℓ a(r_ℓ; λ)`` the acceptance probability of one proposal,

.. math:: P(Y = y \mid λ̂) = p(y)\Big[a(r(y); λ̂)\,\frac{1 - (1 - A)^N}{A} + (1 - A)^N\Big],

so ``π(y) = p(y) E[h_{r(y)}(λ̂)]`` and only the law of λ̂ is needed. λ̂ depends on the first N draws only through
the counts of their reward levels, and only on the *active* top ones: with levels sorted from the top, the
draws with reward > λ̂ are exactly the levels above some level ℓ, and ``λ̂ = (S − Nβ)/t`` with ``t`` their
number and ``S`` the sum of their rewards. A dynamic programme over the levels from the top keeps the states
``(t, S)`` (merged when equal) with weight ``Π m_j^{c_j}/c_j!``; after each level a state is *closed* when the
next level's reward is ≤ its λ (then all remaining ``N − t`` draws lie below, with probability
``N!/(N − t)! · F_below^{N−t}`` times the weight), otherwise it continues. Each configuration of counts is
closed exactly once (at the lowest active level), so the closed states carry the exact law of λ̂. Count
prefixes of probability below e^-70 are dropped (disjoint events: the mass lost is below float64 resolution).

The number of states grows with the number of distinct sums ``S`` of active draws: small for rewards with
few levels or on a lattice (token counts, quantised rewards), or when β is small against the gaps between top
rewards; it explodes for many distinct continuous rewards and large N. Past ``max_states`` the function
raises :class:`ExactLawTooLarge` (use the Monte Carlo sampler :func:`bontheory.pessimism_sample` then).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Real

from bontheory import validation


class ExactLawTooLarge(ValueError):
    """An exact finite-N law would need more enumeration states than allowed (``max_states``).

    Attributes:
      states: the number of states reached when the enumeration stopped.
      max_states: the limit.
    """

    def __init__(self, message: str, states: int, max_states: int):
        super().__init__(message)
        self.states = states
        self.max_states = max_states


#: A count prefix (the counts of the top levels) whose probability is below e^-70 ≈ 4e-31 is dropped; the
#: dropped prefixes are disjoint events, so the mass lost is at most 4e-31 per dropped state.
_LOG_NEGLIGIBLE = -70.0


def _times_log(count: np.ndarray, log_mass: float) -> np.ndarray:
    """``count · log_mass`` with ``0 · log 0 = 0``."""
    return np.where(count > 0, count * log_mass, 0.0) if np.isfinite(log_mass) else np.where(count > 0, -np.inf, 0.0)


def _merge(t: np.ndarray, s: np.ndarray, logw: np.ndarray, res: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merges states with equal ``t`` and equal ``s`` (to ``res``), adding their weights (log space)."""
    if t.size == 0:
        return t, s, logw
    q = np.round(s / res).astype(np.int64)
    order = np.lexsort((q, t))
    t, q, s, logw = t[order], q[order], s[order], logw[order]
    new = np.ones(t.size, bool)
    new[1:] = (t[1:] != t[:-1]) | (q[1:] != q[:-1])
    starts = np.flatnonzero(new)
    top = np.maximum.reduceat(logw, starts)
    summed = np.add.reduceat(np.exp(logw - np.repeat(top, np.diff(np.append(starts, t.size)))), starts)
    return t[starts], s[starts], top + np.log(summed)


def _lambda_law(u: np.ndarray, w: np.ndarray, n: int, beta: float, max_states: int) -> tuple[np.ndarray, np.ndarray]:
    """The law of λ̂ for levels ``u`` (descending) with masses ``w``: (values, log-probabilities)."""
    j_levels = u.size
    below = np.concatenate([np.cumsum(w[::-1])[::-1][1:], [0.0]])  # mass strictly below level k
    rel = u - u[0]  # <= 0, for accuracy
    spread = float(-rel[-1])
    res = (spread if spread > 0 else 1.0) * 1e-11  # sums equal to this resolution are merged
    log_w = np.log(w)
    t = np.zeros(1, np.int64)
    s = np.zeros(1)
    logw = np.zeros(1)
    lam_out, logp_out = [], []
    log_fact = np.array([math.lgamma(i + 1) for i in range(n + 1)])  # log c!, c = 0..N
    log_nfact = log_fact[n]
    with np.errstate(divide="ignore"):
        log_below = np.log(below)
    for k in range(j_levels):
        counts = n - t + 1
        total = int(counts.sum())
        if total > max_states:
            raise ExactLawTooLarge(
                f"the exact law of InferenceTimePessimism at N = {n} needs more than max_states = {max_states} "
                f"enumeration states at one reward level ({j_levels} levels); raise max_states, or use the Monte "
                "Carlo sampler pessimism_sample", total, max_states)
        rep = np.repeat(np.arange(t.size), counts)
        c = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        t2 = t[rep] + c
        s2 = s[rep] + c * rel[k]
        logw2 = logw[rep] + c * log_w[k] - log_fact[c]
        # drop count prefixes of negligible probability (and impossible ones: draws left but no mass below)
        rest = n - t2
        prefix = logw2 + log_nfact - log_fact[rest] + _times_log(rest, log_below[k])
        live = prefix > _LOG_NEGLIGIBLE
        t2, s2, logw2 = _merge(t2[live], s2[live], logw2[live], res)
        if k == j_levels - 1:
            done = t2 == n
            lam = (s2[done] - n * beta) / n
            lam_out.append(lam)
            logp_out.append(logw2[done] + log_nfact)
            break
        active = t2 >= 1
        lam = np.where(active, (s2 - n * beta) / np.maximum(t2, 1), np.inf)
        closed = active & (rel[k + 1] <= lam)
        rest = n - t2[closed]
        tail = _times_log(rest, log_below[k])
        lam_out.append(lam[closed])
        logp_out.append(logw2[closed] + log_nfact - log_fact[rest] + tail)
        keep = ~closed
        t, s, logw = t2[keep], s2[keep], logw2[keep]
        if t.size == 0:
            break
    lam = np.concatenate(lam_out) + u[0]
    logp = np.concatenate(logp_out)
    _, lam, logp = _merge(np.zeros(lam.size, np.int64), lam, logp, res)
    return lam, logp


def _level_weights(v: np.ndarray, w: np.ndarray, lam: np.ndarray, logp: np.ndarray, n: int, r_max: float) -> np.ndarray:
    """``H_ℓ = E[a(r_ℓ; λ̂)(1 − (1 − A)^N)/A + (1 − A)^N]`` over the law of λ̂, per level (``float[J]``)."""
    out = np.zeros(v.size)
    probs = np.exp(logp - logp.max())
    probs = probs / probs.sum()  # renormalise (rounding only)
    for start in range(0, lam.size, 4096):
        lm = lam[start:start + 4096, None]
        a = np.clip(np.maximum(v[None, :] - lm, 0.0) / (r_max - lm), 0.0, 1.0)
        acc = a @ w  # A(λ)
        with np.errstate(divide="ignore"):
            log_stay = n * np.log1p(-np.minimum(acc, 1.0))
        stay = np.exp(log_stay)  # (1 − A)^N
        ratio = np.where(acc > 0, -np.expm1(log_stay) / np.where(acc > 0, acc, 1.0), float(n))
        h = a * ratio[:, None] + stay[:, None]
        out += probs[start:start + 4096] @ h
    return out


@validation.validate(
    ref_probs=validation.kind(validation.probs, ndim=1), rewards=validation.kind(validation.rewards, ndim=1),
    beta=validation.positive, n=validation.sample_size, r_max=validation.optional(validation.finite),
    max_states=validation.static_int,
)
def chi2_pessimism_sampler_pmf(
    ref_probs: Float[ArrayLike, " K"],
    rewards: Real[ArrayLike, " K"],
    n: ArrayLike,
    beta: float,
    *,
    r_max: float | None = None,
    max_states: int = 2_000_000,
) -> Float[Array, "*n K"]:
    r"""The exact law of InferenceTimePessimism with budget N (``2N + 1`` reward calls), on a finite space.

    ``π_N(y) = p(y)·E[a(r(y); λ̂)(1 − (1 − A)^N)/A + (1 − A)^N]``, the expectation over the exact law of the
    empirical threshold λ̂ of N draws, enumerated by a dynamic programme over reward levels (module docstring;
    docs/theory.md §4.3.1). This is the law of :func:`bontheory.pessimism_sample` with the same ``r_max``. As
    N → ∞ it tends to :func:`chi2_pessimism_pmf` (when ``r_max`` is the top reward).

    Args:
      ref_probs: ``float[K]`` reference pmf p.
      rewards: ``float[K]`` proxy rewards.
      n: the budget N ≥ 1 (an integer, or a 1-D array of them: one law per N).
      beta: β > 0 (absolute, in reward units).
      r_max: the sampler's bound ``R_max`` (default: the top reward on the support of p); must be ≥ it.
      max_states: the most enumeration states allowed at one reward level (memory ~ 40 bytes each).

    Returns:
      ``float[K]`` (or ``float[len(n), K]``) pmf, in float64 when x64 is on.

    Raises:
      ExactLawTooLarge: the enumeration would exceed ``max_states`` (many distinct rewards with large N).
      ValueError: bad inputs, or ``r_max`` below the top reward.
    """
    p = np.asarray(ref_probs, np.float64)
    r = np.asarray(rewards, np.float64)
    ns = np.asarray(validation.sample_size(n, "n"))
    if ns.ndim > 1:
        raise ValueError(f"n must be an integer or a 1-D array of integers, got shape {ns.shape}")
    support = p > 0
    top = float(r[support].max())
    r_max = top if r_max is None else float(r_max)
    if not r_max >= top:
        raise ValueError(f"r_max = {r_max} is below the top reward {top} on the support of ref_probs")
    v, inverse = np.unique(r[support], return_inverse=True)
    w = np.bincount(inverse, weights=p[support], minlength=v.size)
    w = w / w.sum()
    u, wd = v[::-1], w[::-1]
    if v.size >= 2 and float(np.max(ns)) + 1 > max_states:  # the count on the top level alone takes N + 1 values
        raise ExactLawTooLarge(
            f"the exact law of InferenceTimePessimism at n = {float(np.max(ns)):.6g} needs more than max_states = "
            f"{max_states} enumeration states (at least n + 1); raise max_states, or use the Monte Carlo sampler "
            "pessimism_sample", int(min(float(np.max(ns)) + 1, 2**62)), max_states)
    pmfs = []
    for nn in np.atleast_1d(ns).tolist():
        lam, logp = _lambda_law(u, wd, int(nn), float(beta), max_states)
        h = _level_weights(v, w, lam, logp, int(nn), r_max)
        out = np.zeros_like(p)
        out[support] = p[support] * h[inverse]
        pmfs.append(out / out.sum())
    res = np.stack(pmfs) if ns.ndim == 1 else pmfs[0]
    return jnp.asarray(res, jnp.result_type(float))
