"""Proxy-vs-gold metrics, Gao fits and the unbiased BoN estimate."""

import itertools

import jax
import numpy as np
import pytest

import bontheory as bt

P = np.array([0.1, 0.2, 0.3, 0.4])
PROXY = np.array([0.0, 1.0, 1.0, 2.0])
GOLD = np.array([0.0, 2.0, 1.0, -1.0])


def test_pairwise_error_matches_brute_force():
    phi = lambda a, b: (a > b) + 0.5 * (a == b)
    brute = sum(P[i] * P[j] * abs(phi(PROXY[i], PROXY[j]) - phi(GOLD[i], GOLD[j]))
                for i, j in itertools.product(range(4), repeat=2))
    np.testing.assert_allclose(bt.pairwise_error(P, PROXY, GOLD, block=3), brute, atol=1e-14)
    assert float(bt.pairwise_error(P, PROXY, PROXY)) == 0.0
    # a strictly increasing transform of the gold has no pairwise error
    np.testing.assert_allclose(bt.pairwise_error(P, np.exp(GOLD), GOLD), 0.0, atol=1e-15)


def test_scalar_metrics():
    np.testing.assert_allclose(bt.reward_model_error(P, PROXY, GOLD), P @ (PROXY - GOLD) ** 2)
    pi = np.asarray(bt.bon_pmf(P, PROXY, 3))
    best = np.array([0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(bt.regret(pi, best, GOLD), 2.0 - pi @ GOLD)
    np.testing.assert_allclose(bt.chi2_coverage(best, P), 1 / 0.2)
    np.testing.assert_allclose(bt.max_density_ratio(best, P), 5.0)
    np.testing.assert_allclose(bt.em_divergence(best, P, np.array([1.0, 2.0, 5.0])), [0.8, 0.6, 0.0])
    np.testing.assert_allclose(bt.em_divergence(pi, P, 1.0), bt.total_variation(pi, P))
    m = bt.proxy_gold_metrics(pi, P, PROXY, GOLD)
    np.testing.assert_allclose(m.kl, 0.341530, atol=1e-6)  # docs/theory.md §1.7 worked example
    np.testing.assert_allclose(m.proxy_win_rate, 0.7025, atol=1e-12)
    np.testing.assert_allclose(m.gold_reward, pi @ GOLD)
    assert float(bt.max_density_ratio(np.array([0.5, 0.5]), np.array([1.0, 0.0]))) == np.inf


def test_gao_fits_recover_coefficients():
    d = np.linspace(0.0, 3.0, 30)
    fit = bt.fit_gao_bon(d, d * (1.7 - 0.4 * d))
    np.testing.assert_allclose([fit.alpha, fit.beta, fit.r2], [1.7, 0.4, 1.0], atol=1e-10)
    dd = d[1:]
    fit = bt.fit_gao_rl(dd, dd * (1.2 - 0.3 * np.log(dd)))
    np.testing.assert_allclose([fit.alpha, fit.beta, fit.r2], [1.2, 0.3, 1.0], atol=1e-10)
    with pytest.raises(ValueError):
        bt.fit_gao_bon(d[:2], d[:2])


def test_unbiased_estimate_is_exact_average_over_subsets():
    rng = np.random.default_rng(0)
    proxy = rng.normal(size=7)
    gold = rng.normal(size=7)
    ns = np.array([1, 2, 3, 7])
    est = np.asarray(bt.bon_unbiased_estimate(jax.random.key(0), proxy, gold, ns))
    for n, e in zip(ns, est):
        subsets = list(itertools.combinations(range(7), n))
        brute = np.mean([gold[list(s)][np.argmax(proxy[list(s)])] for s in subsets])
        np.testing.assert_allclose(e, brute, atol=1e-12)
