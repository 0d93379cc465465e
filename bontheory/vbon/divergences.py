"""Divergences and BoN targets on the log-probability vector of an enumerated outcome space.

Everything exact in variational BoN is a function of the vector ``log π_θ(y)`` over all enumerated
outcomes ``y`` (for token sequences: ``policy.log_prob(all_sequences)``), so the functions here take
log-probability vectors of shape ``(..., K)`` and are differentiable in them. ``jax.grad`` through
``policy.log_prob`` then gives the exact gradient of a training loss over all sequences.

References:
  Amini, Vieira, Ash, Cotterell. Variational Best-of-N Alignment. arXiv 2407.06057.
  Sessa et al. BOND: Aligning LLMs with Best-of-N Distillation. arXiv 2407.14622.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float

from bontheory import validation as _V
from bontheory.numerics import kl_from_log_probs

_LogP = Float[ArrayLike, "*batch K"]



@_V.validate(log_q=_V.log_probs, log_target=_V.log_probs)
def reverse_kl(log_q: _LogP, log_target: _LogP) -> Float[Array, "*batch"]:
    r"""Reverse (mode-seeking) KL of a trained policy to a target, both given as log-probabilities:
    ``reverse_kl(log_q, log_target)`` = KL(q‖t), arguments in the order of the formula.

    .. math:: \mathrm{KL}(q \,\|\, t) = \sum_y q(y) (\log q(y) - \log t(y))

    This is the vBoN loss when ``t`` is the BoN distribution π_n (Amini et al., eq. 5). Outcomes with
    ``q(y) = 0`` contribute 0; the value is ``inf`` if ``q`` puts mass where ``t`` has none.

    Args:
      log_q: ``(..., K)`` log-probabilities of the trained policy (normalised over the last axis).
      log_target: ``(..., K)`` log-probabilities of the target.

    Returns:
      ``(...)`` the divergence in nats. Differentiable in ``log_q`` (and ``log_target``).
    """
    return kl_from_log_probs(log_q, log_target)


@_V.validate(log_target=_V.log_probs, log_q=_V.log_probs)
def forward_kl(log_target: _LogP, log_q: _LogP) -> Float[Array, "*batch"]:
    r"""Forward (mass-covering) KL of a target to a trained policy, the maximum-likelihood loss:
    ``forward_kl(log_target, log_q)`` = KL(t‖q), arguments in the order of the formula (as
    :func:`reverse_kl`; the two differ only in which of the policy and the target comes first).

    .. math:: \mathrm{KL}(t \,\|\, q) = \sum_y t(y) (\log t(y) - \log q(y))

    Minimising it in ``q`` is BoN-SFT with infinitely many exact BoN samples.

    Args:
      log_target: ``(..., K)`` log-probabilities of the target.
      log_q: ``(..., K)`` log-probabilities of the trained policy.

    Returns:
      ``(...)`` the divergence in nats.
    """
    return kl_from_log_probs(log_target, log_q)


@_V.validate(log_q=_V.log_probs, log_target=_V.log_probs, backward_weight=_V.unit_interval)
def jeffreys_divergence(log_q: _LogP, log_target: _LogP, backward_weight: ArrayLike) -> Float[Array, "*batch"]:
    r"""BOND's Jeffreys divergence: a mix of forward and backward KL to the target.

    .. math:: J_\beta(q, t) = (1 - \beta)\,\mathrm{KL}(t \,\|\, q) + \beta\,\mathrm{KL}(q \,\|\, t)

    ``backward_weight = 0`` is BoN-SFT (forward KL), ``1`` is vBoN (backward KL). Sessa et al.
    (arXiv 2407.14622, §4) recommend a small backward weight (0.5 is the symmetric Jeffreys divergence).

    Args:
      log_q: ``(..., K)`` log-probabilities of the trained policy.
      log_target: ``(..., K)`` log-probabilities of the target.
      backward_weight: scalar β in [0, 1].

    Returns:
      ``(...)`` the divergence in nats.
    """
    w = backward_weight
    return (1.0 - w) * forward_kl(log_target, log_q) + w * reverse_kl(log_q, log_target)


@_V.validate(log_cdf_strict=_V.real, log_cdf=_V.real, n=_V.sample_size)
def log_bon_ratio(
    log_cdf_strict: Float[ArrayLike, ...], log_cdf: Float[ArrayLike, ...], n: ArrayLike
) -> Float[Array, ...]:
    r"""Log of the BoN density ratio π_n(y)/p(y) from the CDF values at y's reward (ties included).

    .. math:: \frac{\pi_n(y)}{p(y)} = \frac{F^n - F_-^n}{F - F_-} = \sum_{i=1}^{n} F_-^{\,i-1} F^{\,n-i}
              \quad (= n F^{n-1} \text{ when } F_- = F)

    computed stably as ``(n−1) log F + log(−expm1(n d)) − log(−expm1(d))`` with ``d = log F₋ − log F ≤ 0``
    (and ``log n + (n−1) log F`` as d → 0). With estimated CDFs (e.g. from M reference samples) this is the
    "exact-target" reward of sampled vBoN; with ``F₋ = F`` it is the continuous-form reward
    ``log n + (n−1) log F``.

    Args:
      log_cdf_strict: ``(...)`` log F₋(y) = log P_p(r(Y) < r(y)) (may be −inf).
      log_cdf: ``(...)`` log F(y) = log P_p(r(Y) ≤ r(y)), ≥ ``log_cdf_strict``.
      n: BoN sample size (scalar, ≥ 1; may be traced).

    Returns:
      ``(...)`` log π_n(y)/p(y).
    """
    a, b = log_cdf_strict, log_cdf
    n = jnp.asarray(n, dtype=b.dtype)
    d = jnp.minimum(a - b, 0.0)
    small = d > -1e-6
    d_safe = jnp.where(small, -1.0, d)
    general = jnp.log(-jnp.expm1(n * d_safe)) - jnp.log(-jnp.expm1(d_safe))
    # Series for d → 0: log(n) + (n−1) d / 2 (first order).
    near = jnp.log(n) + 0.5 * (n - 1.0) * d
    return (n - 1.0) * b + jnp.where(small, near, general)


@_V.validate(k=_V.nonnegative)
def harmonic_number(k: ArrayLike) -> Float[Array, ...]:
    r"""The harmonic number :math:`H_k = \sum_{i=1}^k 1/i` (``H_0 = 0``), for integer ``k ≥ 0``.

    Uses ``digamma(k + 1) + γ``, exact to rounding for integers.
    """
    k = jnp.asarray(k, dtype=jnp.result_type(float))
    return jax.scipy.special.digamma(k + 1.0) + jnp.euler_gamma
