"""The ``Policy`` pytree: an autoregressive distribution over token sequences of fixed length.

A policy is a Flax module (static) plus its parameters (pytree leaves). The module maps
``tokens: int32[B, L] -> logits: float[B, L, V]`` causally: ``logits[:, t]`` parametrises the
next-token distribution of position ``t`` given ``tokens[:, :t]`` (teacher forcing). The sequence
probability is the chain rule

    π(y) = Π_{t=0}^{L-1} π(y_t | y_{<t}).

Pass a ``Policy`` into jitted code as an argument (its params are leaves, the module is static).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np



def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_sequences(sequences: Any, vocab_size: int, length: int, name: str = "sequences") -> jax.Array:
    """Validate a batch of sequences ``int[..., L]`` and return it as an integer array.

    Shape and dtype are always checked; token range only when values are concrete (not traced).
    """
    seq = jnp.asarray(sequences)
    if not jnp.issubdtype(seq.dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer array of token ids, got dtype {seq.dtype}")
    if seq.ndim < 1 or seq.shape[-1] != length:
        raise ValueError(
            f"{name} must have shape (..., L) with L = {length} (the policy's length), got shape {seq.shape}"
        )
    if _is_concrete(seq) and seq.size:
        lo, hi = int(np.min(np.asarray(seq))), int(np.max(np.asarray(seq)))
        if lo < 0 or hi >= vocab_size:
            raise ValueError(
                f"{name} must hold token ids in [0, {vocab_size}), got values in [{lo}, {hi}]"
            )
    return seq


@flax.struct.dataclass
class Policy:
    """An autoregressive policy over ``V**L`` sequences: a Flax module and its parameters.

    Attributes:
        module: Flax module mapping ``int32[B, L] -> float[B, L, V]`` causally (static field).
            It must have integer attributes ``vocab_size`` and ``length``.
        params: the module's parameters (the ``"params"`` collection), pytree leaves.
    """

    module: nn.Module = flax.struct.field(pytree_node=False)
    params: Any

    @property
    def vocab_size(self) -> int:
        """Number of tokens V."""
        return int(self.module.vocab_size)

    @property
    def length(self) -> int:
        """Sequence length L."""
        return int(self.module.length)

    def logits(self, tokens: jax.Array) -> jax.Array:
        """Unnormalised next-token logits.

        Args:
            tokens: ``int[B, L]`` token ids (teacher forcing).

        Returns:
            ``float[B, L, V]``; ``logits[:, t]`` depends only on ``tokens[:, :t]``.
        """
        tokens = check_sequences(tokens, self.vocab_size, self.length, "tokens")
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (B, L), got {tokens.shape}")
        return _apply(self, tokens.astype(jnp.int32))

    def next_token_log_probs(self, tokens: jax.Array) -> jax.Array:
        """Normalised next-token log-probabilities ``log π(· | tokens[:, :t])``.

        Args:
            tokens: ``int[B, L]``.

        Returns:
            ``float[B, L, V]`` with ``logsumexp(out, -1) == 0``.
        """
        tokens = check_sequences(tokens, self.vocab_size, self.length, "tokens")
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (B, L), got {tokens.shape}")
        return _apply_log_softmax(self, tokens.astype(jnp.int32))

    def token_log_probs(self, sequences: jax.Array) -> jax.Array:
        """Per-token log-probabilities ``log π(y_t | y_{<t})``.

        Args:
            sequences: ``int[..., L]``.

        Returns:
            ``float[..., L]``.
        """
        from bontheory.policies.tabular import TabularPolicy, tabular_token_log_probs

        seq = check_sequences(sequences, self.vocab_size, self.length)
        batch_shape = seq.shape[:-1]
        flat = seq.reshape((-1, self.length)).astype(jnp.int32)
        if isinstance(self.module, TabularPolicy):
            out = tabular_token_log_probs(self.module, self.params, flat)
        else:
            out = _generic_token_log_probs(self, flat)
        return out.reshape(batch_shape + (self.length,))

    def log_prob(self, sequences: jax.Array) -> jax.Array:
        """Sequence log-probability ``log π(y) = Σ_t log π(y_t | y_{<t})``.

        Args:
            sequences: ``int[..., L]`` (any leading batch shape).

        Returns:
            ``float[...]``.
        """
        return jnp.sum(self.token_log_probs(sequences), axis=-1)

    def sample(self, key: jax.Array, num: int) -> jax.Array:
        """Draw ``num`` i.i.d. sequences autoregressively.

        Tabular policies sample from their per-position tables directly (inverse CDF, O(L) work per
        sequence); the transformer decodes one position per step with a key/value cache; any other
        module runs the full forward pass once per position inside a ``lax.scan`` (O(L²)).

        Args:
            key: PRNG key.
            num: number of sequences (static under ``jit``).

        Returns:
            ``int32[num, L]``.
        """
        from bontheory.policies.tabular import TabularPolicy, sample_tabular

        num = int(num)
        if num < 0:
            raise ValueError(f"num must be >= 0, got {num}")
        if isinstance(self.module, TabularPolicy):
            return sample_tabular(self.module, self.params, key, num)
        from bontheory.policies.transformer import TransformerPolicy

        if isinstance(self.module, TransformerPolicy) and not self.module.decode:
            return _sample_transformer(self, key, num)
        return _sample_generic(self, key, num)


@jax.jit
def _apply(policy: Policy, tokens: jax.Array) -> jax.Array:
    return policy.module.apply({"params": policy.params}, tokens)


@jax.jit
def _apply_log_softmax(policy: Policy, tokens: jax.Array) -> jax.Array:
    return jax.nn.log_softmax(policy.module.apply({"params": policy.params}, tokens), axis=-1)


@jax.jit
def _generic_token_log_probs(policy: Policy, tokens: jax.Array) -> jax.Array:
    logits = policy.module.apply({"params": policy.params}, tokens)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(logp, tokens[..., None], axis=-1)[..., 0]


@functools.partial(jax.jit, static_argnums=2)
def _sample_transformer(policy: Policy, key: jax.Array, num: int) -> jax.Array:
    from bontheory.policies.transformer import sample_transformer

    return sample_transformer(policy, key, num)


@functools.partial(jax.jit, static_argnums=2)
def _sample_generic(policy: Policy, key: jax.Array, num: int) -> jax.Array:
    length = policy.length
    keys = jax.random.split(key, length)

    def step(tokens, xs):
        t, k = xs
        logits = policy.module.apply({"params": policy.params}, tokens)  # (num, L, V)
        logits_t = jax.lax.dynamic_index_in_dim(logits, t, axis=1, keepdims=False)
        tok = jax.random.categorical(k, logits_t, axis=-1).astype(jnp.int32)
        tokens = jax.lax.dynamic_update_index_in_dim(tokens, tok, t, axis=1)
        return tokens, None

    init = jnp.zeros((num, length), jnp.int32)
    tokens, _ = jax.lax.scan(step, init, (jnp.arange(length), keys))
    return tokens


def policy_from_module(key: jax.Array, module: nn.Module) -> Policy:
    """Initialise ``module`` (with ``vocab_size`` and ``length`` attributes) and wrap it as a ``Policy``.

    Args:
        key: PRNG key for the parameter initialisers.
        module: a causal Flax module ``int32[B, L] -> float[B, L, V]``.

    Returns:
        ``Policy(module, params)``.
    """
    dummy = jnp.zeros((1, int(module.length)), jnp.int32)
    params = jax.jit(module.init)(key, dummy)["params"]
    return Policy(module=module, params=params)
