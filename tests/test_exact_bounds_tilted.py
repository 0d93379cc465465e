"""Beirami's estimator and bounds, divergences, and the reward / win-rate tilts (docs/theory.md §2–§3)."""

import numpy as np
import pytest

from bontheory import (
    beirami_kl_estimator,
    beirami_kl_expectation,
    bon_kl,
    bon_kl_bound,
    bon_kl_gap_bound,
    bon_pmf,
    bon_win_rate,
    bon_win_rate_bound,
    bon_win_rate_gap_bound,
    chi2_divergence,
    kl_divergence,
    mid_cdf,
    quantile_tilted_pmf,
    reward_kl_frontier,
    tilted_pmf,
    total_variation,
    win_rate,
    win_rate_kl_frontier,
)

NS = np.array([1, 2, 5, 30, 1000, 10**6])


def test_estimator_endpoints_and_range():
    eps = np.array([0.0, 1e-30, 1e-12, 1e-4, 0.1, 0.5, 0.9, 1.0])
    d = np.asarray(beirami_kl_estimator(eps[:, None], NS[None, :]))
    folk = np.asarray(bon_kl_bound(NS))
    assert np.all(np.isfinite(d))
    np.testing.assert_allclose(d[0], folk, atol=1e-12)
    np.testing.assert_allclose(d[-1], 0, atol=1e-15)
    assert np.all(d >= -1e-12) and np.all(d <= folk + 1e-12)
    # tiny ε: the correction relative to the folk formula is O(nε log) — ε = 1e-30 equals the folk value
    np.testing.assert_allclose(d[1], folk, rtol=1e-12)


def test_estimator_naive_formula_where_it_is_accurate():
    eps, n = 0.3, 7
    naive = (1 - eps) ** n * (np.log(n) + (n - 1) * np.log(1 - eps) - (n - 1) / n) + (1 - (1 - eps) ** n) * np.log(
        (1 - (1 - eps) ** n) / eps
    )
    assert abs(float(beirami_kl_estimator(eps, n)) - naive) < 1e-12


@pytest.mark.parametrize("eps", [0.01, 0.2])
def test_estimator_is_exact_for_one_atom_plus_fine_rest(eps):
    """D̂(ε) is the exact KL when the top outcome has mass ε and the rest is atomless (approximated by
    L = 20000 equal outcomes; the remaining error is O(n²/L))."""
    size = 20_000
    p = np.append(np.full(size, (1 - eps) / size), eps)
    r = np.arange(size + 1, dtype=float)
    ns = np.array([2, 8, 32])
    err = np.abs(np.asarray(bon_kl(p, r, ns)) - np.asarray(beirami_kl_estimator(eps, ns)))
    assert np.all(err <= 2 * ns**2 / size), err


def test_estimate_is_average_over_bon():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    r = np.array([0.0, 1.0, 1.0, 2.0])
    for n in [1, 3, 10]:
        pi = np.asarray(bon_pmf(p, r, n))
        assert abs(float(beirami_kl_expectation(p, r, n)) - pi @ np.asarray(beirami_kl_estimator(p, n))) < 1e-12
    assert abs(float(beirami_kl_expectation(p, r, 1))) < 1e-12  # D̂ at n = 1 is 0 for every ε


def test_kl_converges_to_bound_on_fine_atomless_spaces():
    """KL(π_n‖p) → log n − (n−1)/n as the space becomes fine, within the collision gap bound."""
    ns = np.array([2, 8, 64])
    k = 100_000
    sizes = np.array([10, 100, 1000, k])
    # uniform on the first `size` outcomes, zero mass on the rest (one shape, one compile)
    p = np.where(np.arange(k)[None, :] < sizes[:, None], 1.0 / sizes[:, None], 0.0)[:, None, :]
    r = np.arange(k, dtype=float)[::-1].copy()  # zero-mass outcomes get the best rewards
    gap = np.asarray(bon_kl_bound(ns))[None, :] - np.asarray(bon_kl(p, r, ns[None, :]))
    assert np.all(gap > 0) and np.all(gap <= np.asarray(bon_kl_gap_bound(p, ns[None, :])))
    assert np.all(np.diff(gap, axis=0) < 0)
    assert np.all(gap[-1] < 1e-3)


def test_gap_unbounded_with_tiny_top_mass():
    """With top mass ε the KL saturates near log(1/ε) while the folk formula keeps growing (docs/theory.md §2.3)."""
    eps = 1e-4
    size = 50
    p = np.append(np.full(size, (1 - eps) / size), eps)
    r = np.arange(size + 1, dtype=float)
    ns = np.array([10**5, 10**6, 10**7])
    kl = np.asarray(bon_kl(p, r, ns))
    assert np.all(kl < np.log(1 / eps) + 1e-9)
    gap = np.asarray(bon_kl_bound(ns)) - kl
    assert np.all(np.diff(gap) > 2.0)  # grows like log n


def test_divergences_closed_forms():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.25, 0.25, 0.5])
    assert abs(float(kl_divergence(p, q)) - np.log(2)) < 1e-14
    assert np.isinf(float(kl_divergence(q, p)))
    assert abs(float(chi2_divergence(p, q)) - (0.0625 * 2 / 0.25 + 0.25 / 0.5)) < 1e-14
    assert np.isinf(float(chi2_divergence(q, p)))
    assert abs(float(total_variation(p, q)) - 0.5) < 1e-14
    assert float(kl_divergence(p, p)) == 0.0
    # batch broadcasting
    assert kl_divergence(np.stack([p, q]), q).shape == (2,)


def test_win_rate_general_against_enumeration():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5))
    pi = rng.dirichlet(np.ones(5))
    r = np.array([1.0, 0.0, 1.0, 2.0, 0.0])
    w = sum(
        pi[i] * p[j] * (1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0) for i in range(5) for j in range(5)
    )
    assert abs(float(win_rate(pi, p, r)) - w) < 1e-14
    assert abs(float(win_rate(p, p, r)) - 0.5) < 1e-14
    np.testing.assert_allclose(mid_cdf(p, r) @ pi, w, atol=1e-14)


def test_tilted_pmf_closed_form_and_limits():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    r = np.array([0.0, 1.0, 1.0, 2.0])
    beta = 0.7
    ref = p * np.exp(r / beta)
    np.testing.assert_allclose(tilted_pmf(p, r, beta), ref / ref.sum(), atol=1e-14)
    np.testing.assert_allclose(tilted_pmf(p, r, np.inf), p, atol=1e-15)
    np.testing.assert_allclose(tilted_pmf(p, r, 1e-3), [0, 0, 0, 1], atol=1e-12)
    kl, er = reward_kl_frontier(p, r, np.array([10.0, 1.0, 0.1]))
    assert np.all(np.diff(np.asarray(kl)) > 0) and np.all(np.diff(np.asarray(er)) > 0)
    np.testing.assert_allclose(kl, [kl_divergence(tilted_pmf(p, r, b), p) for b in [10.0, 1.0, 0.1]], atol=1e-13)


def test_quantile_tilt_beats_bon_in_win_rate_objective():
    """π_c ∝ p e^{c F̄} maximises W − KL/c (ties ½), so BoN never does better at any c."""
    rng = np.random.default_rng(1)
    for _ in range(3):
        p = rng.dirichlet(np.ones(8))
        r = rng.integers(0, 3, size=8).astype(float)
        cs = np.array([0.5, 2.0, 10.0, 50.0])
        kl_c, w_c = (np.asarray(a) for a in win_rate_kl_frontier(p, r, cs))
        ns = np.array([1, 2, 4, 16, 100])
        kl_b, w_b = np.asarray(bon_kl(p, r, ns)), np.asarray(bon_win_rate(p, r, ns))
        assert np.all((w_c - kl_c / cs)[:, None] >= w_b[None, :] - kl_b[None, :] / cs[:, None] - 1e-12)
        np.testing.assert_allclose(w_c, win_rate(quantile_tilted_pmf(p, r, cs), p, r), atol=1e-13)
    # invariance to strictly increasing transforms of r
    np.testing.assert_allclose(quantile_tilted_pmf(p, r, 3.0), quantile_tilted_pmf(p, np.exp(r), 3.0), atol=1e-14)


def test_optimal_win_rate_tilt_at_bon_kl_continuous_case():
    """docs/theory.md §3.2: continuous case, n = 2: BoN W = 2/3 at KL = log 2 − 1/2; the optimal tilt at the same KL
    reaches 0.67591 (a fine uniform space stands in for the continuum)."""
    size = 20_000
    p = np.full(size, 1.0 / size)
    r = np.arange(size, dtype=float)
    target = float(bon_kl(p, r, 2))
    assert abs(target - (np.log(2) - 0.5)) < 1e-4
    assert abs(float(bon_win_rate(p, r, 2)) - 2 / 3) < 1e-4
    # KL is increasing in c: bracket on a grid, then refine on a finer grid inside the bracket
    lo, hi = 0.1, 20.0
    for _ in range(5):
        cs = np.linspace(lo, hi, 65)
        kl, win = (np.asarray(a) for a in win_rate_kl_frontier(p, r, cs))
        i = int(np.searchsorted(kl, target))
        lo, hi = cs[i - 1], cs[i]
    w = win[i - 1] + (win[i] - win[i - 1]) * (target - kl[i - 1]) / (kl[i] - kl[i - 1])
    assert abs(w - 0.67591) < 5e-5


def test_win_rate_gap_bound_needs_distinct_rewards():
    """With ties the win-rate gap bound can fail (docs/theory.md §2.5): ten equally likely outcomes, all tied, have
    W_n = ½ for every n, so n/(n+1) − W_2 = 1/6 > (n−1)/2·Σp² = 1/20. Without ties it holds."""
    p = np.full(10, 0.1)
    gap_tied = float(bon_win_rate_bound(2)) - float(bon_win_rate(p, np.zeros(10), 2))
    assert abs(gap_tied - 1 / 6) < 1e-12
    assert gap_tied > float(bon_win_rate_gap_bound(p, 2))
    gap_distinct = float(bon_win_rate_bound(2)) - float(bon_win_rate(p, np.arange(10.0), 2))
    assert gap_distinct <= float(bon_win_rate_gap_bound(p, 2))
