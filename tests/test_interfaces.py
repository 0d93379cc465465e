"""The Policy and Reward interfaces: a plain function is a reward everywhere, and a policy of one's own works.

A plain function must give exactly the numbers of the equivalent built-in reward (same key, same draws) in
every Monte Carlo entry point (kernels, token-level samplers, sweep cells, sharded kernel, sampled vBoN) and
on the exact path (enumeration + reward), and inside the rewards built on another reward. Each distinct
(function, configuration) compiles the kernel anew, so the default run checks the kernels, one sampler and the
exact path; the twins through every other entry point are one slow test.
"""

import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bontheory as bt

V, L, N, T = 3, 3, 4, 64


#: The plain-function twin of ``TokenCountReward(target=0)``, written as a user writes it: a lambda with an
#: integer result (cast to float). One function object for the whole file: one compilation per configuration.
count_zeros = lambda seqs: jnp.sum(seqs == 0, axis=-1)


BUILTIN = bt.TokenCountReward(target=0)


def _policy():
    return bt.random_tabular_policy(jax.random.key(0), V, L, order=1, temperature=0.7)


def _assert_same(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ---------------------------------------------------------------------------------------------------
# as_reward / FunctionReward


def test_as_reward_wraps_plain_callables_only():
    wrapped = bt.as_reward(count_zeros)
    assert isinstance(wrapped, bt.FunctionReward) and wrapped.fn is count_zeros
    assert bt.as_reward(wrapped) is wrapped  # idempotent
    assert bt.as_reward(BUILTIN) is BUILTIN  # a pytree (no leaves) is returned as is
    scores = bt.random_token_score_reward(jax.random.key(1), V, L)
    assert bt.as_reward(scores) is scores  # a pytree with one array leaf too
    assert isinstance(bt.as_reward(functools.partial(count_zeros)), bt.FunctionReward)
    assert isinstance(wrapped, bt.Reward) and isinstance(BUILTIN, bt.Reward)
    # two wrappers of one function are equal and hash alike: one jit compilation
    assert bt.FunctionReward(count_zeros) == wrapped and hash(bt.FunctionReward(count_zeros)) == hash(wrapped)
    assert jax.tree.leaves(wrapped) == []
    seqs = bt.all_sequences(V, L)
    out = wrapped(seqs)
    assert jnp.issubdtype(out.dtype, jnp.floating) and out.shape == (V**L,)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(BUILTIN(seqs)))


def test_as_reward_bad_input():
    with pytest.raises(TypeError, match="reward must be callable"):
        bt.as_reward(jnp.zeros(3))

    class Unhashable:
        __hash__ = None

        def __call__(self, seqs):
            return jnp.zeros(seqs.shape[:-1])

    with pytest.raises(TypeError, match="hashed"):
        bt.as_reward(Unhashable())
    with pytest.raises(TypeError, match="integer"):
        bt.as_reward(count_zeros)(jnp.zeros((2, L)))


# ---------------------------------------------------------------------------------------------------
# A plain function through every entry point gives the built-in reward's numbers


def _check_draws(policy, draws):
    """Selected draws are consistent: their rewards are the built-in reward's, their log-probs the policy's."""
    np.testing.assert_array_equal(np.asarray(draws.rewards), np.asarray(BUILTIN(draws.sequences)))
    np.testing.assert_allclose(np.asarray(draws.log_probs), np.asarray(policy.log_prob(draws.sequences)), rtol=1e-12)


def test_plain_function_through_the_kernels_and_a_sampler():
    """One test, so that the kernel compiled for the plain function serves the sampler too (the twins of
    every sampler, sweep cells, the sharded kernel and sampled vBoN are the slow test below)."""
    policy, key = _policy(), jax.random.key(3)
    draws = bt.bon_monte_carlo(key, policy, count_zeros, N, T, chunk_size=3)
    _assert_same(draws, bt.bon_monte_carlo(key, policy, BUILTIN, N, T, chunk_size=3))
    cands = bt.bon_candidates(key, policy, count_zeros, N, T, chunk_size=3, return_sequences=True)
    # the same candidates as the kernel saw (same key and chunks), scored as the built-in reward scores them
    np.testing.assert_array_equal(np.asarray(cands.rewards), np.asarray(BUILTIN(cands.sequences)))
    np.testing.assert_array_equal(np.asarray(cands.rewards.max(-1)), np.asarray(draws.rewards))
    np.testing.assert_array_equal(np.asarray(cands.sequences[jnp.arange(T), draws.index]), np.asarray(draws.sequences))
    _check_draws(policy, bt.quantile_truncation_policy_sample(key, policy, count_zeros, N, 2.0, T, chunk_size=3))


def test_plain_function_through_the_exact_path():
    policy = _policy()
    seqs, logp = bt.enumerate_sequences(policy)
    fn_rewards, builtin_rewards = bt.as_reward(count_zeros)(seqs), BUILTIN(seqs)
    np.testing.assert_array_equal(np.asarray(fn_rewards), np.asarray(builtin_rewards))
    p = jnp.exp(logp)
    np.testing.assert_array_equal(
        np.asarray(bt.bon_pmf(p, fn_rewards, N)), np.asarray(bt.bon_pmf(p, builtin_rewards, N))
    )
    _assert_same(bt.exact_space(policy, count_zeros)._asdict(), bt.exact_space(policy, BUILTIN)._asdict())


def test_plain_function_in_rewards_built_on_a_reward():
    policy, seqs = _policy(), bt.all_sequences(V, L)
    k_noise, k_hack = jax.random.split(jax.random.key(6))
    noisy_fn = bt.NoisyProxyReward(count_zeros, k_noise, 0.5)
    noisy = bt.NoisyProxyReward(BUILTIN, k_noise, 0.5)
    assert isinstance(noisy_fn.gold, bt.FunctionReward)
    np.testing.assert_array_equal(np.asarray(noisy_fn(seqs)), np.asarray(noisy(seqs)))
    # the composite is a pytree of arrays again: a valid jit argument (XLA may fuse the multiply-add)
    np.testing.assert_allclose(
        np.asarray(jax.jit(lambda r, s: r(s))(noisy_fn, seqs)), np.asarray(noisy(seqs)), rtol=1e-14
    )
    np.testing.assert_array_equal(
        np.asarray(bt.QuantizedReward(count_zeros, 2.0)(seqs)), np.asarray(bt.QuantizedReward(BUILTIN, 2.0)(seqs))
    )
    hack_fn, cal_fn = bt.make_hack_proxy(k_hack, count_zeros, policy, 0.1)
    hack, cal = bt.make_hack_proxy(k_hack, BUILTIN, policy, 0.1)
    _assert_same(cal_fn, cal)
    np.testing.assert_array_equal(np.asarray(hack_fn(seqs)), np.asarray(hack(seqs)))
    np.testing.assert_array_equal(np.asarray(hack_fn.gold(seqs)), np.asarray(hack.gold(seqs)))


@pytest.mark.slow
def test_plain_function_twins_in_every_sampler_sweep_and_training():
    """Every token-level sampler, sweep cells, the sharded kernel, sampled vBoN and a hack proxy through the
    kernel: identical numbers with the plain function and with the built-in reward."""
    policy, key = _policy(), jax.random.key(4)
    for sample, param in (
        (bt.soft_bon_policy_sample, 0.5),
        (bt.regularized_bon_policy_sample, 0.3),
        (bt.quantile_truncation_policy_sample, 2.0),
    ):
        _assert_same(sample(key, policy, count_zeros, N, param, T), sample(key, policy, BUILTIN, N, param, T))
    _assert_same(
        bt.pessimism_policy_sample(key, policy, count_zeros, N, 1.0, T, r_max=float(L)),
        bt.pessimism_policy_sample(key, policy, BUILTIN, N, 1.0, T, r_max=float(L)),
    )
    space = bt.exact_space(policy, BUILTIN)
    assert bt.bon_cell(key, policy, count_zeros, N, T, space=space) == bt.bon_cell(
        key, policy, BUILTIN, N, T, space=space
    )
    rows_fn = bt.bon_sweep(key, {"p": policy}, {"count": count_zeros}, [N], [0], T, exact=True)
    assert rows_fn == bt.bon_sweep(key, {"p": policy}, {"count": BUILTIN}, [N], [0], T, exact=True)
    mesh = bt.trial_mesh()
    _assert_same(
        bt.sharded_bon_monte_carlo(key, policy, count_zeros, N, T, mesh=mesh),
        bt.sharded_bon_monte_carlo(key, policy, BUILTIN, N, T, mesh=mesh),
    )

    ref = bt.random_tabular_policy(jax.random.key(7), 2, 3, order=0)
    seqs, lp = bt.enumerate_sequences(ref)
    settings = bt.MethodSettings(num_steps=3, num_reference_samples=16, sampled_batch=4)

    def train(reward):
        pol, info = bt.train_toward_bon(
            jax.random.key(8),
            "vbon_sampled",
            ref,
            ref_policy=ref,
            reward=reward,
            sequences=seqs,
            ref_log_probs=lp,
            rewards=BUILTIN(seqs),
            n=4,
            settings=settings,
        )
        return pol, info["loss"]

    _assert_same(train(count_zeros), train(BUILTIN))

    hack_fn, _ = bt.make_hack_proxy(jax.random.key(6), count_zeros, policy, 0.1)
    hack, _ = bt.make_hack_proxy(jax.random.key(6), BUILTIN, policy, 0.1)
    _assert_same(bt.bon_monte_carlo(key, policy, hack_fn, N, T), bt.bon_monte_carlo(key, policy, hack, N, T))


# ---------------------------------------------------------------------------------------------------
# A policy of one's own: any pytree with the Policy members


@flax.struct.dataclass
class ProductPolicy:
    """A memoryless policy ``π(y) = Π_t softmax(logits[t])[y_t]`` written directly against the interface."""

    logits: jax.Array  # float[L, V]

    @property
    def vocab_size(self) -> int:
        return self.logits.shape[1]

    @property
    def length(self) -> int:
        return self.logits.shape[0]

    def next_token_log_probs(self, tokens):
        logp = jax.nn.log_softmax(self.logits, axis=-1)
        return jnp.broadcast_to(logp, tokens.shape + (self.vocab_size,))

    def token_log_probs(self, sequences):
        logp = jax.nn.log_softmax(self.logits, axis=-1)
        return logp[jnp.arange(self.length), sequences]

    def log_prob(self, sequences):
        return jnp.sum(self.token_log_probs(sequences), axis=-1)

    def sample(self, key, num):
        return jax.random.categorical(key, self.logits, axis=-1, shape=(num, self.length)).astype(jnp.int32)


def test_a_policy_of_ones_own_works_where_a_policy_is_taken():
    logits = jax.random.normal(jax.random.key(9), (L, V))
    mine, builtin = ProductPolicy(logits), bt.tabular_policy_from_logits(logits, order=0)
    assert isinstance(mine, bt.Policy) and isinstance(builtin, bt.Policy)
    assert isinstance(builtin, bt.ModulePolicy) and not isinstance(object(), bt.Policy)
    seqs, logp = bt.enumerate_sequences(mine)
    seqs_b, logp_b = bt.enumerate_sequences(builtin)
    np.testing.assert_array_equal(np.asarray(seqs), np.asarray(seqs_b))
    np.testing.assert_allclose(np.asarray(logp), np.asarray(logp_b), rtol=1e-12)
    np.testing.assert_allclose(float(bt.sequence_kl(mine, builtin)), 0.0, atol=1e-12)
    draws = bt.bon_monte_carlo(jax.random.key(10), mine, count_zeros, N, T, chunk_size=3)
    np.testing.assert_allclose(np.asarray(draws.log_probs), np.asarray(builtin.log_prob(draws.sequences)), rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(draws.rewards), np.asarray(BUILTIN(draws.sequences)))
