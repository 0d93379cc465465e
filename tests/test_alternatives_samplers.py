"""Finite-N samplers of the alternatives against their exact laws (chi-square tests).

Each test runs a Pearson chi-square goodness-of-fit test of sampler frequencies against the exact law
(computed by enumeration or closed form) at level α = 1e-4, so the false-alarm rate of this file
(5 tests) is below 5e-4; keys are fixed, so a pass is reproducible, but the tolerance is statistical.
"""

import jax
import numpy as np
import pytest
from scipy import stats

import bontheory as bt
from tests.test_alternatives import (
    P4,
    R4,
    _pessimism_law_by_enumeration,
    brute_argmax,
    brute_soft_bon,
)

ALPHA = 1e-4
DRAWS = 8192


def _chi2_pvalue(samples, law):
    counts = np.bincount(np.asarray(samples), minlength=len(law))
    law = np.asarray(law)
    assert np.all(counts[law == 0] == 0), "sampled an outcome of probability 0"
    keep = law > 0
    return stats.chisquare(counts[keep], DRAWS * law[keep] / law[keep].sum()).pvalue


def test_soft_bon_sampler():
    x = bt.soft_bon_sample(jax.random.key(0), P4, R4, 3, 0.5, (DRAWS,))
    assert x.shape == (DRAWS,)
    assert _chi2_pvalue(x, brute_soft_bon(P4, R4, 3, 0.5)) > ALPHA
    np.testing.assert_allclose(bt.soft_bon_pmf(P4, R4, 3, 0.5), brute_soft_bon(P4, R4, 3, 0.5), atol=1e-12)


def test_regularized_bon_sampler():
    x = bt.regularized_bon_sample(jax.random.key(1), P4, R4, 3, 0.7, (DRAWS,))
    assert _chi2_pvalue(x, brute_argmax(P4, R4 + 0.7 * np.log(P4), 3)) > ALPHA


@pytest.mark.parametrize("n,m", [(4, 2.0), (5, 1.5)])
def test_quantile_truncation_sampler(n, m):
    x = bt.quantile_truncation_sample(jax.random.key(2), P4, R4, n, m, (DRAWS,))
    assert _chi2_pvalue(x, bt.quantile_truncation_sampler_pmf(P4, R4, n, m)) > ALPHA


def test_pessimism_sampler():
    n, beta = 6, 0.5
    x = bt.pessimism_sample(jax.random.key(3), P4, R4, n, beta, (DRAWS,))
    law = _pessimism_law_by_enumeration(P4, R4, n, beta, R4.max())
    np.testing.assert_allclose(law.sum(), 1.0, atol=1e-12)
    assert _chi2_pvalue(x, law) > ALPHA
