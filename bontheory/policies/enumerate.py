"""Enumerate the whole sequence space ``V**L`` with its log-probabilities, in batches.

Sequences are in lexicographic order (token 0 most significant): sequence number i has tokens
``y_t = (i // V^{L-1-t}) mod V``. Each batch is computed by one jitted function that takes the
policy and the batch start as arguments (nothing large is closed over), so all batches share one
compilation.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from bontheory import validation
from bontheory.policies.policy import Policy

#: Default cap on V**L for enumeration (2**25 ≈ 3.4e7 sequences).
MAX_ENUMERATED_SEQUENCES = 2**25


def _check_space(vocab_size: int, length: int, max_sequences: int) -> int:
    if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
        raise ValueError(f"vocab_size must be an integer >= 1, got {vocab_size!r}")
    if not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"length must be an integer >= 1, got {length!r}")
    total = int(vocab_size) ** int(length)
    if total > min(int(max_sequences), 2**31 - 1):
        raise ValueError(
            f"cannot enumerate V**L = {vocab_size}**{length} = {total} sequences: more than "
            f"max_sequences = {max_sequences} (memory); use Monte Carlo (bontheory.mc) instead"
        )
    return total


def index_to_tokens(index: jax.Array, vocab_size: int, length: int) -> jax.Array:
    """Sequence number ``i`` to its tokens ``y_t = (i // V^{L-1-t}) mod V``: ``int[B] -> int32[B, L]``."""
    powers = jnp.asarray([vocab_size ** (length - 1 - t) for t in range(length)], jnp.int32)
    return ((index[:, None] // powers[None, :]) % vocab_size).astype(jnp.int32)


@validation.validate(
    vocab_size=validation.static_int, length=validation.static_int, max_sequences=validation.static_int
)
def all_sequences(vocab_size: int, length: int, max_sequences: int = MAX_ENUMERATED_SEQUENCES) -> jax.Array:
    """All ``V**L`` sequences in lexicographic order.

    Args:
        vocab_size: V >= 1.
        length: L >= 1.
        max_sequences: refuse (``ValueError``) when ``V**L`` exceeds this.

    Returns:
        ``int32[V**L, L]``.
    """
    total = _check_space(vocab_size, length, max_sequences)
    return index_to_tokens(jnp.arange(total, dtype=jnp.int32), int(vocab_size), int(length))


@functools.partial(jax.jit, static_argnames=("batch_size",))
def _batch(policy: Policy, start: jax.Array, batch_size: int):
    index = start + jnp.arange(batch_size, dtype=jnp.int32)
    total = policy.vocab_size**policy.length
    index = jnp.minimum(index, total - 1)  # pad the last batch with a valid sequence
    seqs = index_to_tokens(index, policy.vocab_size, policy.length)
    return seqs, policy.log_prob(seqs)


@validation.validate(policy=validation.policy, batch_size=validation.static_int, max_sequences=validation.static_int)
def enumerate_sequences(
    policy: Policy,
    batch_size: int = 2**16,
    max_sequences: int = MAX_ENUMERATED_SEQUENCES,
) -> tuple[jax.Array, jax.Array]:
    """All sequences of ``policy`` with their log-probabilities ``log π(y)``.

    Usable as ``ref_probs = jnp.exp(log_probs)`` for every exact BoN function over sequences. Differentiable
    in the policy's parameters (e.g. ``jax.grad`` of an exact BoN objective w.r.t. a tabular policy's logits).

    Args:
        policy: a ``Policy`` (any implementation of the interface; it is passed into ``jit``).
        batch_size: sequences per jitted batch (memory ~ batch_size · L · V floats for non-tabular
            policies).
        max_sequences: refuse (``ValueError``) when ``V**L`` exceeds this (default 2**25).

    Returns:
        ``(sequences int32[V**L, L], log_probs float[V**L])`` in lexicographic order;
        ``logsumexp(log_probs) == 0`` up to rounding.
    """
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must implement the bontheory Policy interface, got {type(policy).__name__}")
    total = _check_space(policy.vocab_size, policy.length, max_sequences)
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch_size = min(batch_size, total)
    seq_parts, lp_parts = [], []
    for start in range(0, total, batch_size):
        seqs, lps = _batch(policy, jnp.asarray(start, jnp.int32), batch_size)
        stop = min(batch_size, total - start)
        seq_parts.append(seqs[:stop])
        lp_parts.append(lps[:stop])
    # kept as JAX arrays (not NumPy), so the log-probabilities stay differentiable in the policy's parameters
    if len(seq_parts) == 1:
        return seq_parts[0], lp_parts[0]
    return jnp.concatenate(seq_parts), jnp.concatenate(lp_parts)
