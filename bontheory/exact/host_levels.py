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

import threading

import numpy as np

_LOW = np.uint64(0xFFFFFFFF)
_SIGN = np.uint64(1 << 63)
#: Levels of at most this many outcomes keep the plain (sequential, float64) sum of their probabilities, within
#: SHORT_LEVEL·eps ≈ 1e-12 of their own size; longer levels are summed pairwise.
SHORT_LEVEL = 4096
#: Work arrays up to this many bytes (K ≤ 4·10⁶ outcomes) are kept per thread and reused by the next call of the
#: same length: 45 bytes per outcome stay allocated in each thread that built levels (45 MB for K = 10⁶).
SCRATCH_BYTES = 1 << 25

_scratch_arrays = threading.local()


def _scratch(name: str, k: int, dtype: type, make=np.empty) -> np.ndarray:
    """A K-length work array of this thread, ``make(k, dtype)``, reused across calls (``np.empty``: its contents
    are garbage; anything else: kept read-only). On small VMs a fresh 8 MB array costs milliseconds of page faults,
    more than the sort; arrays over ``SCRATCH_BYTES`` are fresh. Never returned to a caller: results are copied
    out."""
    cache = _scratch_arrays.__dict__
    a = cache.get(name)
    if a is None or a.shape[0] != k or a.dtype != dtype:
        a = make(k, dtype=dtype)
        if a.nbytes <= SCRATCH_BYTES:
            cache[name] = a
    return a


def _ordered_bits(r: np.ndarray) -> tuple[np.ndarray, int]:
    """Unsigned keys (in a work array) whose order is the order of ``r`` (equal keys exactly for equal values),
    and their width in bits. Written with in-place operations into work arrays (fresh arrays cost page faults)."""
    k = r.shape[-1]
    u = _scratch("keys", k, np.uint64)
    if r.dtype == np.bool_ or (np.issubdtype(r.dtype, np.integer) and r.dtype.itemsize <= 4):
        np.add(r, 2**31, out=u.view(np.int64), dtype=np.int64)
        return u, 32
    if np.issubdtype(r.dtype, np.integer):
        np.copyto(u.view(np.int64), r, casting="unsafe")
        u ^= _SIGN
        return u, 64
    flip = _scratch("flip", k, np.uint64)
    if r.dtype.itemsize <= 4:  # float16 / bfloat16 / float32: exact in float32
        f32 = _scratch("float32", k, np.float32)
        np.copyto(f32, r, casting="unsafe")
        f32 += np.float32(0)  # -0.0 -> 0.0
        np.copyto(u, f32.view(np.uint32))
        np.right_shift(u, np.uint64(31), out=flip)  # 1 where negative
        flip *= np.uint64(0x7FFFFFFF)
        flip |= np.uint64(1 << 31)
        u ^= flip  # negative: the 32 bits flipped; positive: bit 31 set
        return u, 32
    np.add(r, 0.0, out=u.view(np.float64), dtype=np.float64)  # + 0: -0.0 -> 0.0
    np.right_shift(u.view(np.int64), 63, out=flip.view(np.int64))  # arithmetic: all ones where negative
    flip |= _SIGN
    u ^= flip  # negative: all bits flipped; positive: the sign bit set
    return u, 64


def _sort_keys(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable argsort of one row ``(K,)`` (int64) and the flags of the sorted positions that start a new level,
    both in work arrays, by sorting packed ``key << 32 | index`` words (NumPy's vectorised sort of 64-bit
    integers, several times faster than its argsort). A 64-bit key packs its high 32 bits; outcomes whose high
    halves tie but whose values differ (rare) are re-sorted in a second pass."""
    k = r.shape[-1]
    u, bits = _ordered_bits(r)
    words = _scratch("words", k, np.uint64)
    if bits == 32:
        np.left_shift(u, np.uint64(32), out=words)
        exact = True
    else:
        np.bitwise_and(u, _LOW, out=words)
        exact = not words.any()  # every key fits in its high 32 bits (e.g. integer-valued rewards)
        np.bitwise_and(u, ~_LOW, out=words)
    words |= _scratch("index", k, np.uint64, make=np.arange)  # arange(K)
    words.sort()
    order = _scratch("order", k, np.int64)
    np.bitwise_and(words, _LOW, out=order.view(np.uint64))
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
    new = _scratch("new", k, np.bool_)
    new[0] = True
    np.not_equal(us[1:], us[:-1], out=new[1:])
    return order, new


def host_sort_levels(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stable sort of every row of ``r`` ``(..., K)`` into levels: ``(order, level id per sorted position)``."""
    r = np.asarray(r)
    k = r.shape[-1]
    rows = r.reshape(-1, k)
    order = np.empty(rows.shape, np.int32)
    lid = np.empty(rows.shape, np.int32)
    for i, row in enumerate(rows):
        _copy_sorted(_sort_keys(row), order[i], lid[i])
    return order.reshape(r.shape), lid.reshape(r.shape)


def _copy_sorted(
    sorted_row: tuple[np.ndarray, np.ndarray],
    order: np.ndarray | None,
    lid: np.ndarray,
    level_of: np.ndarray | None = None,
) -> None:
    """Writes a row's order (int32, if asked), level ids per sorted position (``cumsum(new) - 1``) and, if asked,
    the level of each outcome (``level_of[order] = lid``) out of the work arrays."""
    if order is not None:
        np.copyto(order, sorted_row[0], casting="unsafe")
    np.cumsum(sorted_row[1], dtype=np.int32, out=lid)
    lid -= 1
    if level_of is not None:
        level_of[sorted_row[0]] = lid


def _log(x: np.ndarray) -> np.ndarray:
    """``log x`` with ``log 0 = -inf`` and ``-inf`` for NaN too (as ``numerics.safe_log``)."""
    pos = x > 0
    return np.where(pos, np.log(np.where(pos, x, 1.0)), -np.inf)


def _level_row(p: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
    k = p.shape[-1]
    order, new = _sort_keys(r)
    ps = p[order].astype(np.float64, copy=False)  # int64 indices: the fastest gather
    np.maximum(ps, 0, out=ps)
    starts = np.flatnonzero(new)
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
    # "sorted": the order and new-level flags, in work arrays (overwritten by the next row)
    return dict(sorted=(order, new), reward=r[order[starts]], top=r[order[-1]], mass=mass, log_mass=_log(mass),
                log_cdf=log_cdf, log_ratio=log_ratio, tail=tail, count=count, total=total)


def compact_size(num_levels: int, k: int, min_outcomes: int = 4096) -> int:
    """The level-array length kept by compaction: K below ``min_outcomes`` outcomes, else the number of levels
    rounded up to a power of two (few distinct shapes are compiled), at most K."""
    if k < min_outcomes:
        return k
    return min(k, 1 << max(0, num_levels - 1).bit_length())


#: The arrays :func:`host_level_arrays` can return besides ``num_levels`` and ``total``: per sorted position
#: (``order``), per outcome (``level_of``) and per level (the rest).
HOST_FIELDS = ("order", "level_of", "reward", "mass", "log_mass", "log_cdf", "log_ratio", "tail", "count")


def host_level_arrays(
    p: np.ndarray,
    r: np.ndarray,
    dtype: np.dtype,
    compact: bool = False,
    fields: tuple[str, ...] = HOST_FIELDS,
    size: int | None = None,
) -> dict[str, np.ndarray]:
    """The level arrays of every row of ``(p, r)`` ``(..., K)``, padded to K (to :func:`compact_size` of the
    largest number of levels with ``compact``; to ``size`` if given, keeping the first ``size`` levels).

    Returns a dict of ``num_levels``, ``total`` and the requested ``fields`` (of :data:`HOST_FIELDS`): ``order``
    (the outcome at each sorted position), ``level_of`` (the level of each outcome), then ``reward``, ``mass``,
    ``log_mass``, ``log_cdf``, ``log_ratio``, ``tail``, ``count``; integers int32, floats in ``dtype``; ``total``
    is the unnormalised mass :math:`\\sum_y \\max(p(y), 0)` ``(...)``. Padding levels (past ``num_levels``) have
    the top reward, zero mass and count, :math:`\\log m = -\\infty`, :math:`\\log F = \\log(F^-/F) = 0`. (The
    caller derives :math:`\\log F^-_\\ell = \\log F_\\ell + \\log(F^-_\\ell/F_\\ell)`, a sum of two non-positive
    numbers: under ``jit`` every array returned here costs a copy out of the callback, so callers ask only for
    what they read.)
    """
    p, r = np.asarray(p), np.asarray(r)
    k = p.shape[-1]
    batch = p.shape[:-1]
    rows = int(np.prod(batch, dtype=np.int64))
    sorted_fields = [f for f in ("order", "level_of") if f in fields]
    out = {f: np.empty((rows, k), np.int32) for f in sorted_fields}
    out["num_levels"] = np.empty((rows,), np.int32)
    out["total"] = np.empty((rows,), dtype)
    per_row = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i, (pp, rr) in enumerate(zip(p.reshape(rows, k), r.reshape(rows, k))):
            row = _level_row(pp, rr)
            sorted_row = row.pop("sorted")
            if sorted_fields:
                order, level_of = (out[f][i] if f in out else None for f in ("order", "level_of"))
                _copy_sorted(sorted_row, order, np.empty(k, np.int32), level_of)
            out["num_levels"][i] = len(row["count"])
            out["total"][i] = row["total"]
            per_row.append(row)
    if size is None:
        size = compact_size(int(out["num_levels"].max(initial=1)), k) if compact else k
    for f in (f for f in HOST_FIELDS[2:] if f in fields):
        a = np.empty((rows, size), np.int32 if f == "count" else dtype)
        for i, row in enumerate(per_row):
            nl = min(len(row["count"]), size)
            a[i, :nl] = row[f][:nl]
            a[i, nl:] = {"reward": row["top"], "log_mass": -np.inf}.get(f, 0)  # padding: m = 0, F = F⁻ = 1
        out[f] = a
    return {f: a.reshape(batch + a.shape[1:]) for f, a in out.items()}
