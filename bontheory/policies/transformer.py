"""A tiny causal transformer policy (Flax linen), the general autoregressive policy.

Input handling: the model reads ``[BOS, y_0, ..., y_{L-2}]`` (BOS is the extra token id V) with
learned position embeddings, so ``logits[:, t]`` is the next-token distribution of position t given
``y_{<t}``; ``logits[:, 0]`` is the first-token distribution. Pre-LayerNorm blocks, causal
self-attention (``nn.make_causal_mask``), GELU MLP, final LayerNorm and a linear head to V logits.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from bontheory import validation
from bontheory.policies.policy import ModulePolicy, policy_from_module


class _Block(nn.Module):
    d_model: int
    num_heads: int
    mlp_ratio: int
    decode: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
        h = nn.LayerNorm()(x)
        h = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads,
            qkv_features=self.d_model,
            decode=self.decode,
            name="MultiHeadDotProductAttention_0",
        )(h, h, mask=mask)
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
        decode: internal (use ``transformer_decode_logits``): the module then reads raw input ids
            (BOS = V first) a few positions at a time and keeps keys/values in the ``"cache"``
            collection, so sampling costs O(L) forward steps instead of O(L²). Same parameters.
    """

    vocab_size: int
    length: int
    d_model: int = 32
    num_heads: int = 2
    num_layers: int = 2
    mlp_ratio: int = 4
    logit_scale: float = 1.0
    decode: bool = False

    def __post_init__(self):
        validation.static_int(self.vocab_size, "vocab_size")  # static attributes: checked when the module is built
        validation.static_int(self.length, "length")
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        if self.vocab_size < 1 or self.length < 1:
            raise ValueError(f"vocab_size and length must be >= 1, got V={self.vocab_size}, L={self.length}")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by num_heads={self.num_heads}")
        # float32 like Flax's other parameters (the forward pass is float32): the same key gives the same
        # initial policy with or without x64
        pos = self.param("pos_embed", nn.initializers.normal(0.02, dtype=jnp.float32), (self.length, self.d_model))
        if self.decode:
            # tokens are raw input ids (BOS = V at position 0); positions continue from the cache index
            inputs = tokens.astype(jnp.int32)
            index = self.variable("cache", "position", lambda: jnp.zeros((), jnp.int32))
            pos_t = jax.lax.dynamic_slice_in_dim(pos, index.value, inputs.shape[1], axis=0)
            index.value = index.value + inputs.shape[1]
            mask = None  # the attention cache masks positions not yet written
        else:
            batch = tokens.shape[0]
            bos = jnp.full((batch, 1), self.vocab_size, jnp.int32)
            inputs = jnp.concatenate([bos, tokens[:, : self.length - 1].astype(jnp.int32)], axis=1)
            pos_t = pos
            mask = nn.make_causal_mask(inputs)
        x = nn.Embed(self.vocab_size + 1, self.d_model, name="token_embed")(inputs)
        x = x + pos_t[None, :, :].astype(x.dtype)
        for i in range(self.num_layers):
            x = _Block(self.d_model, self.num_heads, self.mlp_ratio, self.decode, name=f"block_{i}")(x, mask)
        x = nn.LayerNorm()(x)
        return self.logit_scale * nn.Dense(self.vocab_size, name="head")(x)

    def policy_sample(self, params: Any, key: jax.Array, num: int) -> jax.Array:
        """The policy hook: ``int32[num, L]`` decoded through the key/value cache (see ``sample_transformer``)."""
        return _decode_sample(self, params, key, num)


def _empty_cache(module: TransformerPolicy, batch: int):
    decoder = module.clone(decode=True)
    shapes = jax.eval_shape(decoder.init, jax.random.key(0), jnp.zeros((batch, module.length), jnp.int32))
    return decoder, jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes["cache"])


@jax.jit
def transformer_decode_logits(policy: ModulePolicy, tokens: jax.Array) -> jax.Array:
    """Teacher-forced logits computed one position at a time through the key/value cache.

    Equal (up to rounding) to ``policy.logits(tokens)``; exists to test the cached decoding path
    used by ``ModulePolicy.sample``.

    Args:
        policy: a ``ModulePolicy`` with a ``TransformerPolicy`` module.
        tokens: ``int[B, L]``.

    Returns:
        ``float[B, L, V]``.
    """
    module = policy.module
    decoder, cache = _empty_cache(module, tokens.shape[0])
    bos = jnp.full((tokens.shape[0], 1), module.vocab_size, jnp.int32)
    inputs = jnp.concatenate([bos, tokens[:, : module.length - 1].astype(jnp.int32)], axis=1)

    def step(cache, x_t):
        logits, upd = decoder.apply({"params": policy.params, "cache": cache}, x_t[:, None], mutable=["cache"])
        return upd["cache"], logits[:, 0]

    _, logits = jax.lax.scan(step, cache, inputs.T)
    return jnp.swapaxes(logits, 0, 1)


def sample_transformer(policy: ModulePolicy, key: jax.Array, num: int) -> jax.Array:
    """``int32[num, L]`` sampled autoregressively with the key/value cache (one position per step)."""
    return _decode_sample(policy.module, policy.params, key, int(num))


def _decode_sample(module: TransformerPolicy, params: Any, key: jax.Array, num: int) -> jax.Array:
    decoder, cache = _empty_cache(module, num)
    keys = jax.random.split(key, module.length)

    def step(carry, k):
        cache, prev = carry
        logits, upd = decoder.apply({"params": params, "cache": cache}, prev[:, None], mutable=["cache"])
        tok = jax.random.categorical(k, logits[:, 0], axis=-1).astype(jnp.int32)
        return (upd["cache"], tok), tok

    init = (cache, jnp.full((num,), module.vocab_size, jnp.int32))
    _, toks = jax.lax.scan(step, init, keys)
    return toks.T


@validation.validate(
    key=validation.prng_key,
    vocab_size=validation.static_int,
    length=validation.static_int,
    d_model=validation.static_int,
    num_heads=validation.static_int,
    num_layers=validation.static_int,
    mlp_ratio=validation.static_int,
)
def init_transformer_policy(
    key: jax.Array,
    vocab_size: int,
    length: int,
    d_model: int = 32,
    num_heads: int = 2,
    num_layers: int = 2,
    mlp_ratio: int = 4,
    logit_scale: float = 1.0,
) -> ModulePolicy:
    """A randomly initialised ``TransformerPolicy`` wrapped as a ``ModulePolicy``.

    Every parameter is float32, so the same key gives the same policy with or without x64.

    Args:
        key: PRNG key for the initialisers.
        vocab_size, length, d_model, num_heads, num_layers, mlp_ratio, logit_scale: see
            ``TransformerPolicy``.

    Returns:
        ``ModulePolicy``.
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
