"""Tests for bontheory.rewards: toy rewards and proxy/gold pairs."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import bontheory as bt

V, L = 3, 4
SEQS = jnp.asarray(list(itertools.product(range(V), repeat=L)), jnp.int32)  # all 81 sequences


def _np_seqs():
    return np.asarray(SEQS)


def test_token_count_and_score_rewards():
    s = _np_seqs()
    np.testing.assert_allclose(np.asarray(bt.TokenCountReward(target=2, weight=0.5)(SEQS)), 0.5 * (s == 2).sum(-1))
    scores = jax.random.normal(jax.random.key(0), (L, V))
    expected = np.asarray(scores)[np.arange(L)[None, :], s].sum(-1)
    reward = bt.TokenScoreReward(scores)
    np.testing.assert_allclose(np.asarray(reward(SEQS)), expected, rtol=1e-12)
    assert reward(SEQS.reshape(9, 9, L)).shape == (9, 9)
    # random scores: nearly tie-free (all 81 rewards distinct); count reward: only L + 1 levels
    assert len(np.unique(np.asarray(bt.random_token_score_reward(jax.random.key(1), V, L)(SEQS)))) == V**L
    assert len(np.unique(np.asarray(bt.TokenCountReward(0)(SEQS)))) == L + 1


def test_pattern_palindrome_quantized():
    s = _np_seqs()
    pat = bt.PatternReward(pattern=(1, 2), value=2.0)(SEQS)
    expected = [2.0 * any(tuple(row[i : i + 2]) == (1, 2) for i in range(L - 1)) for row in s]
    np.testing.assert_array_equal(np.asarray(pat), expected)
    pal = np.asarray(bt.PalindromeReward()(SEQS))
    np.testing.assert_allclose(pal, ((s[:, 0] == s[:, 3]).astype(float) + (s[:, 1] == s[:, 2])) / 2)
    assert pal[list(map(tuple, s)).index((1, 2, 2, 1))] == 1.0
    base = bt.random_token_score_reward(jax.random.key(2), V, L)
    q = np.asarray(bt.QuantizedReward(base, step=0.5)(SEQS))
    b = np.asarray(base(SEQS))
    assert np.all((q <= b) & (b - q < 0.5)) and np.allclose(q / 0.5, np.round(q / 0.5))
    assert len(np.unique(q)) < len(np.unique(b))


ALL = bt.all_sequences(4, 8)  # 65536 sequences
GOLD = bt.TokenCountReward(1)


@pytest.mark.parametrize(
    "reward",
    [
        bt.SequenceHashReward(jax.random.key(3)),
        bt.NoisyProxyReward(GOLD, jax.random.key(4), 0.5, "gaussian"),
        bt.NoisyProxyReward(GOLD, jax.random.key(4), 0.5, "cauchy"),
        pytest.param(
            bt.NoisyProxyReward(GOLD, jax.random.key(4), 0.5, "student_t", df=2.5), marks=pytest.mark.slow
        ),
    ],
    ids=["hash", "gaussian", "cauchy", "student_t"],
)
def test_hash_rewards_are_fixed_functions_of_the_sequence(reward):
    """Same sequence, same value: repeated calls and another batch order; no ties beyond float32's grid."""
    perm = np.asarray(jax.random.permutation(jax.random.key(5), ALL.shape[0]))
    first = np.asarray(reward(ALL))
    np.testing.assert_array_equal(np.asarray(reward(ALL)), first)
    np.testing.assert_array_equal(np.asarray(reward(ALL[perm])), first[perm])
    noise = first - np.asarray(GOLD(ALL)) if hasattr(reward, "gold") else first
    # the draws are float32 (the same key in x32 and x64), on a grid of 2**23 values: C(K, 2) / 2**23 = 256
    # tied pairs expected among these K = 65536 (sd ~16); a structural collision (keys, hashing) gives far more
    k = ALL.shape[0]
    assert k - len(np.unique(noise)) < 2 * (k * (k - 1) / 2) / 2**23


def test_proxy_noise_under_jit_and_vmap():
    reward = bt.NoisyProxyReward(GOLD, jax.random.key(4), 0.5, "gaussian")
    first = np.asarray(reward(SEQS))
    jitted = jax.jit(lambda rew, x: rew(x))(reward, SEQS.reshape(9, 9, L))
    np.testing.assert_allclose(np.asarray(jitted).ravel(), first, rtol=1e-6)
    vmapped = jax.vmap(reward)(SEQS[:, None, :])[:, 0]
    np.testing.assert_allclose(np.asarray(vmapped), first, rtol=1e-6)
    other = bt.NoisyProxyReward(GOLD, jax.random.key(6), 0.5)(SEQS)  # another key, other noise
    assert not np.allclose(np.asarray(other), first)


def test_noise_distributions_have_the_right_shape():
    """Over 4**8 = 65536 sequences the hashed Gaussian noise has mean 0 and variance 1 (4-sigma bounds),
    and the Cauchy noise has its quartiles ±1 (binomial 4-sigma bounds)."""
    zero = bt.TokenCountReward(0, weight=0.0)
    n = ALL.shape[0]
    g = np.asarray(bt.NoisyProxyReward(zero, jax.random.key(4), 1.0, "gaussian")(ALL))
    assert abs(g.mean()) < 4 / np.sqrt(n) and abs(g.var() - 1) < 4 * np.sqrt(2 / n)
    _check_quartiles("cauchy", 1.0)


@pytest.mark.slow
def test_student_t_noise_quartiles():
    _check_quartiles("student_t", stats.t.ppf(0.75, 2.5))


def _check_quartiles(noise, q3):
    """Binomial 4-sigma bounds on P(X <= ±q3) over the 65536 sequences of ALL."""
    zero = bt.TokenCountReward(0, weight=0.0)
    n = ALL.shape[0]
    x = np.asarray(bt.NoisyProxyReward(zero, jax.random.key(4), 1.0, noise, df=2.5)(ALL))
    for q, p in [(-q3, 0.25), (q3, 0.75)]:
        assert abs((x <= q).mean() - p) < 4 * np.sqrt(p * (1 - p) / n), noise


def test_hack_region_has_the_stated_mass_enumerated():
    ref = bt.random_tabular_policy(jax.random.key(8), 4, 6, order=1)
    base = bt.random_token_score_reward(jax.random.key(9), 4, 6)
    proxy, cal = bt.make_hack_proxy(jax.random.key(10), base, ref, hack_mass=0.02, bonus=3.0, penalty=2.0)
    assert cal.exact
    seqs, logp = bt.enumerate_sequences(ref)
    p = np.exp(np.asarray(logp))
    inside = np.asarray(proxy.in_region(seqs))
    mass = p[inside].sum()
    np.testing.assert_allclose(float(cal.mass), mass, rtol=1e-6)
    # the closest achievable mass: within half of the largest sequence probability of the target
    assert abs(mass - 0.02) <= 0.5 * p.max() + 1e-9
    assert 0 < inside.sum() < inside.size
    # proxy loves it, gold hates it; equal to the base outside
    b = np.asarray(base(seqs))
    np.testing.assert_allclose(np.asarray(proxy(seqs)), b + 3.0 * inside, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(proxy.gold(seqs)), b - 2.0 * inside, rtol=1e-6)


@pytest.mark.slow
def test_hack_region_mass_monte_carlo():
    """Calibrated from samples (enumeration switched off): the exact mass of the region is within
    5 standard errors of the target plus one sequence's mass (discreteness), and the returned
    estimate is within 5 standard errors of the exact mass (false-alarm rate < 1e-5)."""
    ref = bt.random_tabular_policy(jax.random.key(8), 4, 6, order=1, temperature=3.0)
    proxy, cal = bt.make_hack_proxy(
        jax.random.key(12), bt.TokenCountReward(0), ref, hack_mass=0.05, num_samples=2**14, max_enumerated=100
    )
    assert not cal.exact
    seqs, logp = bt.enumerate_sequences(ref)
    p = np.exp(np.asarray(logp))
    exact = p[np.asarray(proxy.in_region(seqs))].sum()
    se = np.sqrt(0.05 * 0.95 / 2**14)
    assert abs(exact - 0.05) < 5 * se + p.max()
    assert abs(float(cal.mass) - exact) < 5 * se
    np.testing.assert_allclose(float(cal.stderr), se, rtol=0.3)


def test_reward_bad_input():
    with pytest.raises(ValueError, match="L = 4"):
        bt.TokenScoreReward(jnp.zeros((L, V)))(jnp.zeros((2, 5), jnp.int32))
    with pytest.raises(TypeError, match="integer"):
        bt.TokenCountReward(0)(jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="noise"):
        bt.NoisyProxyReward(bt.TokenCountReward(0), jax.random.key(0), 1.0, "laplace")(SEQS)
    ref = bt.random_tabular_policy(jax.random.key(0), V, L)
    with pytest.raises(ValueError, match="hack_mass"):
        bt.make_hack_proxy(jax.random.key(0), bt.TokenCountReward(0), ref, hack_mass=1.5)
    with pytest.raises(ValueError, match="step"):
        bt.QuantizedReward(bt.TokenCountReward(0), step=0.0)(SEQS)
    with pytest.raises(ValueError, match="2\\*\\*16"):
        bt.SequenceHashReward(jax.random.key(0))(jnp.full((1, 3), 70000, jnp.int32))


def test_tie_heavy_reward_makes_the_folk_formula_fail_visibly():
    """Over 4**6 sequences at n = 1024: the count reward (7 levels) has exact BoN KL far below the folk
    formula log n − (n−1)/n (gap ≈ 0.66 here), while for random token scores (tie-free) the gap is only the
    discreteness of the atoms, computed independently below (it depends on the instance: 0.17 here)."""
    ref = bt.random_tabular_policy(jax.random.key(8), 4, 6, order=1)
    seqs, logp = bt.enumerate_sequences(ref)
    p = jnp.exp(logp)
    n = 1024
    folk = np.log(n) - (n - 1) / n
    tied = float(bt.bon_kl(p, bt.TokenCountReward(0)(seqs), n))
    scores = bt.random_token_score_reward(jax.random.key(1), 4, 6)(seqs)
    smooth = float(bt.bon_kl(p, scores, n))
    assert tied < folk - 0.5
    # Chain rule: the folk value is the KL of BoN on a uniform latent u (the p-quantile); atom i is the interval
    # [a, b] = [F_{i-1}, F_i] on which BoN's latent density is n u^{n-1} and p's is uniform, so
    # folk − KL = Σ_i π_i KL(n u^{n-1}/π_i ‖ 1/p_i on [a, b])
    #           = Σ_i π_i [log(n p_i / π_i) + (n−1)(b^n log b − a^n log a)/π_i − (n−1)/n],  π_i = b^n − a^n.
    assert len(np.unique(np.asarray(scores))) == len(scores)  # tie-free: one atom per sequence
    q = np.asarray(p)[np.argsort(np.asarray(scores))]
    b = np.cumsum(q) / np.sum(q)
    a = np.concatenate([[0.0], b[:-1]])
    pi = b**n - a**n
    keep = pi > 1e-250  # the rest weighs nothing
    q, a, b, pi = q[keep], a[keep], b[keep], pi[keep]
    xlogx = np.where(a > 0, a**n * np.log(np.where(a > 0, a, 1.0)), 0.0), b**n * np.log(b)
    within = np.sum(pi * (np.log(n * q / pi) + (n - 1) * (xlogx[1] - xlogx[0]) / pi - (n - 1) / n))
    assert abs((folk - smooth) - within) < 1e-9
    assert 0 < folk - smooth < (folk - tied) / 2  # ties cost more than discreteness (0.66 vs 0.17)
