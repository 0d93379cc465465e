"""Timing of the exact BoN layer against a plain NumPy implementation (same run, same inputs).

    python benchmarks/bench_exact.py [--dtype float64|float32] [--repeats 5]

* ``bon_kl`` and ``bon_pmf`` for K = 10⁶ outcomes over 64 values of n, with ~8k distinct reward levels and
  with all rewards distinct, two ways: (a) ``jax.jit(jax.vmap(f, in_axes=(None, None, 0)))`` — everything
  traced, so the level arrays keep length K; (b) an eager call with an array ``n`` — the concrete path,
  which drops padding levels (``compact_levels``) so each n costs O(#levels);
* ``bon_sample_exact``: 10⁶ exact BoN draws at n = 1 and n = 10⁴.

The NumPy reference groups ties first (``np.unique``) and then evaluates every n on the levels; its sampler
is the same inverse-CDF algorithm. JAX functions are jitted with the arrays passed as arguments, compiled
once before timing, and timed with ``block_until_ready``. Times are the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
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


def np_bon_sample(rng, p, r, n, size):
    order = np.argsort(r, kind="stable")
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
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", args.dtype == "float64")

    import jax.numpy as jnp

    from bontheory import bon_kl, bon_pmf, bon_sample_exact

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

    kl_fn = jax.jit(jax.vmap(bon_kl, in_axes=(None, None, 0)))
    pmf_fn = jax.jit(jax.vmap(bon_pmf, in_axes=(None, None, 0)))
    sample_fn = jax.jit(bon_sample_exact, static_argnames="shape")

    rows = []
    p = jnp.asarray(p64, dtype)
    ns = jnp.asarray(ns_np)
    for name, r64 in cases.items():
        r = jnp.asarray(r64, dtype)
        kl_n = np_bon_kl(p64, r64, ns_np)
        tn = _median_time(lambda: np_bon_kl(p64, r64, ns_np), args.repeats)
        # (a) everything under the caller's jit + vmap over n: level arrays padded to K
        err = float(np.max(np.abs(np.asarray(kl_fn(p, r, ns)) - kl_n)))  # compiles
        tj = _median_time(lambda: kl_fn(p, r, ns), args.repeats)
        rows.append((f"bon_kl, 64 n, {name}, jit+vmap", tj, tn, err))
        # (b) eager call with an array of n: checks, one sort, padding levels dropped (compact_levels)
        err = float(np.max(np.abs(np.asarray(bon_kl(p, r, ns)) - kl_n)))  # compiles
        tj = _median_time(lambda: bon_kl(p, r, ns), args.repeats)
        rows.append((f"bon_kl, 64 n, {name}, eager array n", tj, tn, err))
        tn = _median_time(lambda: np_bon_pmf(p64, r64, ns_np), max(1, args.repeats // 2))
        jax.block_until_ready(pmf_fn(p, r, ns))  # compile
        tj = _median_time(lambda: pmf_fn(p, r, ns), max(1, args.repeats // 2))
        rows.append((f"bon_pmf, 64 n, {name}, jit+vmap", tj, tn, float("nan")))
        jax.block_until_ready(bon_pmf(p, r, ns))  # compile
        tj = _median_time(lambda: bon_pmf(p, r, ns), max(1, args.repeats // 2))
        rows.append((f"bon_pmf, 64 n, {name}, eager array n", tj, tn, float("nan")))

    r64 = cases["8k levels"]
    r = jnp.asarray(r64, dtype)
    draws = 1_000_000
    for n in [1, 10_000]:
        key = jax.random.key(n)
        jax.block_until_ready(sample_fn(key, p, r, n, shape=(draws,)))  # compile
        tj = _median_time(lambda: sample_fn(key, p, r, n, shape=(draws,)), args.repeats)
        tn = _median_time(lambda: np_bon_sample(rng, p64, r64, n, draws), args.repeats)
        rows.append((f"bon_sample_exact, 1e6 draws, n={n}", tj, tn, float("nan")))

    print(f"K = {k} outcomes, {args.dtype}, backend {jax.default_backend()}, median of {args.repeats}")
    print(f"{'case':48s} {'JAX (ms)':>10s} {'NumPy (ms)':>11s} {'NumPy/JAX':>10s} {'max |ΔKL|':>10s}")
    for name, tj, tn, err in rows:
        print(f"{name:48s} {1e3 * tj:10.1f} {1e3 * tn:11.1f} {tn / tj:10.2f} {err:10.2g}")


if __name__ == "__main__":
    main()
