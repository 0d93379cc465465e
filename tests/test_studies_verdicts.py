"""The verdicts the experiments (and the paper) draw, tested on hand-made inputs: overoptimisation (peak and
fall of a curve), the gap of BoN to an optimal KL frontier, regret ratios against the optimum, the vBoN claims,
and the seed averaging / oracle tuning of method curves."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bontheory as bt

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
curves = st.lists(finite, min_size=1, max_size=12)


# ----------------------------------------------------------------------------------------------------
# peak_and_fall, max_drawdown


def test_peak_and_fall_on_hand_made_curves():
    # rises to 8 then ends at 5.75: drop 2.25 > 0.25 · gain 8
    v = bt.peak_and_fall([0.0, 4.0, 8.0, 5.75], rel_drop=0.25)
    assert v == bt.PeakAndFall(peak_index=2, peak_value=8.0, final_value=5.75, gain=8.0, drop_after_peak=2.25,
                               falls=True)
    # a drop of exactly rel_drop · gain is not a fall (strict inequality; all values exact in binary)
    assert not bt.peak_and_fall([0.0, 4.0, 8.0, 6.0], rel_drop=0.25).falls
    # a rising curve peaks at its end and does not fall
    rising = bt.peak_and_fall([1.0, 2.0, 3.0])
    assert (rising.peak_index, rising.drop_after_peak, rising.falls) == (2, 0.0, False)
    # a small dip (< 5% of the gain) is not a fall, a large one is
    assert not bt.peak_and_fall([0.0, 1.0, 0.96]).falls
    assert bt.peak_and_fall([0.0, 1.0, 0.9]).falls
    # the first of tied maxima is the peak
    assert bt.peak_and_fall([0.0, 3.0, 3.0, 1.0]).peak_index == 1
    # falling from the start: no gain, any drop is a fall; a constant curve does not fall
    assert bt.peak_and_fall([2.0, 1.0, 0.0]).falls
    assert not bt.peak_and_fall([2.0, 2.0, 2.0]).falls
    assert not bt.peak_and_fall([5.0]).falls


@given(curves, st.floats(0.0, 1.0))
def test_peak_and_fall_matches_its_definition(values, rel_drop):
    v = bt.peak_and_fall(values, rel_drop=rel_drop)
    peak = max(range(len(values)), key=lambda i: (values[i], -i))  # first maximum
    assert v.peak_index == peak and v.peak_value == values[peak] and v.final_value == values[-1]
    assert v.gain == values[peak] - values[0] >= 0 and v.drop_after_peak == values[peak] - values[-1] >= 0
    assert v.falls == (values[peak] - values[-1] > rel_drop * max(values[peak] - values[0], 1e-12))


def test_max_drawdown():
    assert bt.max_drawdown([0.0, 2.0, 1.0, 3.0, 0.5]) == 2.5
    assert bt.max_drawdown([0.0, 1.0, 1.0, 4.0]) == 0.0
    assert bt.max_drawdown([7.0]) == 0.0


@given(curves)
def test_max_drawdown_matches_brute_force(values):
    brute = max(values[s] - values[t] for t in range(len(values)) for s in range(t + 1))
    assert bt.max_drawdown(values) == brute


@pytest.mark.parametrize("bad, kind, word", [
    ([0.0, np.nan], ValueError, "values"),
    ([[0.0, 1.0]], ValueError, "values"),
    ([], ValueError, "values"),
    ("abc", TypeError, "values"),
    (None, TypeError, "values"),
])
def test_curve_verdicts_reject_bad_curves(bad, kind, word):
    for fn in (bt.peak_and_fall, bt.max_drawdown):
        with pytest.raises(kind, match=word):
            fn(bad)


def test_peak_and_fall_rejects_a_bad_rel_drop():
    for bad, kind in ((-0.1, ValueError), (np.nan, ValueError), ("x", TypeError), (None, TypeError)):
        with pytest.raises(kind, match="rel_drop"):
            bt.peak_and_fall([0.0, 1.0], rel_drop=bad)


# ----------------------------------------------------------------------------------------------------
# gap_to_frontier


FRONTIER_KL = [0.1, 0.5, 1.0]
FRONTIER_VALUE = [1.2, 1.5, 1.7]


def test_gap_is_anchored_at_p_itself():
    """The earlier bug: without the anchor (0, v0), a point at KL 0 with p's value was compared with the first
    computed frontier point (value 1.2), a spurious gap of 0.2. Anchored, p has no gap."""
    gap = bt.gap_to_frontier([0.0], [1.0], FRONTIER_KL, FRONTIER_VALUE, 1.0)
    assert gap.tolist() == [0.0]
    # between the anchor and the first frontier point: on the chord from (0, 1.0) to (0.1, 1.2)
    np.testing.assert_allclose(bt.gap_to_frontier([0.05], [1.0], FRONTIER_KL, FRONTIER_VALUE, 1.0), [0.1], rtol=1e-12)


def test_gap_interpolates_between_frontier_points_in_any_order():
    kl, val = [0.3, 0.75, 1.0, 2.0], [1.0, 1.0, 1.7, 1.0]
    want = [1.35 - 1.0, 1.6 - 1.0, 0.0, 1.7 - 1.0]  # beyond the last frontier point: its value
    np.testing.assert_allclose(bt.gap_to_frontier(kl, val, FRONTIER_KL, FRONTIER_VALUE, 1.0), want, rtol=1e-12)
    perm = [2, 0, 1]
    np.testing.assert_array_equal(
        bt.gap_to_frontier(kl, val, np.array(FRONTIER_KL)[perm], np.array(FRONTIER_VALUE)[perm], 1.0),
        bt.gap_to_frontier(kl, val, FRONTIER_KL, FRONTIER_VALUE, 1.0),
    )


@given(st.lists(st.floats(0.0, 4.0), min_size=1, max_size=8), st.lists(st.floats(0.01, 4.0), min_size=1, max_size=8),
       st.lists(st.floats(-2.0, 2.0), min_size=8, max_size=8))
def test_gap_to_a_concave_frontier_is_a_lower_bound(kl, frontier_kl, values):
    """Of a concave non-decreasing frontier (here √κ) the interpolation lies below: gap ≤ √κ − v."""
    values = values[: len(kl)]
    gap = bt.gap_to_frontier(kl, values, frontier_kl, np.sqrt(frontier_kl), 0.0)
    assert np.all(gap <= np.sqrt(kl) - np.array(values) + 1e-12)
    # at the computed frontier points the interpolation is exact
    np.testing.assert_allclose(bt.gap_to_frontier(frontier_kl, np.sqrt(frontier_kl), frontier_kl,
                                                  np.sqrt(frontier_kl), 0.0), 0.0, atol=1e-12)


def test_bon_at_n_one_has_no_gap_to_the_tilted_frontier():
    """On a real problem: BoN at n = 1 is p (KL 0, value E_p[r]); the tilted frontier, computed from a small
    β > 0 on, starts right of KL 0 and above E_p[r], yet the anchored gap at n = 1 is 0."""
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(50))
    r = rng.normal(size=50)
    front = bt.reward_kl_frontier(p, r, np.logspace(-1, 1, 20))
    ns = np.array([1, 2, 8, 64])
    kl, val = bt.bon_kl(p, r, ns), bt.bon_expected_reward(p, r, ns)
    ref = float(p @ r)
    assert float(front.kl.min()) > 1e-3 and float(front.value.min()) > ref + 1e-3
    gap = bt.gap_to_frontier(kl, val, front.kl, front.value, ref)
    assert abs(gap[0]) < 1e-12
    # BoN is never above the optimal frontier: above the chords by at most the chords' own error
    assert np.all(gap > -1e-2)


def test_gap_to_frontier_rejects_bad_input():
    with pytest.raises(ValueError, match="kl and values"):
        bt.gap_to_frontier([0.1, 0.2], [1.0], FRONTIER_KL, FRONTIER_VALUE, 1.0)
    with pytest.raises(ValueError, match="frontier_kl and frontier_values"):
        bt.gap_to_frontier([0.1], [1.0], FRONTIER_KL, FRONTIER_VALUE[:2], 1.0)
    with pytest.raises(ValueError, match="kl"):
        bt.gap_to_frontier([-0.5], [1.0], FRONTIER_KL, FRONTIER_VALUE, 1.0)
    with pytest.raises(ValueError, match="frontier_kl"):
        bt.gap_to_frontier([0.5], [1.0], [-1.0, 0.5, 1.0], FRONTIER_VALUE, 1.0)
    with pytest.raises(ValueError, match="values"):
        bt.gap_to_frontier([0.5], [np.inf], FRONTIER_KL, FRONTIER_VALUE, 1.0)
    with pytest.raises(ValueError, match="value_at_zero"):
        bt.gap_to_frontier([0.5], [1.0], FRONTIER_KL, FRONTIER_VALUE, np.nan)
    with pytest.raises(TypeError, match="value_at_zero"):
        bt.gap_to_frontier([0.5], [1.0], FRONTIER_KL, FRONTIER_VALUE, None)


# ----------------------------------------------------------------------------------------------------
# regret against the optimum


def test_optimum_comparator_is_the_gold_best_point_mass():
    p = np.array([0.5, 0.3, 0.2])
    c = bt.optimum_comparator(p, np.array([1.0, 3.0, 2.0]))
    assert c.index == 1 and c.optimum == 3.0
    np.testing.assert_array_equal(c.probs, [0.0, 1.0, 0.0])
    np.testing.assert_allclose([c.coverage, c.max_ratio], [1 / 0.3, 1 / 0.3], rtol=1e-12)
    assert bt.optimum_comparator(p, np.array([3.0, 3.0, 2.0])).index == 0  # the first on ties
    with pytest.raises(ValueError, match="gold_rewards"):
        bt.optimum_comparator(p, np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="ref_probs"):
        bt.optimum_comparator(np.array([0.5, 0.3, 0.3]), np.array([1.0, 3.0, 2.0]))
    with pytest.raises(ValueError, match="gold_rewards"):
        bt.optimum_comparator(p, np.array([1.0, 3.0]))


def test_method_curves_report_regret_against_the_comparator():
    rng = np.random.default_rng(0)
    gold = rng.normal(size=30)
    log_p = np.log(rng.dirichlet(np.ones(30)))
    space = bt.EnumeratedSpace(np.arange(30)[:, None], log_p, gold + rng.standard_cauchy(30))
    prob = bt.ProxyProblem(space, gold)
    best = bt.optimum_comparator(prob.ref_probs, prob.gold)
    ns = np.array([1, 4, 64])
    curves = bt.method_grid_curves(prob, ns, {"regularized_bon": (0.3, 1.0)}, comparator_probs=best.probs)
    for c in [curves["bon"], *curves["regularized_bon"]]:
        np.testing.assert_allclose(c["regret"], float(np.max(prob.gold)) - c["gold"], rtol=0, atol=1e-12)
        assert np.all(c["regret"] >= -1e-12)
    assert "regret" not in bt.method_grid_curves(prob, ns, {})["bon"]
    assert bt.method_gold_curves(prob, "bon", ns).gold_regret is None


def test_compare_regrets_averages_seeds_first():
    bon = [[2.0, 1.0, 0.5], [4.0, 1.0, 1.5]]  # mean (3, 1, 1)
    alt = [[1.0, 1.0, 1.0], [1.0, 0.5, 0.5]]  # mean (1, 0.75, 0.75)
    c = bt.compare_regrets(bon, alt)
    np.testing.assert_allclose(c.ratio_per_n, [3.0, 4 / 3, 4 / 3], rtol=1e-15)
    assert c.ratio_at_best_n == pytest.approx(4 / 3, rel=1e-15)
    assert c.bon_best_index == 1  # the first of the tied minima
    # a single seed may be given as (N,); a method at the optimum is floored, not divided by
    c = bt.compare_regrets([0.0, 2e-12], [0.0, 0.0])
    np.testing.assert_allclose(c.ratio_per_n, [1.0, 2.0], rtol=1e-12)
    assert c.ratio_at_best_n == 1.0


def test_compare_regrets_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        bt.compare_regrets([[1.0, 2.0]], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="bon_regret"):
        bt.compare_regrets([1.0, np.nan], [1.0, 1.0])
    with pytest.raises(ValueError, match="alt_regret"):
        bt.compare_regrets([1.0], [[[1.0]]])
    with pytest.raises(ValueError, match="floor"):
        bt.compare_regrets([1.0], [1.0], floor=0.0)
    with pytest.raises(TypeError, match="bon_regret"):
        bt.compare_regrets("1", [1.0])


def test_count_regimes():
    ratios = [[0.5, 1.0, 1.1], [1.1000001, 1.99, 2.0], [7.0, 1.05, 3.0]]
    assert bt.count_regimes(ratios) == bt.RegimeCounts(cells=9, within=4, loses=3)
    assert bt.count_regimes(ratios, within=1.0, loses=5.0) == bt.RegimeCounts(cells=9, within=2, loses=1)
    with pytest.raises(ValueError, match="ratios"):
        bt.count_regimes([1.0, np.nan])
    with pytest.raises(ValueError, match="ratios"):
        bt.count_regimes([0.0])
    with pytest.raises(ValueError, match="within"):
        bt.count_regimes([1.0], within=3.0, loses=2.0)
    with pytest.raises(TypeError, match="loses"):
        bt.count_regimes([1.0], loses="2")


# ----------------------------------------------------------------------------------------------------
# vBoN claims


# (KL, reward): BoN's two points are on the frontier; vBoN's first is, its second is dominated by BoN's
# (1, 2); KL-RL's point has the reward of BoN's (1, 2) at a larger KL, so it is dominated too.
POINTS = [
    ("bon", 0.0, 0.0),
    ("bon", 1.0, 2.0),
    ("vbon_exact", 0.5, 1.5),
    ("vbon_exact", 1.0, 1.0),
    ("kl_rl", 2.0, 2.0),
    ("bon_sft", 0.5, 0.5),
]


def test_frontier_fractions():
    labels, kl, reward = zip(*POINTS)
    frac = bt.frontier_fractions(labels, kl, reward)
    assert frac == {"bon": 1.0, "vbon_exact": 0.5, "kl_rl": 0.0, "bon_sft": 0.0}
    assert list(frac) == ["bon", "vbon_exact", "kl_rl", "bon_sft"]  # order of first appearance
    with pytest.raises(ValueError, match="same length"):
        bt.frontier_fractions(labels[:-1], kl, reward)
    with pytest.raises(TypeError, match="methods"):
        bt.frontier_fractions("bon", [0.0], [0.0])
    with pytest.raises(ValueError, match=r"finite|NaN or inf"):
        bt.frontier_fractions(["bon"], [np.nan], [0.0])


def test_vbon_claims():
    frac = {"bon": 1.0, "vbon_exact": 0.5, "kl_rl": 0.0, "bon_sft": 0.0}
    c = bt.vbon_claims(frac, {"vbon_exact": 0.1, "bon_sft": 0.2, "kl_rl": 0.3})
    assert c == bt.VBoNClaims(
        bon_best=True, closest_method="vbon_exact", vbon_closest=True, vbon_frontier_more_than_kl_rl=True
    )
    c = bt.vbon_claims({**frac, "bon": 0.5, "kl_rl": 0.5}, {"vbon_exact": 0.2, "bon_sft": 0.2, "kl_rl": 0.1})
    # BoN ties vBoN (still "best"); KL-RL is closest; vBoN is not above KL-RL on the frontier
    assert c == bt.VBoNClaims(
        bon_best=True, closest_method="kl_rl", vbon_closest=False, vbon_frontier_more_than_kl_rl=False
    )
    assert not bt.vbon_claims({**frac, "bon_sft": 1.0, "bon": 0.9}, {"bon_sft": 0.1}).bon_best
    # the first of tied closest methods
    assert bt.vbon_claims(frac, {"bon_sft": 0.1, "vbon_exact": 0.1}).closest_method == "bon_sft"
    # no vBoN variant or no KL-RL: the frontier claim is undecidable
    assert bt.vbon_claims({"bon": 1.0, "kl_rl": 0.5}, {"kl_rl": 0.1}).vbon_frontier_more_than_kl_rl is None
    assert bt.vbon_claims({"bon": 1.0, "vbon_exact": 0.5}, {"kl_rl": 0.1}).vbon_frontier_more_than_kl_rl is None
    with pytest.raises(ValueError, match="'bon'"):
        bt.vbon_claims({"vbon_exact": 1.0}, {"vbon_exact": 0.1})
    with pytest.raises(ValueError, match="'bon'"):
        bt.vbon_claims({"bon": 1.0}, {"vbon_exact": 0.1})
    with pytest.raises(ValueError, match="mean_kl_to_bon"):
        bt.vbon_claims(frac, {})
    with pytest.raises(ValueError, match="frontier_fraction"):
        bt.vbon_claims({**frac, "bon": np.nan}, {"kl_rl": 0.1})


# ----------------------------------------------------------------------------------------------------
# seed averaging and oracle tuning


def test_mean_over_seeds_keeps_the_structure():
    a = {"proxy_sd": 1.0, "bon": {"gold": [1.0, 2.0]}, "m": [{"param": 0.1, "gold": [1.0, 1.0]}]}
    b = {"proxy_sd": 3.0, "bon": {"gold": np.array([3.0, 4.0])}, "m": [{"param": 0.1, "gold": [3.0, 5.0]}]}
    avg = bt.mean_over_seeds([a, b])
    assert avg["proxy_sd"] == 2.0
    np.testing.assert_array_equal(avg["bon"]["gold"], [2.0, 3.0])
    np.testing.assert_array_equal(avg["m"][0]["gold"], [2.0, 3.0])
    assert avg["m"][0]["param"] == pytest.approx(0.1, rel=1e-15)
    with pytest.raises(ValueError, match="different keys"):
        bt.mean_over_seeds([a, {**b, "extra": 1.0}])
    with pytest.raises(ValueError, match="structure"):
        bt.mean_over_seeds([a, {**b, "bon": {"gold": [1.0, 2.0, 3.0]}}])
    with pytest.raises(ValueError, match=r"non-empty|at least one entry"):
        bt.mean_over_seeds([])


def test_best_on_grid():
    b = bt.best_on_grid([[1.0, 5.0, 2.0], [3.0, 2.0, 2.0]], (10, 20))
    np.testing.assert_array_equal(b.value, [3.0, 5.0, 2.0])
    assert b.param == [20, 10, 10]  # the first on ties
    with pytest.raises(ValueError, match="shape"):
        bt.best_on_grid([[1.0, 2.0]], (1, 2))
    with pytest.raises(ValueError, match=r"finite|NaN or inf"):
        bt.best_on_grid([[np.nan]], (1,))
