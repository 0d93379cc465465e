r"""Token-level samplers of BoN's alternatives, built on the Monte Carlo kernels of :mod:`bontheory.mc`.

* soft BoN and regularised BoN are BoN under a per-candidate score, so they run in the chunked
  running-max kernel :func:`bontheory.mc.bon_monte_carlo` with :func:`bontheory.mc.soft_bon_scorer` /
  :func:`bontheory.mc.regularized_bon_scorer` (memory bounded whatever n);
* quantile truncation and InferenceTimePessimism need a trial's whole candidate set: they draw it with
  :func:`bontheory.mc.bon_candidates` (``T × n`` candidates with sequences; size it to memory) and apply the
  selection rules of :mod:`bontheory.mc.samplers`.

Each function returns :class:`PolicyDraws` (the selected sequence, its reward and log-probability per trial).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from bontheory import validation as _V
from bontheory.mc.samplers import (
    pessimism_num_candidates,
    select_pessimism,
    select_quantile_truncation,
)


class PolicyDraws(NamedTuple):
    """Selected candidates (leading axis: trials T): ``sequences int32[T, L]``, ``rewards float[T]`` (the
    selection reward), ``log_probs float[T]`` (under the sampling policy)."""

    sequences: Int[Array, "T L"]
    rewards: Float[Array, " T"]
    log_probs: Float[Array, " T"]


def _policy_sampler(**param_kinds):
    return _V.validate(
        key=_V.prng_key, policy=_V.policy, reward=_V.reward, n=_V.static_int, num_trials=_V.static_int,
        **param_kinds,
    )


@_policy_sampler(temperature=_V.positive)
def soft_bon_policy_sample(
    key, policy, reward, n: int, temperature: float, num_trials: int, **kernel_kwargs
) -> PolicyDraws:
    """Soft BoN on a token-level policy: per trial draw n sequences, pick one ∝ softmax(r/λ).

    Exact law on an enumerated space: :func:`bontheory.alternatives.soft_bon_pmf`.
    ``kernel_kwargs`` go to :func:`bontheory.mc.bon_monte_carlo` (``chunk_size``, ``trial_batch``).
    """
    from bontheory.mc.kernels import bon_monte_carlo, soft_bon_scorer

    d = bon_monte_carlo(key, policy, reward, n, num_trials, scorer=soft_bon_scorer(temperature), **kernel_kwargs)
    return PolicyDraws(d.sequences, d.rewards, d.log_probs)


@_policy_sampler(beta=_V.finite)
def regularized_bon_policy_sample(
    key, policy, reward, n: int, beta: float, num_trials: int, **kernel_kwargs
) -> PolicyDraws:
    """Regularised BoN on a token-level policy: argmax of ``r + β log π`` over n draws (ties uniformly).

    Exact law: :func:`bontheory.alternatives.regularized_bon_pmf`.
    """
    from bontheory.mc.kernels import bon_monte_carlo, regularized_bon_scorer

    d = bon_monte_carlo(key, policy, reward, n, num_trials, scorer=regularized_bon_scorer(beta), **kernel_kwargs)
    return PolicyDraws(d.sequences, d.rewards, d.log_probs)


def _select_from_candidates(key, cands, rule) -> PolicyDraws:
    num_trials = cands.rewards.shape[0]
    keys = jax.random.split(key, num_trials)
    j = jax.vmap(rule)(keys, cands.rewards, cands.log_probs)
    take = lambda x: jnp.take_along_axis(x, j[:, None], axis=1)[:, 0]
    seqs = jnp.take_along_axis(cands.sequences, j[:, None, None], axis=1)[:, 0]
    return PolicyDraws(seqs, take(cands.rewards), take(cands.log_probs))


@_policy_sampler(m=_V.at_least_one)
def quantile_truncation_policy_sample(
    key, policy, reward, n: int, m: float, num_trials: int, **kernel_kwargs
) -> PolicyDraws:
    """Quantile truncation on a token-level policy: draw N, return one uniformly among the top ``⌈N/M⌉``.

    Exact law on an enumerated space: :func:`bontheory.alternatives.quantile_truncation_sampler_pmf`.
    """
    from bontheory.mc.kernels import bon_candidates

    k_draw, k_sel = jax.random.split(key)
    cands = bon_candidates(k_draw, policy, reward, n, num_trials, return_sequences=True, **kernel_kwargs)
    mm = jnp.asarray(m, cands.rewards.dtype)
    return _select_from_candidates(k_sel, cands, lambda k, r, lp: select_quantile_truncation(k, r, lp, mm))


@_policy_sampler(beta=_V.positive, r_max=_V.finite)
def pessimism_policy_sample(
    key, policy, reward, n: int, beta: float, num_trials: int, r_max: float, **kernel_kwargs: Any
) -> PolicyDraws:
    """InferenceTimePessimism on a token-level policy with budget N (``2N + 1`` draws per trial).

    The first N draws give λ̂; the next N are rejection-sampling proposals accepted with probability
    ``(r − λ̂)_+/(R_max − λ̂)``; if none is accepted the last draw is returned (see
    :func:`bontheory.alternatives.select_pessimism`). ``r_max`` must bound the reward (``R_max``).
    """
    from bontheory.mc.kernels import bon_candidates

    k_draw, k_sel = jax.random.split(key)
    total = pessimism_num_candidates(n)
    cands = bon_candidates(k_draw, policy, reward, total, num_trials, return_sequences=True, **kernel_kwargs)
    dtype = cands.rewards.dtype
    b = jnp.asarray(beta, dtype)
    rm = jnp.asarray(r_max, dtype)
    return _select_from_candidates(k_sel, cands, lambda k, r, lp: select_pessimism(k, r, lp, b, rm))
