"""Benchmark of the Monte Carlo BoN kernel (``bontheory.mc``) against vectorised NumPy, in the same run.

Prints three tables:

1. throughput — selected samples/s and candidate tokens/s of ``bon_monte_carlo`` vs a vectorised NumPy
   implementation of the same simulation (memoryless tabular policy, additive token-score reward, argmax
   with uniform tie-break), at n × trials ≥ 10⁶, plus a breakdown of the JAX time (sampling alone,
   sampling + reward) to show what bounds it;
2. peak memory (max RSS of a fresh subprocess) of the chunked kernel at n = 65 536 × 4 096 trials;
3. a sharded sweep (``bon_sweep(..., mesh=trial_mesh())``) with 1 vs 2 forced CPU devices (subprocesses).

The kernel is bound by random-number generation: with the default partitionable threefry its time is
within ~15 % of generating the L·n·trials uniforms alone; ``jax_threefry_partitionable=False`` (JAX's
old default: other random streams, same law) halves that cost (row measured in a subprocess).

Timings exclude compilation (one warm-up call) and take the best of ``--repeats``. Usage::

    python benchmarks/bench_mc.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np


def _best(fn, repeats):
    fn()  # warm-up (compilation)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def numpy_bon(rng, probs, scores, n, trials, trial_block=64):
    """Vectorised NumPy BoN: inverse-CDF token sampling, additive reward, argmax with uniform tie-break."""
    length, _vocab = probs.shape
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    out_r = np.empty(trials)
    out_seq = np.empty((trials, length), np.int32)
    for start in range(0, trials, trial_block):
        b = min(trial_block, trials - start)
        u = rng.random((b, n, length))
        toks = np.empty((b, n, length), np.int32)
        for t in range(length):
            toks[..., t] = np.searchsorted(cdf[t], u[..., t], side="right")
        r = scores[np.arange(length), toks].sum(-1)  # (b, n)
        top = r == r.max(-1, keepdims=True)
        j = np.argmax(np.where(top, rng.random(r.shape), -1.0), axis=-1)
        out_r[start : start + b] = r[np.arange(b), j]
        out_seq[start : start + b] = toks[np.arange(b), j]
    return out_seq, out_r


def _inverse_cdf_policy(log_probs):
    """A memoryless tabular policy sampling by inverse CDF (one uniform per token instead of V Gumbels).

    Same law as the tabular Policy (for comparison of samplers only; not part of the library).
    """
    import flax.struct
    import jax
    import jax.numpy as jnp

    @flax.struct.dataclass
    class InverseCDFPolicy:
        log_table: jax.Array  # (L, V) normalised

        @property
        def length(self):
            return self.log_table.shape[0]

        def sample(self, key, num):
            cdf = jnp.cumsum(jnp.exp(self.log_table), axis=-1)[:, :-1]  # (L, V-1)
            u = jax.random.uniform(key, (num, self.length), dtype=cdf.dtype)
            return jnp.sum(u[:, :, None] >= cdf[None, :, :], axis=-1).astype(jnp.int32)

        def log_prob(self, seqs):
            lp = jnp.take_along_axis(self.log_table[None], seqs[..., None].reshape(-1, self.length, 1), -1)
            return lp.reshape(seqs.shape).sum(-1)

    return InverseCDFPolicy(jnp.asarray(log_probs))


def throughput(args):
    import jax
    import jax.numpy as jnp

    import bontheory as bt

    vocab, length, n, trials = 16, 16, args.n, args.trials
    policy = bt.random_tabular_policy(jax.random.key(0), vocab, length, order=0)
    reward = bt.random_token_score_reward(jax.random.key(1), vocab, length)
    probs = np.exp(np.asarray(bt.tabular_log_probs_table(policy))[:, 0, :]).astype(np.float64)
    probs /= probs.sum(1, keepdims=True)
    scores = np.asarray(reward.scores, np.float64)
    key = jax.random.key(2)
    chunk = min(n, 1024)

    rows = []
    t_jax = _best(
        lambda: jax.block_until_ready(bt.bon_monte_carlo(key, policy, reward, n, trials, chunk_size=chunk)),
        args.repeats,
    )
    rng = np.random.default_rng(0)
    t_np = _best(lambda: numpy_bon(rng, probs, scores, n, trials), args.repeats)

    total = n * trials

    @jax.jit
    def sample_only(key, policy):
        def body(c, i):
            s = policy.sample(jax.random.fold_in(key, i), chunk)
            return c + s[0, 0], None

        return jax.lax.scan(body, 0, jnp.arange(total // chunk))[0]

    @jax.jit
    def sample_reward(key, policy, reward):
        def body(c, i):
            s = policy.sample(jax.random.fold_in(key, i), chunk)
            return c + jnp.max(reward(s)), None

        return jax.lax.scan(body, 0.0, jnp.arange(total // chunk))[0]

    icdf = _inverse_cdf_policy(np.log(probs).astype(np.float32))
    t_icdf = _best(
        lambda: jax.block_until_ready(bt.bon_monte_carlo(key, icdf, reward, n, trials, chunk_size=chunk)), args.repeats
    )
    t_sample = _best(lambda: jax.block_until_ready(sample_only(key, policy)), args.repeats)
    t_np_part = _run_script(
        THREEFRY_SCRIPT, [vocab, length, n, trials, chunk, args.repeats], {"JAX_THREEFRY_PARTITIONABLE": "false"}
    )["seconds"]
    t_sr = _best(lambda: jax.block_until_ready(sample_reward(key, policy, reward)), args.repeats)

    def row(name, t):
        rows.append(
            {
                "impl": name,
                "seconds": t,
                "selected/s": trials / t if name.startswith(("numpy", "jax bon")) else float("nan"),
                "candidate tokens/s": total * length / t,
                "speed-up vs NumPy": t_np / t,
            }
        )

    row("numpy (inverse CDF)", t_np)
    row("jax bon_monte_carlo", t_jax)
    row("jax bon_monte_carlo, stand-in memoryless inverse-CDF policy", t_icdf)
    row("jax bon_monte_carlo, jax_threefry_partitionable=False", t_np_part)
    row("jax sampling only (Policy.sample)", t_sample)
    row("jax sampling + reward", t_sr)
    return {"vocab": vocab, "length": length, "n": n, "trials": trials, "rows": rows}


MEMORY_SCRIPT = textwrap.dedent(
    """
    import resource, sys, time, json
    import numpy as np
    import jax, bontheory as bt
    n, trials, chunk = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    policy = bt.random_tabular_policy(jax.random.key(0), 8, 2, order=0)
    reward = bt.random_token_score_reward(jax.random.key(1), 8, 2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    t = time.perf_counter()
    d = jax.block_until_ready(bt.bon_monte_carlo(jax.random.key(2), policy, reward, n, trials, chunk_size=chunk))
    t = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"n": n, "trials": trials, "chunk": chunk, "seconds_incl_compile": t, "max_rss_mb": rss,
                      "rss_before_kernel_mb": before, "mean_selected_reward": float(d.rewards.mean())}))
    """
)

THREEFRY_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import jax, bontheory as bt
    vocab, length, n, trials, chunk, repeats = map(int, sys.argv[1:7])
    policy = bt.random_tabular_policy(jax.random.key(0), vocab, length, order=0)
    reward = bt.random_token_score_reward(jax.random.key(1), vocab, length)
    key2 = jax.random.key(2)
    f = lambda: jax.block_until_ready(bt.bon_monte_carlo(key2, policy, reward, n, trials, chunk_size=chunk))
    f()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    print(json.dumps({"seconds": min(ts), "partitionable": bool(jax.config.jax_threefry_partitionable)}))
    """
)

SWEEP_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import jax, bontheory as bt
    from bontheory import bon_sweep, trial_mesh
    n, trials = int(sys.argv[1]), int(sys.argv[2])
    pols = {"a": bt.random_tabular_policy(jax.random.key(0), 16, 16, order=1)}
    rews = {"s": bt.random_token_score_reward(jax.random.key(1), 16, 16)}
    mesh = trial_mesh()
    bon_sweep(jax.random.key(9), pols, rews, [n], [0], trials, mesh=mesh)  # compile
    t = time.perf_counter()
    rows = bon_sweep(jax.random.key(9), pols, rews, [n], [1, 2], trials, mesh=mesh)
    print(json.dumps({"devices": jax.device_count(), "seconds": time.perf_counter() - t,
                      "mean_reward": rows[0]["mean_reward"]}))
    """
)


def _run_script(script, argv, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", script, *map(str, argv)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(rows, cols):
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    widths = [max([len(c), 10] + [len(fmt(r[c])) for r in rows]) for c in cols]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(fmt(r[c]).rjust(w) for c, w in zip(cols, widths)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller memory / sweep runs")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--trials", type=int, default=4096)
    parser.add_argument("--parts", default="throughput,memory,sweep", help="comma-separated parts to run")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if args.n * args.trials < 10**6 and not args.quick:
        parser.error("n × trials must be ≥ 10⁶")

    print(f"# bontheory Monte Carlo benchmark ({os.cpu_count()} CPUs; timings are noisy on a shared machine)\n")
    if "throughput" in parts:
        _print_throughput(args)
    if "memory" in parts:
        _print_memory(args)
    if "sweep" in parts:
        _print_sweep(args)


def _print_throughput(args):
    tp = throughput(args)
    print(
        f"## Throughput: V={tp['vocab']}, L={tp['length']}, n={tp['n']}, trials={tp['trials']} "
        f"(n × trials = {tp['n'] * tp['trials']:.3g})"
    )
    _table(tp["rows"], ["impl", "seconds", "selected/s", "candidate tokens/s", "speed-up vs NumPy"])


def _print_memory(args):
    n_mem, t_mem = (8192, 1024) if args.quick else (65536, 4096)
    mem = _run_script(MEMORY_SCRIPT, [n_mem, t_mem, 1024])
    print(
        "\n## Peak memory (max RSS, fresh process; V=8, L=2 tabular policy, chunk 1024, "
        "default trial batch 32; max RSS before the kernel call vs after it)"
    )
    _table(
        [mem],
        ["n", "trials", "chunk", "seconds_incl_compile", "rss_before_kernel_mb", "max_rss_mb"],
    )


def _print_sweep(args):
    n_sw, t_sw = (64, 2048) if args.quick else (256, 8192)
    sweep_rows = []
    for d in (1, 2):
        res = _run_script(SWEEP_SCRIPT, [n_sw, t_sw], {"XLA_FLAGS": f"--xla_force_host_platform_device_count={d}"})
        sweep_rows.append(res)
    for r in sweep_rows:
        r["speed-up"] = sweep_rows[0]["seconds"] / r["seconds"]
        r["same numbers"] = r["mean_reward"] == sweep_rows[0]["mean_reward"]
    print(
        f"\n## Sharded sweep (2 cells, n={n_sw}, {t_sw} trials each, V=16, L=16 Markov-1 tabular policy; "
        f"forced CPU devices; excludes compilation)"
    )
    _table(sweep_rows, ["devices", "seconds", "speed-up", "same numbers"])


if __name__ == "__main__":
    main()
