"""Tests for the learned Bradley–Terry reward model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bontheory as bt

V, L = 4, 6


@pytest.fixture(scope="module")
def setup():
    ref = bt.random_tabular_policy(jax.random.key(8), V, L, order=1)
    gold = bt.random_token_score_reward(jax.random.key(1), V, L)
    fit = bt.train_bradley_terry(jax.random.key(2), ref, gold, num_pairs=4096, num_steps=600, label_noise=0.05)
    return ref, gold, fit


def test_bradley_terry_recovers_gold_ranking_on_held_out_pairs(setup):
    """Held-out accuracy >= 0.9 on 4096 fresh pairs (measured ≈ 0.98; the standard error of an
    accuracy near 0.98 on 4096 pairs is ≈ 0.002, so 0.9 fails only if the fit is genuinely poor)."""
    ref, gold, fit = setup
    assert np.isfinite(np.asarray(fit.losses)).all()
    assert float(np.mean(fit.losses[-50:])) < float(np.mean(fit.losses[:50]))
    a, b = ref.sample(jax.random.key(5), 4096), ref.sample(jax.random.key(6), 4096)  # num_pairs: no recompile
    assert float(bt.pairwise_accuracy(fit.reward, gold, a, b)) >= 0.9
    # a randomly initialised network of the same architecture is near chance (over 40 initialisations its
    # accuracy on these pairs spans 0.36–0.67, spread ≈ 0.08): the fit's accuracy is learned, not built in
    module = fit.reward.module
    untrained = bt.LearnedReward(module, module.init(jax.random.key(3), a[:1])["params"])
    assert 0.2 < float(bt.pairwise_accuracy(untrained, gold, a, b)) < 0.8


def test_learned_reward_is_a_reward_pytree(setup):
    ref, _, fit = setup
    seqs = ref.sample(jax.random.key(7), 4096)[:12]
    direct = fit.reward(seqs)
    assert direct.shape == (12,)
    np.testing.assert_allclose(np.asarray(fit.reward(seqs.reshape(3, 4, L))).ravel(), np.asarray(direct), rtol=1e-6)
    jitted = jax.jit(lambda r, s: r(s))(fit.reward, seqs)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(direct), rtol=1e-5)


def test_bradley_terry_labels_follow_the_model():
    """P(a ≻ b) = σ(Δ/τ): the label frequency at Δ = τ is σ(1) within 4 standard errors; flips at rate ε."""
    n = 20_000
    ga, gb = jnp.ones(n), jnp.zeros(n)
    z = np.asarray(bt.bradley_terry_labels(jax.random.key(8), ga, gb, temperature=1.0))
    p = 1 / (1 + np.exp(-1.0))
    assert abs(z.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    z = np.asarray(bt.bradley_terry_labels(jax.random.key(9), ga, gb, label_noise=0.2))
    assert abs(z.mean() - 0.8) < 4 * np.sqrt(0.16 / n)
    z = np.asarray(bt.bradley_terry_labels(jax.random.key(9), ga, ga))  # ties: fair coin
    assert abs(z.mean() - 0.5) < 4 * np.sqrt(0.25 / n)


def test_bradley_terry_bad_input(setup):
    ref, gold, fit = setup
    with pytest.raises(ValueError, match="num_pairs"):
        bt.train_bradley_terry(jax.random.key(0), ref, gold, num_pairs=0)
    with pytest.raises(ValueError, match="label_noise"):
        bt.bradley_terry_labels(jax.random.key(0), jnp.zeros(3), jnp.zeros(3), label_noise=0.7)
    with pytest.raises(ValueError, match=r"same (shape|number of outcomes)"):
        bt.bradley_terry_labels(jax.random.key(0), jnp.zeros(3), jnp.zeros(4))
    with pytest.raises(ValueError, match=r"same (shape|number of outcomes)"):
        bt.pairwise_accuracy(fit.reward, gold, jnp.zeros((3, L), jnp.int32), jnp.zeros((4, L), jnp.int32))
    with pytest.raises(ValueError, match="L = 6"):
        fit.reward(jnp.zeros((3, L + 1), jnp.int32))
