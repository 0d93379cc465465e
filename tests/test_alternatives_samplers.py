"""Finite-N samplers of the alternatives against their exact laws (chi-square tests).

Each test runs a Pearson chi-square goodness-of-fit test of sampler frequencies against the exact law
(computed by enumeration or closed form) at level α = 1e-4, so the false-alarm rate of this file
(9 chi-square tests) is below 1e-3; keys are fixed, so a pass is reproducible, but the tolerance is statistical.
"""

import jax
import numpy as np
import pytest
from references import P4, R4, brute_force_bon, brute_force_soft_bon, chi2_pvalue, pessimism_law_by_enumeration

import bontheory as bt

ALPHA = 1e-4
DRAWS = 8192


def test_soft_bon_sampler():
    x = bt.soft_bon_sample(jax.random.key(0), P4, R4, 3, 0.5, (DRAWS,))
    assert x.shape == (DRAWS,)
    assert chi2_pvalue(x, brute_force_soft_bon(P4, R4, 3, 0.5)) > ALPHA
    np.testing.assert_allclose(bt.soft_bon_pmf(P4, R4, 3, 0.5), brute_force_soft_bon(P4, R4, 3, 0.5), atol=1e-12)


def test_regularized_bon_sampler():
    x = bt.regularized_bon_sample(jax.random.key(1), P4, R4, 3, 0.7, (DRAWS,))
    assert chi2_pvalue(x, brute_force_bon(P4, R4 + 0.7 * np.log(P4), 3)) > ALPHA


@pytest.mark.parametrize("n,m", [(4, 2.0), (5, 1.5)])
def test_quantile_truncation_sampler(n, m):
    x = bt.quantile_truncation_sample(jax.random.key(2), P4, R4, n, m, (DRAWS,))
    assert chi2_pvalue(x, bt.quantile_truncation_sampler_pmf(P4, R4, n, m)) > ALPHA


def test_pessimism_sampler():
    n, beta = 6, 0.5
    x = bt.pessimism_sample(jax.random.key(3), P4, R4, n, beta, (DRAWS,))
    law = pessimism_law_by_enumeration(P4, R4, n, beta, R4.max())
    np.testing.assert_allclose(law.sum(), 1.0, atol=1e-12)
    assert chi2_pvalue(x, law) > ALPHA


# ---------------------------------------------------------------------------------------------------
# token-level samplers (built on the bontheory.mc kernels) against exact laws over enumerated sequences


@pytest.fixture(scope="module")
def token_problem():
    policy = bt.random_tabular_policy(jax.random.key(7), 2, 3, order=1)
    seqs, logp = bt.enumerate_sequences(policy)
    reward = bt.TokenCountReward(target=1)  # many ties: exercises the tie-breaking of every rule
    p = np.exp(np.asarray(logp, np.float64))
    p = p / p.sum()
    r = np.asarray(reward(seqs), np.float64)
    return policy, reward, p, r


def _freq_pvalue(draws, law):
    idx = np.asarray(bt.sequence_index(draws.sequences, 2))
    return chi2_pvalue(idx, law)


def test_token_level_quantile_truncation(token_problem):
    """Candidates kernel + the quantile-truncation rule, against the exact finite-N law (ties included)."""
    policy, reward, p, r = token_problem
    draws = bt.quantile_truncation_policy_sample(jax.random.key(12), policy, reward, 4, 2.0, DRAWS)
    assert draws.sequences.shape == (DRAWS, 3)
    np.testing.assert_allclose(np.asarray(draws.rewards), r[np.asarray(bt.sequence_index(draws.sequences, 2))])
    assert _freq_pvalue(draws, np.asarray(bt.quantile_truncation_sampler_pmf(p, r, 4, 2.0))) > ALPHA


@pytest.mark.slow
def test_token_level_samplers(token_problem):
    """All four token-level samplers (slow: each compiles its own Monte Carlo kernel)."""
    policy, reward, p, r = token_problem
    n = 4
    checks = [
        (bt.soft_bon_policy_sample(jax.random.key(10), policy, reward, n, 0.5, DRAWS), bt.soft_bon_pmf(p, r, n, 0.5)),
        (bt.regularized_bon_policy_sample(jax.random.key(11), policy, reward, n, 0.3, DRAWS),
         bt.regularized_bon_pmf(p, r, n, 0.3)),
        (bt.quantile_truncation_policy_sample(jax.random.key(12), policy, reward, n, 2.0, DRAWS),
         bt.quantile_truncation_sampler_pmf(p, r, n, 2.0)),
        (bt.pessimism_policy_sample(jax.random.key(13), policy, reward, 3, 0.5, DRAWS, r_max=float(r.max())),
         pessimism_law_by_enumeration(p, r, 3, 0.5, float(r.max()))),
    ]
    for draws, law in checks:
        assert draws.sequences.shape == (DRAWS, 3)
        np.testing.assert_allclose(np.asarray(draws.rewards), r[np.asarray(bt.sequence_index(draws.sequences, 2))])
        assert _freq_pvalue(draws, np.asarray(law)) > ALPHA
