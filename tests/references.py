"""Shared test references (NumPy/SciPy only, float64): brute-force enumeration of selection rules over all
n-tuples, the exact finite-N law of InferenceTimePessimism, and the one chi-square goodness-of-fit helper.

Test files import from here (``from references import ...``; ``tests/`` is on ``sys.path`` in pytest's
prepend import mode) and never from each other.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
from scipy import stats

#: The worked example with ties (``docs/theory.md §1``): outcomes 1 and 2 share the middle reward level.
P4 = np.array([0.1, 0.2, 0.3, 0.4])
R4 = np.array([0.0, 1.0, 1.0, 2.0])


# ---------------------------------------------------------------------------------------------------
# brute force over all n-tuples


def tuples(k: int, n: int) -> np.ndarray:
    """All ``k**n`` n-tuples of outcomes ``0..k-1``, ``int[k**n, n]`` in lexicographic order."""
    return np.array(list(itertools.product(range(k), repeat=n)), dtype=np.int64).reshape(k**n, n)


def brute_force_law(p, n: int, select: Callable[[np.ndarray], np.ndarray], values) -> np.ndarray:
    """The law of the selected outcome when n i.i.d. draws from ``p`` are made and one of them is picked.

    ``select(v)`` takes the values ``v = values[tuple]`` of every tuple (``float[k**n, n]``) and returns the
    probability of picking each of the n draws (rows sum to 1). Enumerates all ``k**n`` tuples:

        law(y) = Σ_tuples Π_j p(y_j) · Σ_{j : y_j = y} select(values[tuple])_j.
    """
    p = np.asarray(p, np.float64)
    tup = tuples(len(p), n)
    weights = np.prod(p[tup], axis=1)[:, None] * select(np.asarray(values, np.float64)[tup])
    return np.bincount(tup.ravel(), weights=weights.ravel(), minlength=len(p))


def _argmax_uniform(v: np.ndarray) -> np.ndarray:
    best = v == v.max(axis=1, keepdims=True)
    return best / best.sum(axis=1, keepdims=True)


def brute_force_bon(p, score, n: int) -> np.ndarray:
    """Best-of-n: the draw of highest ``score``, uniform among the tied best *draws*.

    With ``score = r`` this is the BoN law; with ``score = r + β log p`` regularised BoN.
    """
    return brute_force_law(p, n, _argmax_uniform, score)


def brute_force_soft_bon(p, r, n: int, temperature: float) -> np.ndarray:
    """Soft BoN: draw j picked with probability ``softmax(r / λ)_j`` over the n draws."""

    def select(v):
        w = np.exp((v - v.max(axis=1, keepdims=True)) / temperature)
        return w / w.sum(axis=1, keepdims=True)

    return brute_force_law(p, n, select, r)


def brute_force_quantile_truncation(p, r, n: int, m: float) -> np.ndarray:
    """Quantile truncation: one of the top ``⌈n/m⌉`` draws uniformly; the slots left on the boundary reward
    level are shared uniformly among the draws tied there."""
    k = int(np.clip(np.ceil(n / m - 1e-9), 1, n))

    def select(v):
        above = np.sum(v[:, None, :] > v[:, :, None], axis=2)  # draws strictly better than draw j
        tied = np.sum(v[:, None, :] == v[:, :, None], axis=2)  # draws tied with draw j (itself included)
        slots = np.minimum(np.maximum(k - above, 0), tied)
        return slots / tied / k

    return brute_force_law(p, n, select, r)


def pessimism_law_by_enumeration(p, r, n: int, beta: float, r_max: float) -> np.ndarray:
    """Exact law of InferenceTimePessimism with budget n: enumerate the multinomial counts of the first n.

    Given λ̂, the rejection step returns y with probability (1 − (1−a)ⁿ) p w/(M a) + (1−a)ⁿ p,
    a = E_p[w]/M (acceptance probability), w = (r − λ̂)_+/β, M = (R_max − λ̂)/β.
    """
    p, r = np.asarray(p, np.float64), np.asarray(r, np.float64)
    k = len(p)
    counts = np.array(
        [np.diff(np.concatenate([[-1], c, [n + k - 1]])) - 1 for c in itertools.combinations(range(n + k - 1), k - 1)]
    )
    pr = stats.multinomial.pmf(counts, n, p)
    q = counts / n
    lo = np.full(len(q), r.min() - beta - 1.0)
    hi = np.full(len(q), r.max())
    for _ in range(200):  # vectorised bisection for λ̂ of each empirical distribution
        mid = 0.5 * (lo + hi)
        big = np.sum(q * np.maximum(r - mid[:, None], 0), axis=1) > beta
        lo, hi = np.where(big, mid, lo), np.where(big, hi, mid)
    lam = 0.5 * (lo + hi)[:, None]
    w = np.maximum(r - lam, 0) / beta
    bound = (r_max - lam) / beta
    a = np.sum(p * w, axis=1, keepdims=True) / bound
    law = (1 - (1 - a) ** n) * p * w / (bound * a) + (1 - a) ** n * p
    return pr @ law


# ---------------------------------------------------------------------------------------------------
# chi-square goodness of fit


def lexicographic_index(sequences, vocab_size: int) -> np.ndarray:
    """Sequence ``int[N, L]`` to its number in the lexicographic order of ``enumerate_sequences``."""
    s = np.asarray(sequences, np.int64)
    return s @ (vocab_size ** np.arange(s.shape[1] - 1, -1, -1, dtype=np.int64))


def chi2_pvalue(outcomes, probs) -> float:
    """Pearson chi-square p-value of observed outcome indices against the law ``probs``.

    One pooling rule: an outcome of probability 0 must never be observed (asserted) and is dropped; the law
    is renormalised (float32 laws sum to 1 only up to rounding); cells with expected count < 5 are pooled
    into one cell, and that cell, if its expected count is still < 5, into the smallest remaining cell.
    Returns 1.0 when fewer than two cells remain (nothing to test).
    """
    outcomes = np.asarray(outcomes, np.int64).ravel()
    probs = np.asarray(probs, np.float64).ravel()
    assert outcomes.size and outcomes.min() >= 0 and outcomes.max() < probs.size, "outcome index out of range"
    counts = np.bincount(outcomes, minlength=probs.size).astype(np.float64)
    zero = probs <= 0
    assert counts[zero].sum() == 0, "an outcome of probability 0 was observed"
    counts, expected = counts[~zero], outcomes.size * probs[~zero] / probs[~zero].sum()
    small = expected < 5
    if small.any():
        pooled_obs, pooled_exp = counts[small].sum(), expected[small].sum()
        counts, expected = counts[~small], expected[~small]
        if pooled_exp < 5 and expected.size:
            j = np.argmin(expected)
            counts[j] += pooled_obs
            expected[j] += pooled_exp
        else:
            counts, expected = np.append(counts, pooled_obs), np.append(expected, pooled_exp)
    if counts.size < 2:
        return 1.0
    return float(stats.chisquare(counts, expected).pvalue)


# ---------------------------------------------------------------------------------------------------
# The exact layer as it was before the fast paths (JAX; kept verbatim in substance as the reference the
# fast paths must match to 1e-12 in float64): one XLA argsort, level arrays padded to K, every n evaluated
# on all K levels, the pmf as exp(log p + log q − log m) per outcome.


def reference_levels(p, r):
    """``(level_of, reward, mass, log_mass, log_cdf, log_ratio, tail, log_probs)`` of one (p, r) pair, float64."""
    import jax.numpy as jnp

    def safe_log(x):
        return jnp.where(x > 0, jnp.log(jnp.where(x > 0, x, 1)), -jnp.inf)

    p = jnp.asarray(p, jnp.float64)
    r = jnp.asarray(r)
    k = p.shape[-1]
    p = jnp.maximum(p, 0)
    p = p / jnp.sum(p)
    order = jnp.argsort(r, stable=True)
    rs, ps = r[order], p[order]
    new = jnp.concatenate([jnp.ones((1,), bool), rs[1:] != rs[:-1]])
    lid = jnp.cumsum(new.astype(jnp.int32)) - 1
    mass = jnp.zeros(k).at[lid].add(ps)
    reward = jnp.full((k,), rs[-1], jnp.float64).at[lid].set(rs.astype(jnp.float64))
    head = jnp.cumsum(mass)
    head_lower = jnp.concatenate([jnp.zeros(1), head[:-1]])
    tail_incl = jnp.flip(jnp.cumsum(jnp.flip(mass)))
    tail = jnp.concatenate([tail_incl[1:], jnp.zeros(1)])
    use_head = head < 0.5
    cdf = jnp.where(use_head, head, 1 - tail)
    log_cdf = jnp.where(use_head, safe_log(head), jnp.log1p(-tail))
    ratio = jnp.where(cdf > 0, jnp.minimum(mass / jnp.where(cdf > 0, cdf, 1), 1), 0)
    log_ratio = jnp.where((head_lower <= 0) & (mass > 0), -jnp.inf, jnp.log1p(-ratio))
    level_of = jnp.zeros((k,), jnp.int32).at[order].set(lid)
    return level_of, reward, mass, safe_log(mass), log_cdf, log_ratio, tail, safe_log(p)


def reference_bon(p, r, n):
    """``(log_pmf[N, K], kl[N], expected_reward[N], win_rate[N])`` for an array of n, the pre-fast-path way."""
    import jax.numpy as jnp

    level_of, reward, mass, log_mass, log_cdf, log_ratio, tail, log_p = (
        x[None, :] for x in reference_levels(p, r))
    level_of = level_of[0]
    nn = jnp.asarray(n, jnp.float64).reshape(-1, 1)
    body = -jnp.expm1(nn * log_ratio)
    log_q = nn * log_cdf + jnp.where(body > 0, jnp.log(jnp.where(body > 0, body, 1)), -jnp.inf)
    pos = log_q > -jnp.inf
    q = jnp.exp(log_q)
    log_ratio_l = jnp.where(pos, log_q - jnp.where(log_mass > -jnp.inf, log_mass, 0), -jnp.inf)
    log_pmf = jnp.where(log_p > -jnp.inf, log_p + log_ratio_l[:, level_of], -jnp.inf)
    kl = jnp.maximum(jnp.sum(jnp.where(pos, q * (log_q - jnp.where(pos, log_mass, 0)), 0), axis=-1), 0)
    return log_pmf, kl, jnp.sum(q * reward, axis=-1), 1 - jnp.sum(q * (tail + 0.5 * mass), axis=-1)
