"""Gradients of the exact functionals (docs/theory.md §1.8): ``jax.test_util.check_grads`` (forward and reverse
mode, orders 1 and 2) against central finite differences in float64.

The reference pmf enters through logits, ``p = softmax(z)``, so every finite-difference step stays on the
simplex and relative (not absolute) perturbations reach masses of 1e-12 and 1e-30. Points: an interior point
with distinct rewards, ties, a level of mass 1e-12 next to the top, masses down to 1e-30 and a zero-mass
outcome, large n. Where a functional is piecewise (its kinks are the reward levels), the points sit away from
the kinks; the tests that gradients are finite (never NaN) cover every point, including p(y) = 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import bontheory as bt

MODES = ("fwd", "rev")
TOL = dict(atol=1e-5, rtol=1e-5)


def _logits(p):
    p = np.asarray(p, np.float64)
    return jnp.asarray(np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), -np.inf))


# name -> (p, r): the points that bite
POINTS = {
    "interior": ([0.1, 0.25, 0.3, 0.35], [0.3, -1.0, 2.0, 0.7]),
    "ties": ([0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 1.0, 2.0]),
    "tiny_top": ([0.5, 0.3, 0.2 - 1e-12, 1e-12], [0.0, 1.0, 2.0, 3.0]),
    "tiny_below_top": ([0.5, 0.3 - 1e-12, 1e-12, 0.2], [0.0, 1.0, 2.5, 3.0]),
    "masses_1e-30": ([1e-30, 0.3, 0.7 - 2e-30, 1e-30], [3.0, 1.0, 2.0, 0.0]),
    "tied_top": ([0.2, 0.3, 0.25, 0.25], [0.0, 1.0, 2.0, 2.0]),
}
FINITE_POINTS = {**POINTS, "zero_mass": ([0.0, 0.2, 0.3, 0.5], [0.0, 1.0, 1.0, 2.0])}
WEIGHTS = jnp.asarray([0.3, -1.2, 0.7, 2.0])  # a fixed cotangent for pmf-valued functionals

# functional of (p, r) -> a scalar or a (K,) vector; each is differentiable in p at every point above
BON = {
    "bon_kl": lambda p, r: bt.bon_kl(p, r, 5),
    "bon_kl_n1e3": lambda p, r: bt.bon_kl(p, r, 1000),
    "bon_pmf": lambda p, r: bt.bon_pmf(p, r, 5),
    "bon_log_pmf": lambda p, r: bt.bon_log_pmf(p, r, 7),
    "bon_expected_reward": lambda p, r: bt.bon_expected_reward(p, r, 5),
    "bon_win_rate": lambda p, r: bt.bon_win_rate(p, r, 5),
    "bon_kl_array_n": lambda p, r: bt.bon_kl(p, r, jnp.asarray([1, 2, 64])),
    "bon_kl_estimate": lambda p, r: bt.bon_kl_estimate(p, r, 4),
    "tilted_pmf": lambda p, r: bt.tilted_pmf(p, r, 0.7),
    "quantile_tilted_pmf": lambda p, r: bt.quantile_tilted_pmf(p, r, 3.0),
    "mid_cdf": lambda p, r: bt.mid_cdf(p, r),
    "reward_kl_frontier": lambda p, r: jnp.stack(bt.reward_kl_frontier(p, r, 0.7)),
    "win_rate_kl_frontier": lambda p, r: jnp.stack(bt.win_rate_kl_frontier(p, r, 3.0)),
    "soft_bon_pmf": lambda p, r: bt.soft_bon_pmf(p, r, 4, 0.5, num_nodes=256),
    "quantile_truncated_pmf": lambda p, r: bt.quantile_truncated_pmf(p, r, 1.7),
    "quantile_truncation_sampler_pmf": lambda p, r: bt.quantile_truncation_sampler_pmf(p, r, 6, 2.0),
    "chi2_pessimism_pmf": lambda p, r: bt.chi2_pessimism_pmf(p, r, 0.8),
    "chi2_pessimism_threshold": lambda p, r: bt.chi2_pessimism_threshold(p, r, 0.8),
    "regularized_bon_pmf": lambda p, r: bt.regularized_bon_pmf(p, r, 3, 0.1),
}
# second order checked for these (the others are checked at first order; their second derivatives exist too,
# but cost more compile time than they add)
SECOND_ORDER = {"bon_kl", "bon_pmf", "bon_log_pmf", "bon_expected_reward", "bon_win_rate", "tilted_pmf",
                "quantile_tilted_pmf", "chi2_pessimism_pmf", "quantile_truncation_sampler_pmf"}


def _scalar(out):
    out = jnp.asarray(out)
    return (
        jnp.sum(out * WEIGHTS)
        if out.shape[-1:] == (4,)
        else jnp.sum(out * jnp.arange(1.0, out.size + 1).reshape(out.shape))
    )


def _of_logits(fn, r):
    r = jnp.asarray(r)
    return lambda z: _scalar(fn(jax.nn.softmax(z), r))


KINKS = {  # (functional, point) pairs where the point sits on a kink of the functional
    ("regularized_bon_pmf", "tied_top"): "the score r + β log p ties there: a kink",
    ("bon_log_pmf", "masses_1e-30"): "log π(y) of a mass-1e-30 outcome ~ log p(y): FD steps of 1e-5 are too coarse",
}


def _cases():
    for name in sorted(BON):
        for point in sorted(POINTS):
            if (name, point) in KINKS:
                continue
            # default run: the BoN functionals at the points that bite, the others at one point with ties
            # (compilation, not the points, is what costs: a second point of the same shape is nearly free)
            # (each case costs ~50 s of compilation on a 2-core CPU at order 2: the default run keeps the KL at
            # the point that bites most; the whole matrix runs with -m slow)
            default = name == "bon_kl" and point == "tiny_top"
            yield pytest.param(name, point, marks=() if default else pytest.mark.slow)


@pytest.mark.parametrize(("name", "point"), list(_cases()))
def test_grad_wrt_ref_probs_matches_finite_differences(name, point):
    """jit(f) so that each derivative compiles once (checks run under jit: values are not validated there)."""
    p, r = POINTS[point]
    order = 2 if name in SECOND_ORDER else 1
    check_grads(jax.jit(_of_logits(BON[name], r)), (_logits(p),), order=order, modes=MODES, eps=1e-5, **TOL)


@pytest.mark.parametrize("point", sorted(FINITE_POINTS))
def test_grad_wrt_ref_probs_is_finite(point):
    """Never NaN, at any point, including outcomes of zero mass (where the derivative is one-sided)."""
    p, r = (jnp.asarray(a) for a in FINITE_POINTS[point])
    for name, fn in BON.items():
        g = jax.grad(lambda pp, fn=fn: _scalar(fn(pp / jnp.sum(pp), r)))(p)
        assert np.all(np.isfinite(np.asarray(g))), (name, point, g)
        assert np.any(np.asarray(g) != 0) or name == "chi2_pessimism_pmf", (name, point)  # not trivially zero


def test_grad_wrt_ref_probs_under_jit_and_vmap_over_n():
    """The BoN KL curve's Jacobian in p, jitted, vmapped over n (traced levels: no compaction)."""
    p, r = (jnp.asarray(a) for a in POINTS["ties"])
    ns = jnp.asarray([1, 3, 10])
    jac = jax.jit(jax.jacrev(jax.vmap(lambda pp, n: bt.bon_kl(pp / jnp.sum(pp), r, n), in_axes=(None, 0))))(p, ns)
    eps = 1e-6
    for i in range(4):
        e = jnp.zeros(4).at[i].set(eps)
        fd = (bt.bon_kl((p + e) / jnp.sum(p + e), r, ns) - bt.bon_kl((p - e) / jnp.sum(p - e), r, ns)) / (2 * eps)
        np.testing.assert_allclose(np.asarray(jac[:, i]), np.asarray(fd), rtol=1e-6, atol=1e-9)
    assert np.all(np.asarray(jac[0]) == 0), "KL(π_1 || p) = 0 for every p"


# ------------------------------------------------------------------------- parameters: temperature, β, c, M


PARAMS = {  # functional of a scalar parameter at a fixed (p, r), and points away from its kinks
    "tilted_pmf/beta": (lambda p, r, x: bt.tilted_pmf(p, r, x), [0.3, 2.0], 2),
    "reward_kl_frontier/beta": (lambda p, r, x: jnp.stack(bt.reward_kl_frontier(p, r, x)), [0.5], 2),
    "quantile_tilted_pmf/c": (lambda p, r, x: bt.quantile_tilted_pmf(p, r, x), [0.5, 8.0], 2),
    "win_rate_kl_frontier/c": (lambda p, r, x: jnp.stack(bt.win_rate_kl_frontier(p, r, x)), [2.0], 2),
    "soft_bon_pmf/temperature": (lambda p, r, x: bt.soft_bon_pmf(p, r, 4, x, num_nodes=256), [0.3, 2.0], 1),
    "quantile_truncated_pmf/M": (lambda p, r, x: bt.quantile_truncated_pmf(p, r, x), [1.3, 2.1], 2),
    "chi2_pessimism_pmf/beta": (lambda p, r, x: bt.chi2_pessimism_pmf(p, r, x), [0.2, 3.0], 2),
    "chi2_pessimism_threshold/beta": (lambda p, r, x: bt.chi2_pessimism_threshold(p, r, x), [0.2, 3.0], 2),
    "regularized_bon_pmf/beta": (lambda p, r, x: bt.regularized_bon_pmf(p, r, 3, x), [0.05], 1),
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=() if n == "tilted_pmf/beta" else pytest.mark.slow)
        for n in sorted(PARAMS)
    ],
)
def test_grad_wrt_parameter_matches_finite_differences(name):
    fn, xs, order = PARAMS[name]
    for point in ("interior", "ties"):
        p, r = (jnp.asarray(a) for a in POINTS[point])
        for x in xs:
            check_grads(
                jax.jit(lambda t: _scalar(fn(p, r, t))), (jnp.asarray(x),), order=order, modes=MODES, eps=1e-6, **TOL
            )


def test_truncation_sampler_is_piecewise_constant_in_m():
    """k = ⌈N/M⌉ is an integer: the law is a step function of M, its derivative 0 between the steps."""
    p, r = (jnp.asarray(a) for a in POINTS["interior"])
    g = jax.grad(lambda m: _scalar(bt.quantile_truncation_sampler_pmf(p, r, 6, m)))(jnp.asarray(2.5))
    assert float(g) == 0.0


# ------------------------------------------------------------------------------------------ rewards


def test_expected_reward_grad_wrt_rewards_is_the_bon_level_mass():
    """Rewards enter the BoN law only through their order: with distinct rewards, d E_{π_n}[r] / d r(y) = π_n(y)."""
    p, r = (jnp.asarray(a) for a in POINTS["interior"])
    f = lambda rr: bt.bon_expected_reward(p, rr, 5)
    check_grads(jax.jit(f), (r,), order=2, modes=MODES, eps=1e-6, **TOL)
    np.testing.assert_allclose(np.asarray(jax.grad(f)(r)), np.asarray(bt.bon_pmf(p, r, 5)), rtol=1e-13)
    for fn in (
        lambda rr: bt.bon_kl(p, rr, 5),
        lambda rr: _scalar(bt.bon_pmf(p, rr, 5)),
        lambda rr: bt.bon_win_rate(p, rr, 5),
    ):
        assert np.all(np.asarray(jax.grad(fn)(r)) == 0), "order-only dependence: zero gradient in r"
    # with ties: the derivative along moves that keep the tie, split ∝ p within the level, is π_n again
    p, r = (jnp.asarray(a) for a in POINTS["ties"])
    np.testing.assert_allclose(
        np.asarray(jax.grad(lambda rr: bt.bon_expected_reward(p, rr, 5))(r)),
        np.asarray(bt.bon_pmf(p, r, 5)),
        rtol=1e-13,
    )


@pytest.mark.parametrize(
    "name",
    [
        "tilted_pmf",
        pytest.param("reward_kl_frontier", marks=pytest.mark.slow),
        "chi2_pessimism_pmf",
        pytest.param("expected_reward", marks=pytest.mark.slow),
    ],
)
def test_grad_wrt_rewards_of_smooth_functionals(name):
    fn = {
        "tilted_pmf": lambda p, r: bt.tilted_pmf(p, r, 0.7),
        "reward_kl_frontier": lambda p, r: jnp.stack(bt.reward_kl_frontier(p, r, 0.7)),
        "chi2_pessimism_pmf": lambda p, r: bt.chi2_pessimism_pmf(p, r, 0.8),
        "expected_reward": lambda p, r: bt.expected_reward(p, r),
    }[name]
    for point in ("interior", "ties"):
        p, r = (jnp.asarray(a) for a in POINTS[point])
        check_grads(jax.jit(lambda rr: _scalar(fn(p, rr))), (r,), order=2, modes=MODES, eps=1e-6, **TOL)


# ------------------------------------------------------------------------------------------ sequences


def test_grad_through_enumerated_sequences_wrt_policy_logits():
    """BoN over all V**L sequences of a tabular policy, differentiated w.r.t. the policy's logits."""
    key = jax.random.key(0)
    logits = jax.random.normal(key, (3, 3))  # L = 3, V = 3 (order 0): 27 sequences
    seq = bt.all_sequences(3, 3)
    rewards = jnp.sum(seq, axis=-1).astype(jnp.float64)  # ties: many sequences share a reward

    def objective(z):
        _, log_probs = bt.enumerate_sequences(bt.tabular_policy_from_logits(z))
        p = jnp.exp(log_probs)
        return bt.bon_expected_reward(p, rewards, 4) - 0.1 * bt.bon_kl(p, rewards, 4)

    check_grads(jax.jit(objective), (logits,), order=1, modes=MODES, eps=1e-6, **TOL)
    assert np.any(np.asarray(jax.grad(objective)(logits)) != 0)
