"""The one log helper and the one KL/entropy family: values against float64 references, safe gradients at 0."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from jax.test_util import check_grads

from bontheory.numerics import (
    entropy_from_log_probs,
    kl_from_log_probs,
    kl_from_probs,
    log_prob_kl_terms,
    safe_log,
)


def _reference_kl(p, q):
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    terms = [0.0 if a == 0 else (np.inf if b == 0 else a * np.log(a / b)) for a, b in zip(p, q)]
    return float(np.sum(terms))


def _pmf(weights, zeros):
    w = np.asarray(weights, np.float64)
    w[np.asarray(zeros, bool)] = 0.0
    if w.sum() == 0:
        w[0] = 1.0
    return w / w.sum()


pmfs = st.tuples(
    st.lists(st.floats(1e-30, 1.0), min_size=5, max_size=5), st.lists(st.booleans(), min_size=5, max_size=5)
).map(lambda t: _pmf(*t))


@given(pmfs, pmfs)
def test_kl_family_agrees_with_reference(p, q):
    expect = _reference_kl(p, q)
    got_p = float(kl_from_probs(p, q))
    with np.errstate(divide="ignore"):
        got_log = float(kl_from_log_probs(np.log(p), np.log(q)))
    if np.isinf(expect):
        assert np.isinf(got_p) and np.isinf(got_log)
    else:
        np.testing.assert_allclose([got_p, got_log], expect, rtol=1e-10, atol=1e-14)


@given(pmfs)
def test_entropy_is_minus_sum_p_log_p(p):
    expect = -sum(a * np.log(a) for a in p if a > 0)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(float(entropy_from_log_probs(np.log(p))), expect, rtol=1e-12, atol=1e-14)


def test_safe_log_values_and_gradient_at_zero():
    x = jnp.array([0.0, 1e-300, 0.5, 1.0])
    np.testing.assert_array_equal(np.isneginf(safe_log(x)), [True, False, False, False])
    np.testing.assert_allclose(safe_log(x)[1:], np.log(np.asarray(x[1:])), rtol=1e-15)
    g = jax.grad(lambda v: jnp.sum(jnp.where(v > 0, safe_log(v), 0.0)))(x)
    assert np.all(np.isfinite(np.asarray(g)))
    np.testing.assert_allclose(g[2:], 1 / np.asarray(x[2:]), rtol=1e-15)


def test_kl_gradients_are_finite_with_zero_mass():
    p = jnp.array([0.0, 0.25, 0.75])
    q = jnp.array([0.0, 0.5, 0.5])
    for fn, args in ((kl_from_probs, (p, q)), (kl_from_log_probs, (safe_log(p), safe_log(q)))):
        for arg in (0, 1):
            g = jax.grad(fn, argnums=arg)(*args)
            assert np.all(np.isfinite(np.asarray(g))), (fn.__name__, arg, g)
    # d KL(p‖q)/d log q_y = −p_y on the support
    g = jax.grad(kl_from_log_probs, argnums=1)(safe_log(p), safe_log(q))
    np.testing.assert_allclose(g, -np.asarray(p), atol=1e-15)
    check_grads(lambda lq: kl_from_log_probs(jnp.log(q[1:]), lq), (jnp.log(p[1:]),), order=2)


def test_terms_are_zero_off_the_support_and_inf_off_the_target():
    terms = log_prob_kl_terms(jnp.array([-jnp.inf, 0.0]), jnp.array([-jnp.inf, -jnp.inf]))
    assert float(terms[0]) == 0.0 and np.isposinf(float(terms[1]))
