"""Tests for bontheory.policies: tabular policies, enumeration, sampling."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from references import chi2_pvalue, lexicographic_index

import bontheory as bt

ORDERS = [0, 1, 2, None]


def _brute_force_log_probs(policy, seqs):
    """log π(y) from next_token_log_probs (the module's full forward pass), independent of the gather path."""
    logp = np.asarray(policy.next_token_log_probs(seqs))
    s = np.asarray(seqs)
    return logp[np.arange(s.shape[0])[:, None], np.arange(s.shape[1])[None, :], s].sum(-1)


@pytest.mark.parametrize(
    "order, kind", [(0, "gaussian"), (1, "dirichlet"), (1, "zipf"), (2, "gaussian"), (None, "gaussian")]
)
def test_enumeration_sums_to_one_and_is_lexicographic(order, kind):
    policy = bt.random_tabular_policy(jax.random.key(0), 3, 4, order=order, kind=kind, concentration=0.5)
    seqs, logp = bt.enumerate_sequences(policy, batch_size=50)  # 81 = 50 + 31: exercises padding
    expected = np.array(list(itertools.product(range(3), repeat=4)))
    np.testing.assert_array_equal(np.asarray(seqs), expected)
    assert seqs.dtype == jnp.int32
    np.testing.assert_allclose(float(jax.scipy.special.logsumexp(logp)), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(logp), _brute_force_log_probs(policy, seqs), atol=1e-12)


@pytest.mark.parametrize("order", ORDERS)
def test_log_probs_match_sampling_frequencies(order):
    """Chi-square goodness of fit of 200k samples to exp(log_prob) over all 3**4 = 81 sequences
    (cells with expected count < 5 pooled). False-alarm rate 1e-4 per case (4 cases)."""
    policy = bt.random_tabular_policy(jax.random.key(1), 3, 4, order=order, temperature=0.7)
    _seqs, logp = bt.enumerate_sequences(policy)
    num = 200_000
    draws = np.asarray(jax.jit(lambda p, k: p.sample(k, num))(policy, jax.random.key(2)))
    assert draws.shape == (num, 4) and draws.dtype == np.int32
    assert chi2_pvalue(lexicographic_index(draws, 3), np.exp(np.asarray(logp, np.float64))) > 1e-4


def test_log_prob_any_batch_shape():
    policy = bt.random_tabular_policy(jax.random.key(3), 3, 4, order=1)
    seqs, logp = bt.enumerate_sequences(policy)
    lp = policy.log_prob(seqs.reshape(9, 9, 4))
    assert lp.shape == (9, 9)
    np.testing.assert_allclose(np.asarray(lp).ravel(), np.asarray(logp))
    assert policy.log_prob(seqs[0]).shape == ()


@pytest.mark.parametrize("order", [1, 2, None])
def test_markov_and_full_history_condition_on_history(order):
    """Changing the token k steps back changes the next-token distribution iff k <= order."""
    V, L = 3, 4
    policy = bt.random_tabular_policy(jax.random.key(4), V, L, order=order)
    k = L - 1 if order is None else order
    base = jnp.zeros((1, L), jnp.int32)
    ref = policy.next_token_log_probs(base)[0, L - 1]
    for back in range(1, L):
        changed = base.at[0, L - 1 - back].set(1)
        out = policy.next_token_log_probs(changed)[0, L - 1]
        differs = not np.allclose(np.asarray(out), np.asarray(ref))
        assert differs == (back <= k), (order, back)


def test_memoryless_ignores_history():
    policy = bt.random_tabular_policy(jax.random.key(5), 3, 4, order=0)
    a = policy.next_token_log_probs(jnp.zeros((1, 4), jnp.int32))
    b = policy.next_token_log_probs(jnp.full((1, 4), 2, jnp.int32))
    np.testing.assert_allclose(np.asarray(a), np.asarray(b))


def test_temperature_controls_entropy():
    def entropy(policy):
        logp = bt.tabular_log_probs_table(policy)
        return float(-jnp.sum(jnp.exp(logp) * logp))

    key = jax.random.key(6)
    for kind, knob in [("gaussian", "temperature"), ("dirichlet", "concentration"), ("zipf", "zipf_exponent")]:
        flat = bt.random_tabular_policy(key, 3, 4, 1, kind=kind, **{knob: 10.0 if knob != "zipf_exponent" else 0.1})
        peaked = bt.random_tabular_policy(key, 3, 4, 1, kind=kind, **{knob: 0.1 if knob != "zipf_exponent" else 3.0})
        assert entropy(peaked) < entropy(flat), kind


def test_from_logits_roundtrip():
    logits = jax.random.normal(jax.random.key(7), (3, 2, 2))
    policy = bt.tabular_policy_from_logits(logits, order=1)
    np.testing.assert_allclose(np.asarray(policy.params["logits"]), np.asarray(logits))
    assert (policy.vocab_size, policy.length) == (2, 3)
    with pytest.raises(ValueError, match="order"):
        bt.tabular_policy_from_logits(logits, order=0)


def test_bad_input_errors():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="vocab_size"):
        bt.random_tabular_policy(key, 0, 3)
    with pytest.raises(ValueError, match="length"):
        bt.random_tabular_policy(key, 3, 0)
    with pytest.raises(ValueError, match="kind"):
        bt.random_tabular_policy(key, 3, 3, kind="nope")
    with pytest.raises(ValueError, match="table"):
        bt.random_tabular_policy(key, 50, 10, order=None)
    big = bt.tabular_policy_from_logits(jnp.zeros((9, 10)))  # 10**9 sequences
    with pytest.raises(ValueError, match="cannot enumerate"):
        bt.enumerate_sequences(big)
    with pytest.raises(ValueError, match="cannot enumerate"):
        bt.all_sequences(4, 30)
    with pytest.raises(ValueError, match="length"):
        bt.all_sequences(4, 0)
    small = bt.random_tabular_policy(key, 3, 4)
    with pytest.raises(ValueError, match="L = 4"):
        small.log_prob(jnp.zeros((5, 3), jnp.int32))
    with pytest.raises(ValueError, match="token ids"):
        small.log_prob(jnp.full((5, 4), 3, jnp.int32))
    with pytest.raises(TypeError, match="integer"):
        small.log_prob(jnp.zeros((5, 4)))


def test_zero_probability_tokens_are_never_sampled():
    """Inverse-CDF sampling never returns a token of probability 0 (first, middle or last in the row),
    and the allowed tokens have frequencies 1/(1+e), e/(1+e) (binomial 4-sigma bounds)."""
    ninf = -jnp.inf
    rows = jnp.asarray([[ninf, 0.0, 1.0], [0.0, ninf, 1.0], [0.0, 1.0, ninf], [ninf, 0.0, 1.0]])
    allowed = [(1, 2), (0, 2), (0, 1), (1, 2)]
    num = 200_000  # same shapes as the chi-square test: no new compilation
    for order in (0, 1):
        table = rows if order == 0 else jnp.broadcast_to(rows[:, None, :], (4, 3, 3))
        policy = bt.tabular_policy_from_logits(table, order=order)
        draws = np.asarray(jax.jit(lambda p, k: p.sample(k, num))(policy, jax.random.key(0)))
        p_hi = np.e / (1 + np.e)
        for t, (lo, hi) in enumerate(allowed):
            assert set(np.unique(draws[:, t])) == {lo, hi}
            assert abs((draws[:, t] == hi).mean() - p_hi) < 4 * np.sqrt(p_hi * (1 - p_hi) / num)
        assert np.isneginf(np.asarray(policy.log_prob(jnp.zeros((1, 4), jnp.int32)))).all()
