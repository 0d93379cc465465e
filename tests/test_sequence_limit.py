"""The per-token gap of BoN to the tilted optimum on long sequences (docs/theory.md §3.3), computed on the lifted
reward law: against enumeration on small spaces, against the exact level functions at moderate n, and at n far
beyond float64; and the power-law rate fit."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

import bontheory as bt
from bontheory.lifted.distribution import reward_distribution
from bontheory.studies.sequence_limit import _bon_at_log_n

Q = np.array([0.4, 0.3, 0.2, 0.1])
S = np.array([0, 1, 2, 3])


@pytest.mark.parametrize("length", [1, 3])
def test_gap_matches_enumeration(length):
    """KL(π_n‖p)/L and E_{π_n}[R]/L equal the exact BoN functions on the enumerated V^L sequences."""
    seqs = np.array(list(itertools.product(range(4), repeat=length)))
    p = np.prod(Q[seqs], axis=1)
    r = S[seqs].sum(axis=1).astype(float)
    ns = np.array([1, 2, 5, 40])
    g = bt.bon_tilted_gap_per_token(Q, S, length, np.log(ns))
    np.testing.assert_allclose(g.kl_per_token * length, bt.bon_kl(p, r, ns), atol=1e-12)
    np.testing.assert_allclose(g.bon_reward_per_token * length, bt.bon_expected_reward(p, r, ns), atol=1e-12)
    np.testing.assert_allclose(np.exp(g.log_n), ns)
    # the tilt at BoN's KL earns at least BoN's reward (§3.1); at n = 1 both are p
    assert np.all(g.gap_per_token > -1e-9)
    assert abs(g.gap_per_token[0]) < 1e-7


def test_log_n_evaluation_matches_level_functions():
    """At n that float64 holds, the log-n evaluation equals bon_kl/bon_expected_reward on (exp(log m), values)."""
    dist = reward_distribution(
        bt.tabular_policy_from_logits(jnp.asarray(np.broadcast_to(np.log(Q), (40, 4))), order=0),
        bt.TokenScoreReward(scores=jnp.asarray(np.broadcast_to(S, (40, 4)), float)),
    )
    values, log_m = np.asarray(dist.values), np.asarray(dist.log_probs)
    m = np.exp(log_m)
    ns = np.array([1.0, 2.0, 7.0, 1e3, 1e9, 1e15])
    kl, rew = _bon_at_log_n(values, log_m, np.log(ns))
    np.testing.assert_allclose(kl, bt.bon_kl(m, values, ns), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rew, bt.bon_expected_reward(m, values, ns), rtol=1e-12)


def test_gap_beyond_float64_n():
    """log n = c·L with n up to e^{819} (not a float64): finite, KL/L just below c, BoN below the tilt, and the
    per-token gap shrinking with L."""
    g = bt.bon_tilted_gap_per_token(Q, S, 1024, np.array([0.1, 0.8]) * 1024)
    assert np.all(np.isfinite(g.kl_per_token)) and np.all(np.isfinite(g.gap_per_token))
    # KL(π_n‖p) ≤ log n − (n−1)/n (§2), and close to it on this nearly tie-free law
    assert np.all(g.kl_per_token <= np.array([0.1, 0.8]) + 1e-12)
    assert np.all(g.kl_per_token > np.array([0.1, 0.8]) - 2 / 1024)
    assert np.all(g.gap_per_token > 0)
    gaps = [float(bt.bon_tilted_gap_per_token(Q, S, L, np.array([0.4 * L])).gap_per_token[0]) for L in (32, 128, 512)]
    assert gaps[0] > gaps[1] > gaps[2] > 0


def test_gap_rejects_bad_input():
    with pytest.raises(ValueError, match="token_scores"):
        bt.bon_tilted_gap_per_token(Q, np.array([0, 0.5, 1, 2]), 4, np.array([1.0]))
    with pytest.raises(ValueError, match="length"):
        bt.bon_tilted_gap_per_token(Q, S, 0, np.array([1.0]))
    with pytest.raises(ValueError, match="log_n"):
        bt.bon_tilted_gap_per_token(Q, S, 4, np.array([-1.0]))


def test_power_law_rate_recovers_a_slope():
    x = np.array([16.0, 64.0, 256.0, 1024.0])
    fit = bt.power_law_rate(x, 3.0 * x**-0.8)
    np.testing.assert_allclose([fit.slope, fit.prefactor, fit.r2], [-0.8, 3.0, 1.0], rtol=1e-10)
    assert fit.num_points == 4
    # points with y ≤ 0 (e.g. n = 1 cells, where the gap is 0) are left out; NaN is refused at the boundary
    fit = bt.power_law_rate(np.append(x, [2.0, 4.0]), np.append(2.0 / x, [0.0, -1.0]))
    assert fit.num_points == 4 and abs(fit.slope + 1) < 1e-12
    with pytest.raises(ValueError, match="y"):
        bt.power_law_rate(x, np.append(2.0 / x[:-1], np.nan))
    with pytest.raises(ValueError, match="at least 2"):
        bt.power_law_rate(x, np.array([1.0, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="positive"):
        bt.power_law_rate(-x, x)


def test_bon_level_law_keeps_levels_below_float64():
    """Levels of mass far below 1e-308 next to the top keep log q = log(n·m) + (n−1)·log F ≈ log(n·m); the law
    sums to 1 and equals the exact level functions where masses are representable."""
    length = 512
    dist = reward_distribution(
        bt.tabular_policy_from_logits(jnp.asarray(np.broadcast_to(np.log(Q), (length, 4))), order=0),
        bt.TokenScoreReward(scores=jnp.asarray(np.broadcast_to(S, (length, 4)), float)),
    )
    log_m = np.asarray(dist.log_probs)
    log_q = bt.bon_level_log_probs_at_log_n(log_m, np.log(4.0))
    assert np.all(np.isfinite(log_q))
    np.testing.assert_allclose(np.logaddexp.reduce(log_q), 0.0, atol=1e-12)
    top = np.flatnonzero(log_m < -750)
    top = top[top > len(log_m) // 2]
    assert len(top) > 5
    np.testing.assert_allclose(log_q[top] - log_m[top], np.log(4.0), atol=1e-9)
    ok = log_m > -700
    np.testing.assert_allclose(np.exp(log_q[ok]), bt.bon_pmf(np.exp(log_m[ok]), np.asarray(dist.values)[ok], 4),
                               rtol=1e-8, atol=1e-300)
