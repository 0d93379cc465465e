r"""The CPU construction of reward levels, in NumPy on the host (reached through :func:`jax.pure_callback`).

On CPU, XLA's sort is an order of magnitude slower than NumPy's, and under ``jit`` every level array has K
entries, so a level structure built from XLA's elementwise passes costs O(K) passes over K-length arrays even
when there are few levels. Here the whole structure is built in one host call: one sort of packed
key-and-index words, one gather of the probabilities, one segmented sum, and then only O(L) work for the
L real levels, which are padded to K at the end. The formulas are those of ``levels.py`` (docs/theory.md §1.7),
evaluated in float64 whatever the output dtype:

* :math:`m_\ell` is the plain float64 sum of the level's probabilities for levels of at most 4 096 outcomes
  (accurate relative to a tiny level's own size) and NumPy's pairwise sum for longer levels (accurate for 10⁶
  tied outcomes); the total is the pairwise sum of the level masses;
* :math:`F_\ell` is the cumulative sum of the masses up to ℓ, :math:`1 - F_\ell` the reverse cumulative sum of
  the masses above it; :math:`\log F_\ell = \log F_\ell` where :math:`F_\ell < 1/2`, else
  :math:`\mathrm{log1p}(-(1 - F_\ell))`;
* :math:`\log(F^-_\ell/F_\ell) = \mathrm{log1p}(-m_\ell/F_\ell)` while :math:`m_\ell/F_\ell \le 1/2`, else
  :math:`\log F^-_\ell - \log F_\ell`; :math:`-\infty` on the lowest level of positive mass.

Nothing here is differentiated: the JAX construction (``levels.py``) supplies the derivatives.
"""

from __future__ import annotations

import numpy as np

_LOW = np.uint64(0xFFFFFFFF)
#: Levels of at most this many outcomes keep the plain (sequential, float64) sum of their probabilities, within
#: SHORT_LEVEL·eps ≈ 1e-12 of their own size; longer levels are summed pairwise.
SHORT_LEVEL = 4096


def _ordered_bits(r: np.ndarray) -> tuple[np.ndarray, int]:
    """Unsigned keys (a new array) whose order is the order of ``r`` (equal keys exactly for equal values), and
    their width in bits. Written with in-place operations: fresh K-length arrays cost page faults."""
    if r.dtype == np.bool_ or (np.issubdtype(r.dtype, np.integer) and r.dtype.itemsize <= 4):
        u = r.astype(np.int64)
        u += 2**31
        return u.view(np.uint64), 32
    if np.issubdtype(r.dtype, np.integer):
        u = r.astype(np.int64).view(np.uint64)
        u ^= np.uint64(1 << 63)
        return u, 64
    if r.dtype.itemsize <= 4:  # float16 / bfloat16 / float32: exact in float32
        b = (r.astype(np.float32) + np.float32(0)).view(np.uint32).astype(np.uint64)  # + 0: -0.0 -> 0.0
        return np.where(b >> np.uint64(31), b ^ np.uint64(0xFFFFFFFF), b | np.uint64(1 << 31)), 32
    b = (r.astype(np.float64) + 0.0).view(np.uint64)  # + 0: -0.0 -> 0.0
    flip = b >> np.uint64(63)
    np.subtract(np.uint64(0), flip, out=flip)
    flip |= np.uint64(1 << 63)
    b ^= flip  # negative: all bits flipped; positive: the sign bit set
    return b, 64


def sort_row(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable argsort of one row ``(K,)`` and the level id of each sorted position, by sorting packed
    ``key << 32 | index`` words (NumPy's vectorised sort of 64-bit integers, several times faster than its
    argsort). A 64-bit key packs its high 32 bits; outcomes whose high halves tie but whose values differ
    (rare) are re-sorted in a second pass."""
    k = r.shape[-1]
    u, bits = _ordered_bits(r)
    exact = bits == 32 or not np.any(u & _LOW)  # every key fits in 32 bits (e.g. integer-valued rewards)
    words = u << np.uint64(32) if bits == 32 else u & ~_LOW
    words |= np.arange(k, dtype=np.uint64)
    words.sort()
    order = (words & _LOW).astype(np.int64)
    words >>= np.uint64(32)  # the sorted keys (their high halves for 64-bit keys)
    if exact:
        us = words
    else:
        hi = words
        us = u[order]
        same_hi = hi[1:] == hi[:-1]
        bad = same_hi & (us[1:] != us[:-1])
        nbad = int(np.count_nonzero(bad))
        if nbad > k // 64:  # many distinct values share their high halves (continuous rewards): argsort
            order = np.argsort(r, kind="stable")
            us = u[order]
        elif nbad:
            # re-sort the groups of equal high halves that hold distinct values; their values all lie
            # between the neighbouring groups', so one stable sort of the selected values puts them in place
            group = np.cumsum(np.concatenate([[True], ~same_hi]))
            sel = np.flatnonzero(np.isin(group, group[1:][bad]))
            sub = np.argsort(us[sel], kind="stable")
            order[sel] = order[sel][sub]
            us[sel] = us[sel][sub]
    new = np.empty(k, bool)
    new[0] = True
    np.not_equal(us[1:], us[:-1], out=new[1:])
    lid = np.cumsum(new, dtype=np.int32)
    lid -= 1
    return order, lid


def host_sort_levels(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sort_row` over every row of ``r`` ``(..., K)``: ``(order, level id per sorted position)``."""
    r = np.asarray(r)
    k = r.shape[-1]
    rows = r.reshape(-1, k)
    order = np.empty(rows.shape, np.int32)
    lid = np.empty(rows.shape, np.int32)
    for i, row in enumerate(rows):
        order[i], lid[i] = sort_row(row)  # order: int64 -> int32
    return order.reshape(r.shape), lid.reshape(r.shape)


def _log(x: np.ndarray) -> np.ndarray:
    """``log x`` with ``log 0 = -inf`` and ``-inf`` for NaN too (as ``numerics.safe_log``)."""
    pos = x > 0
    return np.where(pos, np.log(np.where(pos, x, 1.0)), -np.inf)


def _level_row(p: np.ndarray, r: np.ndarray) -> tuple:
    k = p.shape[-1]
    order, lid = sort_row(r)
    ps = p[order].astype(np.float64, copy=False)  # int64 indices: the fastest gather
    np.maximum(ps, 0, out=ps)
    starts = np.flatnonzero(np.concatenate([[True], lid[1:] != lid[:-1]]))
    count = np.diff(np.append(starts, k))
    mass = np.add.reduceat(ps, starts)
    for j in np.flatnonzero(count > SHORT_LEVEL):  # at most K / SHORT_LEVEL long levels: pairwise sums
        mass[j] = np.sum(ps[starts[j] : starts[j] + count[j]])
    total = np.sum(mass)
    mass = mass / total
    head = np.cumsum(mass)
    head_lower = np.concatenate([[0.0], head[:-1]])
    tail_incl = np.cumsum(mass[::-1])[::-1]
    tail = np.append(tail_incl[1:], 0.0)
    use_head = head < 0.5
    cdf = np.where(use_head, head, 1 - tail)
    log_cdf = np.where(use_head, _log(head), np.log1p(-np.where(use_head, 0.0, tail)))
    use_head_lower = head_lower < 0.5
    log_cdf_lower = np.where(use_head_lower, _log(head_lower), np.log1p(-np.where(use_head_lower, 0.0, tail_incl)))
    lowest = (head_lower <= 0) & (mass > 0)
    ok = (cdf > 0) & ~lowest
    ratio = np.where(ok, np.minimum(mass / np.where(ok, cdf, 1.0), 1.0), 0.0)
    big = ratio > 0.5
    log_ratio = np.where(big, log_cdf_lower - log_cdf, np.log1p(-np.where(big, 0.0, ratio)))
    log_ratio = np.where(lowest, -np.inf, log_ratio)
    level = (mass, log_cdf, log_ratio, tail)
    return order, lid, r[order[starts]], r[order[-1]], *level, count, total


def compact_size(num_levels: int, k: int, min_outcomes: int = 4096) -> int:
    """The level-array length kept by compaction: K below ``min_outcomes`` outcomes, else the number of levels
    rounded up to a power of two (few distinct shapes are compiled), at most K."""
    if k < min_outcomes:
        return k
    return min(k, 1 << max(0, num_levels - 1).bit_length())


def host_level_arrays(p: np.ndarray, r: np.ndarray, dtype: np.dtype, compact: bool = False) -> tuple[np.ndarray, ...]:
    """The level arrays of every row of ``(p, r)`` ``(..., K)``, padded to K (to :func:`compact_size` of the
    largest number of levels with ``compact``).

    Returns ``(order, level id per sorted position, num_levels, reward, mass, log_cdf, log_ratio, tail, count,
    total)``: integers int32, floats in ``dtype``; ``total`` is the
    unnormalised mass :math:`\\sum_y \\max(p(y), 0)` ``(...)``. Padding levels (past ``num_levels``) have the
    top reward, zero mass and count, :math:`\\log F = \\log(F^-/F) = 0`. (The caller derives
    :math:`\\log m_\\ell` and :math:`\\log F^-_\\ell = \\log F_\\ell + \\log(F^-_\\ell/F_\\ell)`, a sum of two
    non-positive numbers: every K-length array returned here costs a copy out of the callback.)
    """
    p, r = np.asarray(p), np.asarray(r)
    k = p.shape[-1]
    batch = p.shape[:-1]
    rows = int(np.prod(batch, dtype=np.int64))
    order = np.empty((rows, k), np.int32)
    lid = np.empty((rows, k), np.int32)
    num = np.empty((rows,), np.int32)
    total = np.empty((rows,), dtype)
    per_row = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i, (pp, rr) in enumerate(zip(p.reshape(rows, k), r.reshape(rows, k))):
            order[i], lid[i], *level, total[i] = _level_row(pp, rr)
            num[i] = len(level[-1])
            per_row.append(level)
    size = compact_size(int(num.max(initial=1)), k) if compact else k
    floats = np.empty((4, rows, size), dtype)  # mass, log F, log(F⁻/F), 1 - F
    reward = np.empty((rows, size), dtype)
    count = np.zeros((rows, size), np.int32)
    for i, (values, top, *level, c) in enumerate(per_row):
        nl = len(c)
        reward[i, :nl], reward[i, nl:], count[i, :nl] = values, top, c
        for j, v in enumerate(level):
            floats[j, i, :nl] = v
            floats[j, i, nl:] = 0.0  # padding: m = 0, F = F⁻ = 1
    shape = lambda a: a.reshape(batch + a.shape[1:])
    return (shape(order), shape(lid), shape(num), shape(reward), *(shape(f) for f in floats), shape(count),
            shape(total))
