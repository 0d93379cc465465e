"""bontheory.vbon: variational BoN — training policies toward the BoN distribution, exactly measured.

Objectives (:mod:`~bontheory.vbon.objectives`) are static loss objects called as
``objective(policy, data, key) -> (loss, aux)``; :func:`train_steps` runs them with Optax in one jitted
``lax.scan``; :func:`approximation_metrics` measures the result exactly over an enumerated space.
"""

from bontheory.vbon.baselines import (
    bon_sft_data,
    bonbon_beta,
    bonbon_data,
    expand_tabular_policy,
    iterated_bond,
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
from bontheory.vbon.metrics import approximation_metrics, pareto_frontier
from bontheory.vbon.objectives import (
    BoNBoNLoss,
    ExactDivergenceLoss,
    ExactKLRegularisedLoss,
    MaximumLikelihoodLoss,
    PolicyGradientLoss,
    empirical_log_cdfs,
    sequence_token_kl,
)
from bontheory.vbon.tasks import SentimentReward, sentiment_reward
from bontheory.vbon.targets import tie_effect, vbon_target_log_probs
from bontheory.vbon.train import TrainState, init_train_state, train_steps

__all__ = [
    # divergences on log-probability vectors
    "reverse_kl",
    "forward_kl",
    "jeffreys_divergence",
    "log_bon_ratio",
    "harmonic_number",
    # targets
    "vbon_target_log_probs",
    "tie_effect",
    # objectives
    "ExactDivergenceLoss",
    "ExactKLRegularisedLoss",
    "MaximumLikelihoodLoss",
    "BoNBoNLoss",
    "PolicyGradientLoss",
    "empirical_log_cdfs",
    "sequence_token_kl",
    # training
    "TrainState",
    "init_train_state",
    "train_steps",
    "save_checkpoint",
    "load_checkpoint",
    "train_with_checkpoints",
    # baselines
    "bon_sft_data",
    "bonbon_beta",
    "bonbon_data",
    "iterated_bond",
    "expand_tabular_policy",
    # methods and the toy task
    "VBON_METHODS",
    "MethodSettings",
    "train_toward_bon",
    "SentimentReward",
    "sentiment_reward",
    # measurements
    "approximation_metrics",
    "pareto_frontier",
]
