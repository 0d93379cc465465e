"""The one validation path: every public function of exact/, mc/ and vbon/ declares its argument kinds, and the
kinds check what they promise (including the checks that tie arguments together)."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bontheory as bt
from bontheory import validation

# Public callables of exact/, mc/, vbon/ that take no user input to validate at this boundary: the
# *_from_levels family and level_log_mass_of_max (jitted, on levels already built; n may be traced), the
# per-device kernel bodies (called inside jit/shard_map), reward_scorer (called per chunk inside the kernel),
# compact_levels (on levels), train_steps (jitted), and the I/O / device helpers.
NOT_AT_A_BOUNDARY = {
    "bon_expected_reward_from_levels", "bon_kl_from_levels", "bon_log_pmf_from_levels", "bon_win_rate_from_levels",
    "level_log_mass_of_max", "compact_levels", "bon_trials", "candidate_trials", "reward_scorer", "train_steps",
    "initialize_distributed", "to_host", "trial_mesh", "load_checkpoint", "save_checkpoint", "train_with_checkpoints",
    # deprecated aliases: they only warn and call the validated function of the new name
    "bon_kl_estimator", "bon_kl_estimate",
}


def _public_functions():
    for name in sorted(bt.__all__):
        value = getattr(bt, name)
        module = getattr(value, "__module__", "") or ""
        if inspect.isclass(value) or not callable(value):
            continue
        if module.split(".")[1:2] and module.split(".")[1] in ("exact", "mc", "vbon"):
            yield name, value


def test_every_public_function_declares_its_argument_kinds():
    missing = [n for n, fn in _public_functions() if n not in NOT_AT_A_BOUNDARY and not hasattr(fn, "argument_kinds")]
    assert not missing, f"public functions without @validation.validate: {missing}"
    for name, fn in _public_functions():
        if hasattr(fn, "argument_kinds"):
            assert set(fn.argument_kinds) <= set(inspect.signature(fn).parameters), name


P = np.array([0.1, 0.2, 0.3, 0.4])
R = np.array([0.0, 1.0, 1.0, 2.0])


def test_batch_parameters_must_broadcast_with_the_batch_shape():
    p2, r2 = np.tile(P, (2, 1)), np.tile(R, (2, 1))
    with pytest.raises(ValueError, match=r"n of shape \(3,\) does not broadcast.*trailing axes"):
        bt.bon_pmf(p2, r2, np.array([1, 2, 3]))
    grid = bt.bon_kl(p2, r2, np.array([1, 2, 3])[:, None])  # a grid of n per distribution
    assert grid.shape == (3, 2)
    with pytest.raises(ValueError, match="beta"):
        bt.tilted_pmf(p2, r2, np.ones(3))


def test_kinds_name_the_argument_and_refuse_bad_values():
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="ref_probs"):
        bt.bon_pmf("0.5", R, 2)
    with pytest.raises(TypeError, match="ref_probs"):
        bt.bon_pmf(None, R, 2)
    with pytest.raises(ValueError, match="log_q"):
        bt.reverse_kl(np.log(P) + 0.5, np.log(P))  # unnormalised
    with pytest.raises(ValueError, match="log_target"):
        bt.reverse_kl(np.log(P), np.array([np.nan, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="n must be >= 1"):
        bt.vbon_target_log_probs(np.log(P), R, 0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        bt.select_soft_bon(key, jnp.asarray(R), jnp.zeros(4), -1.0)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        bt.regularized_bon_sample(key, P, R, 3, -1.0, (4,))
    with pytest.raises(ValueError, match="beta must be >= 0"):
        bt.regularized_bon_sample(key, P, R, 3, np.nan, (4,))
    with pytest.raises(ValueError, match="ref_probs"):
        bt.draw_outcomes(key, np.array([0.5, 0.6, -0.1]), 5)
    with pytest.raises(ValueError, match="n must be an integer"):
        bt.bon_log_ratio_from_reference(jnp.zeros(3), jnp.zeros(4), 2.5)
    with pytest.raises(ValueError, match="n must be >= 1"):
        bt.pessimism_num_candidates(-1)
    with pytest.raises(ValueError, match="backward_weight"):
        bt.jeffreys_divergence(np.log(P), np.log(P), 1.5)
    with pytest.raises(TypeError, match="key"):
        bt.bon_sample_exact(0, P, R, 2, (3,))


def test_valid_extremes_are_accepted():
    # an int shape means (shape,); n beyond int32 is accepted (as a float, exact to 2**53)
    assert bt.bon_sample_exact(jax.random.key(0), P, R, 3, 5).shape == (5,)
    kl = float(bt.bon_kl(P, R, 10**12))
    assert np.isfinite(kl) and kl == pytest.approx(float(bt.bon_kl(P, R, 1e12)), rel=1e-12)


def test_nested_calls_check_values_once(monkeypatch):
    calls = []
    real = validation._values  # every pmf value check reads the values through this

    def counting(arr):
        calls.append(arr.shape)
        return real(arr)

    monkeypatch.setattr(validation, "_values", counting)
    p, r = jnp.asarray(P), jnp.asarray(R)
    bt.proxy_gold_metrics(p, p, r, r)  # seven validated metrics (and win_rate's levels) on the same arrays
    assert len(calls) == 1  # p (passed as policy_probs and ref_probs) is checked once, not once per call
    calls.clear()
    bt.proxy_gold_metrics(p, jnp.asarray(P), r, r)
    assert len(calls) == 2


def test_static_checks_still_run_under_jit_and_bad_values_poison():
    f = jax.jit(bt.reverse_kl)
    # traced values cannot raise: an unnormalised q poisons the result (NaN), a normalised one is computed
    assert np.isnan(f(jnp.log(P) + 0.5, jnp.log(P)))
    np.testing.assert_allclose(f(jnp.log(P), jnp.log(P)), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="same number of outcomes"):
        f(jnp.log(P), jnp.log(P[:3] / P[:3].sum()))


def test_under_jit_bad_values_poison_per_distribution_and_checked_raises():
    p, r = jnp.asarray(P), jnp.asarray(R)
    f = jax.jit(bt.bon_kl)
    assert np.isnan(f(p.at[0].set(jnp.nan), r, 4))  # a NaN in p: not KL 0
    assert np.isnan(f(p, r, 0)) and np.isnan(f(p, r, -2.0)) and np.isnan(f(p, r, 2.5))  # n <= 0, n not integer
    assert np.all(np.isnan(jax.jit(bt.bon_pmf)(p.at[0].set(jnp.nan), r, 4)))  # not an all-zero pmf
    rows = jax.vmap(bt.bon_kl, in_axes=(0, 0, None))(jnp.stack([p, p.at[1].set(jnp.nan)]), jnp.stack([r, r]), 4)
    assert np.isfinite(rows[0]) and np.isnan(rows[1])  # only the bad row is poisoned
    np.testing.assert_allclose(rows[0], bt.bon_kl(P, R, 4), rtol=1e-12)
    assert np.isnan(jax.jit(bt.tilted_pmf)(p, r, -1.0)).all()
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        bt.checked(jax.jit(bt.bon_kl))(p, r, 0)
    with pytest.raises(ValueError, match="ref_probs must be a pmf"):
        bt.checked(jax.jit(bt.bon_kl))(p.at[0].set(jnp.nan), r, 3)
    np.testing.assert_allclose(bt.checked(jax.jit(bt.bon_kl))(p, r, 3), bt.bon_kl(P, R, 3), rtol=1e-12)
