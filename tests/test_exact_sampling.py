"""The exact inverse-CDF BoN sampler against the exact pmf (chi-square goodness of fit).

Each chi-square test rejects at p-value < ALPHA = 1e-4, so a correct sampler fails a given test with
probability 1e-4 (the false-alarm rate); the keys are fixed, so a run is reproducible, but the threshold is
not tuned to those draws.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from references import chi2_pvalue

from bontheory import bon_pmf, bon_sample_exact

ALPHA = 1e-4
DRAWS = 200_000


@pytest.mark.parametrize("n", [1, 3, 10, 10_000])
def test_matches_pmf_with_ties(n):
    p = np.array([0.05, 0.15, 0.0, 0.2, 0.25, 0.1, 0.25])
    r = np.array([3.0, 3.0, 5.0, 1.0, 0.0, 3.0, 1.0])  # a 3-way tie at the top, a zero-mass best outcome
    key = jax.random.fold_in(jax.random.key(1), n)
    s = bon_sample_exact(key, p, r, n, (DRAWS,))
    assert s.shape == (DRAWS,) and s.dtype == jnp.int32
    assert chi2_pvalue(s, bon_pmf(p, r, n)) > ALPHA


def test_matches_pmf_large_n_tiny_top_mass():
    """Top outcome of mass 1e-5 at n = 1e5: it wins with probability 1 − (1 − 1e-5)^1e5 ≈ 0.632."""
    k = 1000
    p = np.full(k, (1 - 1e-5) / (k - 1))
    p[17] = 1e-5
    r = np.arange(k, dtype=float)
    r[17] = 2 * k
    s = bon_sample_exact(jax.random.key(2), p, r, 100_000, (DRAWS,))
    pi = bon_pmf(p, r, 100_000)
    assert abs(float(pi[17]) - (1 - (1 - 1e-5) ** 1e5)) < 1e-9
    assert chi2_pvalue(s, pi) > ALPHA


def test_batched_distributions_and_n():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(5), size=3)
    r = rng.integers(0, 3, size=(3, 5)).astype(float)
    ns = np.array([1, 4, 50])
    s = bon_sample_exact(jax.random.key(4), p, r, ns, (DRAWS // 2,))
    assert s.shape == (DRAWS // 2, 3)
    pi = bon_pmf(p, r, ns)
    for b in range(3):
        assert chi2_pvalue(s[:, b], pi[b]) > ALPHA


def test_float32_and_jit_and_vmap_over_keys():
    p = jnp.array([0.1, 0.2, 0.3, 0.4], jnp.float32)
    r = jnp.array([0.0, 1.0, 1.0, 2.0], jnp.float32)
    f = jax.jit(lambda key, n: bon_sample_exact(key, p, r, n, (DRAWS // 4,)))
    keys = jax.random.split(jax.random.key(5), 4)
    s = jax.vmap(f, in_axes=(0, None))(keys, 3)
    assert s.shape == (4, DRAWS // 4)
    assert chi2_pvalue(s, bon_pmf(np.asarray(p, np.float64), np.asarray(r, np.float64), 3)) > ALPHA
