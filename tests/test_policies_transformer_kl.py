"""Tests for the transformer policy and the sequence KL (chain rule, recursion, Monte Carlo, k1/k3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from references import chi2_pvalue, lexicographic_index

import bontheory as bt

V, L = 3, 4


@pytest.fixture(scope="module")
def transformer():
    # logit_scale > 1 so the policy is far from uniform.
    return bt.init_transformer_policy(jax.random.key(0), V, L, d_model=16, num_heads=2, num_layers=2, logit_scale=4.0)


def _enumerated_kl(a, b):
    """KL over whole sequences, Σ_y a(y) log(a(y)/b(y)), independent of the chain-rule code."""
    seqs, la = bt.enumerate_sequences(a)
    lb = b.log_prob(seqs)
    la, lb = np.asarray(la, np.float64), np.asarray(lb, np.float64)
    return float(np.sum(np.exp(la) * (la - lb)))


def test_transformer_is_causal(transformer):
    """Changing token s changes logits[:, t] only for t > s (never earlier ones)."""
    base = jax.random.randint(jax.random.key(1), (8, L), 0, V).astype(jnp.int32)
    ref = np.asarray(transformer.logits(base))
    for s in range(L):
        changed = base.at[:, s].set((base[:, s] + 1) % V)
        out = np.asarray(transformer.logits(changed))
        np.testing.assert_allclose(out[:, : s + 1], ref[:, : s + 1], atol=1e-6)
        if s < L - 1:
            assert np.max(np.abs(out[:, s + 1 :] - ref[:, s + 1 :])) > 1e-4  # it does use history


def test_transformer_cached_decoding_matches_full_forward(transformer):
    """The key/value-cache path used by sample() gives the teacher-forced logits of the full forward
    pass, and sample() draws the same sequences as the O(L²) generic sampler with the same key."""
    from bontheory.policies.policy import generic_sample
    from bontheory.policies.transformer import transformer_decode_logits

    tokens = jax.random.randint(jax.random.key(3), (16, L), 0, V).astype(jnp.int32)
    np.testing.assert_allclose(
        np.asarray(transformer_decode_logits(transformer, tokens)), np.asarray(transformer.logits(tokens)), atol=1e-4
    )
    fast = np.asarray(transformer.sample(jax.random.key(4), 256))
    slow = np.asarray(generic_sample(transformer, jax.random.key(4), 256))
    assert fast.shape == (256, L) and (fast == slow).mean() > 0.99  # equal up to float ties at argmax


@pytest.mark.slow
def test_transformer_enumeration_and_sampling(transformer):
    """Enumeration sums to 1 and 40k samples fit exp(log_prob) (chi-square, false-alarm rate 1e-4)."""
    _seqs, logp = bt.enumerate_sequences(transformer)
    np.testing.assert_allclose(float(jax.scipy.special.logsumexp(logp)), 0.0, atol=1e-5)
    draws = np.asarray(transformer.sample(jax.random.key(2), 40_000))
    assert draws.shape == (40_000, L)
    # float32 model: chi2_pvalue renormalises the ~1e-7 rounding of the probabilities
    assert chi2_pvalue(lexicographic_index(draws, V), np.exp(np.asarray(logp, np.float64))) > 1e-4


PAIRS = [(0, 1), (2, 1), (None, 0)]


@pytest.mark.parametrize("order_a, order_b", PAIRS)
def test_chain_rule_kl_matches_enumerated_kl_tabular(order_a, order_b):
    a = bt.random_tabular_policy(jax.random.key(10), V, L, order=order_a)
    b = bt.random_tabular_policy(jax.random.key(11), V, L, order=order_b, temperature=0.5)
    exact = _enumerated_kl(a, b)
    np.testing.assert_allclose(float(bt.sequence_kl(a, b)), exact, rtol=1e-10)
    np.testing.assert_allclose(float(bt.sequence_kl(a, b, method="enumeration", batch_size=7)), exact, rtol=1e-10)


def test_chain_rule_kl_transformer(transformer):
    tab = bt.random_tabular_policy(jax.random.key(12), V, L, order=1)
    np.testing.assert_allclose(float(bt.sequence_kl(transformer, tab)), _enumerated_kl(transformer, tab), rtol=1e-4)


@pytest.mark.slow
def test_chain_rule_kl_transformer_reverse_and_self(transformer):
    tab = bt.random_tabular_policy(jax.random.key(12), V, L, order=1)
    np.testing.assert_allclose(float(bt.sequence_kl(tab, transformer)), _enumerated_kl(tab, transformer), rtol=1e-4)
    assert abs(float(bt.sequence_kl(transformer, transformer))) < 1e-6


def test_kl_length_one_and_self():
    a = bt.tabular_policy_from_logits(jnp.asarray([[0.3, -1.0, 2.0, 0.0, 0.5]]), order=None)
    b = bt.tabular_policy_from_logits(jnp.asarray([[1.0, 0.0, -2.0, 0.1, 0.0]]))
    pa, pb = np.exp(np.asarray(bt.enumerate_sequences(a)[1])), np.exp(np.asarray(bt.enumerate_sequences(b)[1]))
    expected = np.sum(pa * np.log(pa / pb))
    np.testing.assert_allclose(float(bt.sequence_kl(a, b, method="enumeration")), expected, rtol=1e-10)
    np.testing.assert_allclose(float(bt.sequence_kl(a, b)), expected, rtol=1e-10)
    assert float(bt.sequence_kl(a, a)) == 0.0


def test_sampled_kl_estimators_are_unbiased():
    """Chain-rule MC, k1 and k3 means lie within 4 standard errors of the exact KL (false alarm ~1e-4 each)."""
    a = bt.random_tabular_policy(jax.random.key(15), V, L, order=1, temperature=0.8)
    b = bt.random_tabular_policy(jax.random.key(16), V, L, order=2)
    exact = float(bt.sequence_kl(a, b))
    est = bt.sequence_kl_mc(jax.random.key(17), a, b, 200_000)
    assert abs(float(est.mean) - exact) < 4 * float(est.stderr)
    seqs = a.sample(jax.random.key(18), 200_000)
    la, lb = a.log_prob(seqs), b.log_prob(seqs)
    for k in (bt.kl_k1(la, lb), bt.kl_k3(la, lb)):
        k = np.asarray(k)
        assert abs(k.mean() - exact) < 4 * k.std(ddof=1) / np.sqrt(k.size)
    assert np.all(np.asarray(bt.kl_k3(la, lb)) >= 0)


def test_k3_is_accurate_for_tiny_log_ratios():
    """expm1 form: for |δ| = 1e-9 the k3 value ≈ δ²/2 (the exp(δ) − 1 − δ form gives garbage)."""
    lp = jnp.asarray([-3.0, -3.0], jnp.float64)
    lr = lp + jnp.asarray([1e-9, -1e-9], jnp.float64)
    np.testing.assert_allclose(np.asarray(bt.kl_k3(lp, lr)), 0.5e-18, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(bt.kl_k2(lp, lr)), 0.5e-18, rtol=1e-5)


def test_kl_bad_input(transformer):
    a = bt.random_tabular_policy(jax.random.key(0), V, L)
    with pytest.raises(ValueError, match="vocab_size and length"):
        bt.sequence_kl(a, bt.random_tabular_policy(jax.random.key(0), V, L + 1))
    with pytest.raises(ValueError, match="recursion"):
        bt.sequence_kl(a, transformer, method="recursion")
    with pytest.raises(ValueError, match="prefixes"):
        bt.sequence_kl(a, transformer, max_prefixes=10)
    with pytest.raises(ValueError, match=r"same (shape|number of outcomes)"):
        bt.kl_k1(jnp.zeros(3), jnp.zeros(4))
    with pytest.raises(ValueError, match="num"):
        bt.sequence_kl_mc(jax.random.key(0), a, a, 1)
    with pytest.raises(ValueError, match="divisible"):
        bt.init_transformer_policy(jax.random.key(0), V, L, d_model=15, num_heads=2)


def _markov_logits(order):
    """Logits ``float[L, V**order, V]`` of an order-k tabular policy, drawn entry by entry (shrinkable)."""
    return hnp.arrays(np.float64, (L, V**order, V), elements=st.floats(-3.0, 3.0))


@st.composite
def markov_pairs(draw):
    """Two Markov policies of orders (1, 2) or (2, 1) (two fixed shapes: two compilations), each with its
    logits divided by a temperature in [0.2, 5]."""
    orders = draw(st.sampled_from([(1, 2), (2, 1)]))
    a, b = (
        bt.tabular_policy_from_logits(draw(_markov_logits(k)) / draw(st.floats(0.2, 5.0)), order=k) for k in orders
    )
    return a, b


@settings(max_examples=10)
@given(markov_pairs())
def test_chain_rule_kl_and_entropy_properties(pair):
    """For random Markov policies: the recursion KL equals the enumerated KL, is >= 0, KL(a‖a) = 0,
    and the recursion entropy equals −Σ π log π over the enumerated sequences."""
    a, b = pair
    kl = float(bt.sequence_kl(a, b))
    np.testing.assert_allclose(kl, _enumerated_kl(a, b), rtol=1e-9, atol=1e-12)
    assert kl >= 0 and abs(float(bt.sequence_kl(a, a))) < 1e-12
    la = np.asarray(bt.enumerate_sequences(a)[1])
    np.testing.assert_allclose(float(bt.sequence_entropy(a)), -np.sum(np.exp(la) * la), rtol=1e-9)
