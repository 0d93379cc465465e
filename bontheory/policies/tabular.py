"""Tabular autoregressive policies: memoryless, Markov of order k, and full history.

A tabular policy of order k keeps one logits row per (position t, context c), where the context is
the last k tokens, with the missing tokens before the sequence start read as token 0:

    c_t = Σ_{j=1}^{k} y_{t-j} V^{j-1}        (y_s := 0 for s < 0; the most recent token is the
                                              least significant digit)
    π(y_t | y_{<t}) = softmax(table[t, c_t])[y_t],     table: float[L, V**k, V].

Because the table is per position, the padding is unambiguous (at position t < k the padded
digits are always 0), so order k is the general position-dependent Markov chain of order k.
Order 0 is memoryless (a product distribution), and ``order=None`` (full history) is order L-1.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from bontheory import validation
from bontheory.policies.policy import ModulePolicy

#: Largest number of logits entries L * V**k * V a tabular policy may hold (64 Mi floats).
MAX_TABLE_SIZE = 2**26


def effective_order(order: int | None, length: int) -> int:
    """Context length actually used: ``L - 1`` for full history, else ``min(order, L - 1)``."""
    if order is None:
        return max(length - 1, 0)
    return min(int(order), max(length - 1, 0))


def _check_sizes(vocab_size: int, length: int, order: int | None) -> int:
    if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
        raise ValueError(f"vocab_size must be an integer >= 1, got {vocab_size!r}")
    if not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"length must be an integer >= 1, got {length!r}")
    if order is not None and (not isinstance(order, (int, np.integer)) or order < 0):
        raise ValueError(f"order must be None (full history) or an integer >= 0, got {order!r}")
    k = effective_order(order, int(length))
    size = int(length) * int(vocab_size) ** k * int(vocab_size)
    if size > MAX_TABLE_SIZE:
        raise ValueError(
            f"tabular policy with V={vocab_size}, L={length}, order={order} needs a logits table of "
            f"L*V**k*V = {size} entries (> {MAX_TABLE_SIZE}); use a smaller order or a TransformerPolicy"
        )
    return k


def context_index(tokens: jax.Array, vocab_size: int, k: int) -> jax.Array:
    """Context index ``c_t = Σ_{j=1}^{k} y_{t-j} V^{j-1}`` (zero-padded before the start).

    Args:
        tokens: ``int[B, L]``.
        vocab_size: V.
        k: context length.

    Returns:
        ``int32[B, L]``.
    """
    batch, length = tokens.shape
    ctx = jnp.zeros((batch, length), jnp.int32)
    for j in range(1, k + 1):
        shifted = jnp.pad(tokens[:, : length - j], ((0, 0), (j, 0)))
        ctx = ctx + shifted.astype(jnp.int32) * (vocab_size ** (j - 1))
    return ctx


class TabularPolicy(nn.Module):
    """Tabular autoregressive policy (Flax module) ``int32[B, L] -> float[B, L, V]``.

    Parameter ``"logits"`` has shape ``(L, V**k, V)`` with ``k = effective_order(order, L)``;
    see the module docstring for the context encoding.

    Attributes:
        vocab_size: V >= 1.
        length: L >= 1.
        order: 0 memoryless, k Markov of order k, None full history.
        init_scale: standard deviation of the Gaussian initial logits.
    """

    vocab_size: int
    length: int
    order: int | None = 0
    init_scale: float = 1.0

    def __post_init__(self):
        validation.static_int(self.vocab_size, "vocab_size")  # static attributes: checked when the module is built
        validation.static_int(self.length, "length")
        super().__post_init__()

    @property
    def context_order(self) -> int:
        return effective_order(self.order, self.length)

    @property
    def num_contexts(self) -> int:
        return self.vocab_size**self.context_order

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        k = _check_sizes(self.vocab_size, self.length, self.order)
        table = self.param(
            "logits",
            nn.initializers.normal(self.init_scale),
            (self.length, self.vocab_size**k, self.vocab_size),
        )
        ctx = context_index(tokens, self.vocab_size, k)
        return table[jnp.arange(self.length)[None, :], ctx]

    def policy_token_log_probs(self, params: Any, tokens: jax.Array) -> jax.Array:
        """The policy hook: ``log π(y_t | y_{<t})`` gathered from the table (see ``tabular_token_log_probs``)."""
        return tabular_token_log_probs(self, params, tokens)

    def policy_sample(self, params: Any, key: jax.Array, num: int) -> jax.Array:
        """The policy hook: ``int32[num, L]`` by inverse CDF on the table (see ``sample_tabular``)."""
        return sample_tabular(self, params, key, num)


@validation.validate(policy=validation.policy)
def tabular_log_probs_table(policy: ModulePolicy) -> jax.Array:
    """Normalised log-probability table ``float[L, V**k, V]`` of a tabular policy."""
    module = getattr(policy, "module", None)
    if not isinstance(module, TabularPolicy):
        raise TypeError(f"expected a policy with a TabularPolicy module, got {type(module).__name__}")
    return jax.nn.log_softmax(policy.params["logits"], axis=-1)


@functools.partial(jax.jit, static_argnums=0)
def tabular_token_log_probs(module: TabularPolicy, params: Any, tokens: jax.Array) -> jax.Array:
    """``log π(y_t | y_{<t})`` by direct gather, ``int[B, L] -> float[B, L]`` (no ``B×L×V`` array)."""
    logp = jax.nn.log_softmax(params["logits"], axis=-1)
    ctx = context_index(tokens, module.vocab_size, module.context_order)
    return logp[jnp.arange(module.length)[None, :], ctx, tokens]


def _inverse_cdf(cdf: jax.Array, u: jax.Array) -> jax.Array:
    """Token ``v`` with ``cdf[v-1] <= u < cdf[v]``: ``cdf (..., V)``, ``u (...)`` -> ``int32 (...)``."""
    vocab = cdf.shape[-1]
    if vocab <= 128:
        idx = jnp.sum(u[..., None] >= cdf, axis=-1)
    else:
        flat_cdf, flat_u = cdf.reshape((-1, vocab)), u.reshape((-1,))
        idx = jax.vmap(lambda c, x: jnp.searchsorted(c, x, side="right"))(flat_cdf, flat_u).reshape(u.shape)
    return jnp.minimum(idx, vocab - 1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnums=(0, 3))
def sample_tabular(module: TabularPolicy, params: Any, key: jax.Array, num: int) -> jax.Array:
    """Sample ``int32[num, L]`` from a tabular policy by inverse-CDF sampling.

    One uniform per token (in the table's float dtype) against the per-row CDF, normalised so that
    its last entry is exactly 1 (zero-probability tokens are never drawn). Order 0 samples all
    positions at once; order k > 0 runs a ``lax.scan`` over positions carrying the context index,
    ``c_{t+1} = y_t + V (c_t mod V^{k-1})``. Resolution: probabilities below the uniform's spacing
    (2**-24 in float32, 2**-53 in float64) are rounded to multiples of it.
    """
    table = params["logits"]
    length, vocab, k = module.length, module.vocab_size, module.context_order
    probs = jax.nn.softmax(table, axis=-1)
    cdf = jnp.cumsum(probs, axis=-1)
    cdf = cdf / cdf[..., -1:]
    u = jax.random.uniform(key, (num, length), cdf.dtype)
    if k == 0:
        return _inverse_cdf(cdf[:, 0, :][None, :, :], u)
    low = vocab ** (k - 1)

    def step(ctx, xs):
        t, u_t = xs
        tok = _inverse_cdf(cdf[t][ctx], u_t)  # (num,)
        return tok + vocab * (ctx % low), tok

    _, toks = jax.lax.scan(step, jnp.zeros((num,), jnp.int32), (jnp.arange(length), u.T))
    return toks.T


@validation.validate(
    logits=validation.kind(validation.array, finite=False),
    order=validation.optional(validation.kind(validation.static_int, minimum=0)),
)
def tabular_policy_from_logits(logits: jax.Array, order: int | None = 0) -> ModulePolicy:
    """Build a tabular ``Policy`` from an explicit logits table.

    Args:
        logits: ``float[L, V**k, V]`` with ``k = effective_order(order, L)``; for order 0 also
            ``float[L, V]``. Rows need not be normalised (a softmax is applied).
        order: 0, k, or None (full history).

    Returns:
        ``ModulePolicy(TabularPolicy(V, L, order), {"logits": logits})``.
    """
    logits = jnp.asarray(logits)
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"logits must be a floating array, got dtype {logits.dtype}")
    if logits.ndim == 2:
        logits = logits[:, None, :]
    if logits.ndim != 3:
        raise ValueError(f"logits must have shape (L, V**k, V) (or (L, V) for order 0), got {logits.shape}")
    length, contexts, vocab = logits.shape
    k = _check_sizes(vocab, length, order)
    if contexts != vocab**k:
        raise ValueError(
            f"logits of shape {logits.shape} do not match order={order}: expected "
            f"({length}, {vocab}**{k} = {vocab**k}, {vocab})"
        )
    if not isinstance(logits, jax.core.Tracer) and bool(jnp.any(jnp.isnan(logits))):
        raise ValueError("logits contain NaN")
    module = TabularPolicy(vocab_size=int(vocab), length=int(length), order=order)
    return ModulePolicy(module=module, params={"logits": logits})


_KINDS = ("gaussian", "dirichlet", "zipf")


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _random_logits(key, shape, kind, dtype, temperature, concentration, zipf_exponent):
    # Draws in float32 whatever the precision (a float64 draw consumes other random bits), then cast:
    # the same key names the same policy with or without x64.
    draw = jnp.float32
    if kind == "gaussian":
        logits = jax.random.normal(key, shape, draw).astype(dtype)
    elif kind == "dirichlet":
        logits = jax.random.loggamma(key, jnp.asarray(concentration, draw), shape, draw).astype(dtype)
    else:
        ranks = jnp.argsort(jax.random.uniform(key, shape, draw), axis=-1).astype(dtype) + 1.0
        logits = -jnp.asarray(zipf_exponent, dtype) * jnp.log(ranks)
    return jax.nn.log_softmax(logits / jnp.asarray(temperature, dtype), axis=-1)


@validation.validate(
    key=validation.prng_key,
    vocab_size=validation.static_int,
    length=validation.static_int,
    order=validation.optional(validation.kind(validation.static_int, minimum=0)),
)
def random_tabular_policy(
    key: jax.Array,
    vocab_size: int,
    length: int,
    order: int | None = 0,
    kind: str = "gaussian",
    temperature: float = 1.0,
    concentration: float = 1.0,
    zipf_exponent: float = 1.0,
    dtype: Any = None,
) -> ModulePolicy:
    """Draw a random tabular policy; every (position, context) row is drawn independently.

    The same key gives the same policy with or without x64: the random numbers are drawn in float32,
    then cast to ``dtype`` (a float64 table is the float32 draw, normalised in float64).

    Kinds (then all logits are divided by ``temperature``; smaller = more peaked):
      * ``"gaussian"``: logits ~ N(0, 1).
      * ``"dirichlet"``: next-token probabilities ~ Dirichlet(concentration · 1_V), drawn in log
        space as log-Gamma variates (stable for tiny concentrations); small concentration = peaked.
      * ``"zipf"``: probabilities ∝ rank^(-zipf_exponent) over a random permutation of the tokens;
        larger exponent = more peaked, 0 = uniform.

    Args:
        key: PRNG key.
        vocab_size: V >= 1.
        length: L >= 1.
        order: 0 memoryless, k Markov, None full history.
        kind: ``"gaussian"``, ``"dirichlet"`` or ``"zipf"``.
        temperature: > 0.
        concentration: Dirichlet concentration > 0, a normal float32 number (about 1.2e-38 to 3.4e38).
        zipf_exponent: Zipf exponent >= 0.
        dtype: float dtype of the table (default: JAX's default float).

    Returns:
        A ``ModulePolicy`` with a ``TabularPolicy`` module and logits ``float[L, V**k, V]``.
    """
    k = _check_sizes(vocab_size, length, order)
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be finite and > 0, got {temperature}")
    f32 = jnp.finfo(jnp.float32)
    if kind == "dirichlet" and not float(f32.tiny) <= concentration <= float(f32.max):
        raise ValueError(
            f"concentration must be > 0 and within float32's normal range [{float(f32.tiny):.3g}, "
            f"{float(f32.max):.3g}] (the draw is in float32), got {concentration}"
        )
    if kind == "zipf" and not zipf_exponent >= 0:
        raise ValueError(f"zipf_exponent must be >= 0, got {zipf_exponent}")
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    shape = (int(length), int(vocab_size) ** k, int(vocab_size))
    logits = _random_logits(key, shape, kind, dtype, temperature, concentration, zipf_exponent)
    return tabular_policy_from_logits(logits, order)
