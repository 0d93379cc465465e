r"""Exact sequence draws of level-constant methods: draw the reward level, then a sequence given its level.

A method is level-constant when its density ratio to p depends on a sequence only through its reward
(BoN, soft BoN, quantile truncation, χ²-pessimism, the tilts; docs/theory.md §8.2). Its draw is then: a level
ρ* from the method's level law, then ``Y ~ p(· | R(Y) = ρ*)``. The second step is forward filtering, backward
sampling (docs/theory.md §8.4): the forward messages α_t of :mod:`bontheory.lifted.distribution` are stored,
and the path is drawn backward, each step ∝ (forward message × one transition):

.. math::
    P(c_t, s_t, y_t \mid c_{t+1}, s_{t+1}, a_{t+1}) \propto
        \alpha_t\big(c_t, s_t, a_{t+1} - d_t(s_t, y_t)\big)\, \pi_t(y_t \mid c_t)\,
        \mathbb 1[\mathrm{next}(c_t, y_t) = c_{t+1},\ \delta_t(s_t, y_t) = s_{t+1}].

For order k >= 1 the next context fixes ``y_t`` (its newest digit) and only the oldest context digit and the
automaton state are drawn; for k = 0 the token and the state are. One uniform per position and draw (inverse
CDF over ``S · V`` options): after the forward pass the cost is ``O(L · S · V)`` per draw, whatever n.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bontheory import validation
from bontheory.lifted.automaton import reward_automaton
from bontheory.lifted.distribution import (
    check_state_size,
    final_log_masses,
    forward_messages,
    reachable_values,
    tabular_table,
)
from bontheory.lifted.levels import level_log_cdfs


def _pick(key: jax.Array, logw: jax.Array) -> jax.Array:
    """Index drawn ∝ exp(logw) (1-D) by inverse CDF with one uniform; never an index of weight 0."""
    m = jnp.max(logw)
    w = jnp.exp(logw - jnp.where(jnp.isfinite(m), m, 0.0))
    cdf = jnp.cumsum(w)
    u = jax.random.uniform(key, (), cdf.dtype) * cdf[-1]
    return jnp.minimum(jnp.sum(cdf <= u), logw.shape[0] - 1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("order",))
def backward_sample(key, alphas, alpha_l, log_table, transition, increment, final, totals, *, order: int):
    """Sequences ``int32[N, L]`` given their partial-reward totals ``totals`` ``int32[N]`` (FFBS).

    Args:
      key: PRNG key; draw i uses ``fold_in(key, i)``, position t ``fold_in(·, t)``.
      alphas: ``(L, S, A, C)`` forward messages before each position; alpha_l: ``(S, A, C)``.
      log_table: ``(L, C, V)``; transition, increment: ``int32[L, S, V]``; final: ``int32[S]``.
      totals: ``int32[N]``: the partial-reward index ``a`` of each draw's level (``R = g (o + a)``).
      order: k (static).
    """
    length, contexts, vocab = log_table.shape
    states, num_values = alpha_l.shape[0], alpha_l.shape[1]
    low = vocab ** max(order - 1, 0)

    def one(key_i, total):
        # final (s_L, c_L) with a_L + f(s_L) = total
        a_l = total - final  # (S,)
        lw = jnp.take_along_axis(alpha_l, jnp.clip(a_l, 0, num_values - 1)[:, None, None], axis=1)[:, 0, :]
        lw = jnp.where((a_l >= 0)[:, None], lw, -jnp.inf).reshape(-1)  # (S*C,)
        j = _pick(jax.random.fold_in(key_i, length), lw)
        s_next, c_next = j // contexts, j % contexts
        a_next = jnp.clip(total - final[s_next], 0, num_values - 1).astype(jnp.int32)

        def step(carry, t):
            s_next, c_next, a_next = carry
            alphas_t, tr_t, inc_t, lt_t = alphas[t], transition[t], increment[t], log_table[t]
            if order == 0:  # options (s, v): a = a' - d(s, v); c = 0
                a = a_next - inc_t  # (S, V)
                ok = (tr_t == s_next) & (a >= 0)
                lw = jnp.take_along_axis(alphas_t[:, :, 0], jnp.clip(a, 0, num_values - 1), axis=1) + lt_t[0][None, :]
                j = _pick(jax.random.fold_in(key_i, t), jnp.where(ok, lw, -jnp.inf).reshape(-1))
                s, v = j // vocab, j % vocab
                return (s.astype(jnp.int32), jnp.zeros((), jnp.int32), a[s, v].astype(jnp.int32)), v
            # order k >= 1: the token is the newest digit of c'; options (s, u), u the oldest digit of c
            v, c_lo = c_next % vocab, c_next // vocab
            d = inc_t[:, v]  # (S,)
            a = a_next - d
            ok = (tr_t[:, v] == s_next) & (a >= 0)  # (S,)
            rows = alphas_t[jnp.arange(states), jnp.clip(a, 0, num_values - 1)]  # (S, C): one row per state
            rows = rows.reshape(states, vocab, low)[:, :, c_lo]  # (S, V): c = u V^{k-1} + c_lo
            trans = lt_t.reshape(vocab, low, vocab)[:, c_lo, v]  # (V,): π_t(v | c)
            lw = jnp.where(ok[:, None], rows + trans[None, :], -jnp.inf).reshape(-1)
            j = _pick(jax.random.fold_in(key_i, t), lw)
            s, u = j // vocab, j % vocab
            return (s.astype(jnp.int32), (u * low + c_lo).astype(jnp.int32), a[s].astype(jnp.int32)), v

        _, toks = jax.lax.scan(step, (s_next, c_next, a_next), jnp.arange(length - 1, -1, -1))
        return jnp.flip(toks)

    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(totals.shape[0]))
    return jax.vmap(one)(keys, totals).astype(jnp.int32)


def _lifted_sampler_setup(policy: Any, reward: Any):
    log_table, order = tabular_table(policy)
    length, contexts, vocab = log_table.shape
    aut = reward_automaton(reward, vocab, length)
    num_values = aut.num_values
    check_state_size(aut.num_states, num_values, contexts, length, what="exact sequence sampling")
    tables = (jnp.asarray(aut.transition), jnp.asarray(aut.increment, jnp.int32), jnp.asarray(aut.final, jnp.int32))
    alpha_l, alphas = forward_messages(log_table, *tables[:2], num_values=num_values, order=order, history=True)
    log_mass = final_log_masses(alpha_l, tables[2])
    keep = np.flatnonzero(reachable_values(aut, num_values))
    log_probs = np.asarray(log_mass)[keep]
    keep = keep[np.isfinite(log_probs)]  # the levels of reward_distribution(policy, reward), in order
    return log_table, order, tables, alphas, alpha_l, log_mass, jnp.asarray(keep, jnp.int32)


@validation.validate(
    key=validation.prng_key,
    policy=validation.policy,
    reward=validation.reward,
    level_log_probs=validation.log_densities,
    num_samples=validation.kind(validation.static_int, minimum=0),
)
def sample_sequences_given_level_law(
    key: jax.Array, policy: Any, reward: Any, level_log_probs: jax.Array, num_samples: int
) -> jax.Array:
    r"""Exact draws of the level-constant method whose law on reward levels is ``exp(level_log_probs)``.

    ``Y = y`` with probability :math:`\pi^R(R(y))\, p(y) / m(R(y))`: a level from ``level_log_probs``, then a
    sequence given its level by backward sampling (module docstring; docs/theory.md §8.4).

    Args:
      key: PRNG key.
      policy: the reference policy p (tabular, any order).
      reward: a liftable reward (see :func:`~bontheory.lifted.reward_distribution`).
      level_log_probs: ``float[K]``: log-probabilities of the levels ``reward_distribution(policy, reward).values``
        (in that order; unnormalised is fine). E.g. soft BoN:
        ``jnp.log(soft_bon_pmf(jnp.exp(law.log_probs), law.values, n, temperature))``; quantile truncation:
        ``jnp.log(quantile_truncated_pmf(jnp.exp(law.log_probs), law.values, m))``; χ²-pessimism:
        ``jnp.log(chi2_pessimism_pmf(jnp.exp(law.log_probs), law.values, beta))``; the tilt:
        ``law.log_probs + law.values / beta``.
      num_samples: N (static).

    Returns:
      ``int32[N, L]``.
    """
    log_table, order, tables, alphas, alpha_l, _, keep = _lifted_sampler_setup(policy, reward)
    level_log_probs = jnp.asarray(level_log_probs)
    if level_log_probs.shape != keep.shape:
        raise ValueError(
            f"level_log_probs must have shape {tuple(keep.shape)} (one entry per value of "
            f"reward_distribution(policy, reward)), got {level_log_probs.shape}"
        )
    kl, ks = jax.random.split(key)
    levels = jax.random.categorical(kl, level_log_probs, shape=(num_samples,))
    return backward_sample(ks, alphas, alpha_l, log_table, *tables, keep[levels], order=order)


@validation.validate(
    key=validation.prng_key,
    policy=validation.policy,
    reward=validation.reward,
    n=validation.sample_size,
    num_samples=validation.kind(validation.static_int, minimum=0),
)
def bon_sample_sequences_exact(key: jax.Array, policy: Any, reward: Any, n: Any, num_samples: int) -> jax.Array:
    r"""Exact best-of-n draws of whole sequences, at a cost flat in n (docs/theory.md §1.6, §8.4).

    The level of the best of n draws is drawn by the :math:`U^{1/n}` inverse-CDF trick on the level CDF of
    ``reward_distribution(policy, reward)`` (``log U = −E``, E ~ Exp(1), compared with ``n log F`` in log space, so
    n = 10^6 and levels of mass 1e-300 are exact), then a sequence given that level by backward sampling.

    Args:
      key: PRNG key.
      policy: the reference policy p (tabular, any order).
      reward: a liftable reward.
      n: BoN sample size (>= 1; a scalar).
      num_samples: N (static).

    Returns:
      ``int32[N, L]``, i.i.d. draws of :math:`\pi_n`.
    """
    log_table, order, tables, alphas, alpha_l, log_mass, keep = _lifted_sampler_setup(policy, reward)
    log_cdf, _ = level_log_cdfs(log_mass[keep])
    kl, ks = jax.random.split(key)
    threshold = -jax.random.exponential(kl, (num_samples,), log_cdf.dtype) / jnp.asarray(n, log_cdf.dtype)
    levels = jnp.minimum(jnp.searchsorted(log_cdf, threshold, side="left"), keep.shape[0] - 1)
    return backward_sample(ks, alphas, alpha_l, log_table, *tables, keep[levels], order=order)
