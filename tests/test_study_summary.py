"""proxy_study_summary on hand-made curves: BoN's peak and fall, oracle and held-out best parameters, the drop
after the peak, monotonicity (NaN budgets skipped), and bad input."""

import numpy as np
import pytest

import bontheory as bt

NS = [1, 4, 16, 64, 256]


def _curves():
    return {
        "proxy_sd": 1.0,
        "bon": {"gold": [0.0, 0.5, 0.8, 0.6, 0.2]},  # peaks at n = 16, falls
        "quantile_trunc": [
            {"param": 2.0, "gold": [0.0, 0.3, 0.4, 0.45, 0.45]},  # monotone
            {"param": 8.0, "gold": [0.0, 0.4, 0.7, 0.5, 0.3]},  # not monotone
        ],
        "chi2_pessimism": [
            {"param": 0.1, "gold": [np.nan, 0.2, 0.5, 0.6, 0.7]},  # cannot run at the first budget
            {"param": 1.0, "gold": [np.nan, 0.3, 0.35, 0.4, 0.41]},
        ],
    }


def test_bon_peak_and_methods_oracle():
    s = bt.proxy_study_summary(NS, _curves())
    assert (s.bon_peak_n, s.bon_peak_gold, s.bon_final_gold) == (16, 0.8, 0.2)
    assert abs(s.bon_drop_after_peak - 0.6) < 1e-12 and s.bon_falls and not s.bon_monotone
    qt = s.methods["quantile_trunc"]
    assert qt.oracle_param == [2.0, 8.0, 8.0, 8.0, 2.0]
    np.testing.assert_allclose(qt.oracle_gold, [0.0, 0.4, 0.7, 0.5, 0.45])
    assert qt.monotone == [True, False] and not qt.best_monotone
    assert abs(qt.drop_after_peak - 0.25) < 1e-12
    assert qt.held_out_param is None and qt.held_out_gold is None
    chi = s.methods["chi2_pessimism"]
    assert chi.oracle_param == [None, 1.0, 0.1, 0.1, 0.1]
    assert np.isnan(chi.oracle_gold[0]) and chi.monotone == [True, True] and chi.best_monotone
    assert chi.drop_after_peak == 0.0
    assert set(s.methods) == {"quantile_trunc", "chi2_pessimism"}


def test_held_out_choice_is_scored_on_the_evaluation_curves():
    sel = _curves()
    # the selection data prefers M = 2 everywhere: the held-out gold is M = 2's evaluation curve
    sel["quantile_trunc"][0]["gold"] = [1.0] * 5
    s = bt.proxy_study_summary(NS, _curves(), held_out=sel, methods=["quantile_trunc"])
    qt = s.methods["quantile_trunc"]
    assert qt.held_out_param == [2.0] * 5
    np.testing.assert_allclose(qt.held_out_gold, [0.0, 0.3, 0.4, 0.45, 0.45])
    assert np.all(qt.held_out_gold <= qt.oracle_gold + 1e-15)  # oracle is an upper bound on the same curves


def test_monotone_tolerance_and_ties():
    c = {"bon": {"gold": [0.0, 1.0, 1.0 - 1e-12]}, "m": [{"param": 1.0, "gold": [0.0, 1.0, 1.0 - 1e-12]}]}
    s = bt.proxy_study_summary([1, 2, 3], c)
    assert s.bon_monotone and s.methods["m"].best_monotone and s.bon_peak_n == 2  # first maximum
    assert not bt.proxy_study_summary([1, 2, 3], c, tol=0.0).bon_monotone


def test_bad_input():
    with pytest.raises(ValueError, match="increasing"):
        bt.proxy_study_summary([4, 1, 16, 64, 256], _curves())
    with pytest.raises(ValueError, match="'bon'"):
        bt.proxy_study_summary(NS, {"quantile_trunc": []})
    bad = _curves()
    bad["quantile_trunc"][1]["gold"] = [0.0, 1.0]
    with pytest.raises(ValueError, match="one value per budget"):
        bt.proxy_study_summary(NS, bad)
    sel = _curves()
    sel["quantile_trunc"][0]["param"] = 3.0
    with pytest.raises(ValueError, match="grid"):
        bt.proxy_study_summary(NS, _curves(), held_out=sel)


def test_on_exact_grid_curves_of_a_problem():
    """The summary of real curves agrees with best_on_grid and peak_and_fall read directly."""
    import jax
    prob = bt.proxy_problem(jax.random.key(0), "cauchy", vocab_size=3, length=4, error=0.5)
    ns = [1, 4, 16, 64, 256, 1024]
    curves = bt.method_grid_curves(prob, ns, {"quantile_trunc": (2.0, 8.0), "regularized_bon": (0.3, 1.0)})
    s = bt.proxy_study_summary(ns, curves)
    pf = bt.peak_and_fall(curves["bon"]["gold"])
    assert s.bon_peak_n == ns[pf.peak_index] and s.bon_falls == pf.falls
    for m, grid in (("quantile_trunc", [2.0, 8.0]), ("regularized_bon", [0.3, 1.0])):
        best = bt.best_on_grid(np.array([row["gold"] for row in curves[m]]), grid)
        np.testing.assert_array_equal(s.methods[m].oracle_gold, best.value)
        assert s.methods[m].oracle_param == best.param
