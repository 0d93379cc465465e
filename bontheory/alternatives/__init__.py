"""bontheory.alternatives: alternatives to BoN (soft BoN, quantile truncation, χ²-pessimism, regularised BoN),
exact and sampled, and proxy-vs-gold metrics (THEORY §4–§5; issue 3)."""

from bontheory.alternatives.fits import GaoFit, bon_unbiased_estimate, fit_gao_bon, fit_gao_rl
from bontheory.alternatives.metrics import (
    ProxyGoldMetrics,
    chi2_coverage,
    em_divergence,
    expected_reward,
    max_density_ratio,
    pairwise_error,
    proxy_gold_metrics,
    regret,
    reward_model_error,
    win_rate_regret,
)
from bontheory.alternatives.pessimism import chi2_pessimism_pmf, chi2_pessimism_threshold
from bontheory.alternatives.policy_samplers import (
    PolicyDraws,
    pessimism_policy_sample,
    quantile_truncation_policy_sample,
    regularized_bon_policy_sample,
    soft_bon_policy_sample,
)
from bontheory.alternatives.regularized import regularized_bon_pmf, regularized_bon_score
from bontheory.alternatives.samplers import (
    draw_outcomes,
    pessimism_num_candidates,
    pessimism_sample,
    quantile_truncation_sample,
    regularized_bon_sample,
    select_pessimism,
    select_quantile_truncation,
    select_regularized_bon,
    select_soft_bon,
    soft_bon_sample,
)
from bontheory.alternatives.sweeps import DEFAULT_GRIDS, SCALED_METHODS, method_grid_curves, METHODS, GoldCurves, ProxyProblem, method_gold_curves, method_pmfs, proxy_problem
from bontheory.alternatives.sequence_limit import (
    BoNTiltGap,
    additive_reward_distribution,
    bon_tilted_gap_per_token,
    token_tilt_kl_reward,
)
from bontheory.alternatives.soft_bon import soft_bon_log_pmf, soft_bon_pmf
from bontheory.alternatives.truncation import quantile_truncated_pmf, quantile_truncation_sampler_pmf

__all__ = [
    "PolicyDraws",
    "pessimism_policy_sample",
    "quantile_truncation_policy_sample",
    "regularized_bon_policy_sample",
    "soft_bon_policy_sample",
    "GaoFit",
    "bon_unbiased_estimate",
    "fit_gao_bon",
    "fit_gao_rl",
    "DEFAULT_GRIDS",
    "SCALED_METHODS",
    "method_grid_curves",
    "BoNTiltGap",
    "additive_reward_distribution",
    "bon_tilted_gap_per_token",
    "token_tilt_kl_reward",
    "GoldCurves",
    "METHODS",
    "ProxyProblem",
    "method_gold_curves",
    "method_pmfs",
    "proxy_problem",
    "ProxyGoldMetrics",
    "chi2_coverage",
    "chi2_pessimism_pmf",
    "chi2_pessimism_threshold",
    "draw_outcomes",
    "em_divergence",
    "expected_reward",
    "max_density_ratio",
    "pairwise_error",
    "pessimism_num_candidates",
    "pessimism_sample",
    "proxy_gold_metrics",
    "quantile_truncated_pmf",
    "quantile_truncation_sample",
    "quantile_truncation_sampler_pmf",
    "regret",
    "regularized_bon_pmf",
    "regularized_bon_sample",
    "regularized_bon_score",
    "reward_model_error",
    "select_pessimism",
    "select_quantile_truncation",
    "select_regularized_bon",
    "select_soft_bon",
    "soft_bon_log_pmf",
    "soft_bon_pmf",
    "soft_bon_sample",
    "win_rate_regret",
]
