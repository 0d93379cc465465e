"""Data for the baselines trained toward BoN (BoN-SFT, BoNBoN), iterated BOND, and tabular initialisation.

All on an enumerated outcome space: ``sequences`` int[K, L] are all sequences, ``ref_log_probs`` float[K]
the reference's log-probabilities over them, ``rewards`` float[K].

References:
  Sessa et al. BOND: Aligning LLMs with Best-of-N Distillation. arXiv 2407.14622.
  Gui, Gârbacea, Veitch. BoNBoN Alignment for Large Language Models. arXiv 2406.00832.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from bontheory import validation as _V
from bontheory.vbon.divergences import harmonic_number
from bontheory.vbon.objectives import ExactDivergenceLoss
from bontheory.vbon.targets import vbon_target_log_probs
from bontheory.vbon.train import TrainState, train_steps


@_V.validate(
    key=_V.prng_key, sequences=_V.sequences, ref_log_probs=_V.kind(_V.log_probs, ndim=1), rewards=_V.rewards,
    n=_V.sample_size, num_samples=_V.static_int,
)
def bon_sft_data(
    key: jax.Array, sequences: jax.Array, ref_log_probs: jax.Array, rewards: jax.Array, n, num_samples: int
) -> dict[str, jax.Array]:
    """A BoN-SFT data set: ``num_samples`` exact best-of-n samples (``bontheory.bon_sample_exact``).

    Returns:
      ``{"samples": int[num_samples, L]}`` for :class:`~bontheory.vbon.objectives.MaximumLikelihoodLoss`.
    """
    from bontheory.exact.bon import bon_sample_exact

    idx = bon_sample_exact(key, jnp.exp(ref_log_probs), rewards, n, (num_samples,))
    return {"samples": sequences[idx]}


@_V.validate(n=_V.sample_size)
def bonbon_beta(n) -> jax.Array:
    r"""BoNBoN's IPO coefficient :math:`\beta^* = 1/(2(n-1)H_{n-1})` (Gui et al., Thm. 3), n ≥ 2.

    In the continuous case the expected best-minus-worst log-ratio of π_n to p over n draws is
    :math:`(n-1)(\mathbb{E}[-\log U_{(1)}] - \mathbb{E}[-\log U_{(n)}]) = (n-1)H_{n-1} = 1/(2\beta^*)`,
    the target margin of the IPO loss.
    """
    if _V.is_concrete(n) and bool(jnp.any(n < 2)):
        raise ValueError(f"n must be >= 2 for BoNBoN (one best and one worst of n), got {n}")
    n = jnp.asarray(n, dtype=jnp.result_type(float))
    return 1.0 / (2.0 * (n - 1.0) * harmonic_number(n - 1.0))


def _argext_uniform_ties(key: jax.Array, values: jax.Array, largest: bool) -> jax.Array:
    # index of the max (or min) along the last axis, ties broken uniformly at random.
    ext = jnp.max(values, axis=-1, keepdims=True) if largest else jnp.min(values, axis=-1, keepdims=True)
    u = jax.random.uniform(key, values.shape)
    return jnp.argmax(jnp.where(values == ext, u, -1.0), axis=-1)


@_V.validate(
    key=_V.prng_key,
    sequences=_V.sequences,
    ref_log_probs=_V.kind(_V.log_probs, ndim=1),
    rewards=_V.rewards,
    n=_V.kind(_V.static_int, minimum=2),
    num_pairs=_V.static_int,
    sft_weight=_V.unit_interval,
)
def bonbon_data(
    key: jax.Array,
    sequences: jax.Array,
    ref_log_probs: jax.Array,
    rewards: jax.Array,
    n: int,
    num_pairs: int,
    sft_weight: float = 0.5,
) -> dict[str, jax.Array]:
    """BoNBoN training pairs: for each of ``num_pairs`` trials, draw n outcomes from p and keep the best
    and the worst (ties broken uniformly), plus β* and the SFT weight.

    Returns:
      data for :class:`~bontheory.vbon.objectives.BoNBoNLoss`.
    """
    kd, kb, kw = jax.random.split(key, 3)
    ref_log_probs = jnp.asarray(ref_log_probs)
    idx = jax.random.categorical(kd, ref_log_probs, shape=(num_pairs, n))
    r = jnp.asarray(rewards)[idx]
    best = jnp.take_along_axis(idx, _argext_uniform_ties(kb, r, True)[:, None], axis=-1)[:, 0]
    worst = jnp.take_along_axis(idx, _argext_uniform_ties(kw, r, False)[:, None], axis=-1)[:, 0]
    seq = jnp.asarray(sequences)
    return {
        "best": seq[best],
        "worst": seq[worst],
        "ref_log_best": ref_log_probs[best],
        "ref_log_worst": ref_log_probs[worst],
        "beta": bonbon_beta(n),
        "sft_weight": jnp.asarray(sft_weight, ref_log_probs.dtype),
    }


@_V.validate(
    state=_V.train_state,
    optimizer=_V.optimizer,
    sequences=_V.sequences,
    rewards=_V.rewards,
    n=_V.static_int,
    num_iterations=_V.kind(_V.static_int, minimum=0),
    steps_per_iteration=_V.static_int,
    backward_weight=_V.unit_interval,
)
def iterated_bond(
    state: TrainState,
    sequences: jax.Array,
    rewards: jax.Array,
    n: int,
    *,
    num_iterations: int,
    steps_per_iteration: int,
    optimizer: optax.GradientTransformation,
    backward_weight: float = 0.5,
) -> tuple[TrainState, list[dict[str, Any]]]:
    r"""Iterated BOND with a moving anchor (Sessa et al., §5), exact over all sequences.

    Iteration t trains toward the BoN of the *current anchor* with the Jeffreys divergence, then moves
    the anchor to the trained policy. Starting from p, a perfectly trained iteration t targets
    BoN_n(BoN_n(…p)) = BoN_{n^t}(p): the effective N grows as :math:`n^t` while each step only ever
    targets best-of-n. (Composition holds exactly: max of n maxima of n draws is the max of n² draws,
    F ↦ F^n composes.)

    Args:
      state: training state; its policy is the first anchor (normally the reference p).
      sequences: int[K, L], all sequences.
      rewards: float[K].
      n: per-iteration BoN size.
      num_iterations: t, the number of anchor moves.
      steps_per_iteration: optimiser steps per iteration.
      optimizer: Optax transformation (its state is kept across iterations).
      backward_weight: β of the Jeffreys divergence.

    Returns:
      ``(state, history)``; ``history[t]`` has the iteration's final ``loss`` and the ``anchor_log_probs``
      used (float[K]).
    """
    objective = ExactDivergenceLoss(kind="jeffreys")
    history = []
    for _ in range(int(num_iterations)):
        anchor = state.policy.log_prob(sequences)
        target = vbon_target_log_probs(anchor, rewards, n, "exact")
        data = {
            "sequences": sequences,
            "target_log_probs": target,
            "backward_weight": jnp.asarray(backward_weight, target.dtype),
        }
        state, hist = train_steps(
            state, data, objective=objective, optimizer=optimizer, num_steps=int(steps_per_iteration)
        )
        history.append({"loss": hist["loss"][-1], "anchor_log_probs": anchor})
    return state, history


@_V.validate(policy=_V.policy, order=_V.optional(_V.kind(_V.static_int, minimum=0)))
def expand_tabular_policy(policy, order: int | None):
    """The same distribution as a tabular policy of a higher order (e.g. memoryless → full history).

    A table of context order k is indexed by the last k tokens with the most recent least significant
    (``bontheory.policies.tabular``), so the order-k' table (k' ≥ k) is ``new[t, c] = old[t, c mod V^k]``.
    Used to initialise a higher-capacity policy from the reference.
    """
    from bontheory.policies.tabular import effective_order, tabular_policy_from_logits

    old = policy.params["logits"]
    length, _ctx, vocab = old.shape
    k_old = effective_order(policy.module.order, length)
    k_new = effective_order(order, length)
    if k_new < k_old:
        raise ValueError(f"cannot expand order {policy.module.order} to the lower order {order}")
    idx = jnp.arange(vocab**k_new) % (vocab**k_old)
    return tabular_policy_from_logits(old[:, idx, :], order=order)
