"""A toy controlled-generation task: a "sentiment" reward with negation (non-additive, many ties)."""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from bontheory import validation as _V


@flax.struct.dataclass
class SentimentReward:
    r"""Toy sentiment score of a token sequence, with a negation token that flips the next word.

    .. math:: r(y) = \sum_{t} s(y_t)\,(-1)^{[y_{t-1} = \text{not}]}

    Token ``negation_token`` ("not") has score 0 itself and flips the sign of the following token's
    score, so the reward is **not additive** over tokens (a memoryless policy cannot represent its BoN
    distribution), and with integer scores it takes few values (**many ties**: the continuous-form vBoN
    target p·F^{n−1} differs from exact BoN).

    Attributes:
      scores: ``float[V]`` per-token sentiment (leaf).
      negation_token: the "not" token id (static).
    """

    scores: jax.Array
    negation_token: int = flax.struct.field(pytree_node=False, default=0)

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``."""
        seq = jnp.asarray(sequences)
        if not jnp.issubdtype(seq.dtype, jnp.integer):
            raise TypeError(f"sequences must be integer token ids, got dtype {seq.dtype}")
        s = jnp.asarray(self.scores)[seq]
        prev_not = jnp.concatenate(
            [jnp.zeros(seq.shape[:-1] + (1,), bool), seq[..., :-1] == self.negation_token], axis=-1
        )
        return jnp.sum(jnp.where(prev_not, -s, s), axis=-1)


@_V.validate(vocab_size=_V.static_int, negation_token=_V.kind(_V.static_int, minimum=0))
def sentiment_reward(vocab_size: int, negation_token: int = 0) -> SentimentReward:
    """A :class:`SentimentReward` over ``vocab_size ≥ 3`` tokens: token 0 is "not", the others get the
    integer scores +1, −1, +2, −2, 0, … in turn (alternating positive and negative words, then neutral).
    """
    if vocab_size < 3:
        raise ValueError(f"vocab_size must be >= 3 for a sentiment vocabulary (not, good, bad), got {vocab_size}")
    base = [1.0, -1.0, 2.0, -2.0]
    scores = [0.0] + [base[i] if i < len(base) else 0.0 for i in range(vocab_size - 1)]
    return SentimentReward(scores=jnp.asarray(scores), negation_token=int(negation_token))
