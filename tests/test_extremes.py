"""Valid extremes compute the right thing, against float64 references built independently of the fast path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bontheory as bt


def _tied_space(k=5000, levels=5, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.random(k)
    return p / p.sum(), np.floor(rng.random(k) * levels)


def _via_levels(fn, p, r):
    """Reference: the method on the aggregated level space (one outcome per level, K small, no compaction),
    spread back over each level in proportion to p (every method here is a function of the reward levels)."""
    values, inverse = np.unique(r, return_inverse=True)
    mass = np.bincount(inverse, weights=p)
    q = np.asarray(fn(mass, values), dtype=np.float64)
    return q[..., inverse] * p / mass[inverse]


@pytest.mark.parametrize("name,fn", [
    ("chi2_pessimism_pmf", lambda p, r: bt.chi2_pessimism_pmf(p, r, 0.3)),
    ("quantile_truncation_sampler_pmf", lambda p, r: bt.quantile_truncation_sampler_pmf(p, r, 8, 2.0)),
    ("method_pmfs chi2 limit", lambda p, r: bt.method_pmfs("chi2_pessimism_limit", p, r, np.array([4]), 0.3)),
    ("method_pmfs quantile_trunc", lambda p, r: bt.method_pmfs("quantile_trunc", p, r, np.array([4]), 2.0)),
])
def test_tied_spaces_beyond_the_compaction_size(name, fn):
    p, r = _tied_space()  # 5000 outcomes on 5 levels: reward_levels compacts them eagerly
    eager = np.asarray(fn(p, r))
    jitted = np.asarray(jax.jit(fn)(jnp.asarray(p), jnp.asarray(r)))
    ref = _via_levels(fn, p, r)
    np.testing.assert_allclose(eager, ref, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(jitted, eager, rtol=1e-9, atol=1e-15)  # eager and jitted agree
    assert abs(eager.sum(-1) - 1).max() < 1e-12


P = np.array([0.1, 0.2, 0.3, 0.4])
R = np.array([0.0, 1.0, 1.0, 2.3])
R_TIED_TOP = np.array([0.0, 1.0, 2.0, 2.0])


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("lam", [1e-3, 1e-7, 1e-8, 1e-12, 1e-40])
def test_soft_bon_converges_to_bon_as_the_temperature_goes_to_zero(dtype, tol, lam):
    # float32 1e-40 is subnormal: XLA on CPU flushes it to 0 (eagerly and under jit); both give the BoN limit
    p, r = P.astype(dtype), R.astype(dtype)
    bon = np.asarray(bt.bon_pmf(P, R, 4), np.float64)  # float64 reference
    soft = np.asarray(bt.soft_bon_pmf(p, r, 4, dtype(lam)), np.float64)
    jitted = np.asarray(jax.jit(bt.soft_bon_pmf)(jnp.asarray(p), jnp.asarray(r), 4, dtype(lam)), np.float64)
    np.testing.assert_allclose(soft, bon, atol=tol)
    np.testing.assert_allclose(jitted, bon, atol=tol)


def test_subnormal_temperature_is_valid_under_jit_and_zero_is_not():
    # the traced check reads the bits (XLA's comparisons see a float32 subnormal as 0, NumPy's do not)
    p, r, tiny = jnp.asarray(P, jnp.float32), jnp.asarray(R, jnp.float32), jnp.float32(1e-40)
    assert 0 < float(tiny) < float(jnp.finfo(jnp.float32).smallest_normal)
    checked = bt.checked(jax.jit(bt.soft_bon_pmf))
    np.testing.assert_allclose(np.asarray(checked(p, r, 4, tiny)), np.asarray(bt.bon_pmf(P, R, 4)), atol=1e-6)
    for bad in (0.0, -1e-40, np.nan):
        assert np.all(np.isnan(np.asarray(jax.jit(bt.soft_bon_pmf)(p, r, 4, jnp.float32(bad)))))
        with pytest.raises(ValueError, match="temperature must be > 0"):
            checked(p, r, 4, jnp.float32(bad))
    # one reward level (no gap): the limit is p itself, with a finite gradient
    one_level = jax.jit(lambda q: bt.soft_bon_pmf(q, jnp.ones(2, jnp.float32), 4, tiny)[1])
    grad = jax.grad(one_level)(jnp.full(2, 0.5, jnp.float32))
    assert np.all(np.isfinite(np.asarray(grad)))


def test_soft_bon_auto_nodes_span_the_rewards_for_one_distribution():
    # the node count follows (r_max − r_min)/λ for one distribution as for a batch (it used r_max alone)
    p, r = np.full(8, 1 / 8), np.array([-42.0, -10.0, -3.0, -1.0, 0.0, 0.2, 0.5, 0.7])
    for lam in (0.08, 0.2):
        assert bt.auto_num_nodes(p, r, 4, lam) == bt.auto_num_nodes(p[None], r[None], 4, lam) >= 1024
        assert abs(float(np.sum(bt.soft_bon_pmf(p, r, 4, lam))) - 1) < 1e-12


def test_soft_bon_cost_does_not_grow_as_one_over_the_temperature():
    # the automatic node count is bounded as λ → 0 (the BoN limit takes over below gap / G)
    nodes = [bt.auto_num_nodes(P, R, 4, lam) for lam in (1e-2, 1e-4, 1e-8, 1e-16)]
    assert max(nodes) == nodes[0] or max(nodes) <= 4 * nodes[0]
    assert max(nodes) <= 4096


def test_soft_bon_near_the_switch_is_continuous():
    # just above the switch the quadrature runs; it already agrees with BoN to float64 precision
    gap_over_g = 1.0 / (np.log(4) + 37)
    above = np.asarray(bt.soft_bon_pmf(P, R, 4, 1.05 * gap_over_g))
    np.testing.assert_allclose(above, np.asarray(bt.bon_pmf(P, R, 4)), atol=1e-13)


def _top_level(p, r):
    top = r == r.max()
    return np.where(top, p / p[top].sum(), 0.0)


@pytest.mark.parametrize("r", [R, R_TIED_TOP])
def test_quantile_truncation_at_infinite_cap_is_the_top_level(r):
    np.testing.assert_allclose(np.asarray(bt.quantile_truncated_pmf(P, r, np.inf)), _top_level(P, r), atol=1e-15)
    f32 = np.asarray(bt.quantile_truncated_pmf(P.astype(np.float32), r.astype(np.float32), np.float32(np.inf)))
    np.testing.assert_allclose(f32, _top_level(P, r), atol=1e-7)


@pytest.mark.parametrize("beta", [1e-8, 1e-30, 1e-300])
@pytest.mark.parametrize("scale", [1.0, 1e300])
def test_chi2_pessimism_as_beta_goes_to_zero_is_the_top_level(beta, scale):
    r = R_TIED_TOP * scale
    np.testing.assert_allclose(np.asarray(bt.chi2_pessimism_pmf(P, r, beta)), _top_level(P, r), atol=1e-15)
    jitted = np.asarray(jax.jit(bt.chi2_pessimism_pmf)(jnp.asarray(P), jnp.asarray(r), beta))
    np.testing.assert_allclose(jitted, _top_level(P, r), atol=1e-15)


def test_chi2_pessimism_in_float32_at_small_beta():
    out = np.asarray(bt.chi2_pessimism_pmf(P.astype(np.float32), R_TIED_TOP.astype(np.float32), np.float32(1e-8)))
    np.testing.assert_allclose(out, _top_level(P, R_TIED_TOP), atol=1e-6)


def test_float64_rewards_that_collide_in_float32_are_warned():
    r = np.array([1.0, 1.0 + 1e-9, 1.0 + 2e-9, 2.0])  # distinct in float64, one value in float32
    with pytest.warns(RuntimeWarning, match="become equal in float32"):
        jax.config.update("jax_enable_x64", False)
        try:
            bt.bon_kl(P.astype(np.float32), r, 16)  # float64 rewards computed in float32
        finally:
            jax.config.update("jax_enable_x64", True)


def test_sequence_kl_ignores_contexts_the_first_policy_never_reaches():
    # order-1 policies over V = 2, L = 2: a never emits token 1 first, so context "1" at position 2 is unreachable
    # under a; there b puts -inf on a token a uses. Exact KL: only position 1 and context "0" count.
    la = jnp.log(jnp.array([[[1.0, 0.0], [1.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]]]))
    lb = jnp.log(jnp.array([[[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [1.0, 0.0]]]))
    a, b = bt.tabular_policy_from_logits(la, order=1), bt.tabular_policy_from_logits(lb, order=1)
    expected = np.log(2.0)  # position 1: KL((1, 0) || (1/2, 1/2)); position 2 in context 0: 0
    np.testing.assert_allclose(float(bt.sequence_kl(a, b)), expected, rtol=1e-12)


def test_a_tied_level_of_a_million_outcomes_keeps_its_mass_in_float32():
    k = 10**6
    p = np.full(k, 1.0 / k, np.float32)
    r = np.zeros(k, np.float32)
    r[:10] = 1.0  # ten outcomes on the top level, 999 990 tied below
    q = np.asarray(bt.bon_pmf(p, r, 4), np.float64)
    assert abs(q.sum() - 1) < 8 * np.finfo(np.float32).eps  # segment_sum alone gave 0.991
    mass = np.asarray(bt.reward_levels(p, r).mass[:2], np.float64)
    np.testing.assert_allclose(mass, [0.99999, 1e-5], rtol=4 * np.finfo(np.float32).eps * 8)
