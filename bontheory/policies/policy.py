"""Policies: autoregressive distributions over token sequences of fixed length L, behind one interface.

``Policy`` is the interface (a :class:`typing.Protocol`) every consumer relies on: ``vocab_size``, ``length``,
``next_token_log_probs``, ``token_log_probs``, ``log_prob`` and ``sample``. The sequence probability is the
chain rule (``docs/theory.md §7``)

    π(y) = Π_{t=0}^{L-1} π(y_t | y_{<t}).

``ModulePolicy`` is the implementation for a Flax module (static) and its parameters (pytree leaves). The
module maps ``tokens: int32[B, L] -> logits: float[B, L, V]`` causally: ``logits[:, t]`` parametrises the
next-token distribution of position ``t`` given ``tokens[:, :t]`` (teacher forcing). Each kind of module may
implement its own sampling and per-token log-probabilities by defining

* ``policy_sample(params, key, num) -> int32[num, L]`` and
* ``policy_token_log_probs(params, tokens int32[B, L]) -> float[B, L]``

(the tabular policy gathers from its table and samples by inverse CDF; the transformer decodes through a
key/value cache); a module without them gets the generic paths (one full forward pass per position to sample;
a log-softmax and a gather for the log-probabilities). This module imports none of its implementations.

A policy of your own needs only the ``Policy`` members, and must be a pytree whose leaves are arrays (e.g. a
``flax.struct.dataclass``): policies are passed into jitted code as arguments.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol, runtime_checkable

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from bontheory import validation


@runtime_checkable
class Policy(Protocol):
    """The policy interface: an autoregressive distribution over the ``V**L`` sequences of length L.

    ``isinstance(x, Policy)`` checks that the members exist (not their signatures). Implementations must be
    pytrees (passed into ``jit`` as arguments) and pure: the same key gives the same samples.
    """

    @property
    def vocab_size(self) -> int:
        """Number of tokens V."""
        ...

    @property
    def length(self) -> int:
        """Sequence length L."""
        ...

    def next_token_log_probs(self, tokens: jax.Array) -> jax.Array:
        """``int[B, L] -> float[B, L, V]``: ``log π(· | tokens[:, :t])`` at every position t."""
        ...

    def token_log_probs(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[..., L]``: ``log π(y_t | y_{<t})``."""
        ...

    def log_prob(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``: ``log π(y) = Σ_t log π(y_t | y_{<t})``."""
        ...

    def sample(self, key: jax.Array, num: int) -> jax.Array:
        """``num`` i.i.d. sequences ``int32[num, L]`` (``num`` static under ``jit``)."""
        ...


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
class ModulePolicy:
    """A ``Policy`` given by a Flax module and its parameters (the pytree every built-in policy is).

    Attributes:
        module: Flax module mapping ``int32[B, L] -> float[B, L, V]`` causally (static field).
            It must have integer attributes ``vocab_size`` and ``length``; it may define the hooks
            ``policy_sample`` and ``policy_token_log_probs`` (see the module docstring).
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

    def _tokens(self, tokens: jax.Array) -> jax.Array:
        tokens = check_sequences(tokens, self.vocab_size, self.length, "tokens")
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (B, L), got {tokens.shape}")
        return tokens.astype(jnp.int32)

    def logits(self, tokens: jax.Array) -> jax.Array:
        """Unnormalised next-token logits.

        Args:
            tokens: ``int[B, L]`` token ids (teacher forcing).

        Returns:
            ``float[B, L, V]``; ``logits[:, t]`` depends only on ``tokens[:, :t]``.
        """
        return _apply(self, self._tokens(tokens))

    def next_token_log_probs(self, tokens: jax.Array) -> jax.Array:
        """Normalised next-token log-probabilities ``log π(· | tokens[:, :t])``.

        Args:
            tokens: ``int[B, L]``.

        Returns:
            ``float[B, L, V]`` with ``logsumexp(out, -1) == 0``.
        """
        return _apply_log_softmax(self, self._tokens(tokens))

    def token_log_probs(self, sequences: jax.Array) -> jax.Array:
        """Per-token log-probabilities ``log π(y_t | y_{<t})`` (the module's own hook when it has one).

        Args:
            sequences: ``int[..., L]``.

        Returns:
            ``float[..., L]``.
        """
        seq = check_sequences(sequences, self.vocab_size, self.length)
        flat = seq.reshape((-1, self.length)).astype(jnp.int32)
        return _token_log_probs(self, flat).reshape(seq.shape[:-1] + (self.length,))

    def log_prob(self, sequences: jax.Array) -> jax.Array:
        """Sequence log-probability ``log π(y) = Σ_t log π(y_t | y_{<t})``.

        Args:
            sequences: ``int[..., L]`` (any leading batch shape).

        Returns:
            ``float[...]``.
        """
        return jnp.sum(self.token_log_probs(sequences), axis=-1)

    def sample(self, key: jax.Array, num: int) -> jax.Array:
        """Draw ``num`` i.i.d. sequences autoregressively (the module's own hook when it has one).

        Tabular policies sample from their per-position tables directly (inverse CDF, O(L) work per
        sequence); the transformer decodes one position per step with a key/value cache; any other
        module runs the full forward pass once per position inside a ``lax.scan`` (O(L²)).

        Args:
            key: PRNG key.
            num: number of sequences (static under ``jit``).

        Returns:
            ``int32[num, L]``.
        """
        num = int(num)
        if num < 0:
            raise ValueError(f"num must be >= 0, got {num}")
        return _sample(self, key, num)


@jax.jit
def _apply(policy: ModulePolicy, tokens: jax.Array) -> jax.Array:
    return policy.module.apply({"params": policy.params}, tokens)


@jax.jit
def _apply_log_softmax(policy: ModulePolicy, tokens: jax.Array) -> jax.Array:
    return jax.nn.log_softmax(policy.module.apply({"params": policy.params}, tokens), axis=-1)


@jax.jit
def _token_log_probs(policy: ModulePolicy, tokens: jax.Array) -> jax.Array:
    own = getattr(policy.module, "policy_token_log_probs", None)
    if own is not None:
        return own(policy.params, tokens)
    return generic_token_log_probs(policy, tokens)


@functools.partial(jax.jit, static_argnums=2)
def _sample(policy: ModulePolicy, key: jax.Array, num: int) -> jax.Array:
    own = getattr(policy.module, "policy_sample", None)
    if own is not None:
        return own(policy.params, key, num)
    return generic_sample(policy, key, num)


@jax.jit
def generic_token_log_probs(policy: ModulePolicy, tokens: jax.Array) -> jax.Array:
    """``log π(y_t | y_{<t})`` from one forward pass: log-softmax of the logits, then a gather.

    The path of a module without its own ``policy_token_log_probs``; ``int32[B, L] -> float[B, L]``.
    """
    logp = jax.nn.log_softmax(policy.module.apply({"params": policy.params}, tokens), axis=-1)
    return jnp.take_along_axis(logp, tokens[..., None], axis=-1)[..., 0]


@functools.partial(jax.jit, static_argnums=2)
def generic_sample(policy: ModulePolicy, key: jax.Array, num: int) -> jax.Array:
    """``int32[num, L]`` drawn position by position, one full forward pass per position (O(L²) work).

    The path of a module without its own ``policy_sample``; position ``t`` uses ``split(key, L)[t]``.
    """
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


@validation.validate(key=validation.prng_key, module=validation.module)
def policy_from_module(key: jax.Array, module: nn.Module) -> ModulePolicy:
    """Initialise ``module`` (with ``vocab_size`` and ``length`` attributes) and wrap it as a policy.

    Args:
        key: PRNG key for the parameter initialisers.
        module: a causal Flax module ``int32[B, L] -> float[B, L, V]``.

    Returns:
        ``ModulePolicy(module, params)``.
    """
    dummy = jnp.zeros((1, int(module.length)), jnp.int32)
    params = jax.jit(module.init)(key, dummy)["params"]
    return ModulePolicy(module=module, params=params)
