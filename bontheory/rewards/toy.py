"""Toy rewards on token sequences: pure, deterministic functions ``int[..., L] -> float[...]``.

Every reward is a ``flax.struct.dataclass`` pytree (arrays are leaves, small settings are static),
so it can be passed into jitted code as an argument and called under ``vmap``.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "TokenCountReward",
    "TokenScoreReward",
    "random_token_score_reward",
    "PatternReward",
    "PalindromeReward",
    "QuantizedReward",
    "SequenceHashReward",
]


def _as_sequences(sequences, length: int | None = None) -> jax.Array:
    seq = jnp.asarray(sequences)
    if not jnp.issubdtype(seq.dtype, jnp.integer):
        raise TypeError(f"sequences must be an integer array of token ids, got dtype {seq.dtype}")
    if seq.ndim < 1:
        raise ValueError(f"sequences must have shape (..., L), got a scalar")
    if length is not None and seq.shape[-1] != length:
        raise ValueError(f"sequences must have shape (..., L) with L = {length}, got shape {seq.shape}")
    return seq


@flax.struct.dataclass
class TokenCountReward:
    """Additive reward with many ties: ``r(y) = weight · #{t : y_t = target}``.

    It takes only L + 1 values, so over V**L sequences almost every reward level is an atom of
    large mass and the folk KL formula ``log n − (n−1)/n`` overestimates visibly.

    Attributes:
        target: the counted token (static).
        weight: multiplier (static).
    """

    target: int = flax.struct.field(pytree_node=False, default=0)
    weight: float = flax.struct.field(pytree_node=False, default=1.0)

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``."""
        seq = _as_sequences(sequences)
        count = jnp.sum(seq == self.target, axis=-1)
        return self.weight * count.astype(jnp.result_type(float))


@flax.struct.dataclass
class TokenScoreReward:
    """Additive per-token scores ``r(y) = Σ_t scores[t, y_t]``.

    With continuous random scores distinct sequences get distinct rewards almost surely (a smooth,
    nearly tie-free reward); with integer scores it has ties.

    Attributes:
        scores: ``float[L, V]`` (leaf).
    """

    scores: jax.Array

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``."""
        length = self.scores.shape[0]
        seq = _as_sequences(sequences, length)
        gathered = jnp.take_along_axis(
            jnp.broadcast_to(self.scores, seq.shape[:-1] + self.scores.shape), seq[..., None], axis=-1
        )[..., 0]
        return jnp.sum(gathered, axis=-1)


def random_token_score_reward(key: jax.Array, vocab_size: int, length: int, scale: float = 1.0) -> TokenScoreReward:
    """``TokenScoreReward`` with i.i.d. ``N(0, scale²)`` scores ``float[L, V]`` (nearly tie-free)."""
    if vocab_size < 1 or length < 1:
        raise ValueError(f"vocab_size and length must be >= 1, got V={vocab_size}, L={length}")
    return TokenScoreReward(scores=scale * jax.random.normal(key, (int(length), int(vocab_size))))
