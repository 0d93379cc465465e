"""Monte Carlo Best-of-N kernels: draw n candidates per trial, score them, select the best.

Per trial ``i`` the kernel draws ``n`` i.i.d. sequences ``Y_1..Y_n ~ π`` from a policy, scores them and
returns a draw of maximal score, ties broken uniformly at random among the tied draws (docs/theory.md §1.2)::

    Ŷ = Y_J,   J ~ Uniform{ j : s(Y_j) = max_k s(Y_k) }.

With the default score ``s = r`` this is plain BoN, whose law is ``π_n(y) = p(y)/m(y) (F(y)ⁿ − F⁻(y)ⁿ)``.

Memory is bounded whatever ``n``: candidates are processed in chunks of ``chunk_size`` inside a
``lax.scan`` that keeps a running maximum. The uniform tie-break across chunks is a lexicographic maximum
of ``(score, u)`` where ``u`` is a fresh random 31-bit integer per candidate, so among all tied candidates
the one with the largest ``u`` wins — a uniform choice (up to collisions of the 31-bit ``u`` at the top,
probability ≤ k²/2³² for k tied candidates). Trials are mapped with ``lax.map`` in batches of
``trial_batch`` (vectorised inside a batch), so one step holds ``trial_batch × chunk_size`` candidates.

Keys: trial ``i`` uses ``fold_in(key, i)`` with ``i`` its **global** trial index, and chunk ``c`` of that
trial uses ``fold_in(fold_in(key, i), c)``. Results therefore do not depend on how the trial axis is
batched or sharded across devices and processes (see :mod:`bontheory.mc.distributed`), and
:func:`bon_monte_carlo` and :func:`bon_candidates` called with the same key and ``chunk_size`` see the same
candidates. Changing ``chunk_size`` changes the draws but not their law.

Under ``jit`` (``n``, ``num_trials``, ``chunk_size``, ``trial_batch`` and ``scorer`` are static) nothing about
reward values is checked: NaN scores make the selection undefined.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from bontheory import validation
from bontheory.rewards.reward import as_reward

Scorer = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]

# Candidates held at once per step (trial_batch × chunk_size) when trial_batch is not given.
_DEFAULT_STEP_CANDIDATES = 1 << 15
_DEFAULT_CHUNK = 1024


class BoNDraws(NamedTuple):
    """Selected candidates of a Monte Carlo BoN run (leading axis: trials ``T``).

    Attributes:
        sequences: ``int32[T, L]`` the selected sequence of each trial.
        rewards: ``float[T]`` its reward ``r(Ŷ)``.
        log_probs: ``float[T]`` its log-probability under the sampling policy ``log π(Ŷ)``.
        scores: ``float[T]`` its score (equal to ``rewards`` for plain BoN).
        num_tied: ``int32[T]`` how many of the ``n`` candidates attained the maximal score (1 = no tie).
        index: ``int32[T]`` position ``J ∈ [0, n)`` of the selected candidate among the trial's n draws (the
            candidates of :func:`bon_candidates` with the same key and chunk size).
    """

    sequences: Int[Array, "T L"]
    rewards: Float[Array, " T"]
    log_probs: Float[Array, " T"]
    scores: Float[Array, " T"]
    num_tied: Int[Array, " T"]
    index: Int[Array, " T"]


class BoNCandidates(NamedTuple):
    """All ``n`` candidates of each trial (for selection rules that need the whole set).

    Attributes:
        rewards: ``float[T, n]``.
        log_probs: ``float[T, n]`` log-probabilities under the sampling policy.
        sequences: ``int32[T, n, L]`` or ``None`` (only with ``return_sequences=True``).
    """

    rewards: Float[Array, "T n"]
    log_probs: Float[Array, "T n"]
    sequences: Int[Array, "T n L"] | None


@validation.validate(key=validation.prng_key, rewards=validation.rewards, log_probs=validation.log_densities)
def reward_scorer(key: jax.Array, rewards: jax.Array, log_probs: jax.Array) -> jax.Array:
    """Plain BoN score ``s(y) = r(y)`` (the default)."""
    del key, log_probs
    return rewards


@dataclasses.dataclass(frozen=True)
class _SoftBoNScorer:
    temperature: float

    def __call__(self, key, rewards, log_probs):
        del log_probs
        g = jax.random.gumbel(key, rewards.shape, dtype=rewards.dtype)
        return rewards / self.temperature + g


@dataclasses.dataclass(frozen=True)
class _RegularizedBoNScorer:
    beta: float

    def __call__(self, key, rewards, log_probs):
        del key
        return rewards + self.beta * log_probs


@validation.validate(temperature=validation.positive)
def soft_bon_scorer(temperature: float) -> Scorer:
    """Soft BoN score ``s(y) = r(y)/λ + G``, ``G ~ Gumbel(0, 1)`` i.i.d. per candidate.

    The argmax of ``r/λ + G`` over the n candidates picks candidate j with probability
    ``softmax(r/λ)_j`` (Gumbel-max trick), i.e. soft BoN (Verdun et al., arXiv 2505.03156). The scorer is
    a frozen dataclass: equal temperatures compare equal, so the jitted kernel is not recompiled.

    Args:
        temperature: λ > 0. λ → 0 is plain BoN, λ → ∞ is the reference policy.
    """
    return _SoftBoNScorer(float(temperature))


@validation.validate(beta=validation.finite)
def regularized_bon_scorer(beta: float) -> Scorer:
    """Regularised BoN score ``s(y) = r(y) + β log π(y)`` (β = 0 is plain BoN).

    Args:
        beta: weight of the log-probability term (finite real).
    """
    return _RegularizedBoNScorer(float(beta))


#: The argument kinds of the kernels' public entry points (:func:`bon_monte_carlo`, :func:`bon_candidates`,
#: :func:`bontheory.mc.sharded_bon_monte_carlo`).
validate_kernel_inputs = validation.validate(
    key=validation.prng_key, policy=validation.policy, reward=validation.reward, n=validation.static_int,
    num_trials=validation.static_int, chunk_size=validation.static_int, trial_batch=validation.static_int,
)


def kernel_sizes(n: int, num_trials: int, chunk_size: int | None, trial_batch: int | None) -> tuple[int, int]:
    """The chunk size and trial batch the kernels use (validated sizes in; ``None`` = the defaults)."""
    chunk = min(n, _DEFAULT_CHUNK if chunk_size is None else chunk_size)
    batch = max(1, _DEFAULT_STEP_CANDIDATES // chunk) if trial_batch is None else trial_batch
    return chunk, min(batch, num_trials)


def _score_chunk(chunk_key, policy, reward, scorer, chunk):
    """Draw and score one chunk of candidates: ``(seqs int32[c, L], r float[c], s float[c], u uint32[c])``."""
    k_sample, k_score, k_tie = jax.random.split(chunk_key, 3)
    seqs = policy.sample(k_sample, chunk)
    r = reward(seqs)
    if r.shape != (chunk,):
        raise ValueError(f"reward must map int[num, L] to float[num], got shape {r.shape} for num = {chunk}")
    if scorer is None:
        s = r
    else:
        s = scorer(k_score, r, policy.log_prob(seqs))
        if s.shape != (chunk,):
            raise ValueError(f"scorer must return float[num] scores, got shape {s.shape} for num = {chunk}")
    # 31 random bits + 1: a valid candidate's tie-break key is >= 1, a padded (invalid) one gets 0.
    u = (jax.random.bits(k_tie, (chunk,), jnp.uint32) >> 1) + jnp.uint32(1)
    return seqs, r, s, u


def _select_one_trial(trial_key, policy, reward, n, chunk, scorer) -> BoNDraws:
    num_chunks = -(-n // chunk)
    spec = jax.eval_shape(lambda k: _score_chunk(k, policy, reward, scorer, chunk), trial_key)
    seq_spec, r_spec, s_spec = spec[0], spec[1], spec[2]
    length = seq_spec.shape[-1]

    def step(carry, c):
        best_s, best_u, best_seq, best_r, tied, best_j = carry
        seqs, r, s, u = _score_chunk(jax.random.fold_in(trial_key, c), policy, reward, scorer, chunk)
        valid = c * chunk + jnp.arange(chunk) < n
        m = jnp.max(jnp.where(valid, s, -jnp.inf))
        at_max = valid & (s == m)
        u = jnp.where(at_max, u, jnp.uint32(0))
        j = jnp.argmax(u)
        u_c = u[j]
        cnt = jnp.sum(at_max, dtype=jnp.int32)
        take = (m > best_s) | ((m == best_s) & (u_c > best_u))
        tied = jnp.where(m > best_s, cnt, jnp.where(m == best_s, tied + cnt, tied))
        new = (
            jnp.where(take, m, best_s),
            jnp.where(take, u_c, best_u),
            jnp.where(take, seqs[j], best_seq),
            jnp.where(take, r[j], best_r),
            tied,
            jnp.where(take, (c * chunk + j).astype(jnp.int32), best_j),
        )
        return new, None

    init = (
        jnp.full((), -jnp.inf, s_spec.dtype),
        jnp.zeros((), jnp.uint32),
        jnp.zeros((length,), seq_spec.dtype),
        jnp.zeros((), r_spec.dtype),
        jnp.zeros((), jnp.int32),
        jnp.zeros((), jnp.int32),
    )
    (best_s, _, best_seq, best_r, tied, best_j), _ = jax.lax.scan(step, init, jnp.arange(num_chunks))
    return best_seq, best_r, best_s, tied, best_j


def _candidates_one_trial(trial_key, policy, reward, n, chunk, return_sequences):
    num_chunks = -(-n // chunk)

    def step(_, c):
        seqs, r, _, _ = _score_chunk(jax.random.fold_in(trial_key, c), policy, reward, None, chunk)
        lp = policy.log_prob(seqs)
        out = (r, lp, seqs) if return_sequences else (r, lp)
        return None, out

    _, outs = jax.lax.scan(step, None, jnp.arange(num_chunks))
    outs = tuple(o.reshape((num_chunks * chunk,) + o.shape[2:])[:n] for o in outs)
    return outs


def _map_in_batches(fn, trial_indices, trial_batch):
    """``lax.map`` of ``vmap(fn)`` over batches of trials; the last batch is padded with extra trial indices
    (computed, then dropped), so there is no separately compiled remainder."""
    t = trial_indices.shape[0]
    b = min(trial_batch, t)
    nb = -(-t // b)
    pad = nb * b - t
    idx = trial_indices
    if pad:
        idx = jnp.concatenate([idx, idx[-1] + 1 + jnp.arange(pad, dtype=idx.dtype)])
    out = jax.lax.map(jax.vmap(fn), idx.reshape(nb, b))
    return jax.tree.map(lambda x: x.reshape((nb * b,) + x.shape[2:])[:t], out)


# the per-device bodies of the sharded kernels take the same arguments, checked the same way
_trial_inputs = validation.validate(
    key=validation.prng_key,
    trial_indices=validation.kind(validation.array, ndim=1, integer=True, min_value=0),
    policy=validation.policy,
    reward=validation.reward,
    n=validation.static_int,
    chunk_size=validation.static_int,
    trial_batch=validation.static_int,
)


@_trial_inputs
def bon_trials(key, trial_indices, policy, reward, *, n, chunk_size, trial_batch, scorer=None) -> BoNDraws:
    """BoN selection for the given global trial indices (the per-device body of the sharded kernel).

    Not jitted: call it inside ``jit``/``shard_map``. Trial ``i`` uses key ``fold_in(key, i)``.

    Args:
        key: PRNG key.
        trial_indices: ``int[T]`` global trial indices.
        policy, reward, n, chunk_size, trial_batch, scorer: as in :func:`bon_monte_carlo`
            (sizes already validated, ``chunk_size <= n``).

    Returns:
        :class:`BoNDraws` with leading axis ``T``.
    """

    def one(i):
        return _select_one_trial(jax.random.fold_in(key, i), policy, reward, n, chunk_size, scorer)

    seqs, r, s, tied, idx = _map_in_batches(one, trial_indices, trial_batch)
    log_probs = policy.log_prob(seqs)
    return BoNDraws(sequences=seqs, rewards=r, log_probs=log_probs, scores=s, num_tied=tied, index=idx)


@_trial_inputs
def candidate_trials(key, trial_indices, policy, reward, *, n, chunk_size, trial_batch, return_sequences=False):
    """All candidates for the given global trial indices (body of :func:`bon_candidates`); not jitted."""

    def one(i):
        return _candidates_one_trial(jax.random.fold_in(key, i), policy, reward, n, chunk_size, return_sequences)

    outs = _map_in_batches(one, trial_indices, trial_batch)
    return BoNCandidates(rewards=outs[0], log_probs=outs[1], sequences=outs[2] if return_sequences else None)


@functools.partial(jax.jit, static_argnames=("n", "num_trials", "chunk_size", "trial_batch", "scorer"))
def _bon_monte_carlo(key, policy, reward, *, n, num_trials, chunk_size, trial_batch, scorer):
    return bon_trials(
        key,
        jnp.arange(num_trials),
        policy,
        reward,
        n=n,
        chunk_size=chunk_size,
        trial_batch=trial_batch,
        scorer=scorer,
    )


@functools.partial(jax.jit, static_argnames=("n", "num_trials", "chunk_size", "trial_batch", "return_sequences"))
def _bon_candidates(key, policy, reward, *, n, num_trials, chunk_size, trial_batch, return_sequences):
    return candidate_trials(
        key,
        jnp.arange(num_trials),
        policy,
        reward,
        n=n,
        chunk_size=chunk_size,
        trial_batch=trial_batch,
        return_sequences=return_sequences,
    )


@validate_kernel_inputs
def bon_monte_carlo(
    key: jax.Array,
    policy: Any,
    reward: Callable[[jax.Array], jax.Array],
    n: int,
    num_trials: int,
    *,
    chunk_size: int | None = None,
    trial_batch: int | None = None,
    scorer: Scorer | None = None,
) -> BoNDraws:
    """Monte Carlo Best-of-n: per trial draw n sequences from ``policy``, return the best-scoring one.

    Selection (uniform tie-break among maximal scores)::

        Ŷ = Y_J,  J ~ Uniform argmax_j s_j,  s = scorer(key, r(Y_{1..n}), log π(Y_{1..n})),

    so with the default score ``s = r`` the selected sequences are i.i.d. draws of the BoN policy
    ``π_n(y) = p(y)/m(y) (F(y)ⁿ − F⁻(y)ⁿ)`` (docs/theory.md §1.2), p = ``policy``. Memory holds
    ``trial_batch × chunk_size`` candidates at a time (plus the policy's intermediates), whatever ``n``.

    Args:
        key: PRNG key; trial ``i`` uses ``fold_in(key, i)``.
        policy: a :class:`bontheory.policies.Policy` (or any pytree with ``sample(key, num) ->
            int32[num, L]``, ``log_prob(int[..., L]) -> float[...]`` and ``length``).
        reward: a callable ``int[num, L] -> float[num]`` (deterministic): a bontheory reward, or a plain
            function (wrapped by :func:`bontheory.rewards.reward.as_reward`; reuse one function object, a
            new one recompiles).
        n: number of candidates per trial, ``n >= 1`` (static).
        num_trials: number of independent trials T (static).
        chunk_size: candidates per trial processed per scan step (static; default ``min(n, 1024)``).
        trial_batch: trials vectorised per step (static; default ``max(1, 32768 // chunk_size)``).
        scorer: static callable ``scorer(key, rewards float[c], log_probs float[c]) -> float[c]`` acting
            independently on each candidate (so chunking does not change the law), e.g.
            :func:`soft_bon_scorer`, :func:`regularized_bon_scorer`. ``None`` = the reward; then
            per-candidate log-probabilities are never computed. Pass the same callable object each time
            (a new one recompiles).

    Returns:
        :class:`BoNDraws` with leading axis T: selected ``sequences``, ``rewards``, ``log_probs``,
        ``scores`` and ``num_tied``.

    Raises:
        ValueError / TypeError: ``n < 1``, ``num_trials < 1``, bad chunk sizes, a reward or scorer of the
            wrong shape, or a policy without the Policy interface.
    """
    chunk, batch = kernel_sizes(n, num_trials, chunk_size, trial_batch)
    reward = as_reward(reward)
    return _bon_monte_carlo(
        key, policy, reward, n=n, num_trials=num_trials, chunk_size=chunk, trial_batch=batch, scorer=scorer
    )


@validate_kernel_inputs
def bon_candidates(
    key: jax.Array,
    policy: Any,
    reward: Callable[[jax.Array], jax.Array],
    n: int,
    num_trials: int,
    *,
    chunk_size: int | None = None,
    trial_batch: int | None = None,
    return_sequences: bool = False,
) -> BoNCandidates:
    """All n candidates' rewards and log-probabilities per trial (for rules that need the whole set).

    Draws exactly the candidates :func:`bon_monte_carlo` sees with the same ``key`` and ``chunk_size``
    (so ``bon_monte_carlo(...).rewards == bon_candidates(...).rewards.max(-1)``). The output is
    ``T × n`` (× L with sequences): size it to memory.

    Args:
        key, policy, reward, n, num_trials, chunk_size, trial_batch: as in :func:`bon_monte_carlo`.
        return_sequences: also return the candidates ``int32[T, n, L]`` (static).

    Returns:
        :class:`BoNCandidates` (``rewards`` and ``log_probs`` of shape ``(T, n)``).
    """
    chunk, batch = kernel_sizes(n, num_trials, chunk_size, trial_batch)
    reward = as_reward(reward)
    return _bon_candidates(
        key,
        policy,
        reward,
        n=n,
        num_trials=num_trials,
        chunk_size=chunk,
        trial_batch=batch,
        return_sequences=bool(return_sequences),
    )
