"""Result types shared across layers: NamedTuples of JAX arrays (pytrees, so they pass through ``jit``).

* :class:`Estimate` — every Monte Carlo estimate in the library, with its standard error;
* :class:`EnumeratedSpace` — a finite outcome space written out in full: all K sequences, their reference
  log-probabilities and their rewards (what every exact function over sequences consumes).
"""

from __future__ import annotations

from typing import NamedTuple

from jaxtyping import Array, Float, Int


class Estimate(NamedTuple):
    """A Monte Carlo estimate and its standard error (arrays of the same shape)."""

    mean: Float[Array, ...]
    stderr: Float[Array, ...]


class EnumeratedSpace(NamedTuple):
    """An enumerated sequence space: all K = V**L sequences in lexicographic order, with exact reference
    log-probabilities and rewards. ``jnp.exp(space.log_probs)`` and ``space.rewards`` are the
    ``(ref_probs, rewards)`` of every exact function (:func:`bontheory.exact_space` builds one from a policy
    and a reward; :func:`bontheory.enumerate_sequences` gives its first two fields).

    Attributes:
      sequences: ``int32[K, L]``.
      log_probs: ``float[K]`` reference log-probabilities (``logsumexp = 0`` up to rounding).
      rewards: ``float[K]`` the reward of each sequence.
    """

    sequences: Int[Array, "K L"]
    log_probs: Float[Array, " K"]
    rewards: Float[Array, " K"]
