"""A tiny causal transformer policy (Flax linen), the general autoregressive policy.

Input handling: the model reads ``[BOS, y_0, ..., y_{L-2}]`` (BOS is the extra token id V) with
learned position embeddings, so ``logits[:, t]`` is the next-token distribution of position t given
``y_{<t}``; ``logits[:, 0]`` is the first-token distribution. Pre-LayerNorm blocks, causal
self-attention (``nn.make_causal_mask``), GELU MLP, final LayerNorm and a linear head to V logits.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from bontheory.policies.policy import Policy, policy_from_module

__all__ = ["TransformerPolicy", "init_transformer_policy"]


class _Block(nn.Module):
    d_model: int
    num_heads: int
    mlp_ratio: int

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        h = nn.LayerNorm()(x)
        h = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, qkv_features=self.d_model)(h, h, mask=mask)
        x = x + h
        h = nn.LayerNorm()(x)
        h = nn.Dense(self.mlp_ratio * self.d_model)(h)
        h = nn.gelu(h)
        h = nn.Dense(self.d_model)(h)
        return x + h


class TransformerPolicy(nn.Module):
    """Causal transformer ``int32[B, L] -> float[B, L, V]`` (``logits[:, t]`` sees ``tokens[:, :t]``).

    Attributes:
        vocab_size: V >= 1 (the BOS token gets id V internally).
        length: L >= 1.
        d_model: embedding width (divisible by ``num_heads``).
        num_heads: attention heads.
        num_layers: transformer blocks.
        mlp_ratio: MLP hidden width / d_model.
        logit_scale: multiplies the output logits (< 1 flattens, > 1 sharpens the initial policy).
    """

    vocab_size: int
    length: int
    d_model: int = 32
    num_heads: int = 2
    num_layers: int = 2
    mlp_ratio: int = 4
    logit_scale: float = 1.0

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        if self.vocab_size < 1 or self.length < 1:
            raise ValueError(f"vocab_size and length must be >= 1, got V={self.vocab_size}, L={self.length}")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by num_heads={self.num_heads}")
        batch = tokens.shape[0]
        bos = jnp.full((batch, 1), self.vocab_size, jnp.int32)
        inputs = jnp.concatenate([bos, tokens[:, : self.length - 1].astype(jnp.int32)], axis=1)
        x = nn.Embed(self.vocab_size + 1, self.d_model, name="token_embed")(inputs)
        pos = self.param("pos_embed", nn.initializers.normal(0.02), (self.length, self.d_model))
        x = x + pos[None, :, :].astype(x.dtype)
        mask = nn.make_causal_mask(inputs)
        for i in range(self.num_layers):
            x = _Block(self.d_model, self.num_heads, self.mlp_ratio, name=f"block_{i}")(x, mask)
        x = nn.LayerNorm()(x)
        return self.logit_scale * nn.Dense(self.vocab_size, name="head")(x)


def init_transformer_policy(
    key: jax.Array,
    vocab_size: int,
    length: int,
    d_model: int = 32,
    num_heads: int = 2,
    num_layers: int = 2,
    mlp_ratio: int = 4,
    logit_scale: float = 1.0,
) -> Policy:
    """A randomly initialised ``TransformerPolicy`` wrapped as a ``Policy``.

    Args:
        key: PRNG key for the initialisers.
        vocab_size, length, d_model, num_heads, num_layers, mlp_ratio, logit_scale: see
            ``TransformerPolicy``.

    Returns:
        ``Policy``.
    """
    if vocab_size < 1 or length < 1:
        raise ValueError(f"vocab_size and length must be >= 1, got V={vocab_size}, L={length}")
    module = TransformerPolicy(
        vocab_size=int(vocab_size),
        length=int(length),
        d_model=int(d_model),
        num_heads=int(num_heads),
        num_layers=int(num_layers),
        mlp_ratio=int(mlp_ratio),
        logit_scale=float(logit_scale),
    )
    return policy_from_module(key, module)
