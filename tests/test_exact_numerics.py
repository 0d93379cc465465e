"""Numerics (n up to 1e6, masses down to 1e-30, float32) and transformations (jit, vmap over n and batches)."""

from decimal import Decimal, getcontext

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from bontheory import (
    beirami_kl_expectation,
    bon_expected_reward,
    bon_kl,
    bon_kl_bound,
    bon_log_pmf,
    bon_pmf,
    bon_win_rate,
    reward_levels,
)


def decimal_reference(p_str, n):
    """Exact-to-60-digits (F^n − F⁻^n, KL) for distinct increasing rewards, p given as decimal strings."""
    getcontext().prec = 60
    p = [Decimal(s) for s in p_str]
    f, q, kl = Decimal(0), [], Decimal(0)
    for x in p:
        f_lo, f = f, f + x
        qi = f**n - f_lo**n
        q.append(qi)
        if qi > 0:
            kl += qi * (qi / x).ln()
    return np.array([float(v) for v in q]), float(kl)


TINY = ["0.4999999999999999999999999999995", "0.3", "0.2", "1e-30"]  # sums to 1 exactly (in Decimal)
TINY_MID = ["0.5", "1e-30", "0.3", "0.1999999999999999999999999999990"]


@pytest.mark.parametrize("p_str", [TINY, TINY_MID])
@pytest.mark.parametrize("n", [1, 7, 1000, 10**6])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiny_masses_and_huge_n(p_str, n, dtype):
    q_ref, kl_ref = decimal_reference(p_str, n)
    p = np.array([float(s) for s in p_str], dtype=dtype)
    r = np.arange(4, dtype=dtype)
    pi = np.asarray(bon_pmf(p, r, n))
    assert pi.dtype == dtype
    assert np.all(np.isfinite(np.asarray(bon_log_pmf(p, r, n))[q_ref > 0]))
    rtol = 1e-9 if dtype == np.float64 else 2e-5
    # relative accuracy for every probability that is representable (normal) in the dtype
    big = q_ref > np.finfo(dtype).tiny * 1e3
    np.testing.assert_allclose(pi[big], q_ref[big], rtol=rtol)
    kl = float(bon_kl(p, r, n))
    assert np.isfinite(kl)
    assert abs(kl - kl_ref) <= rtol * max(1.0, kl_ref) + (1e-12 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize(
    "k, levels", [(100_000, 2000), pytest.param(1_000_000, 8000, marks=pytest.mark.slow)]
)
def test_many_outcomes_float32_vs_float64(k, levels):
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(k, 0.5))
    r = rng.integers(0, levels, size=k).astype(np.float64)
    ns = np.array([1, 10, 1000, 10**6])
    kl64 = np.asarray(bon_kl(p, r, ns))
    kl32 = np.asarray(bon_kl(p.astype(np.float32), r.astype(np.float32), ns))
    assert kl32.dtype == np.float32
    np.testing.assert_allclose(kl32, kl64, rtol=1e-4, atol=1e-5)
    assert np.all(kl64 <= np.asarray(bon_kl_bound(ns)) + 1e-12)
    # n = 1e6 on a few thousand levels lands essentially on the top level: KL ≈ −log m_top
    lv = reward_levels(p, r)
    m_top = float(lv.mass[int(lv.num_levels) - 1])
    assert 1e6 * m_top > 50  # so the top level wins with probability 1 − O(e^-50)
    assert abs(kl64[-1] + np.log(m_top)) < 1e-9
    assert abs(kl32[-1] + np.log(m_top)) < 1e-4


P = np.array([0.1, 0.2, 0.3, 0.4])
R = np.array([0.0, 1.0, 1.0, 2.0])
FUNCS = [bon_kl, bon_expected_reward, bon_win_rate, beirami_kl_expectation]


@pytest.mark.parametrize("fn", [bon_kl, bon_win_rate])
def test_jit_and_vmap_over_n_match_array_n(fn):
    ns = jnp.arange(1, 17)
    eager = np.asarray(fn(P, R, ns))
    jitted = np.asarray(jax.jit(fn)(P, R, ns))
    vmapped = np.asarray(jax.jit(jax.vmap(fn, in_axes=(None, None, 0)))(P, R, ns))
    np.testing.assert_allclose(jitted, eager, atol=1e-13)
    np.testing.assert_allclose(vmapped, eager, atol=1e-13)


def test_vmap_over_batches_of_distributions():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(5), size=4)
    r = rng.integers(0, 3, size=(4, 5)).astype(float)
    v = jax.vmap(bon_pmf, in_axes=(0, 0, None))(p, r, 6)
    np.testing.assert_allclose(v, bon_pmf(p, r, 6), atol=1e-14)
    vv = jax.vmap(bon_kl, in_axes=(0, 0, 0))(p, r, jnp.arange(1, 5))
    np.testing.assert_allclose(vv, bon_kl(p, r, jnp.arange(1, 5)), atol=1e-13)


def test_vmap_over_n_sorts_once():
    """The reward-level structure does not depend on n: vmapping over n must not re-sort per n.

    The one sort is platform-dependent (``sort_levels``): the jaxpr holds both branches, XLA's ``sort`` (GPU/TPU)
    and the NumPy sort behind a ``pure_callback`` (CPU); each must appear once, on the K rewards."""
    k = 50
    p = jnp.full((k,), 1.0 / k)
    r = jnp.arange(k) % 7 * 1.0
    jaxpr = jax.make_jaxpr(jax.vmap(bon_kl, in_axes=(None, None, 0)))(p, r, jnp.arange(1, 65))

    def sorts(jx, name):
        out = []
        for eqn in jx.eqns:
            if eqn.primitive.name == name:
                out.append(eqn)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                out.extend(sorts(sub, name))
        return out

    for name in ("sort", "pure_callback"):
        found = [e for e in sorts(jaxpr.jaxpr, name) if e.invars[0].aval.shape == (k,)]
        assert len(found) == 1, name  # one sort of the K rewards, whatever the number of n

    # K > FEW_LEVELS: on CPU the host construction returns FEW_LEVELS-long level arrays first; the K-long ones are
    # built (a second sort) only inside the cond's fallback, taken when there are more levels than that: the CPU
    # program holds two host calls, whatever the number of n
    from bontheory.exact.levels import FEW_LEVELS

    k = FEW_LEVELS + 10
    p = jnp.full((k,), 1.0 / k)
    r = jnp.arange(k) % 7 * 1.0
    cpu_program = jax.jit(jax.vmap(bon_kl, in_axes=(None, None, 0))).lower(p, r, jnp.arange(1, 65)).as_text()
    assert cpu_program.count("xla_ffi_python_cpu_callback") == 2


def _sort_operand_shapes(fn, *args):
    def sorts(jx):
        out = []
        for eqn in jx.eqns:
            if eqn.primitive.name == "sort":
                out.append(eqn.invars[0].aval.shape)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                out.extend(sorts(sub))
        return out

    return sorts(jax.make_jaxpr(fn)(*args).jaxpr)


def test_win_rate_of_a_policy_batch_sorts_the_reference_once():
    """win_rate(policy_probs[N, K], ref_probs[K], rewards[K]) builds the levels of (p, r) once: one sort of
    K outcomes, not a sort of an (N, K) array of identical rows."""
    from bontheory import win_rate

    k, n = 40, 16
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(k))
    r = rng.integers(0, 5, size=k).astype(float)
    pis = rng.dirichlet(np.ones(k), size=n)
    assert _sort_operand_shapes(win_rate, pis, p, r) == [(k,)]
    expect = [float(win_rate(pi, p, r)) for pi in pis]
    np.testing.assert_allclose(win_rate(pis, p, r), expect, rtol=1e-14)
    # a batch of references still gets one sort per reference row
    ps = rng.dirichlet(np.ones(k), size=3)
    assert _sort_operand_shapes(win_rate, pis[:3], ps, r) in ([(3, k)], [(k,)] * 3)


def test_float32_in_float32_out():
    p32 = P.astype(np.float32)
    r32 = R.astype(np.float32)
    for fn in FUNCS:
        out = fn(p32, r32, 3)
        assert out.dtype == jnp.float32
        np.testing.assert_allclose(out, fn(P, R, 3), rtol=1e-5)
    assert bon_pmf(p32, r32, 3).dtype == jnp.float32


def test_integer_rewards_keep_exact_ties():
    """Rewards are compared in their own dtype: huge integer rewards that differ by 1 stay distinct."""
    p = np.array([0.5, 0.5])
    r = np.array([2**53, 2**53 + 1], dtype=np.int64)
    np.testing.assert_allclose(bon_pmf(p, r, 2), [0.25, 0.75], atol=1e-15)
