"""Plain functions as rewards in a researcher's first study: a proxy/gold problem from two lambdas in one call,
and a lambda through every token-level sampler and the exact path (values checked against the lambda itself)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bontheory as bt

V, L = 3, 3

#: one function object per reward for the whole file (one compilation per configuration)
gold_fn = lambda seqs: jnp.sum(seqs == 0, axis=-1)  # integer result: cast to float by FunctionReward
proxy_fn = lambda seqs: jnp.sum(seqs == 0, axis=-1) + 0.5 * (seqs[..., -1] == 2)


def _policy():
    return bt.random_tabular_policy(jax.random.key(0), V, L, order=1, temperature=0.7)


def test_proxy_problem_from_rewards_matches_the_builtin_and_the_functions():
    policy = _policy()
    prob = bt.proxy_problem_from_rewards(policy, proxy_fn, gold_fn)
    seqs, logp = bt.enumerate_sequences(policy)
    np.testing.assert_array_equal(np.asarray(prob.space.sequences), np.asarray(seqs))
    np.testing.assert_array_equal(np.asarray(prob.space.log_probs), np.asarray(logp))
    np.testing.assert_array_equal(np.asarray(prob.proxy), np.asarray(proxy_fn(seqs), np.float64))
    np.testing.assert_array_equal(np.asarray(prob.gold), np.asarray(gold_fn(seqs), np.float64))
    builtin = bt.proxy_problem_from_rewards(policy, proxy_fn, bt.TokenCountReward(target=0))
    np.testing.assert_array_equal(np.asarray(builtin.gold), np.asarray(prob.gold))
    # the problem feeds the exact curves directly
    curves = bt.method_gold_curves(prob, "bon", [1, 2, 4])
    p = np.asarray(prob.ref_probs)
    assert abs(curves.gold_reward[0] - p @ np.asarray(prob.gold)) < 1e-12
    expected = np.asarray(bt.bon_pmf(prob.ref_probs, prob.proxy, 4)) @ np.asarray(prob.gold)
    assert abs(curves.gold_reward[2] - expected) < 1e-12


def test_proxy_problem_from_rewards_bad_input():
    with pytest.raises(TypeError, match="proxy must be callable"):
        bt.proxy_problem_from_rewards(_policy(), jnp.zeros(3), gold_fn)
    with pytest.raises(TypeError, match="gold must be callable"):
        bt.proxy_problem_from_rewards(_policy(), proxy_fn, 3.0)


@pytest.mark.slow
def test_plain_lambda_through_every_sampler_and_the_exact_path():
    """Every sampler compiles anew for the lambda (~1 min on 2 cores), so this is a slow test; the default run
    checks the kernels and one sampler in tests/test_interfaces.py."""
    policy, key, n, t = _policy(), jax.random.key(1), 2, 8
    seqs, logp = bt.enumerate_sequences(policy)
    space = bt.exact_space(policy, proxy_fn)
    np.testing.assert_array_equal(np.asarray(space.rewards), np.asarray(proxy_fn(seqs), np.float64))
    p = jnp.exp(logp)
    assert abs(float(jnp.sum(bt.bon_pmf(p, space.rewards, n))) - 1) < 1e-12
    draws = [
        bt.bon_monte_carlo(key, policy, proxy_fn, n, t),
        bt.soft_bon_policy_sample(key, policy, proxy_fn, n, 0.5, t),
        bt.regularized_bon_policy_sample(key, policy, proxy_fn, n, 0.3, t),
        bt.quantile_truncation_policy_sample(key, policy, proxy_fn, n, 2.0, t),
        bt.pessimism_policy_sample(key, policy, proxy_fn, n, 1.0, t, r_max=float(L) + 0.5),
        bt.sharded_bon_monte_carlo(key, policy, proxy_fn, n, t, mesh=bt.trial_mesh()),
    ]
    for d in draws:
        np.testing.assert_array_equal(np.asarray(d.rewards), np.asarray(proxy_fn(d.sequences), np.float64))
        np.testing.assert_allclose(np.asarray(d.log_probs), np.asarray(policy.log_prob(d.sequences)), rtol=1e-12)
    row = bt.bon_cell(key, policy, proxy_fn, n, t, space=space)
    assert row == bt.bon_cell(key, policy, bt.as_reward(proxy_fn), n, t, space=space)
