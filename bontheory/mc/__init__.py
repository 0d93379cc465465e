"""bontheory.mc: Monte Carlo Best-of-N — chunked selection kernels, estimators, sweeps, sharding.

* :mod:`~bontheory.mc.kernels`: ``bon_monte_carlo`` (selected draws) and ``bon_candidates`` (all n per
  trial), memory-bounded by chunking, with pluggable scores (plain, soft, regularised BoN).
* :mod:`~bontheory.mc.estimators`: mean reward, win rate, KL estimates, each with a standard error.
* :mod:`~bontheory.mc.sweep`: grids with one ``fold_in`` key per cell.
* :mod:`~bontheory.mc.distributed`: the trial axis sharded over devices and processes.
"""

from bontheory.mc.distributed import (
    TRIAL_AXIS,
    initialize_distributed,
    sharded_bon_monte_carlo,
    to_host,
    trial_mesh,
)
from bontheory.mc.estimators import (
    Estimate,
    beirami_kl_estimate,
    bon_log_ratio_from_reference,
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
from bontheory.mc.sweep import ExactSpace, bon_cell, bon_sweep, cell_key, exact_space

__all__ = [
    "BoNCandidates",
    "BoNDraws",
    "Estimate",
    "ExactSpace",
    "TRIAL_AXIS",
    "beirami_kl_estimate",
    "bon_candidates",
    "bon_cell",
    "bon_log_ratio_from_reference",
    "bon_monte_carlo",
    "bon_sweep",
    "bon_trials",
    "candidate_trials",
    "cell_key",
    "exact_space",
    "initialize_distributed",
    "log_ratio_kl_estimates",
    "mean_estimate",
    "plugin_kl_estimate",
    "regularized_bon_scorer",
    "reward_scorer",
    "sequence_index",
    "sharded_bon_monte_carlo",
    "soft_bon_scorer",
    "to_host",
    "trial_mesh",
    "win_rate_estimate",
]
