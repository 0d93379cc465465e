"""The exact finite-N law of InferenceTimePessimism: brute force over all (2N + 1)-tuples on small spaces, the
Monte Carlo sampler on larger ones, and a clear error when the law is too large to enumerate."""

import itertools

import jax
import numpy as np
import pytest

import bontheory as bt


def _threshold(rewards, beta):
    """λ with (1/N) Σ (r_i − λ)_+ = β, by bisection (independent of the library's closed form)."""
    r = np.asarray(rewards, float)
    lo, hi = r.min() - beta - 1.0, r.max()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.mean(np.maximum(r - mid, 0.0)) > beta:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _brute_force(p, r, n, beta, r_max):
    """Enumerates the N first draws and the N proposals (K^(2N) tuples); the fallback is a fresh draw from p."""
    k = len(p)
    out = np.zeros(k)
    for first in itertools.product(range(k), repeat=n):
        pf = np.prod(p[list(first)])
        lam = _threshold(r[list(first)], beta)
        acc = np.clip(np.maximum(r - lam, 0) / (r_max - lam), 0, 1)
        for props in itertools.product(range(k), repeat=n):
            pp = pf * np.prod(p[list(props)])
            none_yet = 1.0
            for y in props:
                out[y] += pp * none_yet * acc[y]
                none_yet *= 1 - acc[y]
            out += pp * none_yet * p
    return out


@pytest.mark.parametrize(
    "p, r, n, beta, r_max",
    [
        ([0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 1.0, 2.0], 1, 0.3, None),
        ([0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 1.0, 2.0], 2, 0.3, None),
        ([0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 1.0, 2.0], 3, 0.2, 2.5),
        ([0.5, 0.25, 0.25], [0.3, -1.0, 2.0], 3, 1.5, None),
        ([0.2, 0.2, 0.2, 0.4], [0.0, 0.5, 0.7, 0.1], 3, 0.05, None),
        ([0.3, 0.3, 0.4], [1.0, 1.0, 1.0], 2, 0.4, None),
    ],
)
def test_equals_brute_force_over_all_tuples(p, r, n, beta, r_max):
    p, r = np.array(p), np.array(r)
    bound = r.max() if r_max is None else r_max
    exact = np.asarray(bt.chi2_pessimism_sampler_pmf(p, r, n, beta, r_max=r_max))
    np.testing.assert_allclose(exact, _brute_force(p, r, n, beta, bound), atol=1e-12)


def test_array_of_n_and_the_large_n_limit():
    p, r = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 1.0, 1.0, 2.0])
    laws = np.asarray(bt.chi2_pessimism_sampler_pmf(p, r, np.array([1, 2, 400]), 0.3))
    assert laws.shape == (3, 4)
    np.testing.assert_allclose(laws[1], np.asarray(bt.chi2_pessimism_sampler_pmf(p, r, 2, 0.3)), atol=1e-14)
    # N → ∞: the population target p (r − λ)_+/β (r_max = top reward, so A → 1/M and the fallback vanishes)
    np.testing.assert_allclose(laws[2], np.asarray(bt.chi2_pessimism_pmf(p, r, 0.3)), atol=5e-3)


def test_agrees_with_the_monte_carlo_sampler_within_standard_errors():
    rng = np.random.default_rng(0)
    k, n, beta, t = 30, 12, 0.4, 40_000
    p = rng.dirichlet(np.ones(k))
    r = rng.integers(0, 6, k).astype(float)  # 6 levels with ties
    exact = np.asarray(bt.chi2_pessimism_sampler_pmf(p, r, n, beta))
    idx = np.asarray(bt.pessimism_sample(jax.random.key(0), p, r, n, beta, (t,)))
    levels = np.unique(r)
    for v in levels:
        q = exact[r == v].sum()
        f = np.mean(r[idx] == v)
        assert abs(f - q) < 4.5 * np.sqrt(q * (1 - q) / t) + 1e-9, (v, f, q)
    # and the law differs from the population target (the test can fail on the finite-N effect)
    pop = np.asarray(bt.chi2_pessimism_pmf(p, r, beta))
    assert abs(pop @ r - exact @ r) > 10 * np.std(r[idx]) / np.sqrt(t)


def test_too_large_raises_a_clear_error():
    rng = np.random.default_rng(1)
    p, r = rng.dirichlet(np.ones(200)), rng.normal(size=200)
    with pytest.raises(bt.ExactLawTooLarge, match="max_states") as err:
        bt.chi2_pessimism_sampler_pmf(p, r, 64, 5.0, max_states=10_000)
    assert err.value.max_states == 10_000 and err.value.states > 10_000
    assert isinstance(err.value, ValueError)
    with pytest.raises(ValueError, match="r_max"):
        bt.chi2_pessimism_sampler_pmf(p, r, 2, 1.0, r_max=float(r.max()) - 1)
    with pytest.raises(ValueError, match="beta"):
        bt.chi2_pessimism_sampler_pmf(p, r, 2, 0.0)
