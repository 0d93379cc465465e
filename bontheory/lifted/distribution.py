r"""The law of the reward under a tabular policy, by a forward dynamic program in log space (docs/theory.md §8).

For a tabular policy of order k (next-token law ``π_t(v | c_t)``, ``c_t`` the last k tokens) and a reward given
by a :class:`~bontheory.lifted.automaton.RewardAutomaton` (states s, integer increments d), the forward message

.. math::
    \alpha_t(c, s, a) = P(c_t = c,\ s_t = s,\ a_t = a),\qquad a_t = \textstyle\sum_{t'<t} d_{t'}(s_{t'}, y_{t'}),

obeys :math:`\alpha_0 = \mathbb 1[c = 0, s = 0, a = 0]` and

.. math::
    \alpha_{t+1}(c', s', a') = \sum_{c, s, v:\ c' = \mathrm{next}(c, v),\ s' = \delta_t(s, v)}
        \alpha_t(c, s, a' - d_t(s, v))\ \pi_t(v \mid c),

and the law of the reward is :math:`P(R = g(o + a)) = \sum_{c, s} \alpha_L(c, s, a - f(s))`. The recursion
runs in log space (a ``lax.scan`` over positions; the sum over the oldest context token is a max-shifted
matrix product), so level masses far below 1e-300 keep their full relative precision. Work per position is
``O(S · A · V^{k+1})`` for S automaton states and A partial-reward values.

Every exact function of :mod:`bontheory.exact` applies to ``(exp(log_probs), values)`` unchanged: for BoN and
its alternatives the density ratio to p is constant on a reward level, so KL over sequences equals KL over
levels (docs/theory.md §8).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bontheory import validation
from bontheory.lifted.automaton import ALTERNATIVES, NotLiftableError, RewardAutomaton, reward_automaton
from bontheory.numerics import safe_log
from bontheory.policies.tabular import TabularPolicy

#: Largest lifted state space S · A · V**k (automaton states × partial rewards × contexts) held in memory
#: (per position; times L for the stored messages of the samplers): 2**26 float64 entries = 512 MiB.
MAX_LIFTED_STATES = 2**26


class RewardDistribution(NamedTuple):
    """The law of R(Y), Y ~ policy: ``values`` ``float[K]`` strictly increasing (reachable values only) and
    ``log_probs`` ``float[K]`` (natural log of each value's probability; ``logsumexp(log_probs) == 0``)."""

    values: jax.Array
    log_probs: jax.Array


def tabular_table(policy: Any, name: str = "policy") -> tuple[jax.Array, int]:
    """``(log π table float[L, V**k, V], k)`` of a tabular policy, or a ``NotLiftableError`` saying why not."""
    module = getattr(policy, "module", None)
    if not isinstance(module, TabularPolicy):
        raise NotLiftableError(
            f"{name} must be a tabular policy (TabularPolicy module) to be lifted, got "
            f"{type(module if module is not None else policy).__name__}: its next-token law must depend on the "
            "last k tokens only, so that (position, context, automaton state, partial reward) is a finite "
            "state; a transformer conditions on the whole prefix. " + ALTERNATIVES[0].upper() + ALTERNATIVES[1:]
        )
    return jax.nn.log_softmax(policy.params["logits"], axis=-1), int(module.context_order)


def check_state_size(num_states: int, num_values: int, num_contexts: int, length: int | None = None,
                     what: str = "reward_distribution") -> None:
    """Raise ``ValueError`` naming the size when the lifted state space exceeds :data:`MAX_LIFTED_STATES`
    (per position; times L when every position's message is stored, as the samplers do)."""
    size = num_states * num_values * num_contexts * (1 if length is None else length)
    if size > MAX_LIFTED_STATES:
        per = "" if length is None else f" × L = {length} stored positions"
        raise ValueError(
            f"{what} needs a lifted state space of S = {num_states} automaton states × A = {num_values} partial "
            f"rewards × C = {num_contexts} policy contexts{per} = {size} entries (> MAX_LIFTED_STATES = "
            f"{MAX_LIFTED_STATES}): too large for memory; use a lower policy order, a smaller reward range, or "
            + ALTERNATIVES
        )


def lse(x: jax.Array, axis: int) -> jax.Array:
    """``log Σ exp`` over ``axis`` with ``-inf`` for an all-``-inf`` slice and NaN-free gradients."""
    m = jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    return safe_log(jnp.sum(jnp.exp(x - m), axis=axis)) + jnp.squeeze(m, axis)


def context_step(alpha: jax.Array, log_table_t: jax.Array, vocab: int, order: int) -> jax.Array:
    r"""``y[s, a, c_lo, v] = log Σ_{c_hi} exp(alpha[s, a, c] + log π_t(v | c))`` with ``c = c_hi V^{k-1} + c_lo``.

    ``alpha``: ``(S, A, C)``; ``log_table_t``: ``(C, V)``. Returns ``(S, A, V**(k-1), V)`` (``(S, A, 1, V)`` for
    k = 0). The sum over the oldest context token is a matrix product of max-shifted exponentials.
    """
    if order == 0:
        return alpha[:, :, :, None] + log_table_t[None, None, :, :]
    s_, a_, _ = alpha.shape
    low = vocab ** (order - 1)
    a4 = alpha.reshape(s_, a_, vocab, low)
    lp = log_table_t.reshape(vocab, low, vocab)
    m1 = jax.lax.stop_gradient(jnp.max(a4, axis=2, keepdims=True))
    m1 = jnp.where(jnp.isfinite(m1), m1, 0.0)
    m2 = jax.lax.stop_gradient(jnp.max(lp, axis=0, keepdims=True))
    m2 = jnp.where(jnp.isfinite(m2), m2, 0.0)
    prod = jnp.einsum("sahl,hlv->salv", jnp.exp(a4 - m1), jnp.exp(lp - m2))
    return safe_log(prod) + m1[:, :, 0, :, None] + m2[None]


def route_step(y: jax.Array, transition_t: jax.Array, increment_t: jax.Array) -> jax.Array:
    """Moves ``y[s, a, c_lo, v]`` to ``z[δ(s, v), a + d(s, v), c_lo, v]`` (log-sum over merging sources)."""
    s_, a_, _, _ = y.shape
    idx = jnp.arange(a_)[None, :, None] - increment_t[:, None, :]  # (S, A, V): source partial reward
    valid = idx >= 0
    src = jnp.take_along_axis(y, jnp.clip(idx, 0, a_ - 1)[:, :, None, :], axis=1)
    shifted = jnp.where(valid[:, :, None, :], src, -jnp.inf)
    if s_ == 1:
        return shifted
    to = (transition_t[:, None, :] == jnp.arange(s_)[None, :, None]).astype(y.dtype)  # (S, S', V) one-hot
    m = jax.lax.stop_gradient(jnp.max(shifted, axis=0, keepdims=True))
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    merged = jnp.einsum("salv,stv->talv", jnp.exp(shifted - m), to)  # Σ over the sources of each s'
    return safe_log(merged) + m


def forward_step(alpha, xs, *, vocab: int, order: int):
    """One position of the forward recursion: ``alpha_t (S, A, C) -> alpha_{t+1}``."""
    log_table_t, transition_t, increment_t = xs
    y = context_step(alpha, log_table_t, vocab, order)
    z = route_step(y, transition_t, increment_t)
    if order == 0:
        return lse(z, axis=3)  # (S, A, 1)
    s_, a_, low, v_ = z.shape
    return z.reshape(s_, a_, low * v_)


def initial_message(num_states: int, num_values: int, num_contexts: int, dtype) -> jax.Array:
    """``alpha_0``: all mass on context 0, state 0, partial reward 0 (log space)."""
    return jnp.full((num_states, num_values, num_contexts), -jnp.inf, dtype).at[0, 0, 0].set(0.0)


@functools.partial(jax.jit, static_argnames=("num_values", "order", "history"))
def forward_messages(log_table, transition, increment, *, num_values: int, order: int, history: bool = False):
    """Runs the forward recursion over all L positions.

    Args:
      log_table: ``float[L, C, V]`` normalised log next-token table (``C = V**order``).
      transition: ``int32[L, S, V]``; increment: ``int[L, S, V]`` (>= 0).
      num_values: A (static); order: k (static); history: also return every ``alpha_t`` (static).

    Returns:
      ``alpha_L`` ``(S, A, C)``, and with ``history`` also ``alphas`` ``(L, S, A, C)`` (``alphas[t]`` is the
      message *before* token t).
    """
    _, contexts, vocab = log_table.shape
    alpha0 = initial_message(transition.shape[1], num_values, contexts, log_table.dtype)
    step = jax.checkpoint(functools.partial(forward_step, vocab=vocab, order=order))

    def body(alpha, xs):
        new = step(alpha, xs)
        return new, (alpha if history else None)

    alpha_l, alphas = jax.lax.scan(body, alpha0, (log_table, transition, increment.astype(jnp.int32)))
    return (alpha_l, alphas) if history else alpha_l


def final_log_masses(alpha_l: jax.Array, final: jax.Array) -> jax.Array:
    """``log P(a_L + f(s_L) = a)`` for every a: ``float[A]`` from ``alpha_L`` ``(S, A, C)``."""
    a_ = alpha_l.shape[1]
    per_state = lse(alpha_l, axis=2)  # (S, A)
    idx = jnp.arange(a_)[None, :] - final[:, None]
    src = jnp.take_along_axis(per_state, jnp.clip(idx, 0, a_ - 1), axis=1)
    return lse(jnp.where(idx >= 0, src, -jnp.inf), axis=0)


@functools.partial(jax.jit, static_argnames=("num_values", "order"))
def level_log_masses(log_table, transition, increment, final, *, num_values: int, order: int) -> jax.Array:
    """``float[A]``: ``log P(R = g(o + a))`` on the whole partial-reward axis (``-inf`` where unreachable)."""
    alpha_l = forward_messages(log_table, transition, increment, num_values=num_values, order=order)
    return final_log_masses(alpha_l, final)


def reachable_values(automaton: RewardAutomaton, num_values: int | None = None) -> np.ndarray:
    """``bool[A]``: the partial rewards some token sequence reaches (a Boolean DP over (state, partial reward))."""
    tr, inc, fin = automaton.transition, automaton.increment, automaton.final
    length, states, vocab = tr.shape
    a_ = automaton.num_values if num_values is None else int(num_values)
    reach = np.zeros((states, a_), bool)
    reach[0, 0] = True
    src = np.repeat(np.arange(states), vocab)
    triples = None
    for t in range(length):
        if triples is None or not (np.array_equal(tr[t], tr[t - 1]) and np.array_equal(inc[t], inc[t - 1])):
            triples = np.unique(np.stack([src, tr[t].ravel(), inc[t].ravel()]), axis=1)  # (s, s', d) moves
        new = np.zeros_like(reach)
        for s, s2, d in triples.T:
            new[s2, d:] |= reach[s, : a_ - d]
        reach = new
    out = np.zeros(a_, bool)
    for s in range(states):
        f = int(fin[s])
        out[f:] |= reach[s, : a_ - f]
    return out


@validation.validate(policy=validation.policy, reward=validation.reward)
def reward_distribution(policy: Any, reward: Any) -> RewardDistribution:
    r"""The exact law of R(Y), Y ~ policy, for a tabular policy and a liftable reward (docs/theory.md §8).

    A forward dynamic program over (position, policy context, automaton state, partial reward) in log space
    (see the module docstring); no sequence is enumerated, so V = 50, L = 512 (50^512 sequences) is fine.
    Differentiable with respect to the policy's logits (the reward is fixed); usable under ``jit`` when the
    reward is concrete (its automaton is built in NumPy).

    Args:
      policy: a tabular policy (``TabularPolicy`` module, any order).
      reward: ``TokenCountReward``, ``TokenScoreReward`` with integer scores, ``PatternReward``,
        ``PatternCountReward``, a ``SumReward`` of these, or a reward with ``lifted_automaton`` (see
        :func:`~bontheory.lifted.automaton.reward_automaton`).

    Returns:
      :class:`RewardDistribution` ``(values float[K], log_probs float[K])``: the reachable reward values in
      increasing order and their log-probabilities. Under tracing, reachability is structural (any policy with
      full support); with a concrete policy, values of probability exactly 0 (``-inf`` logits) are dropped too.
      Use ``(jnp.exp(log_probs), values)`` as ``(ref_probs, rewards)`` in every exact function.

    Raises:
      NotLiftableError (``TypeError``): the policy is not tabular or the reward is not an integer automaton.
      ValueError: the lifted state space is too large (the message names its size).
    """
    log_table, order = tabular_table(policy)
    length, contexts, vocab = log_table.shape
    aut = reward_automaton(reward, vocab, length)
    num_values = aut.num_values
    check_state_size(aut.num_states, num_values, contexts)
    log_mass = level_log_masses(
        log_table, jnp.asarray(aut.transition), jnp.asarray(aut.increment, jnp.int32),
        jnp.asarray(aut.final, jnp.int32), num_values=num_values, order=order,
    )
    keep = np.flatnonzero(reachable_values(aut, num_values))
    log_probs = log_mass[keep]
    values = aut.values(num_values)[keep]
    if validation.is_concrete(log_probs):
        nonzero = np.isfinite(np.asarray(log_probs))
        if not nonzero.all():
            log_probs, values = log_probs[np.flatnonzero(nonzero)], values[nonzero]
    return RewardDistribution(values=jnp.asarray(values, log_table.dtype), log_probs=log_probs)
