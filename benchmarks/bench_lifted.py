"""Benchmark of the lifted layer (``bontheory.lifted``) beside Monte Carlo in the same wall time.

Markov-1 tabular policy over V = 50 tokens, L = 512 positions (50^512 sequences), float64. Rows:

1. ``reward_distribution`` (the forward DP) for a token count (1 automaton state) and a token count plus a
   pattern bonus (3 states);
2. exact BoN KL at 64 values of n (1 … 10^6) on that law (``bon_kl`` on ``(exp(log_probs), values)``);
3. 10^4 exact sequence draws at n = 10^4 (``bon_sample_sequences_exact``: forward pass with stored messages,
   then backward sampling).

Beside each row: how many ``bon_monte_carlo`` trials fit in the same wall time (its time per trial measured at
n = 16 and n = 10^4 on the same policy and reward) and the standard error of its expected-reward estimate,
``σ_n / √trials`` with σ_n the exact standard deviation of R under π_n. Timings exclude compilation (one
warm-up call) and take the best of ``--repeats``. Usage::

    python benchmarks/bench_lifted.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import bontheory as bt  # noqa: E402


def _best(fn, repeats):
    jax.block_until_ready(fn())  # warm-up (compilation)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return min(times)


def _mc_seconds_per_trial(policy, reward, n, trials, repeats):
    key = jax.random.key(0)
    return _best(lambda: bt.bon_monte_carlo(key, policy, reward, n, trials).rewards, repeats) / trials


def _bon_std(law, n):
    q = np.exp(np.asarray(bt.bon_level_log_probs(law.log_probs, n)))
    v = np.asarray(law.values)
    mean = np.sum(q * v)
    return float(np.sqrt(max(np.sum(q * (v - mean) ** 2), 0.0))), float(mean)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="L = 128 and fewer draws")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    vocab, length = 50, (128 if args.quick else 512)
    num_draws, n_draws = (2000 if args.quick else 10_000), 10_000
    policy = bt.random_tabular_policy(jax.random.key(0), vocab, length, order=1)
    rewards = {
        "count (S=1)": bt.TokenCountReward(3),
        "count+pattern (S=3)": bt.reward_sum(bt.TokenCountReward(3), bt.PatternReward((1, 2), value=4.0)),
    }
    ns = jnp.round(jnp.logspace(0, 6, 64)).astype(jnp.int64)  # 64 values of n, log-spaced 1 … 10^6

    print(f"# lifted layer: V = {vocab}, L = {length}, Markov-1, float64, {jax.devices()[0].platform}; "
          f"best of {args.repeats}")
    header = f"{'task':46s} {'reward':20s} {'exact s':>9s} {'MC n':>6s} {'MC trials':>10s} {'MC SE of E[R]':>14s}"
    print(header)
    print("-" * len(header))
    for name, reward in rewards.items():
        law = bt.reward_distribution(policy, reward)
        mc16 = _mc_seconds_per_trial(policy, reward, 16, 256, args.repeats)
        mc_big = _mc_seconds_per_trial(policy, reward, n_draws, 2, 1)
        sd16, _ = _bon_std(law, 16)
        sd_big, _ = _bon_std(law, n_draws)

        t_law = _best(lambda r=reward: bt.reward_distribution(policy, r).log_probs, args.repeats)
        m, values = jnp.exp(law.log_probs), law.values
        t_kl = _best(lambda m=m, values=values: bt.bon_kl(m, values, ns), args.repeats)
        key = jax.random.key(1)
        t_draw = _best(lambda r=reward: bt.bon_sample_sequences_exact(key, policy, r, n_draws, num_draws), args.repeats)

        rows = [
            ("reward_distribution (the law of R)", t_law, 16, mc16, sd16),
            ("law + exact BoN KL at 64 n (1 … 1e6)", t_law + t_kl, 16, mc16, sd16),
            (f"{num_draws} exact draws at n = {n_draws}", t_draw, n_draws, mc_big, sd_big),
        ]
        for task, t, n_mc, per_trial, sd in rows:
            trials = t / per_trial
            se = sd / np.sqrt(trials) if trials >= 1 else float("inf")
            print(f"{task:46s} {name:20s} {t:9.3f} {n_mc:6d} {trials:10.1f} {se:14.4g}")
        kl = np.asarray(bt.bon_kl(m, values, ns))
        print(f"{'  (64 n of BoN KL alone)':46s} {name:20s} {t_kl:9.4f}   KL at n = 1e6: {kl[-1]:.4f} nats; "
              f"{len(values)} levels; MC s/trial: n=16 {mc16:.2e}, n={n_draws} {mc_big:.2e}")


if __name__ == "__main__":
    main()
