"""Exact BoN theory on finite outcome spaces (issue 2; THEORY.md §1–§3).

Every n-dependent quantity is built on :func:`reward_levels` (outcomes sorted by reward once), so arrays of
n and ``jax.vmap`` over n reuse one sort. For many n on one reference, either pass an array ``n`` (eagerly:
padding levels are then dropped, so each n costs O(#distinct rewards)), or compute
``levels = reward_levels(p, r)`` once and call the ``*_from_levels`` functions (jitted; ``n`` may be traced).

Input validation (see :mod:`bontheory._checks`): shapes and dtypes are always checked; values (negative or
unnormalised probabilities, NaN/inf rewards, n < 1 or non-integer) only when concrete, not under ``jit``.
"""

from bontheory.exact.bon import (
    bon_expected_reward,
    bon_expected_reward_from_levels,
    bon_kl,
    bon_kl_from_levels,
    bon_log_pmf,
    bon_log_pmf_from_levels,
    bon_pmf,
    bon_sample_exact,
    bon_win_rate,
    bon_win_rate_from_levels,
)
from bontheory.exact.bounds import (
    bon_kl_bound,
    bon_kl_estimate,
    bon_kl_estimator,
    bon_kl_gap_bound,
    bon_win_rate_bound,
    bon_win_rate_gap_bound,
)
from bontheory.exact.divergences import chi2_divergence, kl_divergence, total_variation, win_rate
from bontheory.exact.levels import RewardLevels, compact_levels, level_log_mass_of_max, reward_levels
from bontheory.exact.tilted import (
    Frontier,
    mid_cdf,
    quantile_tilted_pmf,
    reward_kl_frontier,
    tilted_pmf,
    win_rate_kl_frontier,
)

__all__ = [
    "Frontier",
    "RewardLevels",
    "bon_expected_reward",
    "bon_expected_reward_from_levels",
    "bon_kl",
    "bon_kl_bound",
    "bon_kl_estimate",
    "bon_kl_estimator",
    "bon_kl_from_levels",
    "bon_kl_gap_bound",
    "bon_log_pmf",
    "bon_log_pmf_from_levels",
    "bon_pmf",
    "bon_sample_exact",
    "bon_win_rate",
    "bon_win_rate_bound",
    "bon_win_rate_from_levels",
    "bon_win_rate_gap_bound",
    "chi2_divergence",
    "compact_levels",
    "kl_divergence",
    "level_log_mass_of_max",
    "mid_cdf",
    "quantile_tilted_pmf",
    "reward_kl_frontier",
    "reward_levels",
    "tilted_pmf",
    "total_variation",
    "win_rate",
]
