r"""Rewards as finite automata with integer increments: the protocol that makes a reward liftable.

A reward is *liftable* (docs/theory.md §8) when it is computed by a deterministic finite automaton that reads
the tokens left to right and adds an integer at each step:

.. math::
    s_0 = 0,\quad s_{t+1} = \delta_t(s_t, y_t),\qquad
    R(y) = g\,\Big(o + \sum_{t=0}^{L-1} d_t(s_t, y_t) + f(s_L)\Big),

with a transition table :math:`\delta: [L, S, V] \to [0, S)`, per-step increments :math:`d \ge 0`
(``int[L, S, V]``), final increments :math:`f \ge 0` (``int[S]``), an integer offset :math:`o` and a scale
:math:`g > 0`. The partial reward :math:`a_t = \sum_{t' < t} d_{t'}` then lives on ``0 .. A-1`` with
``A = 1 + Σ_t max d_t + max f``, and ``R = g (o + a)``.

:func:`reward_automaton` builds this table for the built-in liftable rewards (``TokenCountReward``,
``TokenScoreReward`` with integer scores, ``PatternReward``, ``PatternCountReward``, ``SumReward`` of these).
A reward of one's own is liftable when it has a method ``lifted_automaton(vocab_size, length)`` returning a
:class:`RewardAutomaton` (increments may be any integers; :func:`normalize_automaton` shifts them). Pattern
rewards use the Knuth–Morris–Pratt automaton of the pattern (:func:`pattern_automaton`); sums use the product
automaton, on the common lattice of the terms' scales.

Everything here is NumPy on concrete values: the automaton is built once, outside ``jit``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, NamedTuple

import jax
import numpy as np

from bontheory import validation
from bontheory.rewards.toy import (
    PatternCountReward,
    PatternReward,
    SumReward,
    TokenCountReward,
    TokenScoreReward,
)

#: Where to go when a reward cannot be lifted.
ALTERNATIVES = (
    "use enumerate_sequences with the exact functions (spaces up to V**L = 2**25 sequences) or bon_monte_carlo"
)


class RewardAutomaton(NamedTuple):
    """A reward as a finite automaton with integer increments (see the module docstring).

    Attributes:
      transition: ``int32[L, S, V]``: next state ``δ_t(s, v)``; the start state is 0.
      increment: ``int64[L, S, V]``: ``d_t(s, v)``, >= 0 after :func:`normalize_automaton`.
      final: ``int64[S]``: ``f(s)`` added at the end, >= 0 after normalisation.
      offset: integer ``o``.
      scale: ``g > 0``; the reward is ``g (o + a)``.
    """

    transition: np.ndarray
    increment: np.ndarray
    final: np.ndarray
    offset: int
    scale: float

    @property
    def num_states(self) -> int:
        return int(self.transition.shape[1])

    @property
    def num_values(self) -> int:
        """A: the size of the partial-reward axis, ``1 + max_y (Σ_t d_t + f)`` (a max-plus pass over the states)."""
        return max_partial_reward(self) + 1

    def values(self, num_values: int | None = None) -> np.ndarray:
        """``float64[A]``: the reward ``g (o + a)`` of each partial-reward index a (``num_values``: A if known)."""
        a_ = self.num_values if num_values is None else int(num_values)
        return self.scale * (self.offset + np.arange(a_, dtype=np.float64))


def max_partial_reward(automaton: RewardAutomaton) -> int:
    """``max_y Σ_t d_t(s_t, y_t) + f(s_L)`` by a max-plus recursion over the automaton states."""
    tr, inc, fin = automaton.transition, np.asarray(automaton.increment, np.int64), automaton.final
    length, states, _ = tr.shape
    best = np.full(states, -1, np.int64)  # -1: unreachable (increments are >= 0 once normalised)
    best[0] = 0
    for t in range(length):
        cand = np.where(best[:, None] >= 0, best[:, None] + inc[t], -1)
        new = np.full(states, -1, np.int64)
        np.maximum.at(new, tr[t].ravel(), cand.ravel())
        best = new
    return int(np.max(np.where(best >= 0, best + np.asarray(fin, np.int64), -1)))


class NotLiftableError(TypeError):
    """The reward (or policy) is not a finite automaton with integer increments (a ``TypeError``)."""


def normalize_automaton(automaton: RewardAutomaton) -> RewardAutomaton:
    """Shifts integer increments to be >= 0 (per position and for the final table) into the offset,
    and a negative scale into the increments' sign, so that the partial reward runs over ``0 .. A-1``."""
    tr, inc, fin, off, scale = automaton
    inc = np.asarray(inc, np.int64)
    fin = np.asarray(fin, np.int64)
    if scale < 0:
        inc, fin, off, scale = -inc, -fin, -int(off), -scale
    low = np.min(inc, axis=(1, 2), keepdims=True)
    inc = inc - low
    fmin = int(np.min(fin))
    return RewardAutomaton(
        transition=np.asarray(tr, np.int32),
        increment=inc,
        final=fin - fmin,
        offset=int(off) + int(np.sum(low)) + fmin,
        scale=float(scale),
    )


def constant_automaton(vocab_size: int, length: int, value_index: int = 0, scale: float = 1.0) -> RewardAutomaton:
    """One state, no increments: the constant reward ``scale · value_index``."""
    zeros = np.zeros((length, 1, vocab_size), np.int64)
    return RewardAutomaton(zeros.astype(np.int32), zeros, np.zeros((1,), np.int64), int(value_index), float(scale))


def pattern_automaton(pattern: tuple, vocab_size: int, length: int, *, count: bool) -> RewardAutomaton:
    """The Knuth–Morris–Pratt automaton of ``pattern`` (states 0..m = length of the matched prefix).

    ``count=False``: state m is absorbing and entering it adds 1 (the pattern is present or not).
    ``count=True``: from state m the automaton continues as from the pattern's longest proper border, and each
    entry into state m adds 1 (overlapping occurrences are counted). Scale 1, offset 0.
    """
    pat = tuple(int(v) for v in pattern)
    m = len(pat)
    if m < 1:
        raise ValueError("pattern must hold at least one token")
    if min(pat) < 0 or max(pat) >= vocab_size:  # a token outside the vocabulary never occurs
        return constant_automaton(vocab_size, length)
    dfa = np.zeros((m + 1, vocab_size), np.int32)
    dfa[0, pat[0]] = 1
    restart = 0
    for j in range(1, m):
        dfa[j] = dfa[restart]
        dfa[j, pat[j]] = j + 1
        restart = dfa[restart, pat[j]]
    if count:
        dfa[m] = dfa[restart]
    else:
        dfa[m] = m
    inc = np.zeros((m + 1, vocab_size), np.int64)
    entering = dfa == m
    if count:
        inc[entering] = 1
    else:
        inc[:m][entering[:m]] = 1
    tr = np.broadcast_to(dfa, (length, m + 1, vocab_size)).copy()
    inc = np.broadcast_to(inc, (length, m + 1, vocab_size)).copy()
    return RewardAutomaton(tr, inc, np.zeros((m + 1,), np.int64), 0, 1.0)


def _integer_scores(scores: Any, vocab_size: int, length: int) -> np.ndarray:
    if isinstance(scores, jax.core.Tracer):
        raise NotLiftableError(
            "TokenScoreReward.scores are traced (inside jit/grad): the automaton is built from concrete scores; "
            "pass the reward as a concrete value (it is not differentiated)"
        )
    s = np.asarray(scores, np.float64)
    if s.shape != (length, vocab_size):
        raise ValueError(f"TokenScoreReward.scores must have shape (L, V) = ({length}, {vocab_size}), got {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("TokenScoreReward.scores must be finite to be lifted")
    bad = np.flatnonzero(s != np.round(s))
    if bad.size:
        t, v = np.unravel_index(bad[0], s.shape)
        raise NotLiftableError(
            f"TokenScoreReward with non-integer scores cannot be lifted (scores[{t}, {v}] = {s[t, v]!r}): the "
            "reward must live on an integer lattice; scale the scores to integers (then divide the values), or "
            + ALTERNATIVES
        )
    return s.astype(np.int64)


def _common_scale(scales: list[float]) -> tuple[float, list[int]]:
    """A scale g > 0 and integers k_i with ``scales[i] = k_i g`` (commensurate scales), else an error."""
    fracs = []
    for s in scales:
        f = Fraction(s).limit_denominator(10**6)
        if not math.isclose(float(f), s, rel_tol=1e-12, abs_tol=0.0):
            raise NotLiftableError(
                f"the terms' scales {scales} are not commensurate (no common lattice): the sum is not an integer "
                "automaton; " + ALTERNATIVES
            )
        fracs.append(f)
    num = math.gcd(*(f.numerator for f in fracs))
    den = math.lcm(*(f.denominator for f in fracs))
    g = Fraction(num, den)
    ks = [int(f / g) for f in fracs]
    return float(g), ks


def product_automaton(automata: list[RewardAutomaton]) -> RewardAutomaton:
    """The automaton of the sum of the terms' rewards: product states, increments on the common lattice."""
    length, _, vocab = automata[0].transition.shape
    automata = [a for a in automata if a.scale != 0]
    if not automata:
        return constant_automaton(vocab, length)
    g, ks = _common_scale([a.scale for a in automata])
    tr = np.zeros((length, 1, vocab), np.int64)
    inc = np.zeros((length, 1, vocab), np.int64)
    fin = np.zeros((1,), np.int64)
    offset = 0
    for a, k in zip(automata, ks, strict=True):
        s2 = a.num_states
        # new state index: s1 * S2 + s2
        s1n = tr.shape[1]
        tr = (tr[:, :, None, :] * s2 + a.transition[:, None, :, :]).reshape(length, s1n * s2, vocab)
        inc = (inc[:, :, None, :] + k * a.increment[:, None, :, :]).reshape(length, s1n * s2, vocab)
        fin = (fin[:, None] + k * a.final[None, :]).reshape(s1n * s2)
        offset += k * a.offset
    return normalize_automaton(RewardAutomaton(tr.astype(np.int32), inc, fin, offset, g))


@validation.validate(reward=validation.reward, vocab_size=validation.static_int, length=validation.static_int)
def reward_automaton(reward: Any, vocab_size: int, length: int) -> RewardAutomaton:
    """The (normalised) automaton of a liftable reward over sequences of ``length`` tokens from ``vocab_size``.

    Args:
      reward: ``TokenCountReward``, ``TokenScoreReward`` (integer scores), ``PatternReward``,
        ``PatternCountReward``, a ``SumReward`` of these, or any reward with a method
        ``lifted_automaton(vocab_size, length) -> RewardAutomaton``.
      vocab_size: V.
      length: L.

    Returns:
      A :class:`RewardAutomaton` with increments >= 0 and scale > 0.

    Raises:
      NotLiftableError (a ``TypeError``): the reward is not a finite automaton with integer increments
        (hash, palindrome, learned or plain-function rewards, non-integer scores), with the reason.
    """
    v, n = int(vocab_size), int(length)
    own = getattr(reward, "lifted_automaton", None)
    if own is not None:
        return normalize_automaton(own(v, n))
    if isinstance(reward, TokenCountReward):
        if reward.weight == 0:
            return constant_automaton(v, n)
        inc = np.zeros((n, 1, v), np.int64)
        if 0 <= int(reward.target) < v:
            inc[:, :, int(reward.target)] = 1
        return normalize_automaton(
            RewardAutomaton(np.zeros((n, 1, v), np.int32), inc, np.zeros((1,), np.int64), 0, float(reward.weight))
        )
    if isinstance(reward, TokenScoreReward):
        s = _integer_scores(reward.scores, v, n)
        return normalize_automaton(
            RewardAutomaton(np.zeros((n, 1, v), np.int32), s[:, None, :], np.zeros((1,), np.int64), 0, 1.0)
        )
    if isinstance(reward, (PatternReward, PatternCountReward)):
        scale = float(reward.value if isinstance(reward, PatternReward) else reward.weight)
        if scale == 0:
            return constant_automaton(v, n)
        a = pattern_automaton(reward.pattern, v, n, count=isinstance(reward, PatternCountReward))
        return normalize_automaton(a._replace(scale=scale))
    if isinstance(reward, SumReward):
        return product_automaton([reward_automaton(t, v, n) for t in reward.terms])
    raise NotLiftableError(
        f"{type(reward).__name__} cannot be lifted: the reward law under a tabular policy is a dynamic program "
        "only for rewards computed by a finite automaton with integer increments (TokenCountReward, "
        "TokenScoreReward with integer scores, PatternReward, PatternCountReward, SumReward of these, or a reward "
        "with a lifted_automaton method); " + ALTERNATIVES
    )

