r"""Reward levels: the shared mechanism every n-dependent exact quantity is built on.

Outcomes are sorted by reward **once** (a stable argsort) and outcomes of equal reward are grouped into
*levels* :math:`\ell = 0, 1, \dots` in increasing reward. For each level we keep its p-mass
:math:`m_\ell`, :math:`\log F_\ell = \log P_p(r(Y) \le r_\ell)` and
:math:`\log F^-_\ell = \log P_p(r(Y) < r_\ell)`, computed from the head cumulative sum where
:math:`F < 1/2` and as ``log1p(-tail)`` from the (reverse-cumsum) tail sum where :math:`F \ge 1/2`, so that
both are accurate for masses down to 1e-30 and levels near the top, in float32 and float64.

Nothing here depends on n. The probability that the maximum of n draws lands on level ℓ,

.. math:: q_\ell(n) = F_\ell^n - (F^-_\ell)^n
          = \exp\big(n \log F_\ell + \log(-\mathrm{expm1}(n \log(F^-_\ell / F_\ell)))\big),

is :func:`level_log_mass_of_max`; it is elementwise in n, so evaluating many n (e.g. ``jax.vmap`` over n,
or an array ``n``) reuses one sort. :math:`\log(F^-_\ell/F_\ell) = \mathrm{log1p}(-m_\ell/F_\ell)` is
stored directly (``log_ratio``) rather than as a difference of two logs, which would cancel for a tiny
level next to the top.

Shapes are fixed: with K outcomes there are at most K levels, and the level arrays are padded to length K
(padding levels have zero mass, :math:`F = F^- = 1`, hence :math:`q_\ell(n) = 0`), so everything works under
``jit`` and ``vmap``.
The functionals on ``(p, r)`` go through :func:`on_reward_levels`, which under ``jit`` on CPU first builds level
arrays of length ``FEW_LEVELS`` (enough for every distinct reward in most uses) and length K only past that,
and asks for the fields it reads only (``reward_levels(..., fields=...)``).
Where it is built: on CPU the whole structure comes from one host call (``host_levels``: NumPy's sort of
packed words, one gather, one segmented sum, then O(L) work), because XLA's CPU sort is an order of magnitude
slower than NumPy's and XLA would spend O(K) passes on the padded level arrays; on GPU/TPU it is built from XLA
operations (``_levels_1d_xla``). Derivatives always come from the XLA construction (a ``custom_jvp`` whose rule
is its JVP), so every order of differentiation works on every platform.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from jaxtyping import Float, Real

from bontheory import numerics, validation
from bontheory.exact import host_levels
from bontheory.numerics import safe_log


class RewardLevels(NamedTuple):
    """Reward levels of a reference pmf.

    A pytree; batch shape ``...``, K outcomes; level arrays of length K, padded, or shorter after
    :func:`compact_levels`.

    Attributes:
      order: int32 ``(..., K)``: the outcome at each sorted position (ascending reward, stable).
      level_of: int32 ``(..., K)``: the level index of each outcome (original outcome order).
      num_levels: int32 ``(...)``: number of distinct rewards (real levels); levels ``>= num_levels`` are padding.
      reward: ``(..., K)``: the reward of each level (padding repeats the top reward).
      mass: ``(..., K)``: :math:`m_\\ell` (0 for padding).
      log_mass: ``(..., K)``: :math:`\\log m_\\ell` (``-inf`` for zero mass).
      log_cdf: ``(..., K)``: :math:`\\log F_\\ell` (0 for padding).
      log_cdf_lower: ``(..., K)``: :math:`\\log F^-_\\ell` (0 for padding).
      log_ratio: ``(..., K)``: :math:`\\log(F^-_\\ell/F_\\ell) = \\mathrm{log1p}(-m_\\ell/F_\\ell)`
        (``-inf`` on the lowest level of positive mass, 0 where the mass is 0).
      tail: ``(..., K)``: :math:`1 - F_\\ell` (an exact reverse cumulative sum; accurate when small).
      count: int32 ``(..., K)``: the number of outcomes on each level (0 for padding).
      log_probs: ``(..., K)``: :math:`\\log p(y)` of the (renormalised) reference, original outcome order.

    Built with ``reward_levels(..., fields=...)``, the fields not asked for are ``None`` (``num_levels`` is always
    there).
    """

    order: jax.Array
    level_of: jax.Array
    num_levels: jax.Array
    reward: jax.Array
    mass: jax.Array
    log_mass: jax.Array
    log_cdf: jax.Array
    log_cdf_lower: jax.Array
    log_ratio: jax.Array
    tail: jax.Array
    count: jax.Array
    log_probs: jax.Array

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.num_levels.shape)

    @property
    def num_outcomes(self) -> int:
        return int(next(a for a in (self.order, self.level_of, self.log_probs) if a is not None).shape[-1])


def _sort_levels_xla(r: jax.Array) -> tuple[jax.Array, jax.Array]:
    order = jnp.argsort(r, stable=True).astype(jnp.int32)
    rs = r[order]
    new = jnp.concatenate([jnp.ones((1,), bool), rs[1:] != rs[:-1]])
    return order, (jnp.cumsum(new.astype(jnp.int32)) - 1).astype(jnp.int32)


def _sort_levels_host(r: jax.Array) -> tuple[jax.Array, jax.Array]:
    out = jax.ShapeDtypeStruct(r.shape, jnp.int32)
    return jax.pure_callback(host_levels.host_sort_levels, (out, out), r, vmap_method="broadcast_all")


def sort_levels(r: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The stable sort of the rewards ``r`` ``(K,)`` into levels: ``(order, level id of each sorted position)``.

    The one sort of the exact layer. On CPU it runs in NumPy through :func:`jax.pure_callback` (XLA's CPU sort
    is an order of magnitude slower); elsewhere (GPU/TPU) it is ``jnp.argsort``. Integers only: nothing is
    differentiated through it (the probabilities are gathered in JAX, so gradients w.r.t. them still flow).
    """
    r = jax.lax.stop_gradient(r)  # integer outputs: no derivative, and callbacks have no JVP rule
    return jax.lax.platform_dependent(r, cpu=_sort_levels_host, default=_sort_levels_xla)


def _levels_1d_xla(p: jax.Array, r: jax.Array, dtype: Any, sort=sort_levels) -> RewardLevels:
    """The level structure of one ``(p, r)`` pair in XLA operations (GPU/TPU, and every derivative)."""
    k = p.shape[-1]
    p = jnp.maximum(p.astype(dtype), 0)
    order, lid = sort(jax.lax.stop_gradient(r))
    hi, lo = numerics.compensated_cumsum(p[order])
    p = p / (hi[-1] + lo[-1])  # an accurate total, also for 10⁶ outcomes in float32
    rs = r[order]
    ps = p[order]
    num_levels = lid[-1] + 1
    mass = numerics.sorted_segment_sum(ps, lid, k)  # a level of 10⁶ tied outcomes keeps its mass
    count = jax.ops.segment_sum(jnp.ones((k,), jnp.int32), lid, num_segments=k, indices_are_sorted=True)
    real = jnp.arange(k, dtype=jnp.int32) < num_levels
    top = rs[-1].astype(dtype)
    reward = jnp.full((k,), top, dtype).at[lid].set(jax.lax.stop_gradient(rs.astype(dtype)))
    reward = jnp.where(real, reward, top)
    if jnp.issubdtype(r.dtype, jnp.floating):
        # value: the level's reward exactly; derivative: that of the p-weighted mean of its tied rewards (the
        # count-weighted mean on a level of zero mass), so d/dr(y) splits a level's derivative ∝ p, as π_n does
        rf = rs.astype(dtype)
        mean_p = jax.ops.segment_sum(ps * rf, lid, num_segments=k, indices_are_sorted=True)
        mean_c = jax.ops.segment_sum(rf, lid, num_segments=k, indices_are_sorted=True)
        pos = mass > 0
        mean = jnp.where(pos, mean_p / jnp.where(pos, mass, 1), mean_c / jnp.maximum(count, 1).astype(dtype))
        mean = jnp.where(jnp.isfinite(mean), mean, 0)
        reward = reward + (mean - jax.lax.stop_gradient(mean))

    head = jnp.cumsum(mass)  # F_ℓ from below
    head_lower = jnp.concatenate([jnp.zeros((1,), dtype), head[:-1]])  # F⁻_ℓ from below
    tail_incl = jnp.flip(jnp.cumsum(jnp.flip(mass)))  # 1 − F⁻_ℓ from above
    tail = jnp.concatenate([tail_incl[1:], jnp.zeros((1,), dtype)])  # 1 − F_ℓ from above
    # Every log below gets an input that is finite in *both* branches of its where (the double-where trick),
    # so reverse-mode derivatives never meet 0·inf: jax.grad w.r.t. p is finite everywhere.
    use_head = head < 0.5
    cdf = jnp.where(use_head, head, 1 - tail)
    log_cdf = jnp.where(use_head, safe_log(head), jnp.log1p(-jnp.where(use_head, 0, tail)))
    use_head_lower = head_lower < 0.5
    log_cdf_lower = jnp.where(use_head_lower, safe_log(head_lower), jnp.log1p(-jnp.where(use_head_lower, 0, tail_incl)))
    lowest = (head_lower <= 0) & (mass > 0)  # the lowest level of positive mass: F⁻ = 0, log(F⁻/F) = -inf
    ok = (cdf > 0) & ~lowest
    ratio = jnp.where(ok, jnp.minimum(mass / jnp.where(ok, cdf, 1), 1), 0)  # m/F
    # log(F⁻/F): log1p(−m/F) while m/F ≤ ½ (no cancellation), else log F⁻ − log F (both logs accurate, and
    # |result| ≥ log 2); never log1p(−1) = −inf outside the lowest level.
    big = ratio > 0.5
    log_ratio = jnp.where(
        big,
        jnp.where(big, log_cdf_lower, 0) - jnp.where(big, log_cdf, 0),
        jnp.log1p(-jnp.where(big, 0, ratio)),
    )
    log_ratio = jnp.where(lowest, -jnp.inf, log_ratio)
    level_of = jnp.zeros((k,), jnp.int32).at[order].set(lid)
    return RewardLevels(
        order=order,
        level_of=level_of,
        num_levels=num_levels,
        reward=reward,
        mass=mass,
        log_mass=safe_log(mass),
        log_cdf=log_cdf,
        log_cdf_lower=log_cdf_lower,
        log_ratio=log_ratio,
        tail=tail,
        count=count,
        log_probs=safe_log(p),
    )


#: The fields of :class:`RewardLevels` not returned by the host construction as they are, and the host arrays
#: (``host_levels.HOST_FIELDS``) they are made from; every other field is the host array of its name.
_DERIVED_FROM = {"num_levels": (), "log_cdf_lower": ("log_cdf", "log_ratio"), "log_probs": ()}


def _host_fields(fields: tuple[str, ...]) -> tuple[str, ...]:
    need = {h for f in fields for h in _DERIVED_FROM.get(f, (f,))}
    return tuple(h for h in host_levels.HOST_FIELDS if h in need)


def _select(levels: RewardLevels, fields: tuple[str, ...]) -> RewardLevels:
    return levels._replace(**{f: None for f in RewardLevels._fields if f not in fields and f != "num_levels"})


def _from_host_arrays(out: dict, p: jax.Array, fields: tuple[str, ...]) -> RewardLevels:
    """:class:`RewardLevels` (the requested ``fields``) from ``host_levels.host_level_arrays``'s output and the
    (unnormalised) probabilities: the derived logs are taken here."""
    out = {f: jnp.asarray(a) for f, a in out.items()}
    derived = {
        # log F⁻ = log F + log(F⁻/F), both ≤ 0: no cancellation
        "log_cdf_lower": lambda: out["log_cdf"] + out["log_ratio"],
        "log_probs": lambda: safe_log(jnp.maximum(p, 0) / out["total"][..., None]),
    }
    values = {f: (derived[f]() if f in derived else out[f]) if f in fields else None for f in RewardLevels._fields}
    return RewardLevels(**values | {"num_levels": out["num_levels"]})


def _levels_1d_host(p: jax.Array, r: jax.Array, dtype: Any, fields: tuple[str, ...], size: int) -> RewardLevels:
    """The level structure of one ``(p, r)`` pair built on the host in one call (CPU; ``host_levels``), level
    arrays of length ``size``: only the arrays the requested ``fields`` need leave the callback (each costs a
    copy)."""
    k = p.shape[-1]
    host = _host_fields(fields)
    length = lambda f: k if f in ("order", "level_of") else size
    integer = ("order", "level_of", "count")
    shapes = {f: jax.ShapeDtypeStruct((length(f),), jnp.int32 if f in integer else dtype) for f in host}
    shapes |= {"num_levels": jax.ShapeDtypeStruct((), jnp.int32), "total": jax.ShapeDtypeStruct((), dtype)}
    build = functools.partial(host_levels.host_level_arrays, dtype=np.dtype(dtype), fields=host, size=size)
    p, r = jax.lax.stop_gradient((p.astype(dtype), r))
    out = jax.pure_callback(build, shapes, p, r, vmap_method="broadcast_all")
    return _from_host_arrays(out, p, fields)


def _host_reward_levels(p: jax.Array, r: jax.Array, batch: tuple[int, ...], fields: tuple[str, ...]) -> RewardLevels:
    """:func:`reward_levels` of concrete inputs on CPU: the host construction called directly, its level
    arrays compacted as they are built (no K-length padding is written or copied)."""
    dtype = numerics.floating_dtype(p, r)
    k = p.shape[-1]
    pn = np.broadcast_to(np.asarray(p, dtype), batch + (k,))
    rn = np.broadcast_to(np.asarray(r), batch + (k,))
    out = host_levels.host_level_arrays(pn, rn, np.dtype(dtype), compact=True, fields=_host_fields(fields))
    p = numerics.broadcast_batch(p.astype(dtype), batch) if "log_probs" in fields else p  # p stays on device
    return _from_host_arrays(out, p, fields)


def _on_cpu(*arrays: jax.Array) -> bool:
    return all(d.platform == "cpu" for a in arrays for d in a.devices())


def _levels_1d_selected(
    p: jax.Array, r: jax.Array, dtype: Any, fields: tuple[str, ...], size: int, sort=sort_levels
) -> RewardLevels:
    levels = _select(_levels_1d_xla(p, r, dtype, sort), fields)
    return levels if size == p.shape[-1] else _map_level_fields(levels, lambda a: a[..., :size])


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _levels_1d(p: jax.Array, r: jax.Array, dtype: Any, fields: tuple[str, ...], size: int) -> RewardLevels:
    """The requested fields of the level structure of one pair, level arrays of length ``size`` (the first
    ``size`` levels): built on the host on CPU (one callback, O(L) work past the sort and one gather), in XLA
    elsewhere; derivatives always from the XLA construction (its JVP)."""
    xla = functools.partial(_levels_1d_selected, dtype=dtype, fields=fields, size=size, sort=_sort_levels_xla)
    host = functools.partial(_levels_1d_host, dtype=dtype, fields=fields, size=size)
    return jax.lax.platform_dependent(p, r, cpu=host, default=xla)


@_levels_1d.defjvp
def _levels_1d_jvp(dtype: Any, fields: tuple[str, ...], size: int, primals: tuple, tangents: tuple):
    return jax.jvp(functools.partial(_levels_1d_selected, dtype=dtype, fields=fields, size=size), primals, tangents)


@validation.validate(
    ref_probs=validation.probs, rewards=validation.rewards,
    fields=functools.partial(validation.subset_of, choices=RewardLevels._fields),
)
def reward_levels(
    ref_probs: Float[ArrayLike, "*batch K"],
    rewards: Real[ArrayLike, "*batch K"],
    *,
    compact: bool = True,
    fields: tuple[str, ...] | None = None,
) -> RewardLevels:
    r"""Sorts outcomes by reward once and groups ties into levels.

    Args:
      ref_probs: ``(..., K)`` reference pmf :math:`p` (renormalised to sum to 1; tiny negative rounding is
        clipped to 0).
      rewards: ``(..., K)`` rewards :math:`r`; batch shapes broadcast with ``ref_probs``. Ties are detected
        by exact equality in ``rewards``' own dtype.

      compact: if the inputs are concrete (not traced), drop padding levels (see :func:`compact_levels`).
        Under ``jit`` the level arrays always have length K.
      fields: the :class:`RewardLevels` fields to build (default all); the others are ``None``. On CPU each
        K-length field costs a copy out of the host construction (under ``jit``) or an upload, so a caller that
        reads few of them (e.g. ``("log_mass", "log_cdf", "log_ratio")`` for :func:`bon_kl_from_levels`) asks
        for those only.

    Returns:
      A :class:`RewardLevels` with batch shape the broadcast batch shape; floating fields in the promoted
      floating dtype of the inputs. Level arrays have length K, or fewer after compaction.

    Raises:
      ValueError / TypeError: on bad input (see :mod:`bontheory.validation`; value checks only when concrete).

    Every floating field is differentiable in ``ref_probs`` (finite derivatives everywhere, docs/theory.md §1.8);
    ``reward`` carries the derivative of the p-weighted mean of each level's rewards, so a sum
    :math:`\sum_\ell v_\ell w_\ell` is differentiated in ``rewards`` as
    :math:`\sum_y r(y) w_{\ell(y)} p(y)/m_{\ell(y)}`.
    """
    p, r = ref_probs, rewards
    fields = RewardLevels._fields if fields is None else tuple(f for f in RewardLevels._fields if f in fields)
    batch = numerics.batch_shape(p, r)
    if compact and validation.is_concrete(p, r) and _on_cpu(p, r):
        return _host_reward_levels(p, r, batch, fields)
    levels = _reward_levels(p, r, batch, fields)
    if compact and validation.is_concrete(p, r):
        levels = compact_levels(levels)
    return levels


#: Under ``jit`` on CPU, :func:`on_reward_levels` first builds level arrays of this length; only with more
#: distinct rewards does it build them with length K.
FEW_LEVELS = 1 << 14


def on_reward_levels(ref_probs: jax.Array, rewards: jax.Array, n: jax.Array, from_levels, fields: tuple[str, ...]):
    """``from_levels(reward_levels(ref_probs, rewards, fields=fields), n)`` (arguments validated by the caller),
    with level arrays as short as the levels also under ``jit``.

    Concrete inputs get compacted levels (:func:`reward_levels`). Traced ones with K > ``FEW_LEVELS`` on CPU:
    the host construction first returns level arrays of length ``FEW_LEVELS`` and ``from_levels`` runs on those
    when every distinct reward fits (a ``lax.cond`` on the number of levels, which does not depend on ``n``);
    otherwise the levels are built again with length K. Each K-length array out of the host construction costs
    a copy, and per-n work runs over the real levels either way (``sum_over_levels``); on GPU/TPU the XLA
    construction is used once, with length K. Under ``vmap`` over the distributions the ``cond`` becomes a
    ``select`` and both run.
    """
    p, r = ref_probs, rewards
    if validation.is_concrete(p, r) or p.shape[-1] <= FEW_LEVELS:
        return from_levels(reward_levels(p, r, fields=fields), n)
    return _on_few_levels(p, r, n, from_levels, fields)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _on_few_levels(p: jax.Array, r: jax.Array, n: jax.Array, from_levels, fields: tuple[str, ...]):
    batch = numerics.batch_shape(p, r)
    every = lambda p, r, n: from_levels(_reward_levels(p, r, batch, fields), n)

    def few_first(p, r, n):
        few = _reward_levels(p, r, batch, fields, FEW_LEVELS)
        return jax.lax.cond(
            jnp.max(few.num_levels) <= FEW_LEVELS, lambda: from_levels(few, n), lambda: every(p, r, n)
        )

    return jax.lax.platform_dependent(p, r, n, cpu=few_first, default=every)


_LEVEL_FIELDS = ("reward", "mass", "log_mass", "log_cdf", "log_cdf_lower", "log_ratio", "tail", "count")


@validation.validate(levels=validation.levels, min_outcomes=validation.static_int)
def compact_levels(levels: RewardLevels, min_outcomes: int = 4096) -> RewardLevels:
    """Drops padding levels: keeps the first ``L`` levels, ``L`` the number of distinct rewards (max over the
    batch) rounded up to a power of two (so few distinct shapes are compiled).

    Needs concrete levels (call it outside ``jit``). Done by :func:`reward_levels` when its inputs are concrete
    and K ≥ ``min_outcomes``; with few distinct rewards among many outcomes this makes every n-dependent
    evaluation O(L) instead of O(K) per n (e.g. 8k levels among 10⁶ outcomes).
    """
    k = _level_count(levels)
    if k < min_outcomes:
        return levels
    size = host_levels.compact_size(int(jnp.max(levels.num_levels)), k, min_outcomes)
    if size >= k:
        return levels
    return _map_level_fields(levels, lambda a: a[..., :size])


def _level_count(levels: RewardLevels) -> int:
    """The length of the level arrays (K, or fewer after compaction)."""
    return next(a.shape[-1] for a in (getattr(levels, f) for f in _LEVEL_FIELDS) if a is not None)


def _map_level_fields(levels: RewardLevels, fn) -> RewardLevels:
    return levels._replace(**{f: fn(a) for f in _LEVEL_FIELDS if (a := getattr(levels, f)) is not None})


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _reward_levels(
    p: jax.Array, r: jax.Array, batch: tuple[int, ...], fields: tuple[str, ...], size: int | None = None
) -> RewardLevels:
    dtype = numerics.floating_dtype(p, r)
    k = p.shape[-1]
    size = k if size is None else size
    p, r = (numerics.broadcast_batch(a, batch) for a in (p, r))
    fn = lambda pp, rr: _levels_1d(pp, rr, dtype, fields, size)
    for _ in batch:
        fn = jax.vmap(fn)
    return fn(p, r) if batch else _levels_1d(p.reshape(k), r.reshape(k), dtype, fields, size)


def broadcast_levels_n(levels: RewardLevels, n: jax.Array) -> tuple[jax.Array, tuple[int, ...]]:
    """``n`` as a float array of shape ``S + (1,)`` with ``S = broadcast(batch, n.shape)``."""
    dtype = levels.log_cdf.dtype
    shape = tuple(jnp.broadcast_shapes(levels.batch_shape, jnp.shape(n)))
    nf = jnp.broadcast_to(jnp.asarray(n).astype(dtype), shape)
    return nf[..., None], shape


def broadcast_level_array(x: jax.Array | None, shape: tuple[int, ...]) -> jax.Array:
    if x is None:
        raise ValueError("levels lacks a field this function reads: build them with reward_levels(...) without "
                         "fields=, or with the fields it needs")
    return jnp.broadcast_to(x, shape + x.shape[-1:])


@validation.validate(levels=validation.levels, n=validation.sample_size)
@jax.jit
def level_log_mass_of_max(levels: RewardLevels, n: jax.Array) -> jax.Array:
    r"""Log-probability that the best of n draws lands on each level.

    .. math:: \log q_\ell(n) = \log(F_\ell^n - (F^-_\ell)^n)
              = n \log F_\ell + \log\!\big(-\mathrm{expm1}(n \log(F^-_\ell/F_\ell))\big)

    Args:
      levels: from :func:`reward_levels`, batch shape ``B``.
      n: sample budget, scalar or an array whose shape broadcasts with ``B`` (no checks here; may be traced).

    Returns:
      ``broadcast(B, n.shape) + (K,)``; ``-inf`` on zero-mass and padding levels.
    """
    nn, shape = broadcast_levels_n(levels, n)
    log_cdf = broadcast_level_array(levels.log_cdf, shape)
    log_ratio = broadcast_level_array(levels.log_ratio, shape)
    body = -jnp.expm1(nn * log_ratio)
    return nn * log_cdf + safe_log(body)


#: Levels evaluated at once by :func:`sum_over_levels` / :func:`map_over_levels`.
LEVEL_BLOCK = 4096


def _slice_levels(levels: RewardLevels, start: jax.Array, size: int) -> RewardLevels:
    return _map_level_fields(levels, lambda a: jax.lax.dynamic_slice_in_dim(a, start, size, axis=-1))


def _log_q(levels: RewardLevels, nn: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    log_cdf = broadcast_level_array(levels.log_cdf, shape)
    log_ratio = broadcast_level_array(levels.log_ratio, shape)
    return nn * log_cdf + safe_log(-jnp.expm1(nn * log_ratio))


def _blocks(levels: RewardLevels, block: int) -> tuple[int, int, jax.Array]:
    size = _level_count(levels)
    return size, -(-size // block), jnp.max(levels.num_levels)


def _head_chunks(block: int) -> list[tuple[int, int]]:
    """Static ``(start, size)`` chunks covering the first ``block`` levels, growing geometrically from
    ``block / 16`` (256, 256, 512, 1 024, 2 048 for 4 096): with few real levels under ``jit`` the work per n
    is at most twice the real levels (at least ``block / 16``), not a whole block."""
    chunks, start = [], 0
    while start < block:
        size = max(block // 16, start)
        chunks.append((start, size))
        start += size
    return chunks


def sum_over_levels(levels: RewardLevels, n: jax.Array, term, block: int = LEVEL_BLOCK) -> jax.Array:
    r""":math:`\sum_\ell t_\ell`, ``t = term(levels_block, log_q, shape)`` on blocks of ``block`` levels.

    Blocks past the last real level (the largest ``num_levels`` of the batch) are skipped by a ``lax.cond``
    whose predicate does not depend on ``n``: under ``jit`` (level arrays padded to K) and ``vmap`` over n,
    the work per n is O(number of real levels), not O(K). The first block is itself split into chunks that
    grow geometrically (``_head_chunks``), so a few hundred real levels among many outcomes cost a few hundred.
    Differentiable (``scan`` + ``cond``).

    Args:
      levels: batch shape ``B``; n: broadcasting with ``B`` (may be traced);
      term: ``(levels, log_q, shape) -> S + (L_block,)`` per-level terms, finite where masked.

    Returns:
      ``S = broadcast(B, n.shape)``.
    """
    nn, shape = broadcast_levels_n(levels, n)
    size, nblocks, top = _blocks(levels, block)
    if nblocks <= 1:
        return jnp.sum(term(levels, _log_q(levels, nn, shape), shape), axis=-1)

    def terms(start, width):
        lv = _slice_levels(levels, start, width)
        return term(lv, _log_q(lv, nn, shape), shape)

    acc = jnp.zeros(shape, levels.log_cdf.dtype)
    for start, width in _head_chunks(block):
        add = lambda a, s=start, w=width: a + jnp.sum(terms(s, w), axis=-1)
        acc = jax.lax.cond(start < top, add, lambda a: a, acc)

    def body(acc, i):
        lo = i * block

        def add(acc):
            start = jnp.minimum(lo, size - block)
            keep = start + jnp.arange(block) >= lo  # the last block is shifted back: count its overlap once
            return acc + jnp.sum(jnp.where(keep, terms(start, block), 0), axis=-1)

        return jax.lax.cond(lo < top, add, lambda a: a, acc), None

    acc, _ = jax.lax.scan(body, acc, jnp.arange(1, nblocks))
    return acc


def map_over_levels(levels: RewardLevels, n: jax.Array, value, fill: float, block: int = LEVEL_BLOCK) -> jax.Array:
    """Per-level values ``value(levels_block, log_q, shape)`` as an ``S + (L,)`` array, blocks past the last real
    level left at ``fill`` without being computed (see :func:`sum_over_levels`)."""
    nn, shape = broadcast_levels_n(levels, n)
    size, nblocks, top = _blocks(levels, block)
    if nblocks <= 1:
        return value(levels, _log_q(levels, nn, shape), shape)
    dtype = levels.log_cdf.dtype

    def put_at(out, start, width):
        lv = _slice_levels(levels, start, width)
        v = value(lv, _log_q(lv, nn, shape), shape).astype(dtype)
        return jax.lax.dynamic_update_slice_in_dim(out, v, start, axis=-1)

    out = jnp.full(shape + (size,), fill, dtype)
    for start, width in _head_chunks(block):
        out = jax.lax.cond(start < top, lambda o, s=start, w=width: put_at(o, s, w), lambda o: o, out)

    def body(i, out):
        lo = i * block
        put = lambda o: put_at(o, jnp.minimum(lo, size - block), block)
        return jax.lax.cond(lo < top, put, lambda o: o, out)

    return jax.lax.fori_loop(1, nblocks, body, out)
