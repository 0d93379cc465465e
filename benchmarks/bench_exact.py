"""Timing of the exact BoN layer against a plain NumPy implementation (same run, same inputs).

    python benchmarks/bench_exact.py [--dtype float64|float32] [--repeats 5] [--tuned-malloc]

* ``bon_kl`` and ``bon_pmf`` for K = 10⁶ outcomes over 64 values of n, with ~8k distinct reward levels and
  with all rewards distinct, two ways: (a) ``jax.jit(jax.vmap(f, in_axes=(None, None, 0)))`` — everything
  traced, so the level arrays have a static length: 2^14 (``FEW_LEVELS``) when the rewards have that few
  distinct values, else K; (b) an eager call with an array ``n`` — the concrete path, which keeps the real
  levels only (``compact_levels``); either way each n costs O(#levels);
* ``bon_sample_exact``: 10⁶ exact BoN draws at n = 1 and n = 10⁴, and 10⁵ draws at each of 64 n from one sort
  (``reward_levels`` once, then ``bon_sample_exact_from_levels``);
* the floor: one sort of the rewards into levels (``sort_levels``; NumPy's ``np.sort`` beside it), and the
  elementwise work alone (``bon_kl_from_levels`` on levels built beforehand);
* a PyTorch column when torch is installed (``pip install -e .[bench]``): the same algorithm, vectorised, its
  ties grouped by ``torch.unique``.

Memory: on some machines (seen on a 2-core VM) a fresh 8 MB buffer costs milliseconds in page faults and
``munmap``; XLA allocates its outputs and temporaries per call, NumPy its results, and glibc returns large
blocks to the system at once. ``--tuned-malloc`` re-runs the benchmark in a child process whose glibc keeps
freed memory (``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``), for every column alike, to show how much
of a time is the allocator's.

The NumPy reference groups ties first (``np.unique``) and then evaluates every n on the levels; its sampler
is the same inverse-CDF algorithm. JAX functions are jitted with the arrays passed as arguments, compiled
once before timing, and timed with ``block_until_ready``. Times are the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import jax
import numpy as np


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# ------------------------------------------------------------------------------------ NumPy reference


def np_levels(p, r):
    vals, inv = np.unique(r, return_inverse=True)
    m = np.bincount(inv, weights=p, minlength=len(vals))
    f = np.cumsum(m)
    f_lo = f - m
    return inv, m, f, f_lo


def np_bon_kl(p, r, ns):
    _, m, f, f_lo = np_levels(p, r)
    nn = ns[:, None].astype(float)
    q = f[None, :] ** nn - f_lo[None, :] ** nn
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, q * np.log(q / m[None, :]), 0.0)
    return terms.sum(axis=1)


def np_bon_pmf(p, r, ns):
    inv, m, f, f_lo = np_levels(p, r)
    nn = ns[:, None].astype(float)
    q = f[None, :] ** nn - f_lo[None, :] ** nn
    return (p / m[inv])[None, :] * q[:, inv]


def torch_fns(threads: int):
    """PyTorch versions of the NumPy reference (or None when torch is not installed)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)

    def levels(p, r):
        vals, inv = torch.unique(r, return_inverse=True)
        m = torch.zeros(len(vals), dtype=p.dtype).index_add_(0, inv, p)
        f = torch.cumsum(m, 0)
        return inv, m, f, f - m

    def kl(p, r, ns):
        _, m, f, f_lo = levels(p, r)
        nn = ns[:, None].to(p.dtype)
        q = f[None, :] ** nn - f_lo[None, :] ** nn
        return torch.where(q > 0, q * torch.log(q / m[None, :]), torch.zeros((), dtype=p.dtype)).sum(1)

    def pmf(p, r, ns):
        inv, m, f, f_lo = levels(p, r)
        nn = ns[:, None].to(p.dtype)
        q = f[None, :] ** nn - f_lo[None, :] ** nn
        return (p / m[inv])[None, :] * q[:, inv]

    def sample(gen, p, r, n, size):
        order = torch.argsort(r, stable=True)
        rs, ps = r[order], p[order]
        new = torch.ones(len(rs), dtype=torch.bool)
        new[1:] = rs[1:] != rs[:-1]
        starts = torch.nonzero(new).flatten()
        ends = torch.cat([starts[1:], torch.tensor([len(rs)])])
        cum = torch.cumsum(ps, 0)
        f = cum[ends - 1]
        f_lo = torch.cat([torch.zeros(1, dtype=p.dtype), f[:-1]])
        v = torch.rand(size, generator=gen, dtype=p.dtype) ** (1.0 / n)
        lvl = torch.clamp(torch.searchsorted(f, v), max=len(f) - 1)
        t = f_lo[lvl] + torch.rand(size, generator=gen, dtype=p.dtype) * (f[lvl] - f_lo[lvl])
        idx = torch.minimum(torch.maximum(torch.searchsorted(cum, t, right=True), starts[lvl]), ends[lvl] - 1)
        return order[idx]

    return torch, kl, pmf, sample


def np_bon_sample(rng, p, r, n, size):
    return np_bon_sample_sorted(rng, p, r, np.argsort(r, kind="stable"), n, size)


def np_bon_sample_sorted(rng, p, r, order, n, size):
    rs, ps = r[order], p[order]
    starts = np.flatnonzero(np.r_[True, rs[1:] != rs[:-1]])
    ends = np.r_[starts[1:], len(rs)]
    cum = np.cumsum(ps)
    f = cum[ends - 1]
    f_lo = np.r_[0.0, f[:-1]]
    v = rng.random(size) ** (1.0 / n)
    lvl = np.minimum(np.searchsorted(f, v, side="left"), len(f) - 1)
    t = f_lo[lvl] + rng.random(size) * (f[lvl] - f_lo[lvl])
    idx = np.clip(np.searchsorted(cum, t, side="right"), starts[lvl], ends[lvl] - 1)
    return order[idx]


# ------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--outcomes", type=int, default=1_000_000)
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--tuned-malloc", action="store_true", help="run in a child with glibc keeping freed memory")
    args = parser.parse_args()
    if args.tuned_malloc:
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(2**32), MALLOC_TRIM_THRESHOLD_=str(2**36))
        argv = [a for a in sys.argv if a != "--tuned-malloc"]
        print("glibc tuned to keep freed memory (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_):", flush=True)
        raise SystemExit(subprocess.call([sys.executable, *argv], env=env))
    jax.config.update("jax_enable_x64", args.dtype == "float64")

    import jax.numpy as jnp

    from bontheory import (
        bon_kl,
        bon_kl_from_levels,
        bon_pmf,
        bon_sample_exact,
        bon_sample_exact_from_levels,
        reward_levels,
    )
    from bontheory.exact.levels import sort_levels

    dtype = np.dtype(args.dtype)
    k = args.outcomes
    rng = np.random.default_rng(0)
    p64 = rng.dirichlet(np.ones(k))
    ns_np = np.unique(np.round(np.logspace(0, 4, 80)).astype(np.int64))[:64]
    assert len(ns_np) == 64
    cases = {
        "8k levels": rng.integers(0, 8192, size=k).astype(np.float64),
        "all distinct": rng.permutation(k).astype(np.float64),
    }
    th = torch_fns(args.torch_threads)
    if th is not None:
        torch, t_kl, t_pmf, t_sample = th
        tdt = torch.float64 if args.dtype == "float64" else torch.float32
        tp, tns = torch.tensor(p64, dtype=tdt), torch.tensor(ns_np)

    kl_fn = jax.jit(jax.vmap(bon_kl, in_axes=(None, None, 0)))
    pmf_fn = jax.jit(jax.vmap(bon_pmf, in_axes=(None, None, 0)))
    sample_fn = jax.jit(bon_sample_exact, static_argnames="shape")
    sort_fn = jax.jit(sort_levels)
    half = max(1, args.repeats // 2)

    rows = []  # (name, JAX s, NumPy s, torch s or nan, max |ΔKL| vs NumPy)
    nan = float("nan")
    p = jnp.asarray(p64, dtype)
    ns = jnp.asarray(ns_np)
    for name, r64 in cases.items():
        r = jnp.asarray(r64, dtype)
        tr = torch.tensor(r64, dtype=tdt) if th is not None else None
        kl_n = np_bon_kl(p64, r64, ns_np)
        tn = _median_time(lambda: np_bon_kl(p64, r64, ns_np), args.repeats)
        tt = _median_time(lambda: t_kl(tp, tr, tns), args.repeats) if th is not None else nan
        # (a) everything under the caller's jit + vmap over n: level arrays padded to K, padding blocks skipped
        err = float(np.max(np.abs(np.asarray(kl_fn(p, r, ns)) - kl_n)))  # compiles
        tj = _median_time(lambda: kl_fn(p, r, ns), args.repeats)
        rows.append((f"bon_kl, 64 n, {name}, jit+vmap", tj, tn, tt, err))
        # (b) eager call with an array of n: checks, one sort, padding levels dropped (compact_levels)
        err = float(np.max(np.abs(np.asarray(bon_kl(p, r, ns)) - kl_n)))  # compiles
        tj = _median_time(lambda: bon_kl(p, r, ns), args.repeats)
        rows.append((f"bon_kl, 64 n, {name}, eager array n", tj, tn, tt, err))
        tn = _median_time(lambda: np_bon_pmf(p64, r64, ns_np), half)
        tt = _median_time(lambda: t_pmf(tp, tr, tns), half) if th is not None else nan
        jax.block_until_ready(pmf_fn(p, r, ns))  # compile
        tj = _median_time(lambda: pmf_fn(p, r, ns), half)
        rows.append((f"bon_pmf, 64 n, {name}, jit+vmap", tj, tn, tt, nan))
        jax.block_until_ready(bon_pmf(p, r, ns))  # compile
        tj = _median_time(lambda: bon_pmf(p, r, ns), half)
        rows.append((f"bon_pmf, 64 n, {name}, eager array n", tj, tn, tt, nan))
        # the floor: one sort into levels, and the per-n elementwise work alone on levels built beforehand
        jax.block_until_ready(sort_fn(r))
        tj = _median_time(lambda: sort_fn(r), args.repeats)
        tn = _median_time(lambda: np.sort(r64), args.repeats)
        rows.append((f"floor: one sort into levels, {name} (NumPy: np.sort)", tj, tn, nan, nan))
        levels = reward_levels(p, r)
        jax.block_until_ready(bon_kl_from_levels(levels, ns))
        tj = _median_time(lambda: bon_kl_from_levels(levels, ns), args.repeats)
        rows.append((f"floor: bon_kl elementwise on levels, {name}", tj, nan, nan, nan))

    r64 = cases["8k levels"]
    r = jnp.asarray(r64, dtype)
    tr = torch.tensor(r64, dtype=tdt) if th is not None else None
    gen = torch.Generator().manual_seed(0) if th is not None else None
    draws = 1_000_000
    for n in [1, 10_000]:
        key = jax.random.key(n)
        jax.block_until_ready(sample_fn(key, p, r, n, shape=(draws,)))  # compile
        tj = _median_time(lambda: sample_fn(key, p, r, n, shape=(draws,)), args.repeats)
        tn = _median_time(lambda: np_bon_sample(rng, p64, r64, n, draws), args.repeats)
        tt = _median_time(lambda: t_sample(gen, tp, tr, n, draws), args.repeats) if th is not None else nan
        rows.append((f"bon_sample_exact, 1e6 draws, n={n}", tj, tn, tt, nan))
    # many n from one sort: 1e5 draws at each of 64 n (NumPy: one sort, then its sampler's search per n)
    key = jax.random.key(7)
    many = lambda: bon_sample_exact_from_levels(key, reward_levels(p, r), ns, (100_000,))
    jax.block_until_ready(many())
    tj = _median_time(many, half)

    def np_many():
        order = np.argsort(r64, kind="stable")
        return [np_bon_sample_sorted(rng, p64, r64, order, n, 100_000) for n in ns_np]

    tn = _median_time(np_many, half)
    rows.append(("bon_sample_exact_from_levels, 64 n x 1e5 draws, one sort", tj, tn, nan, nan))

    # a batch of (p, r) pairs x 64 n must not cost more per pair than one pair: B pairs of K / B outcomes each
    b = 16
    pb = jnp.asarray(rng.dirichlet(np.ones(k // b), size=b), dtype)
    rb = jnp.asarray(rng.integers(0, 8192 // b, size=(b, k // b)), dtype)
    batch_fn = jax.jit(lambda p, r, n: bon_kl(p[:, None, :], r[:, None, :], n))  # (B, 64)
    jax.block_until_ready(batch_fn(pb, rb, ns))
    tb = _median_time(lambda: batch_fn(pb, rb, ns), args.repeats)
    jax.block_until_ready(kl_fn(pb[0], rb[0], ns))
    t1 = _median_time(lambda: [kl_fn(pb[i], rb[i], ns) for i in range(b)], args.repeats)
    tn = _median_time(lambda: [np_bon_kl(np.asarray(pb[i]), np.asarray(rb[i]), ns_np) for i in range(b)], half)
    rows.append((f"bon_kl, batch of {b} pairs x 64 n (K/{b} each), one call", tb, tn, nan, nan))
    rows.append((f"bon_kl, the same {b} pairs, one jitted call per pair", t1, tn, nan, nan))

    torch_note = ", torch not installed"
    if th is not None:
        torch_note = f", torch {torch.__version__} ({args.torch_threads} threads)"
    print(f"K = {k} outcomes, {args.dtype}, backend {jax.default_backend()}, median of {args.repeats}" + torch_note)
    print(f"{'case':58s} {'JAX (ms)':>9s} {'NumPy (ms)':>10s} {'NumPy/JAX':>9s} {'torch (ms)':>10s} {'torch/JAX':>9s} "
          f"{'max |ΔKL|':>9s}")
    for name, tj, tn, tt, err in rows:
        print(f"{name:58s} {1e3 * tj:9.1f} {1e3 * tn:10.1f} {tn / tj:9.2f} {1e3 * tt:10.1f} {tt / tj:9.2f} {err:9.2g}")


if __name__ == "__main__":
    main()
