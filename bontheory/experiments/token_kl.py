"""Token-level KL of BoN: exact vs the folk formula vs Beirami's estimator, exactly and by Monte Carlo.

Two random Markov-1 tabular policies over V**L sequences (a peaked one and a flat one) and two rewards (a
tie-heavy token count with L + 1 levels and a tie-free random additive token score). On the enumerated
sequence space: the exact KL(π_n‖p) (``bon_kl``), the folk formula log n − (n−1)/n (``bon_kl_bound``) and
the exact expectation of Beirami's estimator (``beirami_kl_expectation``), over n. By Monte Carlo
(``bontheory.mc.bon_cell``): the Beirami estimator with p(y) from the policy, the tie-aware level estimator
with the exact level masses (``level_kl_estimate``; the cell's ``kl_k1``) and with masses estimated from
reference rewards (``level_kl_estimate_from_reference``; ``kl_k1_ref``), and the plug-in KL, each ± a standard
error. The summary states how much of the folk formula's gap (folk − exact) each estimator closes:
``(folk − estimate)/(folk − exact)``, 1 for an unbiased estimator. docs/theory.md §2, §7.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bontheory.experiments import checks

NAME = "token_kl"
SUMMARY = (
    "token-level BoN KL: exact vs folk formula vs Beirami estimator (exact and Monte Carlo), "
    "peaked/flat × ties/no ties; exact on 50^1024 sequences (lifted)"
)


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings.

    Attributes:
      vocab_size: V.
      length: L (V**L sequences are enumerated).
      order: Markov order of the tabular policies.
      peaked_temperature: temperature of the peaked policy's Gaussian logits.
      flat_temperature: temperature of the flat policy's Gaussian logits.
      ns: n grid of the exact curves.
      mc_ns: n values with a Monte Carlo estimate.
      num_trials: Monte Carlo trials per cell (reference draws: as many).
      chunk_size: candidates per scan step of the kernel.
      long_vocab_size: V of the long-sequence part (not enumerated).
      long_length: L of the long-sequence part.
      long_order: Markov order of the long-sequence policies.
      long_ns: n grid of the long-sequence part.
      seed: random seed.
      x64: float64.
    """

    vocab_size: int = 4
    length: int = 6
    order: int = 1
    peaked_temperature: float = 0.25
    flat_temperature: float = 4.0
    ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
    mc_ns: tuple[int, ...] = (2, 8, 32, 128, 512)
    num_trials: int = 4096
    chunk_size: int = 256
    long_vocab_size: int = 50
    long_length: int = 1024
    long_order: int = 1
    long_ns: tuple[int, ...] = tuple(4**k for k in range(11))
    seed: int = 0
    x64: bool = True

    def __post_init__(self):
        checks.integer(self, "vocab_size", min=2)
        checks.integer(self, "length", min=1)
        checks.integer(self, "order", min=0)
        checks.number(self, "peaked_temperature", min=0.0, min_open=True)
        checks.number(self, "flat_temperature", min=0.0, min_open=True)
        checks.integers(self, "ns", min=1, increasing=True)
        checks.integers(self, "mc_ns", min=1, nonempty=False)
        checks.integer(self, "num_trials", min=2)
        checks.integer(self, "chunk_size", min=1)
        checks.integer(self, "long_vocab_size", min=2)
        checks.integer(self, "long_length", min=1)
        checks.integer(self, "long_order", min=0)
        checks.integers(self, "long_ns", min=1, increasing=True)
        checks.integer(self, "seed")
        checks.boolean(self, "x64")


QUICK = Config(length=5, mc_ns=(4, 64), num_trials=1024)

POLICIES = ("peaked", "flat")
REWARDS = ("tie_heavy", "tie_free")


def _problem(config: Config, policy_name: str, reward_name: str):
    import bontheory as bt

    key = jax.random.key(config.seed)
    temp = config.peaked_temperature if policy_name == "peaked" else config.flat_temperature
    policy = bt.random_tabular_policy(
        jax.random.fold_in(key, 0), config.vocab_size, config.length, order=config.order, temperature=temp
    )
    if reward_name == "tie_heavy":
        reward = bt.TokenCountReward(target=0)
    else:
        reward = bt.random_token_score_reward(jax.random.fold_in(key, 1), config.vocab_size, config.length)
    return policy, reward


def _exact(config: Config, policy, reward) -> dict:
    import bontheory as bt
    from bontheory import exact_space

    space = exact_space(policy, reward)
    p = jnp.exp(space.log_probs)
    ns = jnp.asarray(config.ns)
    levels = np.unique(np.asarray(space.rewards)).size
    return {
        "ns": list(config.ns),
        "exact_kl": bt.bon_kl(p, space.rewards, ns),
        "folk": bt.bon_kl_bound(ns),
        "beirami_expected": bt.beirami_kl_expectation(p, space.rewards, ns),
        "num_levels": levels,
        "num_sequences": int(p.shape[0]),
        "max_prob": float(p.max()),
        "collision": float(jnp.sum(p**2)),
    }


def _max_sequence_log_prob(policy) -> float:
    """``max_y log p(y)`` of a tabular policy (max-product recursion over positions and contexts)."""
    from bontheory import tabular_log_probs_table

    logp = np.asarray(tabular_log_probs_table(policy), np.float64)  # (L, V**k, V)
    length, contexts, vocab = logp.shape
    low = max(contexts // vocab, 1)
    best = np.full(contexts, -np.inf)
    best[0] = 0.0
    nxt = (np.arange(vocab)[None, :] + vocab * (np.arange(contexts)[:, None] % low)) if contexts > 1 else None
    for t in range(length):
        scores = best[:, None] + logp[t]
        if nxt is None:
            best = np.array([scores.max()])
        else:
            best = np.full(contexts, -np.inf)
            np.maximum.at(best, nxt.ravel(), scores.ravel())
    return float(best.max())


def _long_cell(config: Config, policy_name: str) -> dict:
    """Exact KL(π_n‖p) against the folk formula on the lifted law of the token-0 count (no enumeration)."""
    import bontheory as bt
    from bontheory.lifted.distribution import reward_distribution

    temp = config.peaked_temperature if policy_name == "peaked" else config.flat_temperature
    policy = bt.random_tabular_policy(
        jax.random.fold_in(jax.random.key(config.seed), 2),
        config.long_vocab_size,
        config.long_length,
        order=config.long_order,
        temperature=temp,
    )
    dist = reward_distribution(policy, bt.TokenCountReward(target=0))
    m = jnp.exp(dist.log_probs)  # every exact function applies to (m, values); masses below 1e-308 are 0 here
    ns = jnp.asarray(config.long_ns)
    max_log_p = _max_sequence_log_prob(policy)
    eps = jnp.exp(jnp.asarray(max_log_p))  # Beirami's D̂(ε) at the most likely sequence (0 if it underflows)
    return {
        "ns": list(config.long_ns),
        "exact_kl": bt.bon_kl(m, dist.values, ns),
        "folk": bt.bon_kl_bound(ns),
        "beirami_at_max_p": bt.beirami_kl_estimator(jnp.broadcast_to(eps, ns.shape), ns),
        "num_levels": int(dist.values.shape[0]),
        "min_log10_level_mass": float(jnp.min(dist.log_probs) / np.log(10)),
        "max_log10_sequence_prob": max_log_p / np.log(10),
        "log10_num_sequences": config.long_length * float(np.log10(config.long_vocab_size)),
        "vocab_size": config.long_vocab_size,
        "length": config.long_length,
    }


def run(config: Config, run) -> dict:
    from bontheory import bon_cell, cell_key, exact_space
    from bontheory.runner import progress

    out = {"policies": list(POLICIES), "rewards": list(REWARDS), "panels": {}}
    cells = [(pn, rn) for pn in POLICIES for rn in REWARDS]
    key = jax.random.key(config.seed)
    for pn, rn in progress(cells, "token_kl"):
        policy, reward = _problem(config, pn, rn)
        exact = run.cell(f"exact-{pn}-{rn}", lambda: _exact(config, policy, reward))
        space = None
        mc = []
        for n in config.mc_ns:

            def compute(n=n):
                nonlocal space
                space = space or exact_space(policy, reward)
                row = bon_cell(
                    cell_key(key, pn, rn, n),
                    policy,
                    reward,
                    n,
                    config.num_trials,
                    chunk_size=min(config.chunk_size, n),
                    space=space,
                )
                return dict(row, n=n)

            mc.append(run.cell(f"mc-{pn}-{rn}-n{n}", compute))
        out["panels"][f"{pn}/{rn}"] = {"exact": exact, "mc": mc}
    out["long"] = {pn: run.cell(f"long-{pn}", lambda pn=pn: _long_cell(config, pn)) for pn in POLICIES}
    return out


def plot(metrics: dict, out_dir) -> list:
    from bontheory.plotting import new_figure, save_figure

    pols, rews = metrics["policies"], metrics["rewards"]
    fig, axes = new_figure(len(pols), len(rews), squeeze=False, sharex=True)
    for i, pn in enumerate(pols):
        for j, rn in enumerate(rews):
            ax = axes[i][j]
            panel = metrics["panels"][f"{pn}/{rn}"]
            ex = panel["exact"]
            ns = np.asarray(ex["ns"], float)
            ax.plot(ns, ex["folk"], "k--", label="folk log n − (n−1)/n")
            ax.plot(ns, ex["exact_kl"], "-", label="exact KL")
            ax.plot(ns, ex["beirami_expected"], ":", label="E[Beirami estimator] (exact)")
            mc = panel["mc"]
            mns = np.asarray([r["n"] for r in mc], float)
            for col, marker, label, shift in (
                ("kl_beirami", "o", "MC Beirami", 1.0),
                ("kl_k1", "s", "MC level (known masses)", 1.08),
                ("kl_k1_ref", "^", "MC level (reference masses)", 0.92),
            ):
                ax.errorbar(
                    mns * shift,
                    [r[col] for r in mc],
                    yerr=[4 * r[col + "_se"] for r in mc],
                    fmt=marker,
                    ms=4,
                    capsize=2,
                    label=label,
                )
            ax.set_xscale("log", base=2)
            ax.set_title(f"{pn} policy, {rn} reward ({ex['num_levels']} reward levels)")
            ax.set_xlabel("n")
            ax.set_ylabel("KL(π_n ‖ p) [nats]")
    axes[0][0].legend(loc="upper left")
    paths = save_figure(fig, out_dir, "token_kl")
    if "long" in metrics:
        paths += _plot_long(metrics["long"], out_dir)
    return paths


def _plot_long(long: dict, out_dir) -> list:
    from bontheory.plotting import new_figure, save_figure

    fig, (a1, a2) = new_figure(1, 2)
    first = next(iter(long.values()))
    ns = np.asarray(first["ns"], float)
    a1.plot(ns, first["folk"], "k--", label="folk log n − (n−1)/n")
    for pn, c in long.items():
        (line,) = a1.plot(ns, c["exact_kl"], "-", marker="o", ms=3, label=f"exact KL, {pn} policy")
        gap = np.asarray(c["folk"]) - np.asarray(c["exact_kl"])
        ok = gap > 0
        a2.plot(ns[ok], gap[ok], "-", marker="o", ms=3, color=line.get_color(), label=f"{pn} policy")
    a1.set_xscale("log", base=2)
    a1.set_xlabel("n")
    a1.set_ylabel("KL(π_n ‖ p) [nats]")
    a1.set_title(
        f"V = {first['vocab_size']}, L = {first['length']} "
        f"(10^{first['log10_num_sequences']:.0f} sequences), count of token 0",
        fontsize=9,
    )
    a1.legend(fontsize=7)
    a2.set_xscale("log", base=2)
    a2.set_yscale("log")
    a2.set_xlabel("n")
    a2.set_ylabel("folk formula − exact KL [nats]")
    a2.set_title(f"{first['num_levels']} reward levels (ties), exact by the lifted DP", fontsize=9)
    a2.legend(fontsize=7)
    return save_figure(fig, out_dir, "token_kl_long")


def summary(metrics: dict) -> list[dict]:
    rows = []
    for name, panel in metrics["panels"].items():
        ex = panel["exact"]
        last = -1
        row = {
            "panel": name,
            "levels": ex["num_levels"],
            "max_p": round(ex["max_prob"], 4),
            "n": ex["ns"][last],
            "exact_kl": round(float(ex["exact_kl"][last]), 4),
            "folk": round(float(ex["folk"][last]), 4),
            "E_beirami": round(float(ex["beirami_expected"][last]), 4),
        }
        mc = panel["mc"][-1]
        row["mc_n"] = mc["n"]
        row["mc_exact_kl"] = round(mc["exact_kl"], 4)
        row["mc_k1"] = f"{mc['kl_k1']:.4f}±{mc['kl_k1_se']:.4f}"
        row["mc_beirami"] = f"{mc['kl_beirami']:.4f}±{mc['kl_beirami_se']:.4f}"
        row.update(gap_closed(mc))
        rows.append(row)
    for pn, c in metrics.get("long", {}).items():
        rows.append(
            {
                "panel": f"long {pn}/tie_heavy (V={c['vocab_size']}, L={c['length']})",
                "levels": c["num_levels"],
                "max_p": f"1e{c['max_log10_sequence_prob']:.0f}",
                "n": c["ns"][-1],
                "exact_kl": round(float(c["exact_kl"][-1]), 4),
                "folk": round(float(c["folk"][-1]), 4),
                "E_beirami": f">= {float(c['beirami_at_max_p'][-1]):.4f}",
            }
        )
    return rows


def gap_closed(mc_row: dict) -> dict:
    """The fraction ``(folk − estimate)/(folk − exact)`` of the folk formula's gap that each estimator closes
    in one Monte Carlo cell (1 = unbiased; 0 = no better than the folk formula): the exact expectation of
    Beirami's estimator, its Monte Carlo mean, and the level estimator with known and reference masses."""
    folk, exact = mc_row["kl_folk"], mc_row["exact_kl"]
    gap = folk - exact
    cols = {"E_beirami": "exact_kl_beirami", "beirami": "kl_beirami", "level": "kl_k1", "level_ref": "kl_k1_ref"}
    return {f"closed_{k}": round((folk - mc_row[c]) / gap, 3) if gap > 0 else float("nan") for k, c in cols.items()}


def paper_numbers(metrics: dict) -> dict:
    """The numbers the paper quotes: ``{macro: (value, decimals)}`` (the peaked policy, tie-heavy reward, at
    the largest n)."""
    ex = metrics["panels"]["peaked/tie_heavy"]["exact"]
    return {
        "tkN": (ex["ns"][-1], 0),
        "tkLevels": (ex["num_levels"], 0),
        "tkSequences": (ex["num_sequences"], 0),
        "tkExact": (ex["exact_kl"][-1], 3),
        "tkFolk": (ex["folk"][-1], 3),
        "tkBeirami": (ex["beirami_expected"][-1], 3),
        **_long_numbers(metrics),
    }


def _long_numbers(metrics: dict) -> dict:
    """The long-sequence part, peaked policy, at the largest n: exact KL and folk formula."""
    c = metrics["long"]["peaked"]
    flat = metrics["long"]["flat"]
    return {
        "tkLongV": (c["vocab_size"], 0),
        "tkLongL": (c["length"], 0),
        "tkLongLevels": (c["num_levels"], 0),
        "tkLongN": (c["ns"][-1], 0),
        "tkLongExact": (c["exact_kl"][-1], 3),
        "tkLongFlatExact": (flat["exact_kl"][-1], 3),
        "tkLongFolk": (c["folk"][-1], 3),
        "tkLongLogSeq": (c["log10_num_sequences"], 0),
    }
