"""The lifted layer (docs/theory.md §8): the reward law of a tabular policy by dynamic programming.

References are independent: brute-force enumeration of all V**L sequences (``enumerate_sequences`` + the
reward's own ``__call__``), closed-form binomial laws computed with ``lgamma`` in float64, and finite
differences (``check_grads``).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import bontheory as bt
from bontheory.lifted import distribution as lifted_distribution

V, L = 3, 5


def _policy(order, key=0, vocab=V, length=L, temperature=1.0):
    return bt.random_tabular_policy(jax.random.key(key), vocab, length, order=order, temperature=temperature)


def _int_scores(seed, length=L, vocab=V, low=-2, high=3):
    return bt.TokenScoreReward(jnp.asarray(np.random.default_rng(seed).integers(low, high, (length, vocab)), float))


#: each liftable reward, sums of two, negative and fractional scales; every one has ties on V**L sequences.
REWARDS = {
    "count": bt.TokenCountReward(target=1, weight=0.5),
    "scores": _int_scores(0),
    "pattern": bt.PatternReward(pattern=(1, 2), value=2.0),
    "pattern_count": bt.PatternCountReward(pattern=(1, 1), weight=1.0),
    "pattern_count_negative": bt.PatternCountReward(pattern=(0, 1, 0), weight=-1.5),
    "count+pattern": bt.reward_sum(bt.TokenCountReward(0), bt.PatternReward((2, 2), value=0.5)),
    "pattern_count+pattern": bt.reward_sum(bt.PatternCountReward((1, 0)), bt.PatternReward((0, 0, 1), value=3.0)),
    "scores+count": bt.reward_sum(_int_scores(1, low=0, high=2), bt.TokenCountReward(2, weight=-2.0)),
}


def _enumerated_law(policy, reward):
    seqs, log_p = bt.enumerate_sequences(policy)
    r = np.asarray(reward(seqs))
    log_p = np.asarray(log_p)
    values = np.unique(r)
    return values, np.array([np.logaddexp.reduce(log_p[r == v]) for v in values]), r, log_p


#: the default run checks every reward at one order (cycling 0, 1, 2) and one sum at every order; the slow
#: run checks the whole grid.
FAST_CASES = [(i % 3, name) for i, name in enumerate(REWARDS)] + [(o, "count+pattern") for o in (0, 2)]
GRID = [(o, name) for o in (0, 1, 2) for name in REWARDS]
CASES = FAST_CASES + [pytest.param(o, n, marks=pytest.mark.slow) for o, n in GRID if (o, n) not in FAST_CASES]


@pytest.mark.parametrize(("order", "name"), CASES)
def test_dp_equals_enumeration(order, name):
    policy, reward = _policy(order, key=order), REWARDS[name]
    law = bt.reward_distribution(policy, reward)
    values, log_probs, _, _ = _enumerated_law(policy, reward)
    assert np.all(np.diff(np.asarray(law.values)) > 0)
    np.testing.assert_allclose(np.asarray(law.values), values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(law.log_probs), log_probs, rtol=0, atol=1e-12)
    assert len(values) < V**L  # ties: the law has fewer atoms than sequences


def test_full_history_policy_and_zero_probability_tokens():
    # order=None is order L-1; a -inf logit makes some reward values unreachable: they are dropped.
    logits = np.array(jax.random.normal(jax.random.key(3), (L, V ** (L - 1), V)))
    logits[:, :, 1] = -np.inf
    policy = bt.tabular_policy_from_logits(jnp.asarray(logits), order=None)
    reward = REWARDS["count"]  # counts token 1, which never occurs
    law = bt.reward_distribution(policy, reward)
    np.testing.assert_array_equal(np.asarray(law.values), [0.0])
    np.testing.assert_allclose(np.asarray(law.log_probs), [0.0], atol=1e-12)


def test_log_masses_far_below_float64_range():
    """Memoryless policy, count of one token: the law is Binomial(L, q); masses down to ~1e-870."""
    vocab, length = 50, 512
    row = jax.random.normal(jax.random.key(7), (vocab,))
    policy = bt.tabular_policy_from_logits(jnp.broadcast_to(row, (length, vocab)), order=0)  # i.i.d. tokens
    law = bt.reward_distribution(policy, bt.TokenCountReward(target=3))
    q = float(jax.nn.softmax(row)[3])
    k = np.arange(length + 1)
    lgam = np.vectorize(math.lgamma)
    ref = lgam(length + 1) - lgam(k + 1) - lgam(length - k + 1) + k * math.log(q) + (length - k) * math.log1p(-q)
    np.testing.assert_array_equal(np.asarray(law.values), k.astype(float))
    lp = np.asarray(law.log_probs)
    assert lp.min() < math.log(1e-300) - 1000  # far below the float64 range
    np.testing.assert_allclose(lp, ref, rtol=1e-11, atol=1e-9)


def test_gradient_matches_finite_differences():
    reward = REWARDS["pattern_count+pattern"]
    logits = jax.random.normal(jax.random.key(11), (4, V, V))

    def log_law(lg):
        return bt.reward_distribution(bt.tabular_policy_from_logits(lg, order=1), reward).log_probs

    check_grads(log_law, (logits,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
    grad = jax.grad(lambda lg: log_law(lg)[-1])(logits)
    assert float(jnp.max(jnp.abs(grad))) > 1e-3  # the check above is not vacuous


def test_jit_over_the_policy():
    policy, reward = _policy(1), REWARDS["count+pattern"]
    eager = bt.reward_distribution(policy, reward)
    jitted = jax.jit(lambda p: bt.reward_distribution(p, reward))(policy)
    np.testing.assert_allclose(np.asarray(jitted.log_probs), np.asarray(eager.log_probs), atol=1e-13)
    np.testing.assert_array_equal(np.asarray(jitted.values), np.asarray(eager.values))


@pytest.mark.parametrize("name", ["scores", "count+pattern"])
def test_exact_functions_apply_unchanged_to_the_level_law(name):
    policy, reward = _policy(1, key=5), REWARDS[name]
    law = bt.reward_distribution(policy, reward)
    m, values = jnp.exp(law.log_probs), law.values
    _, _, r, log_p = _enumerated_law(policy, reward)
    p = np.exp(log_p)
    ns = jnp.asarray([1, 2, 7, 64])
    for fn in (bt.bon_kl, bt.bon_expected_reward, bt.bon_win_rate):
        np.testing.assert_allclose(np.asarray(fn(m, values, ns)), np.asarray(fn(p, r, ns)), rtol=1e-10, atol=1e-12)
    # the BoN pmf over levels is the enumerated BoN pmf summed over each level
    pmf_levels = np.asarray(bt.bon_pmf(m, values, 7))
    pmf_seq = np.asarray(bt.bon_pmf(p, r, 7))
    summed = np.array([pmf_seq[np.isclose(r, v, rtol=0, atol=1e-12)].sum() for v in np.asarray(values)])
    np.testing.assert_allclose(pmf_levels, summed, rtol=1e-10, atol=1e-14)


def test_errors_say_why_and_where_to_go():
    policy = _policy(1)
    for reward in (bt.PalindromeReward(), bt.SequenceHashReward(jax.random.key(0)), bt.as_reward(lambda s: s[..., 0])):
        with pytest.raises(bt.NotLiftableError, match="enumerate_sequences"):
            bt.reward_distribution(policy, reward)
    with pytest.raises(bt.NotLiftableError, match=r"non-integer scores.*scores\[0, 0\]"):
        bt.reward_distribution(policy, bt.TokenScoreReward(jnp.full((L, V), 0.5)))
    transformer = bt.init_transformer_policy(jax.random.key(0), V, L, d_model=8, num_heads=1, num_layers=1)
    with pytest.raises(bt.NotLiftableError, match=r"tabular policy.*bon_monte_carlo"):
        bt.reward_distribution(transformer, REWARDS["count"])
    with pytest.raises(TypeError, match="reward must be callable"):
        bt.reward_distribution(policy, 3)


def test_too_large_state_space_names_its_size(monkeypatch):
    monkeypatch.setattr(lifted_distribution, "MAX_LIFTED_STATES", 100)
    # S = 4 KMP states x A = 2 values x C = 9 contexts (order 2) = 72 fits; with the count added it does not
    bt.reward_distribution(_policy(2), bt.PatternReward((0, 1, 2)))
    with pytest.raises(ValueError, match=r"S = 4 automaton states × A = 6 partial rewards × C = 9 .* = 216 entries"):
        bt.reward_distribution(_policy(2), bt.reward_sum(bt.PatternReward((0, 1, 2)), bt.TokenCountReward(0)))
