"""Exact alternatives to BoN: limits, brute-force enumeration, objectives, and the rare-hack construction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from references import (
    P4,
    R4,
    brute_force_bon,
    brute_force_quantile_truncation,
    brute_force_soft_bon,
    pessimism_law_by_enumeration,
)

import bontheory as bt

# ---------------------------------------------------------------------------------------------------
# soft BoN


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("lam", [0.05, 0.5, 3.0])
def test_soft_bon_matches_enumeration(n, lam):
    got = np.asarray(bt.soft_bon_pmf(P4, R4, n, lam))
    np.testing.assert_allclose(got, brute_force_soft_bon(P4, R4, n, lam), atol=1e-13)


def test_soft_bon_limits():
    ns = np.array([1, 4, 64, 1000])
    # λ → 0: BoN (reward gaps 1, λ = 0.01: weights e^{-100}); ties split like BoN's.
    np.testing.assert_allclose(bt.soft_bon_pmf(P4, R4, ns, 0.01),
                               bt.bon_pmf(P4, R4, ns), atol=1e-12)
    # λ → ∞: the reference
    np.testing.assert_allclose(bt.soft_bon_pmf(P4, R4, 50, 1e7), P4, atol=1e-5)
    # n → ∞: the tilted policy, with KL = O(1/n)
    for lam in [0.3, 1.0]:
        tilt = bt.tilted_pmf(P4, R4, lam)
        kls = [float(bt.kl_divergence(bt.soft_bon_pmf(P4, R4, n, lam), tilt)) for n in (100, 1000, 10000)]
        assert kls[0] > kls[1] > kls[2]
        assert kls[2] < 1e-4 and kls[1] / kls[2] > 5  # roughly 1/n (ratio 10)


def test_soft_bon_normalised_large_n_and_many_outcomes():
    key = jax.random.key(1)
    k1, k2 = jax.random.split(key)
    p = jax.random.dirichlet(k1, jnp.full((200,), 0.3))
    r = jax.random.normal(k2, (200,))
    pmf = bt.soft_bon_pmf(p, r, jnp.array([1, 10, 10**4, 10**6]), 0.1)
    np.testing.assert_allclose(pmf.sum(-1), 1.0, atol=1e-8)
    assert bool(jnp.all(pmf >= 0))


def test_soft_bon_wide_reward_range_stays_accurate():
    # (r_max − r_min)/λ = 2000: the automatic node count keeps the quadrature spacing ≤ 0.3
    p = np.full(50, 1 / 50)
    r = np.linspace(0.0, 2.0, 50)
    pmf = bt.soft_bon_pmf(p, r, np.array([1, 7, 1000]), 1e-3)
    np.testing.assert_allclose(pmf.sum(-1), 1.0, atol=1e-10)
    np.testing.assert_allclose(pmf[0], p, atol=1e-12)  # n = 1 is the reference
    np.testing.assert_allclose(pmf[1], bt.bon_pmf(p, r, 7), atol=1e-10)  # gaps 0.04 ≫ λ: BoN


def test_soft_bon_jit_vmap_and_float32():
    f = jax.jit(lambda p, r, n, lam: bt.soft_bon_pmf(p, r, n, lam))
    lams = jnp.array([0.1, 1.0])
    batched = jax.vmap(f, in_axes=(None, None, None, 0))(jnp.asarray(P4), jnp.asarray(R4), 3, lams)
    for i, lam in enumerate([0.1, 1.0]):
        np.testing.assert_allclose(batched[i], brute_force_soft_bon(P4, R4, 3, lam), atol=1e-12)
    p32 = bt.soft_bon_pmf(P4.astype(np.float32), R4.astype(np.float32), 3, np.float32(0.5))
    assert p32.dtype == jnp.float32
    np.testing.assert_allclose(p32, brute_force_soft_bon(P4, R4, 3, 0.5), atol=1e-5)


def test_soft_bon_rejects_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        bt.soft_bon_pmf(P4, R4, 3, 0.0)
    with pytest.raises(ValueError, match="n"):
        bt.soft_bon_pmf(P4, R4, 0, 1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        bt.soft_bon_pmf(P4 * 2, R4, 3, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        bt.soft_bon_pmf(P4, np.array([0.0, np.nan, 1, 2]), 3, 1.0)


# ---------------------------------------------------------------------------------------------------
# regularised BoN


@pytest.mark.parametrize("beta", [0.0, 0.3, 2.0])
def test_regularized_bon_matches_enumeration(beta):
    score = R4 + beta * np.log(P4)
    for n in (1, 2, 4):
        np.testing.assert_allclose(bt.regularized_bon_pmf(P4, R4, n, beta), brute_force_bon(P4, score, n), atol=1e-13)
    np.testing.assert_allclose(bt.regularized_bon_pmf(P4, R4, 5, 0.0), bt.bon_pmf(P4, R4, 5), atol=1e-15)


def test_regularized_bon_zero_probability_outcomes():
    p = np.array([0.5, 0.0, 0.5])
    r = np.array([0.0, 10.0, 1.0])
    pmf = bt.regularized_bon_pmf(p, r, 3, 0.5)
    assert float(pmf[1]) == 0.0
    np.testing.assert_allclose(pmf.sum(), 1.0, atol=1e-14)


# ---------------------------------------------------------------------------------------------------
# quantile truncation


def test_quantile_truncated_limits_and_known_values():
    np.testing.assert_allclose(bt.quantile_truncated_pmf(P4, R4, 1.0), P4, atol=1e-15)
    # M = 2: top level (0.4) gets 0.8; the tied middle level (0.5) gets the remaining 0.2, split ∝ p.
    np.testing.assert_allclose(bt.quantile_truncated_pmf(P4, R4, 2.0), [0, 0.08, 0.12, 0.8], atol=1e-15)
    # M ≥ 1/p_top: the top level alone
    np.testing.assert_allclose(bt.quantile_truncated_pmf(P4, R4, 1e6), [0, 0, 0, 1], atol=1e-15)


def test_quantile_truncated_continuous_kl_and_win_rate():
    k = 4000
    p = np.full(k, 1.0 / k)
    r = np.arange(k, dtype=float)
    for m in (2.0, 10.0):
        pi = bt.quantile_truncated_pmf(p, r, m)
        np.testing.assert_allclose(bt.kl_divergence(pi, p), np.log(m), atol=1e-12)
        np.testing.assert_allclose(bt.win_rate(pi, p, r), 1 - 1 / (2 * m), atol=1e-3)


@pytest.mark.parametrize("n,m", [(1, 1.0), (3, 1.0), (3, 2.0), (4, 2.0), (4, 1.5), (4, 4.0), (5, 2.5)])
def test_quantile_truncation_sampler_pmf_matches_enumeration(n, m):
    got = bt.quantile_truncation_sampler_pmf(P4, R4, n, m)
    np.testing.assert_allclose(got, brute_force_quantile_truncation(P4, R4, n, m), atol=1e-12)


def test_quantile_truncation_sampler_pmf_limits():
    np.testing.assert_allclose(bt.quantile_truncation_sampler_pmf(P4, R4, 7, 7.0), bt.bon_pmf(P4, R4, 7), atol=1e-12)
    np.testing.assert_allclose(bt.quantile_truncation_sampler_pmf(P4, R4, 7, 1.0), P4, atol=1e-12)
    np.testing.assert_allclose(
        bt.quantile_truncation_sampler_pmf(P4, R4, 20000, 2.0), bt.quantile_truncated_pmf(P4, R4, 2.0), atol=1e-3
    )


def test_quantile_truncated_rejects_m_below_one():
    with pytest.raises(ValueError, match="m must be >= 1"):
        bt.quantile_truncated_pmf(P4, R4, 0.5)


# ---------------------------------------------------------------------------------------------------
# χ²-pessimism


def _threshold_bisection(p, r, beta):
    lo, hi = r.min() - beta - 1.0, r.max()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.sum(p * np.maximum(r - mid, 0)) > beta:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("beta", [1e-3, 0.1, 0.5, 1.0, 10.0])
def test_chi2_threshold_matches_bisection(beta):
    lam = float(bt.chi2_pessimism_threshold(P4, R4, beta))
    np.testing.assert_allclose(lam, _threshold_bisection(P4, R4, beta), atol=1e-10)
    np.testing.assert_allclose(np.sum(P4 * np.maximum(R4 - lam, 0)), beta, rtol=1e-12)


def test_chi2_pessimism_limits():
    np.testing.assert_allclose(bt.chi2_pessimism_pmf(P4, R4, 1e9), P4, atol=1e-8)  # β → ∞: p
    np.testing.assert_allclose(bt.chi2_pessimism_pmf(P4, R4, 1e-9), [0, 0, 0, 1], atol=1e-12)  # β → 0: the best
    p = np.array([0.2, 0.3, 0.5])
    r = np.array([0.0, 1.0, 1.0])
    np.testing.assert_allclose(bt.chi2_pessimism_pmf(p, r, 1e-9), [0, 0.375, 0.625], atol=1e-9)  # ties ∝ p


# ---------------------------------------------------------------------------------------------------
# properties under hypothesis: normalisation, positivity, optimality against feasible perturbations

K = 6


@st.composite
def problems(draw):
    w = np.array(draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 1.0)), min_size=K, max_size=K)))
    w[draw(st.integers(0, K - 1))] += 0.1
    p = w / w.sum()
    ties = draw(st.booleans())
    if ties:
        r = np.array(draw(st.lists(st.integers(-2, 2), min_size=K, max_size=K)), dtype=float)
    else:
        r = np.array(draw(st.lists(st.floats(-3, 3), min_size=K, max_size=K)))
    return p, r


@given(problems(), st.sampled_from([1, 3, 50, 10**5]), st.sampled_from([0.1, 1.0, 5.0]))
def test_pmfs_are_normalised_and_nonnegative(prob, n, par):
    p, r = prob
    for pmf in (
        bt.soft_bon_pmf(p, r, n, par),
        bt.quantile_truncated_pmf(p, r, 1.0 + par),
        bt.quantile_truncation_sampler_pmf(p, r, n, 1.0 + par),
        bt.chi2_pessimism_pmf(p, r, par),
        bt.regularized_bon_pmf(p, r, n, par),
    ):
        pmf = np.asarray(pmf)
        assert np.all(pmf >= 0)
        assert np.all(pmf[p == 0] == 0)
        np.testing.assert_allclose(pmf.sum(), 1.0, atol=1e-8)


NUM_DIRECTIONS = 64

#: Feasible perturbations, drawn by hypothesis: Dirichlet-like weights for NUM_DIRECTIONS pmfs on the support
#: of p (``u^2``, u uniform: concentration about ½), and step sizes t ∈ [0, 1] (cubed: many small steps).
directions = hnp.arrays(np.float64, (NUM_DIRECTIONS, K), elements=st.floats(1e-3, 1.0))
steps = hnp.arrays(np.float64, (NUM_DIRECTIONS, 1), elements=st.floats(0.0, 1.0))


def _feasible(p, weights):
    """Pmfs on the support of p, ``∝ weights² · 1[p > 0]`` row by row."""
    q = np.where(p > 0, weights**2, 0.0)
    return q / q.sum(axis=1, keepdims=True)


@given(problems(), st.sampled_from([0.05, 0.5, 3.0]), directions, steps)
def test_chi2_pmf_maximises_chi2_objective(prob, beta, weights, t):
    p, r = prob

    def objective(pi):
        sup = p > 0
        chi2 = np.sum(pi[..., sup] ** 2 / p[sup], axis=-1) - 1
        return pi @ r - 0.5 * beta * chi2

    best = np.asarray(bt.chi2_pessimism_pmf(p, r, beta))
    ts = t**3  # many small steps
    cands = (1 - ts) * best + ts * _feasible(p, weights)
    assert np.all(objective(cands) <= objective(best) + 1e-10)


@given(problems(), st.sampled_from([1.0, 1.7, 3.0, 10.0]), directions, steps)
def test_quantile_truncated_maximises_em_objective(prob, m, weights, t):
    p, r = prob
    penalty = (r.max() - r.min()) + 1.0  # any coefficient ≥ the reward range makes π_M optimal

    def objective(pi):
        return pi @ r - penalty * np.sum(np.maximum(pi - m * p, 0), axis=-1)

    best = np.asarray(bt.quantile_truncated_pmf(p, r, m))
    assert np.all(best <= m * p + 1e-12)
    ts = t**3
    cands = (1 - ts) * best + ts * _feasible(p, weights)
    assert np.all(objective(cands) <= objective(best) + 1e-10)
    # it also maximises E_π r over the feasible set {π ≤ M p}: compare with feasible mixtures towards p
    feas = (1 - ts) * best + ts * p
    assert np.all(feas @ r <= best @ r + 1e-12)


# ---------------------------------------------------------------------------------------------------
# the rare-hack construction: BoN rises then falls; the scaling-monotonic methods do not fall

HACK_P = np.array([0.5, 0.35, 0.149, 0.001])
HACK_PROXY = np.array([0.0, 0.5, 1.0, 2.0])
HACK_GOLD = np.array([0.0, 0.5, 1.0, -5.0])
NS = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 10000])


def _drop_from_running_max(values):
    v = np.asarray(values)
    return float(np.max(np.maximum.accumulate(v) - v))


def test_rare_hack_bon_rises_then_falls():
    gold = np.asarray(bt.bon_pmf(HACK_P, HACK_PROXY, NS) @ HACK_GOLD)
    peak = int(np.argmax(gold))
    assert 0 < peak < len(NS) - 1
    assert gold[peak] - gold[0] > 0.4 and gold[peak] - gold[-1] > 5.0


@pytest.mark.parametrize("m", [2.0, 4.0, 10.0])
def test_rare_hack_quantile_truncation_does_not_fall(m):
    gold = np.asarray(bt.quantile_truncation_sampler_pmf(HACK_P, HACK_PROXY, NS, m) @ HACK_GOLD)
    limit = float(bt.quantile_truncated_pmf(HACK_P, HACK_PROXY, m) @ HACK_GOLD)
    # Exact finite-N law: monotone up to a small overshoot (≤ 1e-3 here) before settling at π_M's value.
    assert _drop_from_running_max(gold) < 1e-3
    assert gold[-1] > gold[0] + 0.3
    np.testing.assert_allclose(gold[-1], limit, atol=5e-3)  # converges like N^{-1/2} at the boundary


def test_rare_hack_chi2_pessimism_does_not_fall():
    beta = 0.3
    pop = np.asarray(bt.chi2_pessimism_pmf(HACK_P, HACK_PROXY, beta)) @ HACK_GOLD
    gold = [(pessimism_law_by_enumeration(HACK_P, HACK_PROXY, n, beta, 2.0) @ HACK_GOLD) for n in (1, 2, 4, 8, 16, 32)]
    assert _drop_from_running_max(gold) < 1e-3
    assert gold[-1] > gold[0] + 0.2
    assert pop > gold[0] + 0.3  # the population target is far above BoN's large-n value
    bon_large = float(bt.bon_pmf(HACK_P, HACK_PROXY, 10000) @ HACK_GOLD)
    assert pop > bon_large + 5.0
