"""Benchmark: variational-BoN training speed on CPU, JAX vs a plain NumPy exact-gradient reference.

Task: a random memoryless reference over V^L sequences, a random sequence-level reward, n = 8; the trained
policy is a full-history tabular policy initialised at the reference (it can represent π_n exactly).

Rows: steps/s of the exact objective (KL(π_θ‖π_n) and its gradient over all V^L sequences, one jitted
``lax.scan``), of the sampled REINFORCE objective (batch 32, exact per-token KL), and of a NumPy
implementation of the same exact-gradient Adam step; and the wall time until KL(π_θ‖π_n) < 1e-3
(JAX: including compilation). Timings on a shared machine are noisy.

Run: ``python benchmarks/bench_vbon.py [--length L]``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bontheory import (
    ExactDivergenceLoss,
    PolicyGradientLoss,
    enumerate_sequences,
    expand_tabular_policy,
    init_train_state,
    random_tabular_policy,
    reverse_kl,
    train_steps,
    vbon_target_log_probs,
)
from bontheory.policies.tabular import context_index


def numpy_exact_trainer(table0, seqs, ctx, target_lp, lr, vocab):
    """Adam on KL(π_θ‖t) for a tabular policy, exact gradient over all sequences, in NumPy."""
    theta = table0.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    length = seqs.shape[1]
    pos = np.broadcast_to(np.arange(length), seqs.shape)
    onehot = np.eye(vocab)[seqs]  # (K, L, V)
    b1, b2, eps = 0.9, 0.999, 1e-8
    step = 0

    def log_probs(th):
        z = th - th.max(-1, keepdims=True)
        lsm = z - np.log(np.exp(z).sum(-1, keepdims=True))
        return lsm, lsm[pos, ctx, seqs].sum(-1)

    def kl():
        _, lq = log_probs(theta)
        return float(np.sum(np.exp(lq) * (lq - target_lp)))

    def one_step():
        nonlocal theta, m, v, step
        lsm, lq = log_probs(theta)
        q = np.exp(lq)
        g_y = q * (lq - target_lp + 1.0)  # dKL/d log q(y)
        probs = np.exp(lsm)[pos, ctx]  # (K, L, V)
        contrib = g_y[:, None, None] * (onehot - probs)
        grad = np.zeros_like(theta)
        np.add.at(grad, (pos, ctx), contrib)
        step += 1
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad**2
        mh = m / (1 - b1**step)
        vh = v / (1 - b2**step)
        theta = theta - lr * mh / (np.sqrt(vh) + eps)

    return one_step, kl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=4)
    ap.add_argument("--length", type=int, default=5)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    jax.config.update("jax_enable_x64", True)
    vocab, length, n = args.vocab, args.length, args.n
    kp, kr, km = jax.random.split(jax.random.key(0), 3)
    ref = random_tabular_policy(kp, vocab, length, order=0)
    seqs, lp = enumerate_sequences(ref)
    rewards = jax.random.normal(kr, (seqs.shape[0],))
    target = vbon_target_log_probs(lp, rewards, n, "exact")
    init = expand_tabular_policy(ref, None)
    lr = 0.3
    opt = optax.adam(lr)
    rows = []

    # --- time to KL < 1e-3 (JAX, including compilation), exact objective
    data = {"sequences": seqs, "target_log_probs": target}
    obj = ExactDivergenceLoss()
    t0 = time.perf_counter()
    state = init_train_state(jax.random.key(1), init, opt)
    chunk = 25
    kl = np.inf
    while kl >= 1e-3 and int(state.step) < 20000:
        state, _ = train_steps(state, data, objective=obj, optimizer=opt, num_steps=chunk)
        kl = float(reverse_kl(state.policy.log_prob(seqs), target))
    jax_time_to_target = time.perf_counter() - t0
    jax_steps_to_target = int(state.step)

    # --- exact steps/s (compiled)
    state = init_train_state(jax.random.key(1), init, opt)
    train_steps(state, data, objective=obj, optimizer=opt, num_steps=args.steps)[0].step.block_until_ready()
    t0 = time.perf_counter()
    s2, _ = train_steps(state, data, objective=obj, optimizer=opt, num_steps=args.steps)
    jax.block_until_ready(s2)
    exact_sps = args.steps / (time.perf_counter() - t0)
    rows.append(("JAX exact KL(π_θ‖π_n) step", f"{exact_sps:,.0f} steps/s", ""))

    # --- sampled steps/s
    reward_table = rewards

    import flax.struct

    @flax.struct.dataclass
    class TableReward:  # the random reward as a lookup by sequence index
        table: jax.Array

        def __call__(self, s):
            idx = jnp.sum(s * (vocab ** jnp.arange(length - 1, -1, -1)), axis=-1)
            return self.table[idx]

    reward = TableReward(reward_table)
    sdata = {"ref_policy": ref, "reward": reward, "kl_coef": jnp.asarray(1.0), "n": jnp.asarray(float(n)),
             "ref_reward_samples": reward(ref.sample(km, 300))}
    sobj = PolicyGradientLoss(num_samples=32)
    sopt = optax.adam(0.05)
    sstate = init_train_state(jax.random.key(2), init, sopt)
    jax.block_until_ready(train_steps(sstate, sdata, objective=sobj, optimizer=sopt, num_steps=args.steps))
    t0 = time.perf_counter()
    jax.block_until_ready(train_steps(sstate, sdata, objective=sobj, optimizer=sopt, num_steps=args.steps))
    sampled_sps = args.steps / (time.perf_counter() - t0)
    rows.append(("JAX sampled REINFORCE step (B=32)", f"{sampled_sps:,.0f} steps/s", ""))

    # --- NumPy reference: exact gradient + Adam
    table0 = np.asarray(init.params["logits"], dtype=np.float64)
    ctx = np.asarray(context_index(seqs, vocab, init.module.context_order))
    one_step, np_kl = numpy_exact_trainer(table0, np.asarray(seqs), ctx, np.asarray(target), lr, vocab)
    k = max(args.steps // 4, 10)
    t0 = time.perf_counter()
    for _ in range(k):
        one_step()
    np_sps = k / (time.perf_counter() - t0)
    rows.append(("NumPy exact KL(π_θ‖π_n) step", f"{np_sps:,.0f} steps/s", f"JAX/NumPy = {exact_sps / np_sps:.1f}x"))
    # NumPy time to target (same optimiser; continue from a fresh start)
    one_step, np_kl = numpy_exact_trainer(table0, np.asarray(seqs), ctx, np.asarray(target), lr, vocab)
    t0 = time.perf_counter()
    steps = 0
    while steps < jax_steps_to_target:
        one_step()
        steps += 1
    np_time = time.perf_counter() - t0
    rows.append((f"time to KL<1e-3, JAX (incl. compile; {jax_steps_to_target} steps)", f"{jax_time_to_target:.2f} s",
                 f"final KL {kl:.2e}"))
    rows.append((f"time for the same {steps} steps, NumPy", f"{np_time:.2f} s", f"final KL {np_kl():.2e}"))

    print(f"vBoN training benchmark: V={vocab}, L={length} ({vocab**length} sequences), n={n}, "
          f"full-history tabular policy, CPU {jax.devices()[0].platform}, shared machine (noisy)")
    w = max(len(r[0]) for r in rows)
    for name, val, note in rows:
        print(f"  {name:<{w}}  {val:>16}  {note}")


if __name__ == "__main__":
    main()
