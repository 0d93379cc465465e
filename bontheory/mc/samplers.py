r"""Finite-N samplers of BoN's alternatives: selection rules on a trial's candidates, and raw samplers.

A *selection rule* maps one trial's candidates (their proxy rewards and log-probabilities, ``float[n]``)
to the index of the returned candidate. The same rules drive

* the raw samplers on ``(ref_probs, rewards)`` arrays below (candidates are outcome indices drawn from
  ``p`` by inverse CDF), used to check the finite-N laws against exact enumeration, and
* the token-level samplers in :mod:`bontheory.mc.policy_samplers`, which draw candidate sequences
  with the Monte Carlo kernels of :mod:`bontheory.mc`.

Rules (key first; all jit/vmap friendly):

* soft BoN: ``J ~ softmax(r/λ)`` (Gumbel-max) — Verdun et al., arXiv 2505.03156;
* regularised BoN: ``J = argmax r + β log p`` (uniform tie-break) — Jinnai et al., arXiv 2404.01054;
* quantile truncation: ``J`` uniform among the top ``k = ⌈N/M⌉`` rewards (ties at the boundary broken
  uniformly) — Sriraman & Block, arXiv 2603.05739;
* InferenceTimePessimism (Huang et al., arXiv 2503.21878) on ``2N + 1`` candidates: the first N give the
  empirical threshold λ̂ with ``(1/N) Σ_i (r_i − λ̂)_+ = β``; the next N are fresh proposals accepted with
  probability ``w/M``, ``w = (r − λ̂)_+/β``, ``M = (R_max − λ̂)/β``; the first accepted one is returned, and
  if none is, the last candidate (a fresh draw from p) is returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Int, Real

from bontheory import numerics, validation
from bontheory.exact.levels import reward_levels
from bontheory.exact.pessimism import threshold_from_levels
from bontheory.numerics import safe_log

_V = validation
_Scores = Real[ArrayLike, " n"]


# ----------------------------------------------------------------------------------------------------
# Selection rules on one trial's candidates (float[n]).


def _argmax_uniform_ties(key: jax.Array, scores: jax.Array) -> jax.Array:
    """Index of a maximal score, chosen uniformly among ties."""
    top = jnp.max(scores)
    u = jax.random.uniform(key, scores.shape)
    return jnp.argmax(jnp.where(scores == top, u, -1.0)).astype(jnp.int32)


@_V.validate(key=_V.prng_key, rewards=_V.rewards, log_probs=_V.log_densities, temperature=_V.positive)
def select_soft_bon(key: jax.Array, rewards: _Scores, log_probs: _Scores, temperature: ArrayLike) -> Int[Array, ""]:
    r"""Soft BoN: returns ``J`` with ``P(J = j) = softmax(r/λ)_j`` (Gumbel-max). ``rewards``: ``float[n]``."""
    del log_probs
    g = jax.random.gumbel(key, rewards.shape, dtype=rewards.dtype)
    return jnp.argmax(rewards / temperature + g).astype(jnp.int32)


@_V.validate(key=_V.prng_key, rewards=_V.rewards, log_probs=_V.real, beta=_V.finite)
def select_regularized_bon(key: jax.Array, rewards: _Scores, log_probs: _Scores, beta: ArrayLike) -> Int[Array, ""]:
    r"""Regularised BoN: ``J = argmax_j r_j + β log p_j`` with a uniform tie-break. Inputs ``float[n]``."""
    return _argmax_uniform_ties(key, rewards + beta * log_probs)


@_V.validate(key=_V.prng_key, rewards=_V.rewards, log_probs=_V.log_densities, m=_V.at_least_one)
def select_quantile_truncation(key: jax.Array, rewards: _Scores, log_probs: _Scores, m: ArrayLike) -> Int[Array, ""]:
    r"""Quantile truncation: ``J`` uniform among the top ``k = ⌈n/M⌉`` of the ``n`` candidates.

    Candidates tied at the boundary are ordered uniformly at random (a random secondary sort key), so the
    returned law is exactly "uniform among a uniformly tie-broken top k".
    """
    del log_probs
    n = rewards.shape[-1]
    k_sel, k_tie = jax.random.split(key)
    k = jnp.clip(jnp.ceil(n / jnp.asarray(m, rewards.dtype) - 1e-9), 1, n).astype(jnp.int32)
    u = jax.random.uniform(k_tie, rewards.shape)
    order = jnp.lexsort((u, rewards))  # ascending by reward, ties by u
    j = jax.random.randint(k_sel, (), 0, k)
    return order[n - 1 - j].astype(jnp.int32)


@_V.validate(n=_V.static_sample_size)
def pessimism_num_candidates(n: int) -> int:
    """Candidates a pessimism trial uses for budget N: N for λ̂, N proposals and one fallback (2N + 1)."""
    return 2 * n + 1


@_V.validate(key=_V.prng_key, rewards=_V.rewards, log_probs=_V.log_densities, beta=_V.positive, r_max=_V.finite)
def select_pessimism(
    key: jax.Array, rewards: Real[ArrayLike, " 2N+1"], log_probs: _Scores, beta: ArrayLike, r_max: ArrayLike
) -> Int[Array, ""]:
    r"""InferenceTimePessimism on ``2N + 1`` candidates (see the module docstring).

    Args:
      key: PRNG key (acceptance uniforms).
      rewards: ``float[2N + 1]`` proxy rewards of i.i.d. draws from p.
      log_probs: unused (kept for a uniform signature).
      beta: ``β > 0``.
      r_max: an upper bound on the proxy reward (``R_max``); it sets the rejection bound
        ``M = (R_max − λ̂)/β``. A bound below some reward makes acceptance probabilities clip at 1.

    Returns:
      int32 index in ``[0, 2N + 1)``.
    """
    del log_probs
    total = rewards.shape[-1]
    if total < 3 or total % 2 != 1:
        raise ValueError(f"rewards must hold 2N + 1 >= 3 candidates, got {total}")
    n = (total - 1) // 2
    dtype = rewards.dtype
    first = rewards[:n]
    lv = reward_levels(jnp.full((n,), 1.0 / n, dtype), first)
    lam = threshold_from_levels(lv, jnp.asarray(beta, dtype))
    proposals = rewards[n : 2 * n]
    w = jnp.maximum(proposals - lam, 0.0) / beta
    bound = (jnp.asarray(r_max, dtype) - lam) / beta
    accept = jax.random.uniform(key, (n,), dtype) * bound < w
    first_acc = jnp.argmax(accept)
    return jnp.where(jnp.any(accept), n + first_acc, 2 * n).astype(jnp.int32)


# ----------------------------------------------------------------------------------------------------
# Raw samplers on (ref_probs, rewards): candidates are outcome indices drawn from p.


@_V.validate(key=_V.prng_key, ref_probs=_V.kind(_V.probs, ndim=1), num=_V.static_int)
def draw_outcomes(key: jax.Array, ref_probs: Float[ArrayLike, " K"], num: int) -> Int[Array, " num"]:
    """``num`` i.i.d. outcome indices from ``ref_probs`` ``(K,)`` by inverse CDF (``O(num log K)``)."""
    cdf = jnp.cumsum(ref_probs)
    u = jax.random.uniform(key, (num,), cdf.dtype) * cdf[-1]
    idx = jnp.searchsorted(cdf, u, side="right")
    # never return a zero-probability outcome (u can equal a cdf step only with probability ~0)
    return jnp.clip(idx, 0, ref_probs.shape[-1] - 1).astype(jnp.int32)


_RULES = {
    "soft_bon": lambda k, r, lp, a, b: select_soft_bon(k, r, lp, a),
    "regularized_bon": lambda k, r, lp, a, b: select_regularized_bon(k, r, lp, a),
    "quantile_truncation": lambda k, r, lp, a, b: select_quantile_truncation(k, r, lp, a),
    "pessimism": lambda k, r, lp, a, b: select_pessimism(k, r, lp, a, b),
}


@partial(jax.jit, static_argnames=("rule", "num_candidates", "total", "batch_size"))
def _raw_sample_jit(key, p, r, a, b, *, rule, num_candidates, total, batch_size):
    log_p = safe_log(p)
    keys = jax.random.split(key, total)
    select = _RULES[rule]

    def one(k):
        kd, ks = jax.random.split(k)
        idx = draw_outcomes(kd, p, num_candidates)
        j = select(ks, r[idx], log_p[idx], a, b)
        return idx[j]

    return jax.lax.map(one, keys, batch_size=batch_size)


def _raw_sampler(
    key, ref_probs, rewards, num_candidates: int, shape: tuple[int, ...], rule: str, a, b, batch_size: int
):
    batch = numerics.batch_shape(ref_probs, rewards)
    if batch:
        raise ValueError(f"raw samplers take one distribution: ref_probs and rewards of shape (K,), got batch {batch}")
    dtype = numerics.floating_dtype(ref_probs, rewards)
    total = math.prod(shape)
    out = _raw_sample_jit(
        key,
        ref_probs.astype(dtype),
        rewards.astype(dtype),
        jnp.asarray(a, dtype),
        jnp.asarray(b, dtype),
        rule=rule,
        num_candidates=int(num_candidates),
        total=total,
        batch_size=max(1, min(batch_size, total)),
    )
    return out.reshape(shape)


def _raw_inputs(**param_kinds):
    return _V.validate(
        key=_V.prng_key,
        ref_probs=_V.probs,
        rewards=_V.rewards,
        n=_V.static_sample_size,
        shape=_V.static_shape,
        batch_size=_V.static_int,
        **param_kinds,
    )


_P, _R = Float[ArrayLike, " K"], Real[ArrayLike, " K"]


@_raw_inputs(temperature=_V.positive)
def soft_bon_sample(
    key: jax.Array,
    ref_probs: _P,
    rewards: _R,
    n: int,
    temperature: float,
    shape: Sequence[int] | int = (),
    *,
    batch_size: int = 8192,
) -> Int[Array, "*shape"]:
    """Soft-BoN samples (outcome indices, int32 ``shape``) from ``ref_probs``, ``rewards`` of shape ``(K,)``.

    Law: :func:`bontheory.exact.soft_bon_pmf`. ``n`` and ``shape`` are static.
    """
    return _raw_sampler(key, ref_probs, rewards, n, shape, "soft_bon", temperature, 0.0, batch_size)


@_raw_inputs(beta=_V.nonnegative)
def regularized_bon_sample(
    key: jax.Array,
    ref_probs: _P,
    rewards: _R,
    n: int,
    beta: float,
    shape: Sequence[int] | int = (),
    *,
    batch_size: int = 8192,
) -> Int[Array, "*shape"]:
    """Regularised-BoN samples (argmax of ``r + β log p`` over n draws, β ≥ 0); law :func:`regularized_bon_pmf`."""
    return _raw_sampler(key, ref_probs, rewards, n, shape, "regularized_bon", beta, 0.0, batch_size)


@_raw_inputs(m=_V.at_least_one)
def quantile_truncation_sample(
    key: jax.Array,
    ref_probs: _P,
    rewards: _R,
    n: int,
    m: float,
    shape: Sequence[int] | int = (),
    *,
    batch_size: int = 8192,
) -> Int[Array, "*shape"]:
    """Finite-N quantile truncation: draw N, return one uniformly among the top ``⌈N/M⌉``.

    As N → ∞ its law converges to :func:`quantile_truncated_pmf` (``M`` fixed).
    """
    return _raw_sampler(key, ref_probs, rewards, n, shape, "quantile_truncation", m, 0.0, batch_size)


@_raw_inputs(beta=_V.positive, r_max=_V.finite)
def pessimism_sample(
    key: jax.Array,
    ref_probs: _P,
    rewards: _R,
    n: int,
    beta: float,
    shape: Sequence[int] | int = (),
    *,
    r_max: float | None = None,
    batch_size: int = 8192,
) -> Int[Array, "*shape"]:
    """InferenceTimePessimism samples with budget N (uses ``2N + 1`` draws per sample; see module docstring).

    ``r_max`` defaults to the largest reward on the support of ``ref_probs``. As N → ∞ the law converges to
    :func:`chi2_pessimism_pmf` (the rejection step targets ``p (r − λ̂)_+/β``; the fallback has probability
    ``(1 − 1/M)^N``).
    """
    if r_max is None:
        r_max = jnp.max(jnp.where(ref_probs > 0, rewards, -jnp.inf))
    return _raw_sampler(
        key,
        ref_probs,
        rewards,
        pessimism_num_candidates(n),
        shape,
        "pessimism",
        beta,
        r_max,
        batch_size,
    )
