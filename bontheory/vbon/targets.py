r"""The two targets of variational BoN over an enumerated outcome space, and the tie effect.

* Exact target: the BoN pmf :math:`\pi_n(y) = p(y)\,(F(y)^n - F^-(y)^n)/m(y)` (docs/theory.md §1.2).
* Continuous target (Amini et al., arXiv 2407.06057, eq. 5): the optimum of
  :math:`(n-1)\,\mathbb{E}_\pi[\log F(r)] - \mathrm{KL}(\pi\|p)`,

  .. math:: \pi^{\mathrm{cont}}_n(y) = \frac{p(y)\,F(y)^{n-1}}{\sum_{y'} p(y')\,F(y')^{n-1}}.

  Without ties both are equal in the continuous limit, but on a finite space they differ even without
  ties (``n p F^{n−1}`` does not normalise); with ties the gap grows (tied outcomes share one F).

Both are computed from one :func:`bontheory.exact.levels.reward_levels` sort.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Real

from bontheory import validation as _V
from bontheory.exact.bon import bon_log_pmf_from_levels
from bontheory.exact.levels import reward_levels
from bontheory.vbon.divergences import reverse_kl

_TARGETS = ("exact", "continuous")


class TieEffect(NamedTuple):
    """The gap between the continuous-form vBoN optimum π^cont and the exact BoN pmf π_n (each ``(...)``).

    Attributes:
      kl_cont_to_bon: KL(π^cont‖π_n), what a perfectly trained continuous-form vBoN still pays, measured as
        the vBoN loss.
      kl_bon_to_cont: KL(π_n‖π^cont).
      tv: total variation between them.
      reward_gap: E_{π_n}[r] − E_{π^cont}[r].
    """

    kl_cont_to_bon: Float[Array, "*batch"]
    kl_bon_to_cont: Float[Array, "*batch"]
    tv: Float[Array, "*batch"]
    reward_gap: Float[Array, "*batch"]


def _log_targets(ref_log_probs: jax.Array, rewards: jax.Array, n: ArrayLike) -> tuple[jax.Array, jax.Array]:
    levels = reward_levels(jnp.exp(ref_log_probs), rewards)
    log_p = levels.log_probs
    log_f = jnp.take_along_axis(levels.log_cdf, levels.level_of, axis=-1)
    n = jnp.asarray(n, log_f.dtype)
    exact = bon_log_pmf_from_levels(levels, n)
    zero = jnp.isneginf(log_p)
    cont_un = jnp.where(zero, -jnp.inf, log_p + (n - 1.0) * log_f)
    cont = cont_un - jax.nn.logsumexp(cont_un, axis=-1, keepdims=True)
    return exact, cont


@_V.validate(
    ref_log_probs=_V.log_probs, rewards=_V.rewards, n=_V.sample_size, target=_V.kind(_V.one_of, choices=_TARGETS)
)
def vbon_target_log_probs(
    ref_log_probs: Float[ArrayLike, "*batch K"],
    rewards: Real[ArrayLike, "*batch K"],
    n: ArrayLike,
    target: str = "exact",
) -> Float[Array, "*batch K"]:
    r"""Log-probabilities of a vBoN target over all outcomes.

    Args:
      ref_log_probs: ``(..., K)`` log p(y) of the reference over all outcomes (e.g. from
        ``enumerate_sequences``).
      rewards: ``(..., K)`` r(y).
      n: BoN sample size (≥ 1; scalar or broadcasting with the batch shape).
      target: ``"exact"`` (the BoN pmf π_n) or ``"continuous"`` (normalised p·F^{n−1}).

    Returns:
      ``(..., K)`` normalised log-probabilities (−inf where p = 0).

    Raises:
      ValueError: on an unknown ``target`` or bad input (concrete values; see ``reward_levels``).
    """
    exact, cont = _log_targets(ref_log_probs, rewards, n)
    return exact if target == "exact" else cont


@_V.validate(ref_log_probs=_V.log_probs, rewards=_V.rewards, n=_V.sample_size)
def tie_effect(
    ref_log_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"], n: ArrayLike
) -> TieEffect:
    r"""How far the continuous-form optimum p·F^{n−1} (normalised) is from the exact BoN pmf π_n.

    Returns:
      :class:`TieEffect` of ``(...)`` arrays.
    """
    r = rewards
    exact, cont = _log_targets(ref_log_probs, r, n)
    pe, pc = jnp.exp(exact), jnp.exp(cont)
    return TieEffect(
        kl_cont_to_bon=reverse_kl(cont, exact),
        kl_bon_to_cont=reverse_kl(exact, cont),
        tv=0.5 * jnp.sum(jnp.abs(pe - pc), axis=-1),
        reward_gap=jnp.sum((pe - pc) * r, axis=-1),
    )
