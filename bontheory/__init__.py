"""bontheory: theory and simulation of Best-of-N (BoN) inference-time alignment in JAX.

This module is the public API: every public name is imported here once, and ``__all__`` is derived from these
imports. Subpackages group the implementation by layer (see ``docs/theory.md`` and the README):

* :mod:`bontheory.exact`: what a method's distribution *is* on a finite outcome space (BoN and its alternatives,
  bounds, divergences and proxy-vs-gold metrics, the tilted optimum);
* :mod:`bontheory.policies` and :mod:`bontheory.rewards`: the spaces (token-level policies, toy and learned rewards);
* :mod:`bontheory.lifted`: exact BoN on sequence spaces too large to enumerate (tabular policy, automaton reward);
* :mod:`bontheory.mc`: what a method *does* when sampled (chunked kernels, samplers, estimators, sweeps, sharding);
* :mod:`bontheory.studies`: problems built from the layers below (proxy/gold problems, method curves, fits);
* :mod:`bontheory.vbon`: variational BoN and the other methods trained toward BoN;
* :mod:`bontheory.runs`, :mod:`bontheory.plotting`, :mod:`bontheory.cli`: experiments as resumable runs.
"""

__version__ = "0.1.0"

from types import ModuleType as _ModuleType

from bontheory.exact.bon import (
    bon_expected_reward,
    bon_expected_reward_from_levels,
    bon_kl,
    bon_kl_from_levels,
    bon_log_pmf,
    bon_log_pmf_from_levels,
    bon_pmf,
    bon_pmf_from_levels,
    bon_sample_exact,
    bon_sample_exact_from_levels,
    bon_win_rate,
    bon_win_rate_from_levels,
)
from bontheory.exact.bounds import (
    beirami_kl_estimator,
    beirami_kl_expectation,
    bon_kl_bound,
    bon_kl_estimate,
    bon_kl_estimator,
    bon_kl_gap_bound,
    bon_win_rate_bound,
    bon_win_rate_gap_bound,
)
from bontheory.exact.divergences import chi2_divergence, kl_divergence, total_variation, win_rate
from bontheory.exact.levels import RewardLevels, compact_levels, level_log_mass_of_max, reward_levels
from bontheory.exact.metrics import (
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
from bontheory.exact.pessimism import chi2_pessimism_pmf, chi2_pessimism_threshold
from bontheory.exact.pessimism_sampler import ExactLawTooLarge, chi2_pessimism_sampler_pmf
from bontheory.exact.regularized import regularized_bon_pmf, regularized_bon_score
from bontheory.exact.soft_bon import auto_num_nodes, soft_bon_log_pmf, soft_bon_pmf
from bontheory.exact.tilted import (
    Frontier,
    mid_cdf,
    quantile_tilted_pmf,
    reward_kl_frontier,
    tilted_pmf,
    win_rate_kl_frontier,
)
from bontheory.exact.truncation import quantile_truncated_pmf, quantile_truncation_sampler_pmf
from bontheory.lifted.automaton import NotLiftableError, RewardAutomaton, reward_automaton
from bontheory.lifted.distribution import MAX_LIFTED_STATES, RewardDistribution, reward_distribution
from bontheory.lifted.levels import bon_level_log_probs, level_log_cdfs
from bontheory.lifted.sampling import bon_sample_sequences_exact, sample_sequences_given_level_law
from bontheory.lifted.tilted import AutomatonPolicy, lifted_reward_kl_frontier, tilted_sequence_policy
from bontheory.lifted.vbon import LiftedVBoNLoss, lifted_vbon_data, lifted_vbon_loss, vbon_log_ratio
from bontheory.mc.distributed import (
    TRIAL_AXIS,
    initialize_distributed,
    sharded_bon_monte_carlo,
    to_host,
    trial_mesh,
)
from bontheory.mc.estimators import (
    beirami_kl_estimate,
    bon_log_ratio_from_levels,
    bon_log_ratio_from_reference,
    level_kl_estimate,
    level_kl_estimate_from_reference,
    log_ratio_kl_estimates,
    mean_estimate,
    plugin_kl_estimate,
    sequence_index,
    win_rate_estimate,
)
from bontheory.mc.kernels import (
    BoNCandidates,
    BoNDraws,
    bon_candidates,
    bon_monte_carlo,
    bon_trials,
    candidate_trials,
    regularized_bon_scorer,
    reward_scorer,
    soft_bon_scorer,
)
from bontheory.mc.policy_samplers import (
    PolicyDraws,
    pessimism_policy_sample,
    quantile_truncation_policy_sample,
    regularized_bon_policy_sample,
    soft_bon_policy_sample,
)
from bontheory.mc.samplers import (
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
from bontheory.mc.sweep import bon_cell, bon_sweep, cell_key, exact_space
from bontheory.policies.enumerate import MAX_ENUMERATED_SEQUENCES, all_sequences, enumerate_sequences
from bontheory.policies.kl import (
    kl_k1,
    kl_k2,
    kl_k3,
    sequence_entropy,
    sequence_kl,
    sequence_kl_mc,
    token_kl,
)
from bontheory.policies.policy import ModulePolicy, Policy, policy_from_module
from bontheory.policies.tabular import (
    MAX_TABLE_SIZE,
    TabularPolicy,
    random_tabular_policy,
    tabular_log_probs_table,
    tabular_policy_from_logits,
)
from bontheory.policies.transformer import TransformerPolicy, init_transformer_policy
from bontheory.results import EnumeratedSpace, Estimate
from bontheory.rewards.bradley_terry import (
    BradleyTerryFit,
    BradleyTerryNet,
    LearnedReward,
    bradley_terry_labels,
    pairwise_accuracy,
    train_bradley_terry,
)
from bontheory.rewards.proxy import (
    HackCalibration,
    HackedGoldReward,
    HackProxyReward,
    NoisyProxyReward,
    make_hack_proxy,
)
from bontheory.rewards.reward import FunctionReward, Reward, as_reward
from bontheory.rewards.toy import (
    PalindromeReward,
    PatternCountReward,
    PatternReward,
    QuantizedReward,
    SequenceHashReward,
    SumReward,
    TokenCountReward,
    TokenScoreReward,
    hashed_draws,
    random_token_score_reward,
    reward_sum,
    sequence_keys,
)
from bontheory.studies.curves import PeakAndFall, gap_to_frontier, max_drawdown, peak_and_fall
from bontheory.studies.fits import GaoFit, bon_unbiased_estimate, fit_gao_bon, fit_gao_rl
from bontheory.studies.proxy import (
    DEFAULT_GRIDS,
    METHODS,
    POPULATION_METHODS,
    PROXY_FAMILIES,
    SCALED_METHODS,
    GoldCurves,
    GridBest,
    ProxyProblem,
    best_on_grid,
    mean_over_seeds,
    method_gold_curves,
    method_grid_curves,
    method_n_for_budget,
    method_pmfs,
    method_reward_calls,
    proxy_problem,
    proxy_problem_from_rewards,
    proxy_spread,
)
from bontheory.studies.regimes import (
    OptimumComparator,
    RegimeCounts,
    RegretComparison,
    compare_regrets,
    count_regimes,
    optimum_comparator,
)
from bontheory.studies.sequence_limit import (
    BoNTiltGap,
    PowerLawRate,
    bon_level_log_probs_at_log_n,
    bon_tilted_gap_per_token,
    power_law_rate,
    token_tilt_kl_reward,
)
from bontheory.studies.summary import MethodSummary, ProxyStudySummary, proxy_study_summary
from bontheory.studies.vbon_claims import VBoNClaims, frontier_fractions, vbon_claims
from bontheory.validation import checked
from bontheory.vbon.baselines import (
    bon_sft_data,
    bonbon_beta,
    bonbon_data,
    expand_tabular_policy,
    iterated_bond,
)
from bontheory.vbon.bon_aware import (
    BON_AWARE_KLS,
    BoNAwareValue,
    ExactBoNAwareLoss,
    LiftedBoNAwareLoss,
    SampledBoNAwareLoss,
    bon_aware_objective,
    lifted_bon_aware_data,
    lifted_bon_aware_objective,
    train_bon_aware,
    train_bon_aware_lifted,
)
from bontheory.vbon.checkpoint import load_checkpoint, save_checkpoint, train_with_checkpoints
from bontheory.vbon.divergences import (
    forward_kl,
    harmonic_number,
    jeffreys_divergence,
    log_bon_ratio,
    reverse_kl,
)
from bontheory.vbon.methods import VBON_METHODS, MethodSettings, train_toward_bon
from bontheory.vbon.metrics import ApproximationMetrics, approximation_metrics, pareto_frontier
from bontheory.vbon.objectives import (
    BoNBoNLoss,
    ExactDivergenceLoss,
    ExactKLRegularisedLoss,
    MaximumLikelihoodLoss,
    PolicyGradientLoss,
    empirical_log_cdfs,
    kl_regularised_surrogate,
    sequence_token_kl,
)
from bontheory.vbon.targets import TieEffect, tie_effect, vbon_target_log_probs
from bontheory.vbon.tasks import SentimentReward, sentiment_reward
from bontheory.vbon.train import TrainState, init_train_state, train_steps

__all__ = sorted(
    name for name, value in dict(globals()).items() if not name.startswith("_") and not isinstance(value, _ModuleType)
)
