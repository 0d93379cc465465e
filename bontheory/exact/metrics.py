r"""Proxy-vs-gold metrics on a finite outcome space (docs/theory.md §5).

A method optimises a *proxy* reward ``r̂``; the user cares about a *gold* reward ``r*``. For a policy ``π``
(a pmf over the outcomes of a reference ``p``) these functions give

* gold expected reward ``J(π) = E_π[r*]`` and gold win rate against ``p`` (ties ½);
* regret against a stated comparator ``π*``: ``J(π*) − J(π)`` (or in win rate);
* distances to ``p``: KL, χ², and the coverage of a comparator: ``C = 1 + χ²(π*‖p)``,
  ``C_∞ = max π*/p`` and ``E_M(π*‖p) = E_p[(π*/p − M)_+]``;
* proxy error sizes: ``ε²_RM = E_p[(r̂ − r*)²]`` and the pairwise error
  ``ε_pw = E_{y,y'~p} |φ_{r̂}(y,y') − φ_{r*}(y,y')|``, ``φ_r(y,y') = 1{r(y)>r(y')} + ½·1{r(y)=r(y')}``.

References: Huang et al., arXiv 2503.21878 (ε_RM, χ² coverage); Sriraman & Block, arXiv 2603.05739
(ε_pw, E_M coverage).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Real

from bontheory import numerics, validation
from bontheory.exact.divergences import chi2_divergence, kl_divergence, win_rate

_V = validation


@_V.validate(policy_probs=_V.probs, rewards=_V.rewards)
def expected_reward(
    policy_probs: Float[ArrayLike, "*batch K"], rewards: Real[ArrayLike, "*batch K"]
) -> Float[Array, "*batch"]:
    r"""``E_π[r] = Σ_y π(y) r(y)``. Inputs ``(..., K)``; returns ``(...)``."""
    pi, r = numerics.broadcast_outcomes(policy_probs, rewards)
    return jnp.sum(pi * r, axis=-1)


@_V.validate(policy_probs=_V.probs, comparator_probs=_V.probs, gold_rewards=_V.rewards)
def regret(
    policy_probs: Float[ArrayLike, "*batch K"],
    comparator_probs: Float[ArrayLike, "*batch K"],
    gold_rewards: Real[ArrayLike, "*batch K"],
) -> Float[Array, "*batch"]:
    r"""Gold-reward regret against a comparator: ``E_{π*}[r*] − E_π[r*]``. Inputs ``(..., K)``; returns ``(...)``."""
    return expected_reward(comparator_probs, gold_rewards) - expected_reward(policy_probs, gold_rewards)


@_V.validate(policy_probs=_V.probs, comparator_probs=_V.probs, ref_probs=_V.probs, gold_rewards=_V.rewards)
def win_rate_regret(
    policy_probs: Float[ArrayLike, "*batch K"],
    comparator_probs: Float[ArrayLike, "*batch K"],
    ref_probs: Float[ArrayLike, "*batch K"],
    gold_rewards: Real[ArrayLike, "*batch K"],
) -> Float[Array, "*batch"]:
    r"""Gold win-rate regret: ``W*(π*) − W*(π)``, ``W*`` the win rate against ``p`` under ``r*`` (ties ½)."""
    return win_rate(comparator_probs, ref_probs, gold_rewards) - win_rate(policy_probs, ref_probs, gold_rewards)


_proxy_gold = _V.validate(ref_probs=_V.probs, proxy_rewards=_V.rewards, gold_rewards=_V.rewards)


@_proxy_gold
def reward_model_error(
    ref_probs: Float[ArrayLike, "*batch K"],
    proxy_rewards: Real[ArrayLike, "*batch K"],
    gold_rewards: Real[ArrayLike, "*batch K"],
) -> Float[Array, "*batch"]:
    r"""``ε²_RM = E_p[(r̂ − r*)²]`` (the squared reward-model error under the reference). Returns ``(...)``."""
    p, rp, rg = numerics.broadcast_outcomes(ref_probs, proxy_rewards, gold_rewards)
    return jnp.sum(p * (rp - rg) ** 2, axis=-1)


def _phi(a: jax.Array, b: jax.Array) -> jax.Array:
    return (a > b).astype(a.dtype) + 0.5 * (a == b).astype(a.dtype)


@partial(jax.jit, static_argnames=("block",))
def _pairwise_error_1d(p, rp, rg, block):
    k = p.shape[-1]
    pad = (-k) % block
    pp = jnp.pad(p, (0, pad))
    rpp = jnp.pad(rp, (0, pad))
    rgp = jnp.pad(rg, (0, pad))
    nb = (k + pad) // block

    def body(acc, i):
        sl = lambda x: jax.lax.dynamic_slice(x, (i * block,), (block,))
        pb, rpb, rgb = sl(pp), sl(rpp), sl(rgp)
        d = jnp.abs(_phi(rpb[:, None], rp[None, :]) - _phi(rgb[:, None], rg[None, :]))
        return acc + jnp.sum(pb[:, None] * p[None, :] * d), None

    total, _ = jax.lax.scan(body, jnp.zeros((), p.dtype), jnp.arange(nb))
    return total


@_V.validate(ref_probs=_V.probs, proxy_rewards=_V.rewards, gold_rewards=_V.rewards, block=_V.static_int)
def pairwise_error(
    ref_probs: Float[ArrayLike, "*batch K"],
    proxy_rewards: Real[ArrayLike, "*batch K"],
    gold_rewards: Real[ArrayLike, "*batch K"],
    *,
    block: int = 512,
) -> Float[Array, "*batch"]:
    r"""Pairwise preference error ``ε_pw = Σ_{y,y'} p(y)p(y') |φ_{r̂}(y,y') − φ_{r*}(y,y')|``.

    ``φ_r(y,y') = 1{r(y) > r(y')} + ½·1{r(y) = r(y')}``. A discordant pair counts 1 (in each order), a pair
    tied under one reward only counts ½. Exact, ``O(K²)`` time in blocks of ``block`` rows (``O(block·K)``
    memory): fine up to K ≈ 10⁵.

    Args:
      ref_probs: ``float[K]`` or ``float[..., K]`` reference pmf.
      proxy_rewards, gold_rewards: ``float[..., K]``.

    Returns:
      ``float[...]`` in ``[0, 1]``.
    """
    p, rp, rg = numerics.broadcast_outcomes(ref_probs, proxy_rewards, gold_rewards)
    batch, k = p.shape[:-1], p.shape[-1]
    fn = lambda a, b, c: _pairwise_error_1d(a, b, c, min(block, k))
    for _ in batch:
        fn = jax.vmap(fn)
    return fn(p, rp, rg)


_coverage = _V.validate(comparator_probs=_V.probs, ref_probs=_V.probs)


@_coverage
def chi2_coverage(
    comparator_probs: Float[ArrayLike, "*batch K"], ref_probs: Float[ArrayLike, "*batch K"]
) -> Float[Array, "*batch"]:
    r"""χ² coverage ``C = 1 + χ²(π*‖p) = Σ π*²/p`` (``inf`` off the support of p). Returns ``(...)``."""
    return 1.0 + chi2_divergence(comparator_probs, ref_probs)


@_coverage
def max_density_ratio(
    comparator_probs: Float[ArrayLike, "*batch K"], ref_probs: Float[ArrayLike, "*batch K"]
) -> Float[Array, "*batch"]:
    r"""``C_∞ = max_y π*(y)/p(y)`` over ``π* > 0`` (``inf`` if π* charges an outcome with ``p = 0``)."""
    q, p = numerics.broadcast_outcomes(comparator_probs, ref_probs)
    ratio = jnp.where(q > 0, jnp.where(p > 0, q / jnp.where(p > 0, p, 1), jnp.inf), 0.0)
    return jnp.max(ratio, axis=-1)


@_V.validate(comparator_probs=_V.probs, ref_probs=_V.probs, m=_V.at_least_one)
def em_divergence(
    comparator_probs: Float[ArrayLike, "*batch K"], ref_probs: Float[ArrayLike, "*batch K"], m: ArrayLike
) -> Float[Array, "*batch"]:
    r"""``E_M(π*‖p) = E_p[(π*/p − M)_+] = Σ_y (π*(y) − M p(y))_+`` (0 iff ``π* ≤ M p``; ``E_1 = TV``).

    Args:
      comparator_probs, ref_probs: ``(..., K)``.
      m: ``M ≥ 1`` scalar or broadcastable with the batch shape.
    """
    q, p = numerics.broadcast_outcomes(comparator_probs, ref_probs)
    mm, shape = numerics.broadcast_parameter(m, q.shape[:-1], q.dtype)
    q, p = (numerics.broadcast_batch(a, shape) for a in (q, p))
    return jnp.sum(jnp.maximum(q - mm * p, 0.0), axis=-1)


class ProxyGoldMetrics(NamedTuple):
    """Metrics of one policy (each ``(...)``): gold and proxy reward and win rate against p, KL and χ² to p,
    and its maximal density ratio ``max π/p``."""

    gold_reward: jax.Array
    proxy_reward: jax.Array
    gold_win_rate: jax.Array
    proxy_win_rate: jax.Array
    kl: jax.Array
    chi2: jax.Array
    max_ratio: jax.Array


@_V.validate(policy_probs=_V.probs, ref_probs=_V.probs, proxy_rewards=_V.rewards, gold_rewards=_V.rewards)
def proxy_gold_metrics(
    policy_probs: Float[ArrayLike, "*batch K"],
    ref_probs: Float[ArrayLike, "*batch K"],
    proxy_rewards: Real[ArrayLike, "*batch K"],
    gold_rewards: Real[ArrayLike, "*batch K"],
) -> ProxyGoldMetrics:
    r"""All per-policy metrics at once (see :class:`ProxyGoldMetrics`). Inputs ``(..., K)``."""
    return ProxyGoldMetrics(
        gold_reward=expected_reward(policy_probs, gold_rewards),
        proxy_reward=expected_reward(policy_probs, proxy_rewards),
        gold_win_rate=win_rate(policy_probs, ref_probs, gold_rewards),
        proxy_win_rate=win_rate(policy_probs, ref_probs, proxy_rewards),
        kl=kl_divergence(policy_probs, ref_probs),
        chi2=chi2_divergence(policy_probs, ref_probs),
        max_ratio=max_density_ratio(policy_probs, ref_probs),
    )
