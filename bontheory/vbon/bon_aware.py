r"""BoN-aware training: fine-tune the policy that Best-of-n samples *from*, knowing BoN_n is applied at inference.

vBoN (:mod:`bontheory.vbon.objectives`) trains a policy to imitate BoN_n(p). BoN-aware training (Chow et al.,
arXiv 2412.15287) asks the reverse question: which policy π_θ should BoN_n be run on? It maximises

.. math:: J(\theta) = \mathbb{E}_{Y\sim\mathrm{BoN}_n(\pi_\theta)}[r(Y)] - \beta\,D(\theta),\qquad
          D = \mathrm{KL}(\pi_\theta\,\|\,p)\ (\texttt{kl="policy"})\ \text{or}\
          \mathrm{KL}(\mathrm{BoN}_n(\pi_\theta)\,\|\,p)\ (\texttt{kl="bon"}).

``kl="policy"`` keeps the *sampling* policy near p (what Chow et al. regularise); ``kl="bon"`` keeps the
*served* distribution near p (the budget BoN itself is measured in). Exactly, on an enumerated space, J is an
explicit function of π_θ through the BoN functionals of :mod:`bontheory.exact.bon`, and ``jax.grad`` through
them is the exact gradient (:func:`bon_aware_objective`, :class:`ExactBoNAwareLoss`, :func:`train_bon_aware`).
From samples, :class:`SampledBoNAwareLoss` is an unbiased policy-gradient estimate from n candidates per trial.
On sequence spaces too large to enumerate (tabular policy, automaton reward, docs/theory.md §8), J with
``kl="policy"`` is exact too: the law of R under π_θ by the lifted forward DP and KL(π_θ‖p) by the chain rule
(:func:`lifted_bon_aware_objective`, :class:`LiftedBoNAwareLoss`, :func:`train_bon_aware_lifted`).
docs/theory.md §6.7.

References:
  Chow et al., "Inference-Aware Fine-Tuning for Best-of-N Sampling in Large Language Models", arXiv 2412.15287.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Real

from bontheory import validation as _V
from bontheory.exact.bon import bon_expected_reward, bon_log_pmf
from bontheory.lifted.automaton import reward_automaton
from bontheory.lifted.distribution import check_state_size, level_log_masses, reachable_values, tabular_table
from bontheory.mc.estimators import sequence_index
from bontheory.policies.kl import sequence_kl
from bontheory.vbon.divergences import reverse_kl
from bontheory.vbon.objectives import kl_regularised_surrogate
from bontheory.vbon.train import init_train_state, train_steps

#: The KLs a BoN-aware objective can penalise: of the sampling policy (``"policy"``: KL(π_θ‖p)) or of the
#: served distribution (``"bon"``: KL(BoN_n(π_θ)‖p)).
BON_AWARE_KLS = ("policy", "bon")

Data = dict[str, Any]


class BoNAwareValue(NamedTuple):
    """The BoN-aware objective and its parts (each of the batch shape).

    Attributes:
      objective: J = served_reward − β·kl.
      served_reward: E_{BoN_n(π_θ)}[r].
      kl: the penalised KL: KL(π_θ‖p) for ``kl="policy"``, KL(BoN_n(π_θ)‖p) for ``kl="bon"``.
    """

    objective: jax.Array
    served_reward: jax.Array
    kl: jax.Array


@_V.validate(
    policy_log_probs=_V.log_probs, ref_log_probs=_V.log_probs, rewards=_V.rewards, n=_V.sample_size,
    beta=_V.nonnegative, kl=_V.kind(_V.one_of, choices=BON_AWARE_KLS),
)
def bon_aware_objective(
    policy_log_probs: Float[ArrayLike, "*batch K"],
    ref_log_probs: Float[ArrayLike, "*batch K"],
    rewards: Real[ArrayLike, "*batch K"],
    n: ArrayLike,
    beta: ArrayLike,
    kl: str = "policy",
) -> BoNAwareValue:
    r"""The exact BoN-aware objective over an enumerated outcome space (docs/theory.md §6.7).

    .. math:: J = \sum_\ell r_\ell\bigl(G_\ell^n - G_{\ell-1}^n\bigr) - \beta D,\qquad
              G_\ell = \pi_\theta(r(Y) \le r_\ell),

    with D = KL(π_θ‖p) (``kl="policy"``) or KL(BoN_n(π_θ)‖p) (``kl="bon"``). Differentiable in
    ``policy_log_probs`` wherever the BoN functionals are (rewards enter only through their order); under
    ``jax.grad`` this is the exact gradient of J.

    Args:
      policy_log_probs: ``(..., K)`` log π_θ over all outcomes (e.g. ``policy.log_prob(sequences)`` over the
        sequences of :func:`~bontheory.enumerate_sequences`).
      ref_log_probs: ``(..., K)`` log p over the same outcomes.
      rewards: ``(..., K)`` rewards.
      n: BoN size ≥ 1 (may be traced).
      beta: KL coefficient β ≥ 0.
      kl: ``"policy"`` or ``"bon"`` (static).

    Returns:
      :class:`BoNAwareValue` of the batch shape.
    """
    log_q = jnp.asarray(policy_log_probs)
    q = jnp.exp(log_q)
    served = bon_expected_reward(q, rewards, n)
    if kl == "policy":
        d = reverse_kl(log_q, ref_log_probs)
    else:
        d = reverse_kl(bon_log_pmf(q, rewards, n), ref_log_probs)
    return BoNAwareValue(served - beta * d, served, d)


@dataclasses.dataclass(frozen=True)
class ExactBoNAwareLoss:
    r"""Exact BoN-aware loss −J(θ) over all enumerated sequences (docs/theory.md §6.7), for :func:`train_steps`.

    .. math:: \mathcal{L}(\theta) = \beta D(\theta) - \mathbb{E}_{\mathrm{BoN}_n(\pi_\theta)}[r]

    Attributes:
      kl: ``"policy"`` (D = KL(π_θ‖p)) or ``"bon"`` (D = KL(BoN_n(π_θ)‖p)).

    ``data``: ``sequences`` int[K, L] (all sequences), ``ref_log_probs`` float[K], ``rewards`` float[K],
    ``n`` scalar, ``beta`` scalar. ``aux``: ``objective``, ``served_reward``, ``kl``.
    """

    kl: str = "policy"

    def __post_init__(self):
        _V.one_of(self.kl, "kl", choices=BON_AWARE_KLS)

    def __call__(self, policy, data: Data, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        del key
        log_q = policy.log_prob(data["sequences"])
        v = bon_aware_objective(log_q, data["ref_log_probs"], data["rewards"], data["n"], data["beta"], self.kl)
        return -v.objective, v._asdict()


def _loo_max(rewards: Float[Array, "*batch n"]) -> Float[Array, "*batch n"]:
    r"""Leave-one-out maxima: entry i is :math:`\max_{j\ne i} r_j` over the last axis (n ≥ 2).

    Computed from the largest value, its multiplicity and the largest value below it (no n×n array).
    """
    top = jnp.max(rewards, axis=-1, keepdims=True)
    is_top = rewards == top
    count = jnp.sum(is_top, axis=-1, keepdims=True)
    second = jnp.max(jnp.where(is_top, -jnp.inf, rewards), axis=-1, keepdims=True)
    return jnp.where(is_top & (count == 1), second, top)


@dataclasses.dataclass(frozen=True)
class SampledBoNAwareLoss:
    r"""Policy-gradient estimate of the BoN-aware objective from n candidates per trial (docs/theory.md §6.7).

    Each step draws T trials of n candidates :math:`y_{t,1..n}\sim\pi_\theta` and selects, per trial, a
    candidate of maximal reward (uniform among tied candidates), :math:`y_{t,\ast}`. Since
    :math:`\mathbb{E}_{\mathrm{BoN}_n(\pi_\theta)}[h] = \mathbb{E}_{y_{1..n}\sim\pi_\theta}[h(y_\ast)]`,

    .. math:: \nabla_\theta \mathbb{E}_{\mathrm{BoN}_n(\pi_\theta)}[h]
              = \mathbb{E}\Bigl[h(y_\ast)\sum_{i=1}^{n}\nabla_\theta\log\pi_\theta(y_i)\Bigr]

    (the selected sample's payoff times the score of *all* n candidates, Chow et al.'s form). A baseline b_t
    independent of trial t keeps it unbiased. Payoffs h and baselines:

    * ``kl="policy"``: h = r. ``baseline="trials"``: b_t = mean of h over the other trials; the KL(π_θ‖p)
      part is the REINFORCE surrogate of :func:`kl_regularised_surrogate` on all T·n candidates.
      ``baseline="marginal"`` (n ≥ 2): candidate i gets the weight :math:`r(y_\ast) - \max_{j\ne i} r(y_j)`
      (its marginal gain; :math:`\max_{j\ne i} r(y_j)` does not depend on y_i, so it is a valid baseline
      for candidate i's score): only a strict winner is reinforced, by its margin over the runner-up.
    * ``kl="bon"``: h = r − β log(BoN_n(π_θ)(y)/p(y)), treated as a constant; the term
      :math:`-\beta\,\mathbb{E}_{\mathrm{BoN}_n}[\nabla\log\mathrm{BoN}_n(\pi_\theta)]` it drops is zero.
      The density ratio is computed exactly from an enumerated space in ``data`` (without enumeration it
      would have to be estimated, which this estimator does not do). ``baseline="trials"`` only.

    Attributes:
      n: candidates per trial (static).
      num_trials: T ≥ 2 trials per step (static).
      kl: ``"policy"`` or ``"bon"``.
      baseline: ``"trials"`` or ``"marginal"``.

    ``data``: ``reward`` (a reward pytree, ``reward(int[B, L]) -> [B]``), ``beta`` scalar; for ``kl="policy"``
    ``ref_policy`` (a Policy); for ``kl="bon"`` ``sequences`` int[K, L] (all sequences in lexicographic order,
    as :func:`~bontheory.enumerate_sequences` gives them), ``ref_log_probs`` float[K] and ``rewards`` float[K].
    ``aux``: batch estimates ``objective``, ``served_reward``, ``kl``.
    """

    n: int
    num_trials: int = 16
    kl: str = "policy"
    baseline: str = "trials"

    def __post_init__(self):
        _V.static_int(self.n, "n", minimum=1)
        _V.static_int(self.num_trials, "num_trials", minimum=2)
        _V.one_of(self.kl, "kl", choices=BON_AWARE_KLS)
        _V.one_of(self.baseline, "baseline", choices=("trials", "marginal"))
        if self.baseline == "marginal" and (self.kl != "policy" or self.n < 2):
            raise ValueError(f"baseline='marginal' needs kl='policy' and n >= 2, got kl={self.kl!r}, n={self.n}")

    def __call__(self, policy, data: Data, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        t, n = self.num_trials, self.n
        k_draw, k_tie = jax.random.split(key)
        seqs = jax.lax.stop_gradient(policy.sample(k_draw, t * n))  # (T·n, L)
        r = jax.lax.stop_gradient(data["reward"](seqs)).reshape(t, n)
        # BoN selection: a candidate of maximal reward, uniform among the tied ones
        u = jax.random.uniform(k_tie, (t, n))
        sel = jnp.argmax(jnp.where(r == jnp.max(r, axis=-1, keepdims=True), u, -1.0), axis=-1)  # (T,)
        r_sel = jnp.take_along_axis(r, sel[:, None], axis=-1)[:, 0]
        log_pi = policy.log_prob(seqs).reshape(t, n)
        beta = data["beta"]
        if self.kl == "policy":
            h, d = r_sel, None
        else:
            log_q_all = jax.lax.stop_gradient(policy.log_prob(data["sequences"]))
            log_bon = bon_log_pmf(jnp.exp(log_q_all), data["rewards"], n)
            idx = sequence_index(seqs.reshape(t, n, -1)[jnp.arange(t), sel], policy.vocab_size)
            d = log_bon[idx] - data["ref_log_probs"][idx]  # log BoN_n(π_θ)(y*)/p(y*)
            h = r_sel - beta * d
        if self.baseline == "marginal":
            weights = r_sel[:, None] - _loo_max(r)  # (T, n)
        else:
            weights = jnp.broadcast_to((h - (jnp.sum(h) - h) / (t - 1))[:, None], (t, n))
        surrogate = -jnp.mean(jnp.sum(jax.lax.stop_gradient(weights) * log_pi, axis=-1))
        if self.kl == "policy":
            no_reward = jnp.zeros_like(r_sel, shape=(t * n,))
            kl_sur, kl_each = kl_regularised_surrogate(policy, data["ref_policy"], seqs, no_reward, beta)
            surrogate = surrogate + kl_sur
            kl_est = jnp.mean(kl_each)
        else:
            kl_est = jnp.mean(d)
        served = jnp.mean(r_sel)
        return surrogate, {"objective": served - beta * kl_est, "served_reward": served, "kl": kl_est}


@functools.lru_cache(maxsize=32)
def _adam(learning_rate: float) -> optax.GradientTransformation:
    # One object per learning rate, so the jitted loop's static-argument cache is reused.
    return optax.adam(learning_rate)


@_V.validate(
    key=_V.prng_key,
    init_policy=_V.policy,
    sequences=_V.sequences,
    ref_log_probs=_V.kind(_V.log_probs, ndim=1),
    rewards=_V.rewards,
    n=_V.kind(_V.static_int, minimum=1),
    beta=_V.nonnegative,
    kl=_V.kind(_V.one_of, choices=BON_AWARE_KLS),
    num_steps=_V.kind(_V.static_int, minimum=1),
    learning_rate=_V.positive,
)
def train_bon_aware(
    key: jax.Array,
    init_policy,
    *,
    sequences: jax.Array,
    ref_log_probs: jax.Array,
    rewards: jax.Array,
    n: int,
    beta: float,
    kl: str = "policy",
    num_steps: int = 300,
    learning_rate: float = 0.1,
    optimizer: optax.GradientTransformation | None = None,
) -> tuple[Any, dict[str, jax.Array]]:
    r"""Trains ``init_policy`` to maximise the exact BoN-aware objective J (docs/theory.md §6.7).

    Runs :class:`ExactBoNAwareLoss` in the jitted Optax loop :func:`~bontheory.train_steps` (exact gradients
    through the BoN functionals over all enumerated ``sequences``).

    Args:
      key: PRNG key (the exact loss draws nothing; it seeds the training state).
      init_policy: the starting Policy (normally the reference p, in a class that can move, e.g. a
        full-history tabular policy).
      sequences: int[K, L], all sequences.
      ref_log_probs: float[K], log p over them.
      rewards: float[K], r over them.
      n: BoN size applied at inference.
      beta: KL coefficient β ≥ 0.
      kl: ``"policy"`` (penalise KL(π_θ‖p)) or ``"bon"`` (penalise KL(BoN_n(π_θ)‖p)).
      num_steps: optimiser steps.
      learning_rate: Adam learning rate (ignored when ``optimizer`` is given).
      optimizer: an Optax transformation to use instead of Adam (reuse one object to reuse the compiled loop).

    Returns:
      ``(trained_policy, history)``: ``history`` holds ``(num_steps,)`` arrays ``loss`` (= −J before each
      step), ``objective``, ``served_reward`` and ``kl``.
    """
    opt = optimizer if optimizer is not None else _adam(float(learning_rate))
    dtype = ref_log_probs.dtype
    data = {
        "sequences": sequences,
        "ref_log_probs": ref_log_probs,
        "rewards": jnp.asarray(rewards, dtype),
        "n": jnp.asarray(n, dtype),
        "beta": jnp.asarray(beta, dtype),
    }
    state = init_train_state(key, init_policy, opt)
    state, hist = train_steps(state, data, objective=ExactBoNAwareLoss(kl=kl), optimizer=opt, num_steps=num_steps)
    return state.policy, hist


# ----------------------------------------------------------------------------------------------------
# Lifted: long sequences, tabular policy and automaton reward (kl="policy" only)


def _lifted_served_reward(log_table: jax.Array, data: Data, n: Any, *, num_values: int, order: int) -> jax.Array:
    log_mass = level_log_masses(
        log_table, data["transition"], data["increment"], data["final"], num_values=num_values, order=order
    )[data["keep"]]
    return bon_expected_reward(jnp.exp(log_mass), data["values"], n)


@_V.validate(reward=_V.reward, vocab_size=_V.static_int, length=_V.static_int)
def lifted_bon_aware_data(reward: Any, vocab_size: int, length: int) -> tuple[int, Data]:
    """``(num_values, data)``: the reward's automaton as the arrays :class:`LiftedBoNAwareLoss` reads.

    ``data`` holds ``transition``, ``increment``, ``final`` (the automaton), ``keep`` (the indices of the
    reachable reward values) and ``values`` (those values); add ``ref_policy``, ``n`` and ``beta``.
    """
    aut = reward_automaton(reward, vocab_size, length)
    num_values = int(aut.num_values)
    keep = np.flatnonzero(reachable_values(aut, num_values))
    data = {
        "transition": jnp.asarray(aut.transition),
        "increment": jnp.asarray(aut.increment, jnp.int32),
        "final": jnp.asarray(aut.final, jnp.int32),
        "keep": jnp.asarray(keep, jnp.int32),
        "values": jnp.asarray(aut.values(num_values)[keep]),
    }
    return num_values, data


@dataclasses.dataclass(frozen=True)
class LiftedBoNAwareLoss:
    r"""Exact BoN-aware loss −J(θ), ``kl="policy"``, on a lifted sequence space (docs/theory.md §6.7, §8).

    .. math:: \mathcal{L}(\theta) = \beta\,\mathrm{KL}(\pi_\theta\|p) - \sum_a v_a\bigl(G_a^n - G_{a-1}^n\bigr)

    with :math:`G` the CDF of R under π_θ from the forward DP of :func:`~bontheory.reward_distribution` and
    the KL by the chain rule (:func:`~bontheory.sequence_kl`); nothing is enumerated. The served KL
    KL(BoN_n(π_θ)‖p) is not offered here: it needs π_θ/p *within* each reward level, which the law of R does
    not carry.

    Attributes:
      num_values: the automaton's number of partial-reward values (static; from :func:`lifted_bon_aware_data`).

    ``data``: the arrays of :func:`lifted_bon_aware_data`, ``ref_policy`` (a tabular Policy), ``n`` and
    ``beta`` scalars. The trained policy must be tabular. ``aux``: ``objective``, ``served_reward``, ``kl``.
    """

    num_values: int

    def __post_init__(self):
        _V.static_int(self.num_values, "num_values")

    def __call__(self, policy, data: Data, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        del key
        log_table, order = tabular_table(policy)
        served = _lifted_served_reward(log_table, data, data["n"], num_values=self.num_values, order=order)
        kl = sequence_kl(policy, data["ref_policy"])
        objective = served - data["beta"] * kl
        return -objective, {"objective": objective, "served_reward": served, "kl": kl}


@_V.validate(policy=_V.policy, ref_policy=_V.policy, reward=_V.reward, n=_V.sample_size, beta=_V.nonnegative)
def lifted_bon_aware_objective(policy, ref_policy, reward, n: ArrayLike, beta: ArrayLike) -> BoNAwareValue:
    r"""The exact BoN-aware objective with ``kl="policy"`` on a lifted space (docs/theory.md §6.7, §8).

    .. math:: J = \mathbb{E}_{\mathrm{BoN}_n(\pi_\theta)}[r] - \beta\,\mathrm{KL}(\pi_\theta\|p)

    for a tabular π_θ and p and a liftable (integer automaton) ``reward``, without enumerating sequences;
    differentiable with respect to ``policy``'s logits (the reward must be concrete).

    Returns:
      :class:`BoNAwareValue` (scalars), ``kl`` = KL(π_θ‖p).
    """
    num_values, data = lifted_bon_aware_data(reward, policy.vocab_size, policy.length)
    check_state_size(int(data["transition"].shape[1]), num_values, tabular_table(policy)[0].shape[1])
    _, aux = LiftedBoNAwareLoss(num_values)(policy, dict(data, ref_policy=ref_policy, n=n, beta=beta), None)
    return BoNAwareValue(aux["objective"], aux["served_reward"], aux["kl"])


@_V.validate(
    key=_V.prng_key,
    init_policy=_V.policy,
    ref_policy=_V.policy,
    reward=_V.reward,
    n=_V.kind(_V.static_int, minimum=1),
    beta=_V.nonnegative,
    num_steps=_V.kind(_V.static_int, minimum=1),
    learning_rate=_V.positive,
)
def train_bon_aware_lifted(
    key: jax.Array,
    init_policy,
    *,
    ref_policy,
    reward,
    n: int,
    beta: float,
    num_steps: int = 300,
    learning_rate: float = 0.1,
    optimizer: optax.GradientTransformation | None = None,
) -> tuple[Any, dict[str, jax.Array]]:
    """Trains a tabular ``init_policy`` on the exact lifted BoN-aware objective (``kl="policy"``; docs/theory.md §6.7).

    Like :func:`train_bon_aware`, with :class:`LiftedBoNAwareLoss` in :func:`~bontheory.train_steps`: nothing
    is enumerated, so long sequences (e.g. V = 4, L = 64) train exactly.

    Returns:
      ``(trained_policy, history)`` with ``(num_steps,)`` arrays ``loss``, ``objective``, ``served_reward``, ``kl``.
    """
    num_values, data = lifted_bon_aware_data(reward, init_policy.vocab_size, init_policy.length)
    table = tabular_table(init_policy)[0]
    check_state_size(int(data["transition"].shape[1]), num_values, table.shape[1])
    dtype = table.dtype
    data = dict(
        data,
        values=data["values"].astype(dtype),
        ref_policy=ref_policy,
        n=jnp.asarray(n, dtype),
        beta=jnp.asarray(beta, dtype),
    )
    opt = optimizer if optimizer is not None else _adam(float(learning_rate))
    state = init_train_state(key, init_policy, opt)
    state, hist = train_steps(state, data, objective=LiftedBoNAwareLoss(num_values), optimizer=opt, num_steps=num_steps)
    return state.policy, hist
