"""Tests for bontheory.vbon: divergences, targets, objectives, training, checkpoints, baselines."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from references import brute_force_bon

from bontheory import (
    BoNBoNLoss,
    ExactDivergenceLoss,
    ExactKLRegularisedLoss,
    MaximumLikelihoodLoss,
    PolicyGradientLoss,
    approximation_metrics,
    bon_sft_data,
    bonbon_beta,
    bonbon_data,
    empirical_log_cdfs,
    enumerate_sequences,
    expand_tabular_policy,
    forward_kl,
    harmonic_number,
    init_train_state,
    iterated_bond,
    jeffreys_divergence,
    log_bon_ratio,
    pareto_frontier,
    random_tabular_policy,
    reverse_kl,
    tie_effect,
    train_steps,
    train_with_checkpoints,
    vbon_target_log_probs,
)

# ---------------------------------------------------------------------------------------------------
# Divergences on plain log-probability vectors


def _np_kl(p, q):
    p, q = np.asarray(p), np.asarray(q)
    m = p > 0
    return float(np.sum(p[m] * (np.log(p[m]) - np.log(q[m]))))


def _pmf(weights):
    return np.asarray(weights) / np.sum(weights)


pmf6 = hnp.arrays(np.float64, 6, elements=st.floats(1e-3, 1.0)).map(_pmf)


@given(pmf6, pmf6, pmf6, st.floats(0.0, 1.0))
def test_divergences_match_numpy(q, t, q2, w):
    q = q.copy()
    q[0] = 0.0  # a zero of q: contributes 0 to KL(q||t) and +inf to KL(t||q)
    q /= q.sum()
    with np.errstate(divide="ignore"):
        lq, lt = np.log(q), np.log(t)
    assert float(reverse_kl(lq, lt)) == pytest.approx(_np_kl(q, t), rel=1e-10, abs=1e-12)
    assert math.isinf(float(forward_kl(lt, lq)))  # KL(t‖q) with q = 0 where t > 0
    assert float(forward_kl(lq, lt)) == pytest.approx(_np_kl(q, t), rel=1e-10, abs=1e-12)  # reads like KL(q‖t)
    lq2 = np.log(q2)
    assert float(forward_kl(lt, lq2)) == pytest.approx(_np_kl(t, q2), rel=1e-10, abs=1e-12)
    assert float(forward_kl(log_q=lq2, log_target=lt)) == pytest.approx(_np_kl(t, q2), rel=1e-10, abs=1e-12)
    expect = (1 - w) * _np_kl(t, q2) + w * _np_kl(q2, t)
    assert float(jeffreys_divergence(lq2, lt, w)) == pytest.approx(expect, rel=1e-10, abs=1e-12)


def test_reverse_kl_gradient_finite_with_zero_mass():
    # log q = -inf on one outcome must not produce NaN gradients; the zero-mass coordinate's gradient is the
    # limit 0, and the others are those of a vanishing (e^-60) mass there.
    lt = jnp.log(jnp.array([0.2, 0.3, 0.5]))
    grad = jax.grad(lambda z: reverse_kl(jax.nn.log_softmax(z), lt))
    g = np.asarray(grad(jnp.array([-jnp.inf, 0.0, 1.0])))
    assert np.all(np.isfinite(g)) and g[0] == 0.0
    np.testing.assert_allclose(g, np.asarray(grad(jnp.array([-60.0, 0.0, 1.0]))), rtol=1e-12, atol=1e-20)


@given(st.floats(1e-6, 1.0), st.floats(0.0, 1.0), st.sampled_from([1, 2, 3, 7, 50]))
def test_log_bon_ratio_matches_sum_form(f, frac, n):
    fm = f * frac
    direct = sum(fm ** (i - 1) * f ** (n - i) for i in range(1, n + 1))
    got = float(log_bon_ratio(np.log(fm) if fm > 0 else -np.inf, np.log(f), n))
    assert got == pytest.approx(math.log(direct), rel=1e-6, abs=1e-9)


def test_harmonic_number():
    for k in range(0, 12):
        assert float(harmonic_number(k)) == pytest.approx(sum(1 / i for i in range(1, k + 1)), abs=1e-12)
    assert float(bonbon_beta(2)) == pytest.approx(0.5)
    assert float(bonbon_beta(4)) == pytest.approx(1 / (2 * 3 * (1 + 1 / 2 + 1 / 3)))


# ---------------------------------------------------------------------------------------------------
# Targets


def test_exact_target_matches_enumeration_and_theory_example():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    r = np.array([0.0, 1.0, 1.0, 2.0])
    got = np.exp(np.asarray(vbon_target_log_probs(np.log(p), r, 3, "exact")))
    np.testing.assert_allclose(got, brute_force_bon(p, r, 3), atol=1e-12)
    np.testing.assert_allclose(got, [0.001, 0.086, 0.129, 0.784], atol=1e-12)


def test_continuous_target_formula_and_bad_target():
    p = np.array([0.4, 0.3, 0.2, 0.1])
    r = np.array([1.0, 2.0, 3.0, 4.0])
    f = np.cumsum(p)
    w = p * f**4
    got = np.exp(np.asarray(vbon_target_log_probs(np.log(p), r, 5, "continuous")))
    np.testing.assert_allclose(got, w / w.sum(), rtol=1e-12)
    with pytest.raises(ValueError, match="target"):
        vbon_target_log_probs(np.log(p), r, 5, "nope")


def test_continuous_optimum_equals_bon_without_ties_and_differs_with_ties():
    """Without ties the continuous-form optimum p·F^{n−1} → π_n as the space refines (max p → 0);
    with ties (few reward levels of large mass) it stays a fixed distance away."""
    n = 8
    effect = jax.jit(tie_effect)
    tv_free, tv_tied = [], []
    for k in (50, 500, 5000):
        rng = np.random.default_rng(k)
        p = rng.dirichlet(np.ones(k))
        r = rng.normal(size=k)
        tv_free.append(float(effect(np.log(p), r, n).tv))
        tv_tied.append(float(effect(np.log(p), np.round(r), n).tv))  # ~7 levels
    # tie-free: the distance shrinks roughly like max p (×10 finer space ⇒ much smaller)
    assert tv_free[2] < 1e-2 and tv_free[2] < tv_free[0] / 10
    # ties: bounded away from 0 however fine the space
    assert min(tv_tied) > 0.05


# ---------------------------------------------------------------------------------------------------
# Training with exact gradients


def _task(seed=0, vocab=3, length=4):
    key = jax.random.key(seed)
    kp, kr = jax.random.split(key)
    ref = random_tabular_policy(kp, vocab, length, order=0)
    seqs, lp = enumerate_sequences(ref)
    rewards = jax.random.normal(kr, (seqs.shape[0],))  # a non-additive sequence-level reward
    return ref, seqs, lp, rewards


def test_exact_vbon_full_history_reaches_bon_and_memoryless_cannot():
    ref, seqs, lp, rewards = _task()
    n = 4
    target = vbon_target_log_probs(lp, rewards, n, "exact")
    data = {"sequences": seqs, "target_log_probs": target}
    opt = optax.adam(0.3)
    kls = {}
    for order in (None, 0):
        pol = expand_tabular_policy(ref, order)
        np.testing.assert_allclose(pol.log_prob(seqs), lp, atol=1e-12)  # initialised at the reference
        state = init_train_state(jax.random.key(1), pol, opt)
        state, hist = train_steps(state, data, objective=ExactDivergenceLoss(), optimizer=opt, num_steps=300)
        kls[order] = float(reverse_kl(state.policy.log_prob(seqs), target))
        assert kls[order] < float(hist["loss"][0])
    assert kls[None] < 1e-3
    # A product distribution cannot represent BoN of a non-additive reward: the best memoryless fit
    # (training has plateaued; the loss history is flat) stays far from π_n.
    assert kls[0] > 0.05


def test_exact_kl_rl_converges_to_tilted_policy():
    ref, seqs, lp, rewards = _task(1, 2, 4)
    beta = 0.5
    data = {"sequences": seqs, "ref_log_probs": lp, "rewards": rewards, "beta": jnp.asarray(beta)}
    opt = optax.adam(0.3)
    state = init_train_state(jax.random.key(0), expand_tabular_policy(ref, None), opt)
    state, _ = train_steps(state, data, objective=ExactKLRegularisedLoss(), optimizer=opt, num_steps=300)
    tilted = lp + rewards / beta
    tilted = tilted - jax.nn.logsumexp(tilted)
    assert float(reverse_kl(state.policy.log_prob(seqs), tilted)) < 1e-3


def test_iterated_bond_effective_n_grows_as_power():
    ref, seqs, lp, rewards = _task(2, 2, 4)
    opt = optax.adam(0.3)
    state = init_train_state(jax.random.key(0), expand_tabular_policy(ref, None), opt)
    state, hist = iterated_bond(state, seqs, rewards, 2, num_iterations=2, steps_per_iteration=300, optimizer=opt)
    got = state.policy.log_prob(seqs)
    kl4 = float(reverse_kl(got, vbon_target_log_probs(lp, rewards, 4, "exact")))
    kl2 = float(reverse_kl(got, vbon_target_log_probs(lp, rewards, 2, "exact")))
    assert kl4 < 1e-2 < kl2
    assert len(hist) == 2


def test_bon_sft_converges_to_empirical_distribution():
    ref, seqs, lp, rewards = _task(3, 2, 3)
    data = bon_sft_data(jax.random.key(5), seqs, lp, rewards, 4, 200)
    opt = optax.adam(0.3)
    state = init_train_state(jax.random.key(0), expand_tabular_policy(ref, None), opt)
    state, _ = train_steps(state, data, objective=MaximumLikelihoodLoss(), optimizer=opt, num_steps=300)
    # MLE of a full-history policy = empirical frequencies of the samples
    idx = np.asarray(data["samples"]) @ (2 ** np.arange(2, -1, -1))
    freq = np.bincount(idx, minlength=8) / 200
    np.testing.assert_allclose(np.exp(np.asarray(state.policy.log_prob(seqs))), freq, atol=2e-3)


def test_bonbon_pairs_and_loss():
    ref, seqs, lp, rewards = _task(4, 2, 3)
    data = bonbon_data(jax.random.key(0), seqs, lp, rewards, 4, 64)
    r = np.asarray(rewards)
    idx = lambda s: np.asarray(s) @ (2 ** np.arange(2, -1, -1))
    assert np.all(r[idx(data["best"])] >= r[idx(data["worst"])])
    np.testing.assert_allclose(data["ref_log_best"], np.asarray(lp)[idx(data["best"])])
    _loss, aux = BoNBoNLoss()(ref, data, jax.random.key(0))
    # at the reference, h = 0, so the IPO term is (1/(2β*))² exactly
    assert float(aux["ipo"]) == pytest.approx((0.5 / float(data["beta"])) ** 2)
    with pytest.raises(ValueError):
        bonbon_data(jax.random.key(0), seqs, lp, rewards, 1, 4)


# ---------------------------------------------------------------------------------------------------
# Sampled objective: unbiased gradient


def test_empirical_log_cdfs():
    ref_r = jnp.array([0.0, 1.0, 1.0, 2.0, 3.0])
    fm, f = empirical_log_cdfs(jnp.array([1.0, -1.0, 5.0]), ref_r)
    np.testing.assert_allclose(np.exp(fm), np.array([2, 1, 6]) / 6)
    np.testing.assert_allclose(np.exp(f), np.array([4, 1, 6]) / 6)


@pytest.mark.parametrize("kind", ["log_cdf", "bon_log_ratio", "raw"])
def test_sampled_gradient_is_unbiased(kind):
    """Mean of the REINFORCE surrogate's gradient over T independent batches equals the exact gradient
    of c·KL(π‖p) − E_π[R] (enumerated, with the same F̂). Every coordinate within 5 standard errors:
    false-alarm rate per coordinate ≈ 6e-7 (normal approximation, T = 3000), < 1e-4 for all."""
    vocab, length = 2, 3
    kp, kq, kr, km = jax.random.split(jax.random.key(7), 4)
    ref = random_tabular_policy(kp, vocab, length, order=None)
    pol = random_tabular_policy(kq, vocab, length, order=None)
    from bontheory import random_token_score_reward

    reward = random_token_score_reward(kr, vocab, length)
    ref_samples = reward(ref.sample(km, 9))
    obj = PolicyGradientLoss(num_samples=4, reward_kind=kind)
    data = {
        "ref_policy": ref,
        "reward": reward,
        "kl_coef": jnp.asarray(0.7),
        "n": jnp.asarray(5.0),
        "ref_reward_samples": ref_samples,
    }
    seqs, lp_ref = enumerate_sequences(ref)
    big_r = obj.sequence_reward(data, seqs)

    def exact_loss(policy):
        lq = policy.log_prob(seqs)
        return 0.7 * reverse_kl(lq, lp_ref) - jnp.sum(jnp.exp(lq) * big_r)

    g_exact = jax.grad(exact_loss)(pol).params["logits"]
    t = 3000
    keys = jax.random.split(jax.random.key(11), t)
    grads = jax.jit(jax.vmap(lambda k: jax.grad(lambda p: obj(p, data, k)[0])(pol).params["logits"]))(keys)
    mean = jnp.mean(grads, axis=0)
    se = jnp.std(grads, axis=0) / math.sqrt(t)
    assert float(jnp.max(jnp.abs(g_exact))) > 1e-2  # a real test: the gradient is not trivially 0
    assert bool(jnp.all(jnp.abs(mean - g_exact) <= 5 * se + 1e-12)), np.max(np.abs(mean - g_exact) / (se + 1e-12))


def test_sampled_vbon_training_approaches_its_target():
    vocab, length = 2, 3
    kp, kr, km = jax.random.split(jax.random.key(3), 3)
    ref = random_tabular_policy(kp, vocab, length, order=None)
    from bontheory import random_token_score_reward

    reward = random_token_score_reward(kr, vocab, length)
    ref_samples = reward(ref.sample(km, 300))
    obj = PolicyGradientLoss(num_samples=32, reward_kind="log_cdf")
    data = {"ref_policy": ref, "reward": reward, "kl_coef": jnp.asarray(1.0), "n": jnp.asarray(4.0),
            "ref_reward_samples": ref_samples}
    seqs, lp = enumerate_sequences(ref)
    target = lp + obj.sequence_reward(data, seqs)  # ∝ p F̂^{n−1}
    target = target - jax.nn.logsumexp(target)
    opt = optax.adam(0.05)
    state = init_train_state(jax.random.key(0), ref, opt)
    kl0 = float(reverse_kl(lp, target))
    state, _ = train_steps(state, data, objective=obj, optimizer=opt, num_steps=400)
    kl1 = float(reverse_kl(state.policy.log_prob(seqs), target))
    assert kl1 < 0.2 * kl0


# ---------------------------------------------------------------------------------------------------
# Checkpoints


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    vocab, length = 2, 3
    kp, kr, km = jax.random.split(jax.random.key(0), 3)
    ref = random_tabular_policy(kp, vocab, length, order=0)
    from bontheory import random_token_score_reward

    reward = random_token_score_reward(kr, vocab, length)
    data = {"ref_policy": ref, "reward": reward, "kl_coef": jnp.asarray(1.0), "n": jnp.asarray(4.0),
            "ref_reward_samples": reward(ref.sample(km, 50))}
    obj = PolicyGradientLoss(num_samples=8)
    opt = optax.adam(0.05)
    init = init_train_state(jax.random.key(9), ref, opt)
    full, _ = train_steps(init, data, objective=obj, optimizer=opt, num_steps=20)
    path = tmp_path / "ckpt.msgpack"
    part, _ = train_with_checkpoints(init, data, objective=obj, optimizer=opt, num_steps=10, chunk_steps=5, path=path)
    assert int(part.step) == 10 and path.exists()
    # "restart": a fresh initial state as template; training resumes from step 10
    resumed, hist = train_with_checkpoints(
        init, data, objective=obj, optimizer=opt, num_steps=20, chunk_steps=5, path=path
    )
    assert int(resumed.step) == 20 and hist["loss"].shape == (10,)
    for a, b in zip(
        jax.tree.leaves((full.policy, full.opt_state)), jax.tree.leaves((resumed.policy, resumed.opt_state))
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
    assert bool(jnp.all(jax.random.key_data(resumed.key) == jax.random.key_data(init.key)))
    # and the checkpointed run differs from the initial state (it really trained)
    assert not np.allclose(np.asarray(resumed.policy.params["logits"]), np.asarray(ref.params["logits"]))


# ---------------------------------------------------------------------------------------------------
# Measurements


def test_approximation_metrics_at_bon_and_at_reference():
    _ref, _seqs, lp, rewards = _task(5, 2, 3)
    bon = vbon_target_log_probs(lp, rewards, 4, "exact")
    m = approximation_metrics(bon, lp, rewards, bon)
    assert float(m.kl_to_bon) == pytest.approx(0.0, abs=1e-12)
    assert float(m.win_rate_vs_bon) == pytest.approx(0.5, abs=1e-12)
    assert float(m.reward_gap) == pytest.approx(0.0, abs=1e-12)
    m0 = approximation_metrics(lp, lp, rewards, bon)
    assert float(m0.win_rate_vs_ref) == pytest.approx(0.5, abs=1e-12)
    assert float(m0.kl_to_ref) == pytest.approx(0.0, abs=1e-12)
    assert float(m0.reward_gap) > 0 and float(m0.win_rate_vs_bon) < 0.5


def test_pareto_frontier():
    kl = np.array([0.0, 1.0, 1.0, 2.0, 0.5])
    rw = np.array([0.0, 1.0, 0.5, 1.0, 0.8])
    np.testing.assert_array_equal(pareto_frontier(kl, rw), [True, True, False, False, True])
    with pytest.raises(ValueError):
        pareto_frontier(kl, rw[:3])


# ---------------------------------------------------------------------------------------------------
# The toy task and the method entry point


def test_sentiment_reward_negation_is_not_additive():
    from bontheory import sentiment_reward

    rew = sentiment_reward(4)  # tokens: 0 "not", 1 (+1), 2 (−1), 3 (+2)
    seqs = jnp.array([[1, 1, 2], [0, 1, 3], [0, 0, 2], [3, 0, 0]])
    np.testing.assert_allclose(rew(seqs), [1.0, 1.0, 1.0, 2.0])
    # non-additive: r(0,1) − r(3,1) ≠ r(0,2) − r(3,2) (the first token's effect depends on the second)
    pairs = rew(jnp.array([[0, 1], [3, 1], [0, 2], [3, 2]]))
    assert float(pairs[0] - pairs[1]) != float(pairs[2] - pairs[3])
    with pytest.raises(ValueError):
        sentiment_reward(2)


def test_train_toward_bon_validates_method_and_runs():
    from bontheory import MethodSettings, train_toward_bon

    ref, seqs, lp, rewards = _task(6, 2, 3)
    kw = dict(ref_policy=ref, reward=None, sequences=seqs, ref_log_probs=lp, rewards=rewards)
    with pytest.raises(ValueError, match="unknown method"):
        train_toward_bon(jax.random.key(0), "nope", ref, n=4, **kw)
    with pytest.raises(ValueError, match="power of 2"):
        train_toward_bon(jax.random.key(0), "bond_iterated", ref, n=6, **kw)
    with pytest.raises(ValueError, match="beta"):
        train_toward_bon(jax.random.key(0), "kl_rl", ref, n=4, **kw)
    init = expand_tabular_policy(ref, None)
    pol, _info = train_toward_bon(
        jax.random.key(0), "vbon_exact", init, n=4, settings=MethodSettings(num_steps=300, learning_rate=0.3), **kw
    )
    assert float(reverse_kl(pol.log_prob(seqs), vbon_target_log_probs(lp, rewards, 4, "exact"))) < 1e-3
