"""Soft Best-of-N: draw n candidates from p, pick one with probability softmax(r / temperature).

Exact pmf on a finite outcome space by a one-dimensional integral (docs/theory.md §4.1, soft BoN).

For the chosen candidate the exponential-race identity ``1/S = ∫₀^∞ e^{-tS} dt`` gives, with
``w(y) = exp(r(y)/λ)`` and ``φ(t) = Σ_y p(y) e^{-t w(y)}``::

    P_{n,λ}(y) = n p(y) w(y) ∫₀^∞ e^{-t w(y)} φ(t)^{n-1} dt.

The integral is evaluated in log space after the substitution ``t = e^s``: the integrand in ``s`` is
analytic in the strip ``|Im s| < π/2`` and decays exponentially as ``s → -∞`` and double-exponentially as
``s → +∞``, so the trapezoid rule on a uniform ``s``-grid converges geometrically (error ``≈ e^{-π²/h}``
for spacing ``h``). Rewards are shifted by their maximum so that ``w ∈ (0, 1]``, and ``log w`` is never
exponentiated on its own, so no weight underflows.

Reference: Verdun, Oesterling, Lakkaraju, Calmon, "Soft Best-of-n Sampling for Model Alignment",
arXiv 2505.03156.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Real

from bontheory import numerics, validation
from bontheory.exact.bon import bon_log_pmf
from bontheory.numerics import safe_log

# Relative size of the neglected head (t < e^{s_min}) and tail (t > e^{s_max}) of the integral.
_HEAD_EPS = 1e-20
_TAIL_LOG = math.log(50.0)  # e^{-t w} < e^{-50} beyond s_max for every outcome


def _log_phi(log_p: jax.Array, log_w: jax.Array, s: jax.Array) -> jax.Array:
    """log φ(e^s) = log Σ_y p(y) e^{-e^s w(y)} for s of shape (..., J); log_p, log_w of shape (..., K).

    Uses ``log1p(Σ p expm1(-t w))`` while φ > 1/2 (accurate for tiny t, where φ ≈ 1 and ``(n-1) log φ``
    amplifies any absolute error) and a log-sum-exp otherwise.
    """
    tw = jnp.exp(log_w[..., None, :] + s[..., :, None])  # (..., J, K)
    p = jnp.exp(log_p)[..., None, :]
    head = jnp.sum(p * jnp.expm1(-tw), axis=-1)  # φ - 1
    safe_head = jnp.where(head > -0.5, head, 0.0)
    via_log1p = jnp.log1p(safe_head)
    via_lse = logsumexp(log_p[..., None, :] - tw, axis=-1)
    return jnp.where(head > -0.5, via_log1p, via_lse)


@partial(jax.jit, static_argnames=("num_nodes", "block"))
def _soft_bon_log_pmf(ref_probs, rewards, n, temperature, num_nodes, block):
    dtype = ref_probs.dtype
    support = ref_probs > 0
    log_p = safe_log(ref_probs)
    scaled = rewards / temperature[..., None]
    top = jnp.max(jnp.where(support, scaled, -jnp.inf), axis=-1, keepdims=True)
    bottom = jnp.min(jnp.where(support, scaled, jnp.inf), axis=-1, keepdims=True)
    # log w <= 0 on the support; off the support the value is irrelevant (p = 0) but kept finite.
    log_w = jnp.where(support, scaled - top, 0.0)
    # Integration range in s = log t.
    s_min = jnp.log(_HEAD_EPS) - jnp.log(n)[..., None]  # head mass <= n e^{s_min}
    s_max = (top - bottom) + _TAIL_LOG  # e^{s_max} w_min >= 50
    num_blocks = -(-num_nodes // block)
    total = num_blocks * block
    h = (s_max - s_min) / (total - 1)  # (..., 1)
    log_n = jnp.log(n)[..., None]
    lead = (1,) * (rewards.ndim - 1)

    def body(acc, j):
        idx = (j * block + jnp.arange(block, dtype=dtype)).reshape(lead + (block,))  # (1.., block)
        s = s_min + h * idx  # (..., block)
        lphi = _log_phi(log_p, log_w, s)  # (..., block)
        # log integrand in s for each outcome: s - t w(y) + (n-1) log φ(t)   -> (..., block, K)
        log_f = (
            s[..., :, None]
            - jnp.exp(log_w[..., None, :] + s[..., :, None])
            + ((n[..., None] - 1.0) * lphi)[..., :, None]
        )
        # trapezoid weights: 1/2 at the two ends of the whole grid
        end = (idx == 0) | (idx == total - 1)
        log_f = log_f + jnp.where(end, jnp.log(0.5), 0.0)[..., None]
        return jnp.logaddexp(acc, logsumexp(log_f, axis=-2)), None

    acc0 = jnp.full(rewards.shape, -jnp.inf, dtype)
    log_int, _ = jax.lax.scan(body, acc0, jnp.arange(num_blocks))
    log_pmf = log_n + log_p + log_w + log_int + jnp.log(h)
    return jnp.where(support, log_pmf, -jnp.inf)


# λ → 0: soft BoN is BoN once every gap between distinct rewards is ≥ G·λ with n·e^{-G} below the float
# spacing (a candidate of a higher level then beats every lower one with probability ≥ 1 − n e^{-G}, and ties
# split uniformly as in BoN). G = log n + _LIMIT_MARGIN[dtype].
_LIMIT_MARGIN = {4: 17.0, 8: 37.0}  # by itemsize: e^{-17} ≈ 4e-8 (float32), e^{-37} ≈ 9e-17 (float64)
_MAX_AUTO_NODES = 1 << 16


def _min_gap(ref_probs: jax.Array, rewards: jax.Array) -> jax.Array:
    """The smallest gap between distinct rewards on the support, per distribution (``inf`` for one level)."""
    rs = jnp.sort(jnp.where(ref_probs > 0, rewards, jnp.nan), axis=-1)  # NaN (off the support) sorts last
    d = jnp.diff(rs, axis=-1)
    return jnp.min(jnp.where(d > 0, d, jnp.inf), axis=-1, initial=jnp.inf)


def _temperature_floor(ref_probs: jax.Array, rewards: jax.Array, n: jax.Array, dtype) -> jax.Array:
    """The temperature ``gap / G`` at and below which soft BoN is BoN to float precision, per distribution
    (``inf`` for one level); ``G = log n + _LIMIT_MARGIN[dtype]``."""
    margin = jnp.log(n) + _LIMIT_MARGIN.get(jnp.dtype(dtype).itemsize, 37.0)
    return _min_gap(ref_probs, rewards) / margin


# Node spacing h of the automatic rule: the quadrature error is ≈ e^{-π²/h} ≈ 1e-14 at h = 0.3.
_AUTO_SPACING = 0.3
_TRACED_NODES = 1024


@validation.validate(
    ref_probs=validation.probs, rewards=validation.rewards, n=validation.sample_size, temperature=validation.positive
)
def auto_num_nodes(ref_probs: ArrayLike, rewards: ArrayLike, n: ArrayLike, temperature: ArrayLike) -> int:
    """Quadrature nodes giving spacing ≤ 0.3 in ``s = log t`` (a power of two ≥ 256), from concrete inputs.

    The range is ``(r_max − r_min)/λ + log n + log(50) + 46`` (see :func:`soft_bon_pmf`); powers of two
    limit recompilation. Returns 1024 when any input is traced.
    """
    import numpy as np

    if not validation.is_concrete(ref_probs, rewards, n, temperature):
        return _TRACED_NODES
    dtype = numerics.floating_dtype(ref_probs, rewards)
    batch = np.broadcast_shapes(ref_probs.shape[:-1], rewards.shape[:-1], np.shape(n), np.shape(temperature))
    p, r = (np.broadcast_to(np.asarray(a, np.float64), (*batch, ref_probs.shape[-1])) for a in (ref_probs, rewards))
    nn, lam = (np.broadcast_to(np.asarray(a, np.float64), batch) for a in (n, temperature))
    sup = p > 0
    span = np.max(np.where(sup, r, -np.inf), axis=-1) - np.min(np.where(sup, r, np.inf), axis=-1)
    # at and below its floor the BoN limit is used (soft_bon_log_pmf): the quadrature never needs a smaller λ
    floor = np.asarray(_temperature_floor(jnp.asarray(p, dtype), jnp.asarray(r, dtype), jnp.asarray(nn, dtype), dtype))
    lam = np.maximum(lam, np.where(np.isfinite(floor), floor, 0.0))
    n_max = max(float(np.max(nn)), 1.0)
    span = float(np.max(span / lam))
    span += np.log(n_max) + _TAIL_LOG - math.log(_HEAD_EPS)
    need = math.ceil(span / _AUTO_SPACING) + 1
    nodes = max(256, 1 << (need - 1).bit_length())
    if nodes > _MAX_AUTO_NODES:
        import warnings

        warnings.warn(f"soft BoN needs {nodes} quadrature nodes here (reward span / temperature = {span:.3g}); "
                      f"using {_MAX_AUTO_NODES}: the pmf may be inaccurate (its sum minus 1 measures the error)",
                      RuntimeWarning, stacklevel=3)
        nodes = _MAX_AUTO_NODES
    return nodes


_soft_bon_inputs = validation.validate(
    ref_probs=validation.probs, rewards=validation.rewards, n=validation.sample_size,
    temperature=validation.positive, num_nodes=validation.kind(validation.static_int, minimum=16),
    block=validation.static_int,
)


@_soft_bon_inputs
def soft_bon_log_pmf(
    ref_probs: Float[ArrayLike, "*batch K"],
    rewards: Real[ArrayLike, "*batch K"],
    n: ArrayLike,
    temperature: ArrayLike,
    *,
    num_nodes: int | None = None,
    block: int = 64,
) -> Float[Array, "*batch K"]:
    r"""Log-pmf of soft Best-of-N; see :func:`soft_bon_pmf`.

    Returns:
      ``float[..., K]``: ``log P_{n,λ}(y)``; ``-inf`` where ``p(y) = 0``.
    """
    if num_nodes is None:
        num_nodes = auto_num_nodes(ref_probs, rewards, n, temperature)
    dtype = numerics.floating_dtype(ref_probs, rewards)
    batch = tuple(jnp.broadcast_shapes(numerics.batch_shape(ref_probs, rewards), jnp.shape(n), jnp.shape(temperature)))
    shape = (*batch, ref_probs.shape[-1])
    ref_probs = jnp.broadcast_to(ref_probs.astype(dtype), shape)
    rewards = jnp.broadcast_to(rewards.astype(dtype), shape)
    n = jnp.broadcast_to(n.astype(dtype), batch)
    temperature = jnp.broadcast_to(temperature.astype(dtype), batch)
    # λ → 0: where every reward gap is ≥ G·λ the pmf is BoN's (to float precision, see _LIMIT_MARGIN), at the
    # cost of one BoN pmf
    floor = _temperature_floor(ref_probs, rewards, n, dtype)
    use_bon = temperature <= floor
    # (λ itself when it is above the floor; the quadrature's λ stays > 0 and finite, so no NaN reaches a gradient)
    lam = jnp.where(use_bon, jnp.where(jnp.isfinite(floor), floor, 1.0), temperature)
    # each of the two is computed only when some distribution needs it (under vmap, cond becomes select: both)
    unused = lambda: jnp.full(shape, -jnp.inf, dtype)
    quadrature = lambda: _soft_bon_log_pmf(ref_probs, rewards, n, lam, num_nodes, min(block, num_nodes))
    quad = jax.lax.cond(jnp.all(use_bon), unused, quadrature)
    bon = jax.lax.cond(jnp.any(use_bon), lambda: bon_log_pmf(ref_probs, rewards, n), unused)
    return jnp.where(use_bon[..., None], bon, quad)


@_soft_bon_inputs
def soft_bon_pmf(
    ref_probs: Float[ArrayLike, "*batch K"],
    rewards: Real[ArrayLike, "*batch K"],
    n: ArrayLike,
    temperature: ArrayLike,
    *,
    num_nodes: int | None = None,
    block: int = 64,
) -> Float[Array, "*batch K"]:
    r"""Exact pmf of soft Best-of-N on a finite outcome space.

    Soft BoN draws ``Y_1..Y_n`` i.i.d. from ``p`` and returns ``Y_i`` with probability
    ``softmax(r(Y)/λ)_i``. With ``w = e^{r/λ}`` and ``φ(t) = Σ_y p(y) e^{-t w(y)}``:

    .. math:: P_{n,λ}(y) = n\,p(y)\,w(y) \int_0^\infty e^{-t w(y)} φ(t)^{n-1}\,dt.

    ``λ → 0`` gives BoN (ties split uniformly), ``λ → ∞`` gives ``p``, and ``n → ∞`` gives the tilted
    policy ``∝ p e^{r/λ}``.

    The integral is computed by the trapezoid rule in ``s = log t`` on ``num_nodes`` nodes spanning
    ``[log(1e-20/n), (r_max - r_min)/λ + log 50]`` (in log space, with ``w`` rescaled by its maximum). The
    quadrature error is ``≈ exp(-π²/h)`` with spacing ``h``. By default (``num_nodes=None``) the node count
    is chosen from the concrete inputs so that ``h ≤ 0.3`` (error ≈ 1e-14; a power of two ≥ 256, see
    :func:`auto_num_nodes`); under the caller's ``jit`` (traced inputs) it is 1024, accurate while
    ``(r_max - r_min)/λ ≲ 250``. The result is *not* renormalised, so ``Σ P - 1`` measures the error.
    Cost ``O(num_nodes · K)`` time and ``O(block · K)`` memory.

    ``λ → 0`` (the BoN limit, exactly): where every gap between distinct rewards on the support is at least
    ``G λ`` with ``G = log n + 37`` (float64; ``+ 17`` in float32), soft BoN differs from BoN by at most
    ``n e^{-G}`` (a higher level beats every lower candidate with probability ``≥ 1 − n e^{-G}``, and ties
    split uniformly in both), below the float spacing: the BoN pmf is returned. The quadrature therefore
    never needs ``λ`` below ``gap/G``, and the automatic node count no longer grows as ``1/λ``; it is
    capped at 65536 nodes with a warning (rewards with a tiny gap next to a wide span). A subnormal ``λ``
    (below 1.2e-38 in float32) is flushed to 0 by XLA on CPU, eagerly and under ``jit``: it is valid and
    gives this BoN limit in both (``λ = 0`` itself is refused: ``ValueError``, or NaN under ``jit``).

    Args:
      ref_probs: ``float[..., K]`` reference pmf ``p``.
      rewards: ``float[..., K]`` rewards ``r``.
      n: number of candidates ``n ≥ 1`` (scalar or batch-shaped; may be traced).
      temperature: softmax temperature ``λ > 0`` (scalar or batch-shaped; may be traced).
      num_nodes: quadrature nodes (static); ``None`` = automatic (see above).
      block: nodes evaluated at once (static; bounds memory).

    Returns:
      ``float[..., K]`` pmf (zero where ``p = 0``). Differentiable in ``ref_probs``, ``rewards`` and
      ``temperature`` (docs/theory.md §1.8).

    Raises:
      ValueError: for an invalid pmf, non-finite rewards, ``n < 1`` or ``λ ≤ 0`` (concrete values only;
        under ``jit`` nothing is checked).

    References:
      Verdun et al., "Soft Best-of-n Sampling for Model Alignment", arXiv 2505.03156.
    """
    return jnp.exp(soft_bon_log_pmf(ref_probs, rewards, n, temperature, num_nodes=num_nodes, block=block))
