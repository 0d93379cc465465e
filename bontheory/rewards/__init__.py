"""bontheory.rewards: toy rewards on token sequences, proxy/gold pairs, and a learned Bradley–Terry model.

A reward is a ``flax.struct.dataclass`` pytree with ``__call__(sequences: int[..., L]) -> float[...]``
(pure and deterministic: a proxy's noise is a fixed function of the sequence). Proxies expose their
gold reward as ``proxy.gold``.
"""

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
from bontheory.rewards.toy import (
    PalindromeReward,
    PatternReward,
    QuantizedReward,
    SequenceHashReward,
    TokenCountReward,
    TokenScoreReward,
    random_token_score_reward,
    hashed_draws,
    sequence_keys,
)

__all__ = [
    "TokenCountReward",
    "TokenScoreReward",
    "random_token_score_reward",
    "PatternReward",
    "PalindromeReward",
    "QuantizedReward",
    "SequenceHashReward",
    "sequence_keys",
    "hashed_draws",
    "NoisyProxyReward",
    "HackProxyReward",
    "HackedGoldReward",
    "HackCalibration",
    "make_hack_proxy",
    "BradleyTerryNet",
    "LearnedReward",
    "BradleyTerryFit",
    "bradley_terry_labels",
    "train_bradley_terry",
    "pairwise_accuracy",
]
