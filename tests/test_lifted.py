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
from references import chi2_pvalue, lexicographic_index

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


@pytest.mark.slow  # ~30 s of compilation on 2 cores
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


# ---------------------------------------------------------------------------------------------------
# Exact sequence draws (forward filtering, backward sampling). Each chi-square test has a false-alarm rate
# of 1e-4 (p-value threshold) under the exact law; keys are fixed, so a run is reproducible.

ALPHA = 1e-4
SAMPLE_REWARD = bt.reward_sum(bt.PatternCountReward((1, 1)), bt.PatternReward((0, 2), value=2.0))


@pytest.mark.parametrize("order", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_bon_draws_follow_the_exact_sequence_pmf(order):
    policy = _policy(order, key=20 + order, length=4)
    seqs, log_p = bt.enumerate_sequences(policy)
    pmf = bt.bon_pmf(jnp.exp(log_p), SAMPLE_REWARD(seqs), 5)
    draws = bt.bon_sample_sequences_exact(jax.random.key(order), policy, SAMPLE_REWARD, 5, 20_000)
    assert draws.shape == (20_000, 4) and draws.dtype == jnp.int32
    assert chi2_pvalue(lexicographic_index(draws, V), pmf) > ALPHA


def test_level_law_draws_give_soft_bon_and_tilted_sequences():
    policy = _policy(1, key=30, length=4)
    seqs, log_p = bt.enumerate_sequences(policy)
    p, r = jnp.exp(log_p), SAMPLE_REWARD(seqs)
    law = bt.reward_distribution(policy, SAMPLE_REWARD)
    m = jnp.exp(law.log_probs)
    cases = {
        "soft_bon": (jnp.log(bt.soft_bon_pmf(m, law.values, 4, 0.7)), bt.soft_bon_pmf(p, r, 4, 0.7)),
        "tilt": (law.log_probs + law.values / 0.5, bt.tilted_pmf(p, r, 0.5)),
        "truncation": (jnp.log(bt.quantile_truncated_pmf(m, law.values, 3.0)), bt.quantile_truncated_pmf(p, r, 3.0)),
    }
    for i, (level_log_probs, pmf) in enumerate(cases.values()):
        draws = bt.sample_sequences_given_level_law(jax.random.key(i), policy, SAMPLE_REWARD, level_log_probs, 20_000)
        assert chi2_pvalue(lexicographic_index(draws, V), pmf) > ALPHA
    with pytest.raises(ValueError, match="level_log_probs must have shape"):
        bt.sample_sequences_given_level_law(jax.random.key(0), policy, SAMPLE_REWARD, law.log_probs[:-1], 10)


BIG_REWARDS = [
    bt.TokenCountReward(3),
    pytest.param(bt.reward_sum(bt.TokenCountReward(3), bt.PatternReward((1, 2), value=4.0)), marks=pytest.mark.slow),
]


@pytest.mark.slow  # ~30-60 s per reward on 2 cores
@pytest.mark.parametrize("reward", BIG_REWARDS)
def test_bon_draws_on_a_space_beyond_enumeration(reward):
    """V = 50, L = 256 (50^256 sequences), Markov policy: the draws' rewards follow the exact BoN level law
    (chi-square), and exact expected reward and win rate agree with bon_monte_carlo within 4 standard errors."""
    vocab, length, n = 50, 256, 8
    policy = _policy(1, key=40, vocab=vocab, length=length)
    law = bt.reward_distribution(policy, reward)
    values = np.asarray(law.values)
    draws = bt.bon_sample_sequences_exact(jax.random.key(1), policy, reward, n, 4000)
    level = np.searchsorted(values, np.asarray(reward(draws)))
    assert np.all(values[level] == np.asarray(reward(draws)))
    q = np.exp(np.asarray(bt.bon_level_log_probs(law.log_probs, n)))
    assert chi2_pvalue(level, q) > ALPHA

    m = jnp.exp(law.log_probs)
    exact_reward = float(bt.bon_expected_reward(m, law.values, n))
    exact_win = float(bt.bon_win_rate(m, law.values, n))
    trials = 1000
    mc = bt.bon_monte_carlo(jax.random.key(2), policy, reward, n, trials)
    r_mc = np.asarray(mc.rewards)
    r_ref = np.asarray(reward(policy.sample(jax.random.key(3), trials)))
    wins = (r_mc > r_ref) + 0.5 * (r_mc == r_ref)
    assert abs(r_mc.mean() - exact_reward) < 4 * r_mc.std(ddof=1) / np.sqrt(trials)
    assert abs(wins.mean() - exact_win) < 4 * wins.std(ddof=1) / np.sqrt(trials)
    # and the exact draws' own averages agree with the exact values too
    r_ex = np.asarray(reward(draws))
    assert abs(r_ex.mean() - exact_reward) < 4 * r_ex.std(ddof=1) / np.sqrt(len(r_ex))


# ---------------------------------------------------------------------------------------------------
# The tilted sequence policy and the reward–KL frontier on long sequences


@pytest.mark.parametrize("order", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_tilted_policy_enumerated_law_equals_tilted_pmf(order):
    policy = _policy(order, key=50 + order, length=4)
    seqs, log_p = bt.enumerate_sequences(policy)
    betas = jnp.asarray([0.3, 1.7])
    for reward in (SAMPLE_REWARD, _int_scores(3, length=4)):
        r = reward(seqs)
        tilted = bt.tilted_sequence_policy(policy, reward, 0.7)
        assert isinstance(tilted, bt.Policy)
        assert isinstance(tilted, bt.AutomatonPolicy) == (reward is SAMPLE_REWARD)  # one state -> tabular
        _, log_t = bt.enumerate_sequences(tilted)
        np.testing.assert_allclose(np.exp(np.asarray(log_t)), np.asarray(bt.tilted_pmf(jnp.exp(log_p), r, 0.7)),
                                   rtol=1e-12, atol=1e-15)
        lifted, enumerated = bt.lifted_reward_kl_frontier(policy, reward, betas), bt.reward_kl_frontier(
            jnp.exp(log_p), r, betas)
        np.testing.assert_allclose(np.asarray(lifted.kl), np.asarray(enumerated.kl), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(np.asarray(lifted.value), np.asarray(enumerated.value), rtol=1e-12, atol=1e-13)


def test_automaton_policy_samples_follow_its_law():
    policy = _policy(1, key=60, length=4)
    tilted = bt.tilted_sequence_policy(policy, SAMPLE_REWARD, 0.5)
    _, log_t = bt.enumerate_sequences(tilted)
    draws = tilted.sample(jax.random.key(0), 20_000)
    assert draws.shape == (20_000, 4) and draws.dtype == jnp.int32
    assert chi2_pvalue(lexicographic_index(draws, V), np.exp(np.asarray(log_t))) > ALPHA


@pytest.mark.slow
def test_tilted_policy_on_a_space_beyond_enumeration():
    """V = 50, L = 256: the tilted policy's reward law is m e^{R/β}/Z (exactly, by the DP under the tilted
    policy) and its chain-rule KL to p equals the frontier's KL; with a pattern (automaton policy) the sampled
    rewards follow m e^{R/β}/Z (chi-square, false-alarm rate 1e-4)."""
    vocab, length, beta = 50, 256, 2.0
    policy = _policy(1, key=70, vocab=vocab, length=length)
    reward = _int_scores(4, length=length, vocab=vocab, low=0, high=4)
    tilted = bt.tilted_sequence_policy(policy, reward, beta)
    law, law_t = bt.reward_distribution(policy, reward), bt.reward_distribution(tilted, reward)
    target = law.log_probs + law.values / beta
    target = target - jax.nn.logsumexp(target)
    np.testing.assert_array_equal(np.asarray(law_t.values), np.asarray(law.values))
    np.testing.assert_allclose(np.asarray(law_t.log_probs), np.asarray(target), rtol=1e-10, atol=1e-8)
    frontier = bt.lifted_reward_kl_frontier(policy, reward, beta)
    np.testing.assert_allclose(float(bt.sequence_kl(tilted, policy)), float(frontier.kl), rtol=1e-10)

    pattern_reward = bt.reward_sum(bt.TokenCountReward(3), bt.PatternCountReward((1, 2), weight=2.0))
    tilted = bt.tilted_sequence_policy(policy, pattern_reward, beta)
    assert isinstance(tilted, bt.AutomatonPolicy)
    law = bt.reward_distribution(policy, pattern_reward)
    draws = tilted.sample(jax.random.key(1), 4000)
    values = np.asarray(law.values)
    level = np.searchsorted(values, np.asarray(pattern_reward(draws)))
    assert np.all(values[level] == np.asarray(pattern_reward(draws)))
    q = jax.nn.softmax(law.log_probs + law.values / beta)
    assert chi2_pvalue(level, np.asarray(q)) > ALPHA


# ---------------------------------------------------------------------------------------------------
# Exact vBoN at scale: KL(π_θ‖π_n) = KL(π_θ‖p) − E_{π_θ}[λ_n(R)]

VBON_REWARD = bt.reward_sum(bt.TokenCountReward(0), bt.PatternReward((1, 2), value=2.0))


def _enumerated_vbon_loss(seqs, target):
    def loss(logits, order):
        return bt.reverse_kl(bt.tabular_policy_from_logits(logits, order).log_prob(seqs), target)

    return loss


@pytest.mark.parametrize("order", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_lifted_vbon_loss_and_gradient_equal_enumeration(order):
    ref = _policy(1, key=80, length=4)
    seqs, log_p = bt.enumerate_sequences(ref)
    logits = jax.random.normal(jax.random.key(81), (4, V**order, V))
    for target_kind in ("exact", "continuous"):
        target = bt.vbon_target_log_probs(log_p, VBON_REWARD(seqs), 8, target_kind)
        objective, data = bt.lifted_vbon_data(ref, VBON_REWARD, 8, order, target_kind)

        def lifted(lg):
            return objective(bt.tabular_policy_from_logits(lg, order), data, jax.random.key(0))[0]

        enumerated = _enumerated_vbon_loss(seqs, target)
        np.testing.assert_allclose(float(lifted(logits)), float(enumerated(logits, order)), rtol=1e-12, atol=1e-14)
        g_lifted, g_enum = jax.grad(lifted)(logits), jax.grad(enumerated)(logits, order)
        np.testing.assert_allclose(np.asarray(g_lifted), np.asarray(g_enum), rtol=1e-9, atol=1e-12)
        assert float(jnp.max(jnp.abs(g_enum))) > 1e-3


def test_lifted_vbon_reaches_the_memoryless_optimum_of_an_independent_optimiser():
    """train_toward_bon('vbon_lifted') on a memoryless family reaches the optimum that scipy's L-BFGS-B finds
    on the enumerated loss (an optimiser and a loss that share no code with the lifted layer)."""
    from scipy.optimize import minimize

    ref = _policy(1, key=90, length=4)
    seqs, log_p = bt.enumerate_sequences(ref)
    n = 8
    target = bt.vbon_target_log_probs(log_p, VBON_REWARD(seqs), n, "exact")
    enumerated = jax.jit(lambda x: _enumerated_vbon_loss(seqs, target)(x.reshape(4, 1, V), 0))
    grad = jax.jit(jax.grad(enumerated))
    best = minimize(lambda x: float(enumerated(jnp.asarray(x))), np.zeros(4 * V), jac=lambda x: np.asarray(grad(x)),
                    method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 2000})
    init = bt.tabular_policy_from_logits(jnp.zeros((4, V)), order=0)
    trained, info = bt.train_toward_bon(jax.random.key(0), "vbon_lifted", init, ref_policy=ref, reward=VBON_REWARD,
                                        n=n, settings=bt.MethodSettings(num_steps=3000, learning_rate=0.05))
    reached = float(enumerated(trained.params["logits"].reshape(-1)))
    assert best.fun > 0.01  # the memoryless family cannot represent π_n here: a real optimum to reach
    assert reached - best.fun < 1e-7 and reached - best.fun > -1e-9
    np.testing.assert_allclose(float(info["loss"][-1]), reached, rtol=1e-6)


@pytest.mark.slow
def test_lifted_vbon_trains_on_long_sequences():
    vocab, length = 10, 128
    ref = _policy(1, key=95, vocab=vocab, length=length)
    reward = bt.reward_sum(bt.TokenCountReward(0), bt.PatternCountReward((1, 2)))
    init = bt.tabular_policy_from_logits(jnp.zeros((length, vocab)), order=0)
    _, info = bt.train_toward_bon(jax.random.key(0), "vbon_lifted", init, ref_policy=ref, reward=reward, n=16,
                                  settings=bt.MethodSettings(num_steps=30, learning_rate=0.1))
    loss = np.asarray(info["loss"])
    assert np.all(np.isfinite(loss)) and loss[-1] < 0.8 * loss[0]  # the memoryless floor to a Markov p is high
    assert abs(float(bt.lifted_vbon_loss(init, ref, reward, 16)) - loss[0]) < 1e-9 * max(1.0, loss[0])
