r"""The tilted optimum on long sequences: a policy whose sequence law is exactly p(y) e^{R(y)/β} / Z.

See docs/theory.md §8.5.

The tilt factorises over the automaton's steps, so it needs no partial reward: with ``λ = g/β`` (g the reward's
scale) the backward recursion in log space

.. math::
    \Lambda_L(c, s) = \lambda f(s),\qquad
    \Lambda_t(c, s) = \log \sum_v \pi_t(v \mid c)\,
        e^{\lambda d_t(s, v) + \Lambda_{t+1}(\mathrm{next}(c, v),\, \delta_t(s, v))}

gives the tilted next-token law
:math:`\pi_\beta(v \mid c, s) = \pi_t(v \mid c)\, e^{\lambda d_t(s, v) + \Lambda_{t+1}(\cdot) - \Lambda_t(c, s)}` and
:math:`\log Z_\beta = \Lambda_0(0, 0) + g o / \beta`.

**Representation chosen.** The tilted policy conditions on the token context *and* the automaton state. When the
reward's automaton has one state (token counts, token scores) that is a ``TabularPolicy`` of the reference's own
order, and it is returned as one (every tabular tool applies). Otherwise it is an :class:`AutomatonPolicy`: a
tabular policy over (position, context, automaton state) implementing the ``Policy`` interface, whose state is
recomputed from the tokens by the automaton's transition table.

The reward–KL frontier on long sequences needs only the reward law m: the tilted level law is
:math:`m(\rho) e^{\rho/\beta} / Z_\beta`, :math:`\mathrm{KL}(\pi_\beta \| p) = E_{\pi_\beta}[R]/\beta - \log Z_\beta`
(:func:`lifted_reward_kl_frontier`).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from bontheory import validation
from bontheory.exact.tilted import Frontier
from bontheory.lifted.automaton import reward_automaton
from bontheory.lifted.distribution import check_state_size, lse, reward_distribution, tabular_table
from bontheory.policies.policy import check_sequences
from bontheory.policies.tabular import context_index, tabular_policy_from_logits


def next_context(vocab: int, order: int) -> jax.Array:
    """``int32[C, V]``: the context after token v in context c (``v + V (c mod V^{k-1})``; 0 for k = 0)."""
    if order == 0:
        return jnp.zeros((1, vocab), jnp.int32)
    low = vocab ** (order - 1)
    c = jnp.arange(vocab**order, dtype=jnp.int32)
    return (c[:, None] % low) * vocab + jnp.arange(vocab, dtype=jnp.int32)[None, :]


@functools.partial(jax.jit, static_argnames=("order",))
def tilted_logits(log_table, transition, increment, final, strength, *, order: int):
    """Backward recursion of the tilt ``∝ π e^{strength · Σ d + f}``.

    Returns ``(logits float[L, C, S, V], Λ_0 float[C, S])``.
    """
    _, contexts, vocab = log_table.shape
    nxt = next_context(vocab, order)  # (C, V)
    lam_l = jnp.broadcast_to(strength * final.astype(log_table.dtype), (contexts, final.shape[0]))

    def step(lam_next, xs):
        lp_t, tr_t, inc_t = xs  # (C, V), (S, V), (S, V)
        future = lam_next[nxt[:, None, :], tr_t[None, :, :]]  # (C, S, V)
        logits = lp_t[:, None, :] + strength * inc_t[None, :, :].astype(lp_t.dtype) + future
        return lse(logits, axis=2), logits

    lam0, logits = jax.lax.scan(step, lam_l, (log_table, transition, increment), reverse=True)
    return logits, lam0


@flax.struct.dataclass
class AutomatonPolicy:
    """A tabular policy whose next-token law depends on (position, last k tokens, automaton state).

    ``π(y_t = v | y_{<t}) = softmax(logits[t, c_t, s_t])[v]`` with ``c_t`` the order-k context (as in
    ``TabularPolicy``) and ``s_{t+1} = transition[t, s_t, y_t]``, ``s_0 = 0``. Implements the ``Policy``
    interface (a pytree: ``logits`` and ``transition`` are leaves).

    Attributes:
      logits: ``float[L, V**k, S, V]``.
      transition: ``int32[L, S, V]``.
      vocab_size: V (static); length: L (static); order: k (static).
    """

    logits: jax.Array
    transition: jax.Array
    vocab_size: int = flax.struct.field(pytree_node=False)
    length: int = flax.struct.field(pytree_node=False)
    order: int = flax.struct.field(pytree_node=False)

    def __post_init__(self):  # static fields only (never tracers)
        validation.static_int(self.vocab_size, "vocab_size")
        validation.static_int(self.length, "length")
        validation.static_int(self.order, "order", minimum=0)

    def states(self, tokens: jax.Array) -> jax.Array:
        """Automaton states ``s_t`` before each token, ``int[B, L] -> int32[B, L]``."""

        def step(s, xs):
            tr_t, y_t = xs
            return tr_t[s, y_t], s

        init = jnp.zeros(tokens.shape[:1], jnp.int32)
        _, s = jax.lax.scan(step, init, (self.transition, tokens.T.astype(jnp.int32)))
        return s.T

    def next_token_log_probs(self, tokens: jax.Array) -> jax.Array:
        """``int[B, L] -> float[B, L, V]``: ``log π(· | tokens[:, :t])``."""
        tokens = check_sequences(tokens, self.vocab_size, self.length, "tokens").astype(jnp.int32)
        ctx = context_index(tokens, self.vocab_size, self.order)
        logp = jax.nn.log_softmax(self.logits, axis=-1)
        return logp[jnp.arange(self.length)[None, :], ctx, self.states(tokens)]

    def token_log_probs(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[..., L]``: ``log π(y_t | y_{<t})``."""
        seq = check_sequences(sequences, self.vocab_size, self.length)
        flat = seq.reshape((-1, self.length)).astype(jnp.int32)
        lp = jnp.take_along_axis(self.next_token_log_probs(flat), flat[..., None], axis=-1)[..., 0]
        return lp.reshape(seq.shape[:-1] + (self.length,))

    def log_prob(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``: ``log π(y)``."""
        return jnp.sum(self.token_log_probs(sequences), axis=-1)

    def sample(self, key: jax.Array, num: int) -> jax.Array:
        """``num`` i.i.d. sequences ``int32[num, L]`` (one ``lax.scan`` over positions carrying (context, state))."""
        return _sample_automaton_policy(self, key, int(num))


@functools.partial(jax.jit, static_argnums=2)
def _sample_automaton_policy(policy: AutomatonPolicy, key: jax.Array, num: int) -> jax.Array:
    vocab, k = policy.vocab_size, policy.order
    nxt = next_context(vocab, k)
    logp = jax.nn.log_softmax(policy.logits, axis=-1)
    keys = jax.random.split(key, policy.length)

    def step(carry, xs):
        c, s = carry
        lp_t, tr_t, key_t = xs
        tok = jax.random.categorical(key_t, lp_t[c, s], axis=-1).astype(jnp.int32)
        return (nxt[c, tok], tr_t[s, tok]), tok

    init = (jnp.zeros((num,), jnp.int32), jnp.zeros((num,), jnp.int32))
    _, toks = jax.lax.scan(step, init, (logp, policy.transition, keys))
    return toks.T


@validation.validate(policy=validation.policy, reward=validation.reward, beta=validation.positive)
def tilted_sequence_policy(policy: Any, reward: Any, beta: Any) -> Any:
    r"""The policy whose sequence law is exactly :math:`p(y)\, e^{R(y)/\beta} / Z_\beta` (docs/theory.md §8.5).

    Args:
      policy: the reference p (tabular, any order).
      reward: a liftable reward (its automaton; integer increments are not needed for the tilt, but the reward
        must be one :func:`~bontheory.lifted.reward_automaton` accepts).
      beta: temperature > 0 (a scalar).

    Returns:
      A tabular ``ModulePolicy`` of p's order when the reward's automaton has one state (token counts and
      scores), else an :class:`AutomatonPolicy` (context = last k tokens and automaton state).
    """
    log_table, order = tabular_table(policy)
    length, contexts, vocab = log_table.shape
    aut = reward_automaton(reward, vocab, length)
    check_state_size(aut.num_states, 1, contexts * vocab, length, what="tilted_sequence_policy")
    strength = jnp.asarray(aut.scale, log_table.dtype) / jnp.asarray(beta, log_table.dtype)
    logits, _ = tilted_logits(
        log_table,
        jnp.asarray(aut.transition),
        jnp.asarray(aut.increment, jnp.int32),
        jnp.asarray(aut.final, jnp.int32),
        strength,
        order=order,
    )
    if aut.num_states == 1:
        return tabular_policy_from_logits(logits[:, :, 0, :], policy.module.order)
    return AutomatonPolicy(
        logits=logits, transition=jnp.asarray(aut.transition), vocab_size=vocab, length=length, order=order
    )


@jax.jit
def _frontier_from_law(values: jax.Array, log_probs: jax.Array, betas: jax.Array) -> Frontier:
    shape = betas.shape + values.shape
    logits = jnp.broadcast_to(log_probs, shape) + jnp.broadcast_to(values, shape) / betas[..., None]
    log_z = jax.nn.logsumexp(logits, axis=-1)
    q = jnp.exp(logits - log_z[..., None])
    value = jnp.sum(q * jnp.broadcast_to(values, shape), axis=-1)
    return Frontier(kl=jnp.maximum(value / betas - log_z, 0.0), value=value)


@validation.validate(policy=validation.policy, reward=validation.reward, betas=validation.positive)
def lifted_reward_kl_frontier(policy: Any, reward: Any, betas: Any) -> Frontier:
    r"""The optimal reward–KL frontier on sequences.

    :math:`\beta \mapsto (\mathrm{KL}(\pi_\beta\|p), E_{\pi_\beta}[R])`.

    From the reward law m of :func:`~bontheory.lifted.reward_distribution`, in log space (levels of mass far
    below 1e-300 carry the tilt at small β): :math:`\pi^R_\beta \propto m\, e^{\rho/\beta}`,
    :math:`\mathrm{KL} = E_{\pi_\beta}[R]/\beta - \log Z_\beta`.

    Args:
      policy: the reference p (tabular); reward: a liftable reward; betas: temperatures > 0, any shape.

    Returns:
      :class:`~bontheory.exact.tilted.Frontier` ``(kl, value)``, each of ``betas``' shape.
    """
    law = reward_distribution(policy, reward)
    betas = jnp.asarray(betas, law.log_probs.dtype)
    return _frontier_from_law(law.values, law.log_probs, betas)
