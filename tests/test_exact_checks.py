"""Bad input at the public boundary raises clear errors (concrete values); under jit value checks are skipped."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bontheory import (
    beirami_kl_estimator,
    bon_kl,
    bon_kl_bound,
    bon_pmf,
    bon_sample_exact,
    kl_divergence,
    quantile_tilted_pmf,
    tilted_pmf,
    win_rate,
)

P = np.array([0.1, 0.2, 0.3, 0.4])
R = np.array([0.0, 1.0, 1.0, 2.0])


@pytest.mark.parametrize(
    "p, match",
    [
        (np.array([0.5, 0.6, -0.1, 0.0]), "negative"),
        (np.array([0.1, 0.2, 0.3, 0.5]), "sum to 1"),
        (np.array([0.1, 0.2, np.nan, 0.4]), "NaN"),
    ],
)
def test_bad_probabilities(p, match):
    with pytest.raises(ValueError, match=match):
        bon_pmf(p, R, 3)
    with pytest.raises(ValueError, match="ref_probs"):
        bon_kl(p, R, 3)


def test_probability_tolerance_is_dtype_aware():
    p32 = (P + np.array([1e-5, 0, 0, 0])).astype(np.float32)  # off by 1e-5: fine in float32
    bon_pmf(p32, R.astype(np.float32), 2)
    with pytest.raises(ValueError, match="sum to 1"):
        bon_pmf(p32.astype(np.float64), R, 2)  # but not in float64 (tolerance 1e-6)
    bon_pmf(P + 1e-8, R, 2)  # rounding-level error is accepted and renormalised


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_bad_rewards(bad):
    r = R.copy()
    r[2] = bad
    with pytest.raises(ValueError, match="rewards"):
        bon_pmf(P, r, 3)


@pytest.mark.parametrize("n, exc, match", [(0, ValueError, ">= 1"), (-3, ValueError, ">= 1"),
                                           (2.5, ValueError, "integer"), (np.nan, ValueError, "finite"),
                                           (True, TypeError, "bool"), (1 + 2j, TypeError, "dtype"),
                                           ("3", TypeError, "numeric")])
def test_bad_n(n, exc, match):
    with pytest.raises(exc, match=match):
        bon_kl(P, R, n)
    with pytest.raises(exc):
        bon_kl_bound(n)


def test_integer_valued_float_n_is_accepted():
    np.testing.assert_allclose(bon_kl(P, R, 3.0), bon_kl(P, R, 3), atol=0)
    with pytest.raises(ValueError, match="n"):
        bon_kl(P, R, np.array([1, 2, 0]))


def test_mismatched_shapes():
    with pytest.raises(ValueError, match="same number of outcomes"):
        bon_pmf(P, R[:3], 2)
    with pytest.raises(ValueError, match="batch shapes"):
        bon_pmf(np.tile(P, (2, 1)), np.tile(R, (3, 1)), 2)
    with pytest.raises(ValueError, match="K >= 1"):
        bon_pmf(np.float64(1.0), np.float64(0.0), 2)
    with pytest.raises(ValueError, match="policy_probs"):
        win_rate(P[:3] / P[:3].sum(), P, R)
    with pytest.raises(ValueError, match="same number of outcomes"):
        kl_divergence(P, P[:3] / P[:3].sum())


def test_wrong_dtypes():
    with pytest.raises(TypeError, match="ref_probs"):
        bon_pmf(P.astype(np.complex128), R, 2)
    with pytest.raises(TypeError, match="rewards"):
        bon_pmf(P, R > 0.5, 2)


def test_other_parameters():
    with pytest.raises(ValueError, match="beta"):
        tilted_pmf(P, R, 0.0)
    with pytest.raises(ValueError, match="c must be"):
        quantile_tilted_pmf(P, R, -1.0)
    with pytest.raises(ValueError, match="eps"):
        beirami_kl_estimator(1.5, 4)
    with pytest.raises(ValueError, match=">= 1"):
        bon_sample_exact(jax.random.key(0), P, R, 0, (3,))


def test_under_jit_bad_values_poison_but_shape_checks_run():
    f = jax.jit(bon_kl)
    # values are traced: an unnormalised p cannot raise, it poisons the result (documented)
    assert np.isnan(f(2 * P, R, 3))
    np.testing.assert_allclose(f(P, R, 3), bon_kl(P, R, 3), atol=1e-14)
    with pytest.raises(ValueError, match="same number of outcomes"):
        f(P, R[:3], 3)
    with pytest.raises(TypeError):
        f(P, R, jnp.array(1 + 1j))
