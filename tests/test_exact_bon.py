"""Exact BoN pmf, KL, expected reward and win rate: closed forms, docs/theory.md tables and brute force."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from references import brute_force_bon

import bontheory
from bontheory import (
    bon_expected_reward,
    bon_kl,
    bon_kl_bound,
    bon_log_pmf,
    bon_pmf,
    bon_win_rate,
    kl_divergence,
    reward_levels,
    win_rate,
)

P_EX = np.array([0.1, 0.2, 0.3, 0.4])
R_EX = np.array([0.0, 1.0, 1.0, 2.0])


def test_worked_example_with_ties():
    pi = bon_pmf(P_EX, R_EX, 3)
    np.testing.assert_allclose(pi, [0.001, 0.086, 0.129, 0.784], atol=1e-6)
    assert abs(float(bon_kl(P_EX, R_EX, 3)) - 0.341530) < 1e-6
    assert abs(float(bon_kl_bound(3)) - 0.431946) < 1e-6
    assert abs(float(bon_win_rate(P_EX, R_EX, 3)) - 0.7025) < 1e-6
    np.testing.assert_allclose(pi, brute_force_bon(P_EX, R_EX, 3), atol=1e-12)


UNIFORM_TABLE = {
    2: [0.13081, 0.66759, 0.69315, 0.69315],
    10: [0.18932, 1.17749, 2.29345, 2.30259],
    100: [0.19309, 1.20417, 3.15760, 4.60479],
}
NS = np.array([2, 8, 64, 1024])


@pytest.mark.parametrize("size", sorted(UNIFORM_TABLE))
def test_uniform_table(size):
    p = np.full(size, 1.0 / size)
    r = np.arange(size, dtype=float)
    kl = bon_kl(p, r, NS)
    # docs/theory.md §2.6's table is printed to 5 decimals; check against it to rounding, and against the closed form
    # Σ_i ((i/L)^n − ((i−1)/L)^n) log(L((i/L)^n − ((i−1)/L)^n)) to 1e-6.
    np.testing.assert_allclose(kl, UNIFORM_TABLE[size], atol=5.1e-6)
    i = np.arange(1, size + 1)[:, None]
    q = (i / size) ** NS - ((i - 1) / size) ** NS
    ref = np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q * size, 1)), 0), axis=0)
    np.testing.assert_allclose(kl, ref, atol=1e-9)


def test_bound_values():
    np.testing.assert_allclose(bon_kl_bound(NS), [0.19315, 1.20444, 3.17451, 5.93245], atol=5e-6)


def test_binary_case():
    p = np.array([0.9, 0.1])
    r = np.array([0.0, 1.0])
    ns = np.array([2, 4, 16, 64])
    kl = bon_kl(p, r, ns)
    np.testing.assert_allclose(kl, [0.03661, 0.21740, 1.41610, 2.29087], atol=5.1e-6)
    q_high = 1 - 0.9**ns
    ref = q_high * np.log(q_high / 0.1) + (1 - q_high) * np.log((1 - q_high) / 0.9)
    np.testing.assert_allclose(kl, ref, atol=1e-9)
    # → ln 10 as n grows
    assert abs(float(bon_kl(p, r, 2000)) - np.log(10)) < 1e-9


def test_n_equals_one_is_reference():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(7))
    r = rng.integers(0, 3, size=7).astype(float)
    np.testing.assert_allclose(bon_pmf(p, r, 1), p, atol=1e-12)
    assert abs(float(bon_kl(p, r, 1))) < 1e-12
    assert abs(float(bon_win_rate(p, r, 1)) - 0.5) < 1e-12
    assert abs(float(bon_expected_reward(p, r, 1)) - p @ r) < 1e-12


@pytest.mark.parametrize("k,n", [(2, 5), (3, 4), (4, 3), (5, 3)])
def test_brute_force_with_ties(k, n):
    rng = np.random.default_rng(100 * k + n)
    for _ in range(3):
        p = rng.dirichlet(np.ones(k))
        r = rng.integers(0, 2, size=k).astype(float)  # heavy ties
        ref = brute_force_bon(p, r, n)
        pi = np.asarray(bon_pmf(p, r, n))
        np.testing.assert_allclose(pi, ref, atol=1e-12)
        np.testing.assert_allclose(np.exp(np.asarray(bon_log_pmf(p, r, n))), ref, atol=1e-12)
        np.testing.assert_allclose(bon_kl(p, r, n), kl_divergence(ref, p), atol=1e-12)
        np.testing.assert_allclose(bon_expected_reward(p, r, n), ref @ r, atol=1e-12)
        np.testing.assert_allclose(bon_win_rate(p, r, n), win_rate(ref, p, r), atol=1e-12)


def test_brute_force_win_rate_definition():
    """W_n by enumerating (n draws, one reference draw): P(win) + ½ P(tie)."""
    p, r, n = P_EX, R_EX, 3
    k = len(p)
    w = 0.0
    for tup in itertools.product(range(k), repeat=n + 1):
        prob = np.prod(p[list(tup)])
        cand, ref = tup[:n], tup[n]
        best = max(r[i] for i in cand)
        w += prob * (1.0 if best > r[ref] else 0.5 if best == r[ref] else 0.0)
    assert abs(float(bon_win_rate(p, r, n)) - w) < 1e-12


def test_continuous_approximation_does_not_normalise():
    """docs/theory.md §1.3: n p F^{n-1} sums to 1.567 (F) and 0.607 (F⁻) at p=(.4,.3,.2,.1), n=5.

    The exact pmf sums to 1.
    """
    p = np.array([0.4, 0.3, 0.2, 0.1])
    r = np.arange(4.0)
    f = np.cumsum(p)
    assert abs(np.sum(5 * p * f**4) - 1.567) < 1e-3
    assert abs(np.sum(5 * p * (f - p) ** 4) - 0.607) < 1e-3
    assert abs(float(jnp.sum(bon_pmf(p, r, 5))) - 1) < 1e-12


def test_unsorted_rewards():
    """The CDF must be built on outcomes sorted by reward, not in index order."""
    p = np.array([0.4, 0.1, 0.3, 0.2])
    r = np.array([3.0, -1.0, 0.5, 2.0])
    np.testing.assert_allclose(bon_pmf(p, r, 4), brute_force_bon(p, r, 4), atol=1e-12)


def test_levels_structure():
    lv = reward_levels(P_EX, R_EX)
    assert int(lv.num_levels) == 3
    np.testing.assert_allclose(lv.mass[:3], [0.1, 0.5, 0.4], atol=1e-15)
    np.testing.assert_allclose(lv.mass[3:], 0)
    np.testing.assert_allclose(np.exp(lv.log_cdf[:3]), [0.1, 0.6, 1.0], atol=1e-15)
    np.testing.assert_allclose(np.exp(lv.log_cdf_lower[:3]), [0.0, 0.1, 0.6], atol=1e-15)
    np.testing.assert_array_equal(lv.level_of, [0, 1, 1, 2])
    np.testing.assert_array_equal(lv.count, [1, 2, 1, 0])


def test_importable_from_package():
    assert bontheory.bon_pmf is bon_pmf
    assert len(bontheory.__all__) == len(set(bontheory.__all__))
    for name in bontheory.__all__:
        value = getattr(bontheory, name)
        assert getattr(value, "__module__", "bontheory").startswith("bontheory"), name


def test_zero_probability_outcomes():
    p = np.array([0.0, 0.5, 0.0, 0.5])
    r = np.array([5.0, 1.0, 2.0, 0.0])  # the best and a middle outcome have no mass
    pi = np.asarray(bon_pmf(p, r, 3))
    np.testing.assert_allclose(pi, [0, 0.875, 0, 0.125], atol=1e-12)
    assert np.isneginf(np.asarray(bon_log_pmf(p, r, 3))[0])
    assert np.isfinite(float(bon_kl(p, r, 3)))


def test_batch_and_array_n_shapes():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(6), size=(3,))
    r = rng.normal(size=(3, 6))
    assert bon_pmf(p, r, 4).shape == (3, 6)
    assert bon_kl(p, r, np.array([1, 2, 3])).shape == (3,)
    assert bon_kl(p[0], r[0], np.arange(1, 9)).shape == (8,)
    assert bon_pmf(p[0], r, 2).shape == (3, 6)  # batch broadcast of rewards
    for b in range(3):
        np.testing.assert_allclose(bon_pmf(p, r, 4)[b], bon_pmf(p[b], r[b], 4), atol=1e-14)
