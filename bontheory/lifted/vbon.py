r"""Exact variational BoN on long sequences: KL(π_θ‖π_n) without enumeration (docs/theory.md §8.6).

Since :math:`\log \pi_n(y) = \log p(y) + \lambda_n(R(y))` with
:math:`\lambda_n(\rho) = \log\big((F(\rho)^n - F^-(\rho)^n) / m(\rho)\big)`,

.. math::
    \mathrm{KL}(\pi_\theta \| \pi_n) = \mathrm{KL}(\pi_\theta \| p) - \sum_\rho m_\theta(\rho)\, \lambda_n(\rho),

with the first term the chain-rule recursion over tabular contexts (:func:`~bontheory.policies.kl.sequence_kl`)
and :math:`m_\theta` the reward law under π_θ (the forward DP of :mod:`bontheory.lifted.distribution`, run on
π_θ's logits). λ_n depends only on p and is computed once, in log space. The loss and its gradient (by
autodiff through both recursions) are exact for tabular π_θ of any order at L = 64 … 512 and beyond.

``target="continuous"`` uses the paper's continuous form π ∝ p F^{n−1} instead:
:math:`\lambda(\rho) = (n-1)\log F(\rho) - \log \sum_\rho m(\rho) F(\rho)^{n-1}`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bontheory import validation
from bontheory.lifted.automaton import reward_automaton
from bontheory.lifted.distribution import (
    check_state_size,
    level_log_masses,
    reachable_values,
    tabular_table,
)
from bontheory.lifted.levels import bon_level_log_probs, level_log_cdfs
from bontheory.policies.kl import sequence_kl


@validation.validate(log_probs=validation.log_densities, n=validation.sample_size)
def vbon_log_ratio(log_probs: jax.Array, n: Any, target: str = "exact") -> jax.Array:
    r"""``λ(ρ) = log(π_n/p)`` on each level of the reference law ``log_probs`` ``float[K]``.

    ``"exact"``: :math:`\log(F^n - F^{-n}) - \log m`; ``"continuous"``: :math:`(n-1)\log F - \log Z`.
    """
    if target == "exact":
        return bon_level_log_probs(log_probs, n) - log_probs
    log_cdf, _ = level_log_cdfs(log_probs)
    score = (jnp.asarray(n, log_probs.dtype) - 1) * log_cdf
    return score - jax.nn.logsumexp(log_probs + score)


@dataclasses.dataclass(frozen=True)
class LiftedVBoNLoss:
    """The exact vBoN loss KL(π_θ‖π_n) on long sequences, as a ``train_steps`` objective.

    ``loss(policy, data, key) -> (KL(π_θ‖π_n), {"kl_to_ref", "log_ratio_term"})`` for a tabular π_θ of order
    ``order``; ``data`` from :func:`lifted_vbon_data` (``ref_policy``, the automaton tables, the reachable
    level indices ``keep`` and ``log_ratio`` λ on them).

    Attributes:
      num_values: A, the partial-reward axis size (static).
      order: π_θ's context order k (static).
    """

    num_values: int
    order: int

    def __post_init__(self):
        validation.static_int(self.num_values, "num_values")
        validation.static_int(self.order, "order", minimum=0)

    def __call__(self, policy, data: dict[str, Any], key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        log_table, _ = tabular_table(policy)
        log_m = level_log_masses(
            log_table, data["transition"], data["increment"], data["final"], num_values=self.num_values,
            order=self.order,
        )[data["keep"]]
        lam = data["log_ratio"]
        pos = log_m > -jnp.inf
        term = jnp.sum(jnp.where(pos, jnp.exp(log_m) * jnp.where(pos, lam, 0.0), 0.0))
        kl_ref = sequence_kl(policy, data["ref_policy"])
        return kl_ref - term, {"kl_to_ref": kl_ref, "log_ratio_term": term}


@validation.validate(ref_policy=validation.policy, reward=validation.reward, n=validation.sample_size,
                     order=validation.kind(validation.static_int, minimum=0),
                     target=validation.kind(validation.one_of, choices=("exact", "continuous")))
def lifted_vbon_data(ref_policy: Any, reward: Any, n: Any, order: int, target: str = "exact"):
    r"""The objective and data of exact vBoN toward best-of-n of ``ref_policy`` (docs/theory.md §8.6).

    Args:
      ref_policy: p (tabular, any order, full support: π_n ≪ p).
      reward: a liftable reward.
      n: BoN size (>= 1).
      order: the context order of the trained policies π_θ (static; e.g. 0 memoryless, 1 Markov).
      target: ``"exact"`` (π_n) or ``"continuous"`` (∝ p F^{n−1}).

    Returns:
      ``(objective, data)`` for :func:`~bontheory.vbon.train.train_steps` (or call
      ``objective(policy, data, key)`` directly; it is differentiable in the policy's logits).
    """
    log_table, _ = tabular_table(ref_policy, "ref_policy")
    length, _, vocab = log_table.shape
    aut = reward_automaton(reward, vocab, length)
    num_values = aut.num_values
    check_state_size(aut.num_states, num_values, max(vocab**order, log_table.shape[1]), what="lifted vBoN")
    tables = (jnp.asarray(aut.transition), jnp.asarray(aut.increment, jnp.int32), jnp.asarray(aut.final, jnp.int32))
    log_m = level_log_masses(log_table, *tables, num_values=num_values, order=int(ref_policy.module.context_order))
    keep = np.flatnonzero(reachable_values(aut, num_values))
    log_m = log_m[keep]
    data = {"ref_policy": ref_policy, "transition": tables[0], "increment": tables[1], "final": tables[2],
            "keep": jnp.asarray(keep, jnp.int32), "log_ratio": vbon_log_ratio(log_m, n, target)}
    return LiftedVBoNLoss(num_values=num_values, order=int(order)), data


@validation.validate(policy=validation.policy, ref_policy=validation.policy, reward=validation.reward,
                     n=validation.sample_size)
def lifted_vbon_loss(policy: Any, ref_policy: Any, reward: Any, n: Any, target: str = "exact") -> jax.Array:
    r"""``KL(π_θ‖π_n)`` (or to the continuous target) for a tabular ``policy`` π_θ, exactly, without enumeration.

    A convenience over :func:`lifted_vbon_data`: builds the data for ``policy``'s order and evaluates the loss.
    Differentiable in ``policy``'s logits; for training, build the data once and reuse it.
    """
    objective, data = lifted_vbon_data(ref_policy, reward, n, tabular_table(policy)[1], target)
    return objective(policy, data, jax.random.key(0))[0]
