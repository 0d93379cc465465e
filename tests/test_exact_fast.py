"""The fast paths of the exact layer agree with the implementation they replaced (``tests/references.py``,
one XLA sort, every n on all K levels) to 1e-12 in float64 on the hard cases: ties, n up to 10⁶, masses down
to 1e-30; under ``jit`` (padded levels, blocks past the last level skipped), eagerly (compacted levels) and in
batches. The host sort (CPU) gives the same order and levels as a stable ``argsort`` for every reward dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from references import reference_bon

import bontheory as bt
from bontheory.exact.levels import FEW_LEVELS, LEVEL_BLOCK, sort_levels

NS = np.array([1, 2, 7, 100, 10**4, 10**6])


def _case(kind: str, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.3))
    if kind == "ties":
        r = rng.integers(0, 300, k).astype(float)
    elif kind == "distinct":
        r = rng.permutation(k).astype(float)
    else:  # tiny masses on the top levels and a tied top
        r = rng.integers(0, 50, k).astype(float)
        top = rng.choice(k, 40, replace=False)
        p[top] = 1e-30
        r[top] = 100.0 + np.arange(40) % 20
    return p / p.sum(), r


def _close(a, b):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)  # KL(π_1||p) = 0 up to rounding


@pytest.mark.parametrize("kind", ["ties", "distinct", "tiny"])
@pytest.mark.parametrize("k", [300, 3 * LEVEL_BLOCK + 5])
def test_fast_paths_agree_with_the_reference(kind, k):
    p, r = _case(kind, k)
    log_pmf0, kl0, er0, wr0 = (np.asarray(a) for a in reference_bon(p, r, NS))
    pmf0 = np.exp(log_pmf0)
    eager = (bt.bon_pmf(p, r, NS), bt.bon_kl(p, r, NS), bt.bon_expected_reward(p, r, NS), bt.bon_win_rate(p, r, NS))
    traced = jax.jit(lambda pp, rr, nn: (bt.bon_pmf(pp, rr, nn), bt.bon_kl(pp, rr, nn),
                                         bt.bon_expected_reward(pp, rr, nn), bt.bon_win_rate(pp, rr, nn)))(p, r, NS)
    for got in (eager, traced):
        np.testing.assert_allclose(np.asarray(got[0]), pmf0, rtol=1e-12, atol=1e-15 * pmf0.max())
        for a, b in zip(got[1:], (kl0, er0, wr0), strict=True):
            _close(a, b)
    log_pmf = np.asarray(bt.bon_log_pmf(p, r, NS))
    fin = np.isfinite(log_pmf0)
    assert np.array_equal(fin, np.isfinite(log_pmf))
    np.testing.assert_allclose(log_pmf[fin], log_pmf0[fin], rtol=1e-12, atol=1e-12)


def test_vmap_over_n_under_jit_matches_and_batches_match_rows():
    p, r = _case("ties", 2 * LEVEL_BLOCK + 17, seed=1)
    kl0 = np.asarray(reference_bon(p, r, NS)[1])
    _close(jax.jit(jax.vmap(bt.bon_kl, in_axes=(None, None, 0)))(p, r, NS), kl0)
    p2, r2 = _case("tiny", 2 * LEVEL_BLOCK + 17, seed=2)
    ps, rs = np.stack([p, p2]), np.stack([r, r2])
    batch = jax.jit(lambda a, b, n: bt.bon_kl(a, b, n))(ps, rs, NS[:, None])  # (N, 2)
    _close(batch[:, 0], kl0)
    _close(batch[:, 1], reference_bon(p2, r2, NS)[1])


def test_grad_through_the_blocked_path_matches_finite_differences():
    """jax.grad through the block loop (scan + cond over level blocks, under jit), against a central difference
    along a random direction of the logits (the pre-fast-path code's gradient was NaN: nothing to compare)."""
    p, r = _case("ties", 2 * LEVEL_BLOCK + 3, seed=4)
    z = jnp.log(jnp.asarray(p))
    v = jnp.asarray(np.random.default_rng(0).normal(size=z.shape))
    f = jax.jit(lambda zz: bt.bon_kl(jax.nn.softmax(zz), r, 9))
    g = jax.jit(jax.grad(f))(z)
    eps = 1e-6
    fd = (f(z + eps * v) - f(z - eps * v)) / (2 * eps)
    np.testing.assert_allclose(float(jnp.dot(g, v)), float(fd), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "int64", "bool"])
def test_sort_levels_is_a_stable_argsort(dtype):
    rng = np.random.default_rng(5)
    base = rng.normal(size=2000)
    if dtype in ("float64", "float32"):
        r = np.where(rng.random(2000) < 0.5, np.round(base, 1), base).astype(dtype)
        r[:4] = [0.0, -0.0, 1.0, 1.0 + np.finfo(dtype).eps]  # -0.0 ties 0.0; values equal in their high bits
        if dtype == "float64":
            r[4:8] = 1.0 + np.array([1, 2, 1, 3]) * 1e-13
    elif dtype == "bool":
        r = rng.random(2000) < 0.3
    else:
        r = rng.integers(-(2**31), 2**31 - 1, 2000).astype(dtype) // 1000
    order, lid = (np.asarray(a) for a in jax.jit(sort_levels)(jnp.asarray(r)))
    expect = np.argsort(r, kind="stable")
    rs = r[expect]
    np.testing.assert_array_equal(order, expect)
    np.testing.assert_array_equal(lid, np.cumsum(np.r_[True, rs[1:] != rs[:-1]]) - 1)


def test_many_n_from_one_sort():
    p, r = _case("ties", 500, seed=6)
    levels = bt.reward_levels(p, r)
    ns = jnp.asarray([1, 5, 50])
    draws = bt.bon_sample_exact_from_levels(jax.random.key(0), levels, ns, (20_000,))
    assert draws.shape == (20_000, 3)
    for j, n in enumerate(np.asarray(ns)):  # the mean reward of the draws against the exact one
        exact = float(bt.bon_expected_reward(p, r, int(n)))
        got = np.asarray(r)[np.asarray(draws[:, j])]
        assert abs(got.mean() - exact) < 5 * got.std() / np.sqrt(len(got)) + 1e-12


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_host_built_levels_equal_the_xla_construction(dtype):
    """On CPU the levels come from one host call; their derivatives (and GPU/TPU) from the XLA construction.
    The primal of ``jax.jvp`` is the XLA construction's value: both must agree field by field, on ties, all
    distinct rewards, 1e-30 masses at the top, a level of 5 000 tied outcomes (summed pairwise on the host) and
    zero-mass levels at the bottom, in a batch of rows (the callback loops over rows). A concrete call builds the
    same levels on the host directly, compacted (past the real levels only padding is dropped)."""
    rows = [_case(kind, 6_000, seed=7) for kind in ("ties", "distinct", "tiny")]
    p, r = _case("ties", 6_000, seed=8)
    r[:5_000] = 5.0  # one long level
    p[r == r.min()] = 0.0  # zero-mass levels at the bottom
    rows.append((p / p.sum(), r))
    ps = jnp.asarray(np.stack([a for a, _ in rows]), dtype)
    rs = jnp.asarray(np.stack([b for _, b in rows]), dtype)
    build = jax.jit(lambda a, b: bt.reward_levels(a, b, compact=False))
    host = build(ps, rs)
    xla, _ = jax.jvp(lambda a: bt.reward_levels(a, rs, compact=False), (ps,), (jnp.zeros_like(ps),))
    tied = np.array([0, 2, 3])  # the rows with fewer levels than outcomes
    eager = bt.reward_levels(ps[tied], rs[tied])  # concrete: built on the host directly, level arrays compacted
    size = eager.mass.shape[-1]
    assert size < ps.shape[-1]
    tol = 1e-12 if dtype == "float64" else 2e-6
    for field in host._fields:
        a, b = np.asarray(getattr(host, field)), np.asarray(getattr(xla, field))
        c, at = np.asarray(getattr(eager, field)), a[tied]
        if field in ("order", "level_of", "num_levels", "log_probs"):
            np.testing.assert_array_equal(c, at, err_msg=field)
        else:  # a level array: the same levels, and only padding (equal to the last entry) dropped
            np.testing.assert_array_equal(c, at[..., :size], err_msg=field)
            assert np.all(at[..., size:] == at[..., -1:]), field
        assert a.dtype == b.dtype, field
        assert np.array_equal(np.isfinite(a), np.isfinite(b)), field
        assert np.array_equal(a[~np.isfinite(a)], b[~np.isfinite(b)]), field
        fin = np.isfinite(a)
        np.testing.assert_allclose(a[fin], b[fin], rtol=tol, atol=tol * 1e-3, err_msg=field)


def test_requested_fields_equal_the_full_construction_and_the_rest_are_none():
    """``reward_levels(..., fields=...)`` builds only those fields (the others are None), with the values of the
    full construction — concrete (host, compacted), under jit (host callback) and through jax.jvp (XLA); the
    scalar functionals, which ask for their few fields, agree with the same sums on the full levels."""
    p, r = _case("ties", 6_000, seed=3)
    ps, rs = jnp.asarray(p), jnp.asarray(r)
    full = bt.reward_levels(ps, rs)
    n = jnp.asarray([1, 7, 300])
    for fields in [("log_cdf", "log_ratio", "log_mass"), ("order", "tail", "level_of", "log_probs", "count")]:
        jitted = jax.jit(lambda a, b, f=fields: bt.reward_levels(a, b, compact=False, fields=f))(ps, rs)
        jvp, _ = jax.jvp(lambda a, f=fields: bt.reward_levels(a, rs, compact=False, fields=f), (ps,), (ps * 0,))
        for levels in (bt.reward_levels(ps, rs, fields=fields), jitted, jvp):
            for name in full._fields:
                value = getattr(levels, name)
                if name not in fields and name != "num_levels":
                    assert value is None, name
                    continue
                want = np.asarray(getattr(full, name))
                got = np.asarray(value)[..., : want.shape[-1]] if want.ndim else np.asarray(value)
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300, err_msg=name)
    for fn, from_levels in [(bt.bon_kl, bt.bon_kl_from_levels), (bt.bon_win_rate, bt.bon_win_rate_from_levels),
                            (bt.bon_expected_reward, bt.bon_expected_reward_from_levels)]:
        want = np.asarray(from_levels(full, n))
        np.testing.assert_allclose(np.asarray(fn(ps, rs, n)), want, rtol=1e-13)
        np.testing.assert_allclose(np.asarray(jax.jit(fn)(ps, rs, n)), want, rtol=1e-13)
    with pytest.raises(ValueError, match="fields"):
        bt.bon_pmf_from_levels(bt.reward_levels(ps, rs, fields=("log_cdf", "log_ratio", "log_mass")), 3)
    with pytest.raises(ValueError, match="fields"):
        bt.reward_levels(ps, rs, fields=("log_cdf", "no_such_field"))
    with pytest.raises(TypeError, match="fields"):
        bt.reward_levels(ps, rs, fields="log_cdf")


@pytest.mark.parametrize("levels", [300, FEW_LEVELS + 1])
def test_few_levels_first_under_jit_and_the_full_construction_past_them(levels):
    """Under jit with K > FEW_LEVELS, the scalar functionals and the pmfs first evaluate on level arrays of length
    FEW_LEVELS and fall back to length K when there are more levels: both sides (300 levels, and FEW_LEVELS + 1)
    agree with the float64 reference (the gradient on the short arrays: the slow test below)."""
    k = FEW_LEVELS + 700
    rng = np.random.default_rng(levels)
    p = rng.dirichlet(np.full(k, 0.3))
    r = np.concatenate([np.arange(levels), rng.integers(0, levels, k - levels)]).astype(float)
    rng.shuffle(r)
    ns = np.array([1, 3, 50, 10**4])
    log_pmf0, kl0, er0, wr0 = (np.asarray(a) for a in reference_bon(p, r, ns))
    fns = (bt.bon_pmf, bt.bon_kl, bt.bon_expected_reward, bt.bon_win_rate)
    got = jax.jit(lambda pp, rr, nn: tuple(f(pp, rr, nn) for f in fns))(p, r, ns)
    pmf0 = np.exp(log_pmf0)
    np.testing.assert_allclose(np.asarray(got[0]), pmf0, rtol=1e-12, atol=1e-15 * pmf0.max())
    for a, b in zip(got[1:], (kl0, er0, wr0), strict=True):
        _close(a, b)
    over_n = jax.jit(jax.vmap(bt.bon_kl, in_axes=(None, None, 0)))(p, r, ns)
    _close(over_n, kl0)
    # a batch of rows: the cond takes the largest number of levels of the batch (a row of 50 levels rides along)
    p2, r2 = _case("ties", k, seed=levels + 1)
    r2 = r2 % 50
    batch = jax.jit(bt.bon_kl)(np.stack([p, p2]), np.stack([r, r2]), ns[:, None])
    _close(batch[:, 0], kl0)
    _close(batch[:, 1], bt.bon_kl(p2, r2, ns))


@pytest.mark.slow
def test_gradient_through_the_few_levels_arrays():
    """jax.grad of bon_kl under jit with K > FEW_LEVELS and few levels (the short arrays' JVP, inside the cond)
    against a central difference (slow: the two-path program takes ~20 s to compile for reverse mode)."""
    k = FEW_LEVELS + 700
    rng = np.random.default_rng(300)
    p = rng.dirichlet(np.full(k, 0.3))
    r = rng.integers(0, 300, k).astype(float)
    z = jnp.log(jnp.asarray(p))
    v = jnp.asarray(rng.normal(size=k))
    f = jax.jit(lambda zz: bt.bon_kl(jax.nn.softmax(zz), r, 9))
    eps = 1e-6
    fd = (f(z + eps * v) - f(z - eps * v)) / (2 * eps)
    np.testing.assert_allclose(float(jnp.dot(jax.jit(jax.grad(f))(z), v)), float(fd), rtol=1e-6, atol=1e-9)


def test_pmf_under_vmap_equals_the_array_call_and_differentiates():
    """The pmfs gather one value per outcome with a batching rule of their own (row by row under vmap): vmap over
    n, over the distributions, both nested, and derivatives (forward and reverse, under vmap) agree with the
    array-n call and with finite differences."""
    p, r = _case("ties", 2_000, seed=11)
    p2, r2 = _case("tiny", 2_000, seed=12)
    ps, rs = jnp.asarray(np.stack([p, p2])), jnp.asarray(np.stack([r, r2]))
    ns = jnp.asarray([1, 4, 1000])
    want = np.asarray(bt.bon_pmf(ps[:, None, :], rs[:, None, :], ns))  # (2, 3, K)
    over_n = jax.jit(jax.vmap(bt.bon_pmf, in_axes=(None, None, 0)))
    for i in range(2):
        np.testing.assert_allclose(np.asarray(over_n(ps[i], rs[i], ns)), want[i], rtol=1e-13, atol=1e-300)
    nested = jax.jit(jax.vmap(jax.vmap(bt.bon_pmf, in_axes=(None, None, 0)), in_axes=(0, 0, None)))
    np.testing.assert_allclose(np.asarray(nested(ps, rs, ns)), want, rtol=1e-13, atol=1e-300)
    over_p = jax.vmap(bt.bon_log_pmf, in_axes=(0, 0, None))(ps, rs, ns)  # (2, 3, K)
    np.testing.assert_allclose(np.asarray(over_p), np.asarray(bt.bon_log_pmf(ps[:, None, :], rs[:, None, :], ns)))
    z = jnp.log(ps[0])
    v = jnp.asarray(np.random.default_rng(1).normal(size=z.shape))
    w = jnp.asarray(np.random.default_rng(2).random(z.shape))
    f = lambda zz, n: jnp.dot(bt.bon_pmf(jax.nn.softmax(zz), rs[0], n), w)
    eps = 1e-6
    n = jnp.asarray(1000)
    fd = (f(z + eps * v, n) - f(z - eps * v, n)) / (2 * eps)
    _, fwd = jax.jvp(lambda zz: f(zz, n), (z,), (v,))
    rev = jnp.dot(jax.grad(f)(z, n), v)
    np.testing.assert_allclose([float(fwd), float(rev)], [float(fd)] * 2, rtol=1e-6, atol=1e-10)
    grads = jax.jit(jax.vmap(jax.grad(f), in_axes=(None, 0)))(z, ns)
    np.testing.assert_allclose(np.asarray(grads[2]), np.asarray(jax.grad(f)(z, n)), rtol=1e-12, atol=1e-15)
