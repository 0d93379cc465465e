"""bontheory.rewards: toy rewards on token sequences, proxy/gold pairs, and a learned Bradley–Terry model.

A reward is a ``flax.struct.dataclass`` pytree with ``__call__(sequences: int[..., L]) -> float[...]``
(pure and deterministic: a proxy's noise is a fixed function of the sequence).
"""

from bontheory.rewards.toy import TokenCountReward, TokenScoreReward, random_token_score_reward

__all__ = ["TokenCountReward", "TokenScoreReward", "random_token_score_reward"]
