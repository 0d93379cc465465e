"""Hypothesis properties of the exact BoN quantities over random p, r (with and without ties)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from bontheory import (
    bon_expected_reward,
    bon_kl,
    bon_kl_bound,
    bon_kl_gap_bound,
    bon_pmf,
    bon_win_rate,
    bon_win_rate_bound,
    bon_win_rate_gap_bound,
    reward_kl_frontier,
    reward_levels,
    tilted_pmf,
)

K = 6  # fixed shape inside every @given, so JAX compiles once
NS = np.array([1, 2, 3, 5, 8, 20, 100, 1000])


@st.composite
def problems(draw, ties=None):
    """A random (p, r), drawn value by value so that a failure shrinks to a small example.

    ``p ∝ u^(1/α)`` with ``u_i ∈ [1e-6, 1]`` and a concentration ``α ∈ {0.2, 1, 5}`` (small α: peaked, like a
    Dirichlet(α) draw; entries down to 1e-30), sometimes with one zero entry. Rewards with ties (few integer
    levels) or without (a permutation of 0..K-1 plus offsets in [0, ½): all distinct).
    """
    with_ties = draw(st.booleans()) if ties is None else ties
    alpha = draw(st.sampled_from([0.2, 1.0, 5.0]))
    w = np.array(draw(st.lists(st.floats(1e-6, 1.0), min_size=K, max_size=K))) ** (1.0 / alpha)
    if draw(st.booleans()):
        w[draw(st.integers(0, K - 1))] = 0.0
    p = w / w.sum()
    if with_ties:
        levels = draw(st.sampled_from([1, 2, 3]))
        r = np.array(draw(st.lists(st.integers(0, levels - 1), min_size=K, max_size=K)), dtype=float)
    else:
        perm = np.array(draw(st.permutations(range(K))), dtype=float)
        r = perm + np.array(draw(st.lists(st.floats(0.0, 0.5, exclude_max=True), min_size=K, max_size=K)))
    return p, r


@given(problems())
def test_normalised_and_nonnegative(pr):
    p, r = pr
    pi = np.asarray(bon_pmf(p, r, NS))
    assert pi.shape == (len(NS), K)
    assert np.all(pi >= 0)
    np.testing.assert_allclose(pi.sum(axis=1), 1, atol=1e-12)
    np.testing.assert_array_equal(pi[:, p == 0], 0)


@given(problems())
def test_kl_between_zero_and_bound(pr):
    p, r = pr
    kl = np.asarray(bon_kl(p, r, NS))
    bound = np.asarray(bon_kl_bound(NS))
    assert np.all(kl >= 0)
    assert np.all(kl <= bound + 1e-12)
    # strict for a discrete p and n >= 2 (the top level always has positive mass)
    assert np.all(bound[1:] - kl[1:] > 1e-6)


@given(problems())
def test_kl_nondecreasing_in_n(pr):
    p, r = pr
    ns = np.arange(1, 41)
    kl = np.asarray(bon_kl(p, r, ns))
    assert np.all(np.diff(kl) >= -1e-12)
    er = np.asarray(bon_expected_reward(p, r, ns))
    assert np.all(np.diff(er) >= -1e-12)


@given(problems())
def test_win_rate_bound_and_kl_gap_bound(pr):
    p, r = pr
    w = np.asarray(bon_win_rate(p, r, NS))
    assert np.all(w <= np.asarray(bon_win_rate_bound(NS)) + 1e-12)
    assert np.all(w >= 0.5 - 1e-12)
    gap = np.asarray(bon_kl_bound(NS)) - np.asarray(bon_kl(p, r, NS))
    assert np.all(gap <= np.asarray(bon_kl_gap_bound(p, NS)) + 1e-12)


@given(problems(ties=False))
def test_win_rate_gap_bound_without_ties(pr):
    """Beirami et al.'s win-rate gap bound, under its assumption: distinct outcomes have distinct rewards."""
    p, r = pr
    p = np.where(p == 0, 1e-3, p)  # zero-mass outcomes are fine, but keep the draw generic
    p = p / p.sum()
    gap = np.asarray(bon_win_rate_bound(NS)) - np.asarray(bon_win_rate(p, r, NS))
    assert np.all(gap <= np.asarray(bon_win_rate_gap_bound(p, NS)) + 1e-12)


@given(problems(), st.sampled_from(["affine", "cube", "exp"]))
def test_invariant_to_increasing_transforms(pr, kind):
    p, r = pr
    f = {"affine": lambda x: 3 * x - 7, "cube": lambda x: x**3 + x, "exp": np.exp}[kind]
    np.testing.assert_allclose(bon_pmf(p, f(r), NS), bon_pmf(p, r, NS), atol=1e-12)
    np.testing.assert_allclose(bon_kl(p, f(r), NS), bon_kl(p, r, NS), atol=1e-12)
    np.testing.assert_allclose(bon_win_rate(p, f(r), NS), bon_win_rate(p, r, NS), atol=1e-12)


@given(problems(), st.permutations(range(K)))
def test_equivariant_to_permutations(pr, perm):
    p, r = pr
    perm = np.asarray(perm)
    np.testing.assert_allclose(bon_pmf(p[perm], r[perm], NS), np.asarray(bon_pmf(p, r, NS))[:, perm], atol=1e-12)
    np.testing.assert_allclose(bon_kl(p[perm], r[perm], NS), bon_kl(p, r, NS), atol=1e-12)


@given(problems(ties=True))
def test_ties_split_proportional_to_p(pr):
    p, r = pr
    pi = np.asarray(bon_pmf(p, r, NS))
    lv = reward_levels(p, r)
    level_of = np.asarray(lv.level_of)
    for lvl in np.unique(level_of):
        level = level_of == lvl
        members = level & (p > 0)
        if members.sum() >= 2:  # within a level, mass is split proportionally to p
            ratio = pi[:, members] / p[members]
            np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones_like(ratio), rtol=1e-10, atol=1e-300)
        # and every level's total (single-outcome levels included) is F^n − F⁻^n
        f_hi = np.sum(p[r <= r[level][0]])
        f_lo = np.sum(p[r < r[level][0]])
        np.testing.assert_allclose(pi[:, level].sum(axis=1), f_hi**NS - f_lo**NS, atol=1e-12)


@given(problems())
def test_tilted_beats_bon_at_every_beta(pr):
    """π_β maximises E[r] − β KL: no BoN policy can do better at any β."""
    p, r = pr
    betas = np.array([0.01, 0.1, 0.3, 1.0, 3.0, 10.0])
    kl_t, er_t = (np.asarray(a) for a in reward_kl_frontier(p, r, betas))
    kl_b = np.asarray(bon_kl(p, r, NS))
    er_b = np.asarray(bon_expected_reward(p, r, NS))
    obj_t = er_t - betas * kl_t
    obj_b = er_b[None, :] - betas[:, None] * kl_b[None, :]
    assert np.all(obj_t[:, None] >= obj_b - 1e-10)
    np.testing.assert_allclose(np.asarray(tilted_pmf(p, r, betas)).sum(axis=1), 1, atol=1e-12)
