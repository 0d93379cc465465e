"""Equal budgets: every method's reward-model calls are what method_reward_calls states (counted by a reward
that counts the sequences it scores), and the curves compare methods at equal calls with β in units of the
proxy's spread, the same way in method_gold_curves and method_grid_curves."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bontheory as bt

V, L, T = 3, 3, 16
SCORED = []


def counting_reward(seqs):
    """Token count of 0, recording at run time how many sequences were scored (one entry per call)."""
    jax.debug.callback(lambda s: SCORED.append(int(np.asarray(s).size)), seqs[..., 0])
    return jnp.sum(seqs == 0, axis=-1).astype(jnp.float64)


def _policy():
    return bt.random_tabular_policy(jax.random.key(0), V, L, order=1, temperature=0.7)


def _calls(sample):
    SCORED.clear()
    out = sample()
    jax.block_until_ready(out)
    jax.effects_barrier()
    return sum(SCORED)


@pytest.mark.parametrize("budget", [7, 8])
def test_counted_calls_match_the_stated_budget(budget):
    policy, key = _policy(), jax.random.key(1)
    n_bon = int(bt.method_n_for_budget("bon", budget))
    n_pes = int(bt.method_n_for_budget("chi2_pessimism", budget))
    assert n_bon == budget and n_pes == (budget - 1) // 2
    bon = _calls(lambda: bt.bon_monte_carlo(key, policy, counting_reward, n_bon, T, chunk_size=n_bon))
    assert bon == T * int(bt.method_reward_calls("bon", n_bon)) == T * budget
    pes = _calls(lambda: bt.pessimism_policy_sample(key, policy, counting_reward, n_pes, 1.0, T, r_max=float(L),
                                                     chunk_size=2 * n_pes + 1))
    assert pes == T * int(bt.method_reward_calls("chi2_pessimism", n_pes)) <= T * budget


def test_budget_arithmetic():
    np.testing.assert_array_equal(bt.method_reward_calls("chi2_pessimism", [1, 2, 5]), [3, 5, 11])
    np.testing.assert_array_equal(bt.method_reward_calls("soft_bon", [1, 2, 5]), [1, 2, 5])
    np.testing.assert_array_equal(bt.method_n_for_budget("chi2_pessimism", [1, 2, 3, 4, 5]), [0, 0, 1, 1, 2])
    for m in ("bon", "soft_bon", "quantile_trunc", "regularized_bon", "chi2_pessimism"):
        b = np.arange(3, 40)
        n = bt.method_n_for_budget(m, b)
        assert np.all(bt.method_reward_calls(m, n) <= b) and np.all(bt.method_reward_calls(m, n + 1) > b)
    assert np.isinf(bt.method_reward_calls("tilted", 4))
    with pytest.raises(ValueError, match="population"):
        bt.method_n_for_budget("chi2_pessimism_limit", 10)
    with pytest.raises(ValueError, match="unknown method"):
        bt.method_reward_calls("best_of_everything", 3)


def _tied_problem():
    """A proxy with few distinct values (so χ²-pessimism's finite-N law is enumerable)."""
    policy = _policy()
    return bt.proxy_problem_from_rewards(
        policy, lambda s: jnp.sum(s == 0, axis=-1) + 0.5 * (s[..., 0] == 1), lambda s: jnp.sum(s == 0, axis=-1)
    )


def test_gold_curves_at_equal_calls_and_beta_in_spread_units():
    prob = _tied_problem()
    budgets = np.array([1, 2, 3, 9, 33])
    c = bt.method_gold_curves(prob, "chi2_pessimism", budgets, 0.3)
    np.testing.assert_array_equal(c.n, [0, 0, 1, 4, 16])
    assert np.all(np.isnan(c.gold_reward[:2])) and np.all(np.isnan(c.reward_calls[:2]))
    np.testing.assert_array_equal(c.reward_calls[2:], [3, 9, 33])
    sd = bt.proxy_spread(prob)
    p, r, gold = np.asarray(prob.ref_probs), np.asarray(prob.proxy), np.asarray(prob.gold)
    for j, n in ((2, 1), (3, 4), (4, 16)):
        law = np.asarray(bt.chi2_pessimism_sampler_pmf(p, r, n, 0.3 * sd))
        assert abs(c.gold_reward[j] - law @ gold) < 1e-12
    # the finite-N curve is not flat (the population target is)
    assert np.ptp(c.gold_reward[2:]) > 1e-3
    assert np.ptp(bt.method_gold_curves(prob, "chi2_pessimism_limit", budgets, 0.3).gold_reward) < 1e-12
    # per="n": sample sizes, calls 2n + 1
    cn = bt.method_gold_curves(prob, "chi2_pessimism", [1, 4], 0.3, per="n")
    np.testing.assert_array_equal(cn.reward_calls, [3, 9])
    np.testing.assert_allclose(cn.gold_reward, c.gold_reward[2:4], atol=1e-14)
    # the grid curves read β the same way (in units of the proxy's spread)
    grid = bt.method_grid_curves(prob, budgets, {"chi2_pessimism": (0.3,), "soft_bon": (0.5,)})
    np.testing.assert_array_equal(grid["chi2_pessimism"][0]["gold"], c.gold_reward)
    soft = bt.method_gold_curves(prob, "soft_bon", budgets, 0.5)
    np.testing.assert_allclose(grid["soft_bon"][0]["gold"], soft.gold_reward, atol=1e-14)
    np.testing.assert_array_equal(grid["reward_calls"]["chi2_pessimism"], c.reward_calls)
    np.testing.assert_array_equal(grid["n"]["bon"], budgets)
