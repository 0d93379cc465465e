"""Toy rewards on token sequences: pure, deterministic functions ``int[..., L] -> float[...]``.

Every reward is a ``flax.struct.dataclass`` pytree (arrays are leaves, small settings are static),
so it can be passed into jitted code as an argument and called under ``vmap``. A reward built on
another reward (``QuantizedReward``) also takes a plain function, wrapped by ``as_reward``.
"""

from __future__ import annotations

import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from bontheory import validation
from bontheory.rewards.reward import as_reward


@flax.struct.dataclass
class TokenCountReward:
    """Additive reward with many ties: ``r(y) = weight · #{t : y_t = target}``.

    It takes only L + 1 values, so over V**L sequences almost every reward level is an atom of
    large mass and the folk KL formula ``log n − (n−1)/n`` overestimates visibly.

    Attributes:
        target: the counted token (static).
        weight: multiplier (static).
    """

    target: int = flax.struct.field(pytree_node=False, default=0)
    weight: float = flax.struct.field(pytree_node=False, default=1.0)

    def __post_init__(self):  # static fields only (never tracers)
        validation.static_int(self.target, "target", minimum=0)
        validation.static_number(self.weight, "weight")

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``."""
        seq = validation.sequences(sequences)
        count = jnp.sum(seq == self.target, axis=-1)
        return self.weight * count.astype(jnp.result_type(float))


@flax.struct.dataclass
class TokenScoreReward:
    """Additive per-token scores ``r(y) = Σ_t scores[t, y_t]``.

    With continuous random scores distinct sequences get distinct rewards almost surely (a smooth,
    nearly tie-free reward); with integer scores it has ties.

    Attributes:
        scores: ``float[L, V]`` (leaf).
    """

    scores: jax.Array

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``."""
        length = self.scores.shape[0]
        seq = validation.sequences(sequences, length=length)
        vocab = self.scores.shape[1]
        offsets = (jnp.arange(length, dtype=jnp.int32) * vocab).reshape((1,) * (seq.ndim - 1) + (length,))
        gathered = jnp.take(self.scores.reshape(-1), offsets + seq.astype(jnp.int32))  # scores[t, y_t]
        return jnp.sum(gathered, axis=-1)


@validation.validate(
    key=validation.prng_key,
    vocab_size=validation.static_int,
    length=validation.static_int,
    scale=validation.kind(validation.static_number, minimum=0),
)
def random_token_score_reward(key: jax.Array, vocab_size: int, length: int, scale: float = 1.0) -> TokenScoreReward:
    """``TokenScoreReward`` with i.i.d. ``N(0, scale²)`` scores ``float[L, V]`` (nearly tie-free).

    The same key gives the same reward with or without x64: the normals are drawn in float32, then
    cast to JAX's default float and multiplied by ``scale``.
    """
    if vocab_size < 1 or length < 1:
        raise ValueError(f"vocab_size and length must be >= 1, got V={vocab_size}, L={length}")
    z = jax.random.normal(key, (int(length), int(vocab_size)), jnp.float32).astype(jnp.result_type(float))
    return TokenScoreReward(scores=scale * z)


def pattern_occurrences(sequences: jax.Array, pattern: tuple) -> jax.Array:
    """``int[..., L] -> int32[...]``: the number of (overlapping) contiguous occurrences of ``pattern`` in each row.

    0 when the pattern is longer than L. Shared by :class:`PatternReward` (present: count > 0) and
    :class:`PatternCountReward` (the count).
    """
    seq = validation.sequences(sequences)
    pat = tuple(int(v) for v in pattern)
    if len(pat) < 1:
        raise ValueError("pattern must hold at least one token")
    length, m = seq.shape[-1], len(pat)
    count = jnp.zeros(seq.shape[:-1], jnp.int32)
    target = jnp.asarray(pat, seq.dtype).reshape((1,) * (seq.ndim - 1) + (m,))
    for off in range(length - m + 1):
        count = count + jnp.all(seq[..., off : off + m] == target, axis=-1).astype(jnp.int32)
    return count


@flax.struct.dataclass
class PatternReward:
    """Sequence-level pattern reward: ``r(y) = value`` if ``pattern`` occurs contiguously in y, else 0.

    Two levels only: a tie-heavy reward whose top level can be rare.

    Attributes:
        pattern: tuple of token ids (static), length m >= 1.
        value: reward when present (static).
    """

    pattern: tuple = flax.struct.field(pytree_node=False, default=(0,))
    value: float = flax.struct.field(pytree_node=False, default=1.0)

    def __post_init__(self):  # static fields only (never tracers)
        validation.static_number(self.value, "value")

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]`` (0 when the pattern is longer than L)."""
        found = pattern_occurrences(sequences, self.pattern) > 0
        return self.value * found.astype(jnp.result_type(float))


@flax.struct.dataclass
class PalindromeReward:
    """Palindrome-likeness: ``r(y) = (1/⌊L/2⌋) Σ_{t<⌊L/2⌋} 1[y_t = y_{L-1-t}]`` (1 for L = 1).

    Takes ⌊L/2⌋ + 1 values: many ties.
    """

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``."""
        seq = validation.sequences(sequences)
        half = seq.shape[-1] // 2
        fdt = jnp.result_type(float)
        if half == 0:
            return jnp.ones(seq.shape[:-1], fdt)
        match = seq[..., :half] == jnp.flip(seq, axis=-1)[..., :half]
        return jnp.mean(match.astype(fdt), axis=-1)


@flax.struct.dataclass
class QuantizedReward:
    """A reward rounded down to a grid: ``r(y) = step · ⌊base(y) / step⌋`` (turns any reward tie-heavy).

    Attributes:
        base: any reward pytree.
        step: grid spacing > 0 (static).
    """

    base: object
    step: float = flax.struct.field(pytree_node=False, default=1.0)

    def __post_init__(self):
        validation.static_number(self.step, "step", minimum=0, open_min=True)  # static: never a tracer
        if callable(self.base):  # a plain function becomes a FunctionReward (see as_reward)
            object.__setattr__(self, "base", as_reward(self.base, "base"))

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``."""
        if not self.step > 0:
            raise ValueError(f"step must be > 0, got {self.step}")
        return self.step * jnp.floor(self.base(sequences) / self.step)


@validation.validate(key=validation.prng_key, sequences=validation.sequences)
def sequence_keys(key: jax.Array, sequences: jax.Array) -> jax.Array:
    """One PRNG key per sequence, a fixed injective function of its tokens.

    Tokens are packed two per 32-bit word (ids must be < 2**16) and folded into ``key`` with
    ``jax.random.fold_in``, one word at a time: the same sequence always gets the same key (under
    ``jit`` and ``vmap`` too), and distinct sequences get unrelated keys.

    Args:
        key: base PRNG key (typed).
        sequences: ``int[..., L]``.

    Returns:
        Key array of shape ``sequences.shape[:-1]``.
    """
    seq = validation.sequences(sequences)
    batch_shape, length = seq.shape[:-1], seq.shape[-1]
    return _sequence_keys_flat(key, seq.reshape((-1, length))).reshape(batch_shape)


@jax.jit
def _sequence_keys_flat(key: jax.Array, flat: jax.Array) -> jax.Array:
    flat = flat.astype(jnp.uint32)
    if flat.shape[1] % 2:
        flat = jnp.concatenate([flat, jnp.zeros((flat.shape[0], 1), jnp.uint32)], axis=1)
    words = flat[:, 0::2] * jnp.uint32(65536) + flat[:, 1::2]

    fold = jax.vmap(jax.random.fold_in)

    def step(keys, column):
        return fold(keys, column), None

    init = jax.random.split(key, 1)[jnp.zeros((words.shape[0],), jnp.int32)]  # key broadcast to (N,)
    keys, _ = jax.lax.scan(step, init, words.T)
    return keys


@validation.validate(
    key=validation.prng_key,
    sequences=validation.sequences,
    distribution=validation.kind(validation.one_of, choices=("normal", "uniform", "cauchy", "student_t")),
)
@functools.partial(jax.jit, static_argnames=("distribution", "df", "dtype"))
def hashed_draws(key: jax.Array, sequences: jax.Array, distribution: str, df: float = 1.0, dtype=None) -> jax.Array:
    """One draw per sequence from ``distribution`` under ``sequence_keys(key, sequences)``.

    The same key gives the same draws with or without x64: they are drawn in float32, then cast to
    ``dtype`` (about 2**23 distinct values: about K²/2**24 tied pairs among K sequences).

    Args:
        key: base PRNG key.
        sequences: ``int[..., L]``.
        distribution: ``"normal"``, ``"uniform"``, ``"cauchy"`` or ``"student_t"`` (static).
        df: Student-t degrees of freedom (static).
        dtype: float dtype (default: JAX's default float).

    Returns:
        ``float[...]``: a fixed function of each sequence.
    """
    batch_shape, length = sequences.shape[:-1], sequences.shape[-1]
    keys = _sequence_keys_flat(key, sequences.reshape((-1, length)))
    fdt = jnp.result_type(float) if dtype is None else dtype
    f32 = jnp.float32  # the draw's dtype whatever the precision; cast to fdt afterwards
    if distribution == "normal":
        draw = lambda k: jax.random.normal(k, (), f32)
    elif distribution == "uniform":
        draw = lambda k: jax.random.uniform(k, (), f32)
    elif distribution == "cauchy":
        draw = lambda k: jax.random.cauchy(k, (), f32)
    elif distribution == "student_t":
        draw = lambda k: _student_t(k, df, fdt)
    else:
        raise ValueError(f"unknown distribution {distribution!r}")
    return jax.vmap(draw)(keys).astype(fdt).reshape(batch_shape)


def _student_t(key: jax.Array, df: float, dtype) -> jax.Array:
    """``jax.random.t``'s draw ``n · sqrt((df/2) / g)``, n ~ N(0, 1), g ~ Gamma(df/2), from float32 draws.

    g is drawn as ``log g`` (float32 ``loggamma``, the same variate as ``gamma`` on the same key) and
    combined in ``dtype``: a small ``df`` makes g underflow float32 (a NaN or inf draw), not log g.
    """
    key_n, key_g = jax.random.split(key)
    n = jax.random.normal(key_n, (), jnp.float32).astype(dtype)
    log_g = jax.random.loggamma(key_g, jnp.float32(df / 2), (), jnp.float32).astype(dtype)
    return n * jnp.exp(0.5 * (jnp.log(jnp.asarray(df / 2, dtype)) - log_g))


def check_tokens_fit_hash(seq: jax.Array) -> None:
    """Raise ``ValueError`` when concrete token ids do not fit the 16 bits per token that ``sequence_keys`` packs."""
    if not isinstance(seq, jax.core.Tracer) and seq.size and int(np.max(np.asarray(seq))) >= 2**16:
        raise ValueError("hash-based rewards support token ids < 2**16")


@flax.struct.dataclass
class SequenceHashReward:
    """An i.i.d. random reward per sequence: ``r(y) = scale · Z(y)``, ``Z(y) ~ N(0, 1)`` (or U(0, 1)).

    ``Z(y)`` is drawn from ``sequence_keys(key, y)``: a fixed function of the sequence with no
    structure a policy could learn. It is drawn in float32 (the same key gives the same reward with or
    without x64), so it takes about 2**23 distinct values: about K²/2**24 tied pairs among K
    sequences (none expected below a few thousand sequences, some hundreds among 65 536).

    Attributes:
        key: PRNG key (leaf).
        scale: multiplier (static).
        distribution: ``"normal"`` or ``"uniform"`` (static).
    """

    key: jax.Array
    scale: float = flax.struct.field(pytree_node=False, default=1.0)
    distribution: str = flax.struct.field(pytree_node=False, default="normal")

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``."""
        seq = validation.sequences(sequences)
        check_tokens_fit_hash(seq)
        if self.distribution not in ("normal", "uniform"):
            raise ValueError(f"distribution must be 'normal' or 'uniform', got {self.distribution!r}")
        return self.scale * hashed_draws(self.key, seq, self.distribution)


@flax.struct.dataclass
class PatternCountReward:
    """Pattern-count reward: ``r(y) = weight · #{t : y_{t..t+m-1} = pattern}`` (overlapping occurrences count).

    Takes at most ``L - m + 2`` values (0, weight, 2·weight, …): tie-heavy, with a rare top level.

    Attributes:
        pattern: tuple of token ids (static), length m >= 1.
        weight: reward per occurrence (static).
    """

    pattern: tuple = flax.struct.field(pytree_node=False, default=(0,))
    weight: float = flax.struct.field(pytree_node=False, default=1.0)

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]`` (0 when the pattern is longer than L)."""
        return self.weight * pattern_occurrences(sequences, self.pattern).astype(jnp.result_type(float))


@flax.struct.dataclass
class SumReward:
    """The sum of rewards: ``r(y) = Σ_i terms[i](y)`` (e.g. a token count plus a pattern bonus).

    Attributes:
        terms: a tuple of reward pytrees (plain functions are wrapped by ``as_reward``).
    """

    terms: tuple

    def __post_init__(self):
        terms = tuple(self.terms)
        if not terms:
            raise ValueError("terms must hold at least one reward")
        object.__setattr__(self, "terms", tuple(as_reward(t, f"terms[{i}]") for i, t in enumerate(terms)))

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``."""
        out = self.terms[0](sequences)
        for term in self.terms[1:]:
            out = out + term(sequences)
        return out


def reward_sum(*rewards) -> SumReward:
    """``SumReward(rewards)``: the reward ``y ↦ Σ_i rewards[i](y)``."""
    return SumReward(terms=tuple(rewards))
