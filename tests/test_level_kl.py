"""Estimators of KL(π_n‖p) that handle ties (the level's mass, not the sequence's), and one name per idea for
Beirami's estimator (deprecated aliases give the same numbers; probabilities where log-probabilities are
expected are refused with a message saying so)."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bontheory as bt


def _tied_space(seed, k=12, levels=4):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k) * 0.7)
    r = rng.integers(0, levels, k).astype(float)
    return p, r


def _level_law(p, r):
    vals = np.unique(r)
    return vals, np.array([p[r == v].sum() for v in vals])


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.sampled_from([1, 3, 16, 200]))
def test_level_log_ratio_has_mean_exactly_the_kl(seed, n):
    """Unbiasedness, exactly: E_{π_n}[log-ratio from the levels] = KL(π_n‖p) on an enumerable tied space."""
    p, r = _tied_space(seed)
    vals, masses = _level_law(p, r)
    terms = np.asarray(bt.bon_log_ratio_from_levels(r, vals, masses, n))
    pi = np.asarray(bt.bon_pmf(p, r, n))
    assert abs(pi @ terms - float(bt.bon_kl(p, r, n))) < 1e-10
    # the level order does not matter
    perm = np.random.default_rng(seed).permutation(len(vals))
    np.testing.assert_allclose(
        np.asarray(bt.bon_log_ratio_from_levels(r, vals[perm], masses[perm], n)), terms, atol=1e-12
    )


def test_level_kl_estimate_on_bon_draws_agrees_with_exact_and_beats_beirami():
    p, r = _tied_space(3, k=40, levels=5)
    n, t = 64, 4000
    idx = np.asarray(bt.bon_sample_exact(jax.random.key(0), p, r, n, (t,)))
    vals, masses = _level_law(p, r)
    exact, folk = float(bt.bon_kl(p, r, n)), float(bt.bon_kl_bound(n))
    est = bt.level_kl_estimate(r[idx], vals, masses, n)
    assert abs(float(est.mean) - exact) < 4 * float(est.stderr) + 1e-12
    beirami = bt.beirami_kl_estimate(np.log(p[idx]), n)
    assert float(beirami.mean) - exact > 4 * float(beirami.stderr)  # per-sequence mass: biased up with ties
    # from reference rewards (M >> n² · top mass here): close to exact as well
    ref = r[np.random.default_rng(1).choice(len(p), 200_000, p=p / p.sum())]
    est_ref = bt.level_kl_estimate_from_reference(r[idx], ref, n)
    assert abs(float(est_ref.mean) - exact) < 4 * float(est_ref.stderr) + 0.02 * (folk - exact)


def _exact_reference_bias(p_levels, vals, n, m):
    """E over M-sample reference counts (enumerated multinomial) of E_{π_n}[estimated log-ratio] − KL."""
    pi = np.asarray(bt.bon_pmf(p_levels, vals, n))
    kl = float(bt.bon_kl(p_levels, vals, n))
    total = 0.0
    j = len(vals)
    for counts in itertools.product(range(m + 1), repeat=j - 1):
        last = m - sum(counts)
        if last < 0:
            continue
        c = (*counts, last)
        logw = math.lgamma(m + 1) + sum(ci * math.log(pi_) - math.lgamma(ci + 1) for ci, pi_ in zip(c, p_levels))
        ref = np.repeat(vals, c)
        terms = np.asarray(bt.bon_log_ratio_from_reference(vals, ref, n))
        total += math.exp(logw) * (pi @ terms)
    return total - kl


def test_reference_estimator_bias_is_stated_and_shrinks_with_m():
    """The bias of the from-reference estimator, computed exactly over the multinomial of reference counts
    (3 levels): it shrinks as M grows (≈ 1/M), and is small once M ≫ n² · top mass."""
    p_levels, vals, n = np.array([0.5, 0.3, 0.2]), np.array([0.0, 1.0, 2.0]), 4
    b_small = _exact_reference_bias(p_levels, vals, n, 20)
    b_large = _exact_reference_bias(p_levels, vals, n, 80)
    assert abs(b_large) < abs(b_small) / 2
    assert abs(b_large) < 0.05 * float(bt.bon_kl(p_levels, vals, n))


def test_level_estimators_bad_input():
    vals, masses = np.array([0.0, 1.0]), np.array([0.5, 0.5])
    with pytest.raises(ValueError, match="no level"):
        bt.level_kl_estimate(np.array([0.0, 0.5]), vals, masses, 4)
    with pytest.raises(ValueError, match="level_masses"):
        bt.level_kl_estimate(np.array([0.0, 1.0]), vals, np.array([0.5, 0.6]), 4)


def test_beirami_one_name_per_idea_and_deprecated_aliases():
    p, r = _tied_space(1)
    eps = np.array([0.0, 0.01, 0.3, 1.0])
    with pytest.warns(DeprecationWarning, match="beirami_kl_estimator"):
        old = bt.bon_kl_estimator(eps, 8)
    np.testing.assert_array_equal(np.asarray(old), np.asarray(bt.beirami_kl_estimator(eps, 8)))
    with pytest.warns(DeprecationWarning, match="beirami_kl_expectation"):
        old = bt.bon_kl_estimate(p, r, 8)
    assert float(old) == float(bt.beirami_kl_expectation(p, r, 8))
    # the Monte Carlo mean from log-probabilities; probabilities are refused, saying so
    probs = np.array([0.2, 0.5, 0.01])
    est = bt.beirami_kl_estimate(np.log(probs), 8)
    assert abs(float(est.mean) - float(jnp.mean(bt.beirami_kl_estimator(probs, 8)))) < 1e-12
    with pytest.raises(ValueError, match="look like probabilities"):
        bt.beirami_kl_estimate(probs, 8)
    with pytest.raises(ValueError, match="log_probs has entries > 0"):
        bt.beirami_kl_estimate(np.array([-1.0, 3.0]), 8)
