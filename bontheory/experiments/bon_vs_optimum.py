"""BoN against the optimum: reward–KL and win-rate–KL frontiers, and the per-token gap to the tilted
optimum as the sequence length grows (memoryless policy, additive integer reward; exact).

Part 1 (frontiers) enumerates the sequences of a random memoryless tabular policy with an additive random
reward (no proxy error) and compares BoN's exact points ``(KL(π_n‖p), E r)`` and ``(KL, W_n)`` with the
tilted frontier (optimal for reward), the quantile-tilt frontier (optimal for win rate) and quantile
truncation. Part 2 computes, for ``log n = c·L``, the per-token reward gap of BoN to the tilted optimum at
equal KL (:func:`bontheory.studies.sequence_limit.bon_tilted_gap_per_token`), which Yang et al.
(arXiv 2404.01730) show vanishes as L → ∞.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bontheory import (
    bon_expected_reward,
    bon_kl,
    bon_win_rate,
    kl_divergence,
    quantile_truncated_pmf,
    reward_kl_frontier,
    win_rate,
    win_rate_kl_frontier,
)
from bontheory.experiments import checks
from bontheory.plotting import new_figure, save_figure
from bontheory.runner import progress
from bontheory.studies.curves import gap_to_frontier
from bontheory.studies.sequence_limit import bon_tilted_gap_per_token

NAME = "bon_vs_optimum"
SUMMARY = "BoN vs the KL-regularised optimum: frontiers, and the per-token gap vanishing with sequence length"


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings.

    Attributes:
      vocab_size: V of the enumerated policy (part 1).
      length: L of the enumerated policy (part 1).
      ns: BoN budgets of part 1.
      num_betas: tilt temperatures on the frontier (log-spaced).
      truncation_ms: quantile-truncation caps M (part 1).
      token_probs: per-token pmf q of part 2.
      token_scores: integer per-token scores s of part 2.
      lengths: sequence lengths L of part 2.
      rates: per-token rates c with log n = c·L (part 2).
      seed: random seed.
      x64: compute in float64.
    """

    vocab_size: int = 4
    length: int = 8
    ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384)
    num_betas: int = 60
    truncation_ms: tuple[float, ...] = (1.5, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0)
    token_probs: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)
    token_scores: tuple[int, ...] = (0, 1, 2, 3)
    lengths: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    rates: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
    seed: int = 0
    x64: bool = True

    def __post_init__(self):
        checks.integer(self, "vocab_size", min=2)
        checks.integer(self, "length", min=1)
        checks.integers(self, "ns", min=1, increasing=True)
        checks.integer(self, "num_betas", min=2)
        checks.numbers(self, "truncation_ms", min=1.0)
        checks.pmf(self, "token_probs")
        checks.integers(self, "token_scores")
        checks.same_length(self, "token_scores", "token_probs")
        checks.integers(self, "lengths", min=1, increasing=True)
        checks.numbers(self, "rates", min=0.0, min_open=True)
        checks.integer(self, "seed")
        checks.boolean(self, "x64")


QUICK = Config(length=6, lengths=(1, 2, 4, 8, 16, 32, 64, 128), num_betas=40)


def _frontier_cell(config: Config) -> dict:
    from bontheory import enumerate_sequences, random_tabular_policy, random_token_score_reward

    k_pol, k_r = jax.random.split(jax.random.key(config.seed))
    policy = random_tabular_policy(k_pol, config.vocab_size, config.length, order=0)
    reward = random_token_score_reward(k_r, config.vocab_size, config.length)
    seqs, logp = enumerate_sequences(policy)
    p = jnp.exp(logp.astype(jnp.result_type(float)))
    p = p / p.sum()
    r = reward(seqs).astype(p.dtype)
    ns = jnp.asarray(config.ns)
    sd = float(jnp.sqrt(p @ (r - p @ r) ** 2))
    betas = sd * jnp.logspace(-2.5, 1.5, config.num_betas)
    tilt = reward_kl_frontier(p, r, betas)
    cs = jnp.logspace(-1, 4, config.num_betas)
    qtilt = win_rate_kl_frontier(p, r, cs)
    # the tilted policies' win rates and the quantile tilts' rewards, for the cross panels
    ms = jnp.asarray(config.truncation_ms)
    trunc = quantile_truncated_pmf(p, r, ms)
    pb = jnp.broadcast_to(p, trunc.shape)
    return {
        "ns": config.ns,
        "bon_kl": bon_kl(p, r, ns),
        "bon_reward": bon_expected_reward(p, r, ns),
        "bon_win": bon_win_rate(p, r, ns),
        "tilt_kl": tilt.kl,
        "tilt_reward": tilt.value,
        "qtilt_kl": qtilt.kl,
        "qtilt_win": qtilt.value,
        "trunc_kl": kl_divergence(trunc, pb),
        "trunc_reward": trunc @ r,
        "trunc_win": win_rate(trunc, pb, jnp.broadcast_to(r, trunc.shape)),
        "ref_reward": float(p @ r),
    }


def run(config: Config, run) -> dict:
    fr = run.cell("frontiers", lambda: _frontier_cell(config))
    gaps = {}
    for L in progress(config.lengths, desc=NAME):
        def compute(L=L):
            g = bon_tilted_gap_per_token(
                np.asarray(config.token_probs), np.asarray(config.token_scores), int(L),
                np.asarray(config.rates) * L,
            )
            return {k: getattr(g, k) for k in g._fields}
        gaps[L] = run.cell(f"gap-L{L}", compute)
    gap_table = np.array([gaps[L]["gap_per_token"] for L in config.lengths])  # (lengths, rates)
    # gaps to the frontiers anchored at p itself: value E_p[r] (reward) or ½ (win rate) at KL = 0
    bon_reward_gap = gap_to_frontier(fr["bon_kl"], fr["bon_reward"], fr["tilt_kl"], fr["tilt_reward"], fr["ref_reward"])
    bon_win_gap = gap_to_frontier(fr["bon_kl"], fr["bon_win"], fr["qtilt_kl"], fr["qtilt_win"], 0.5)
    trunc_win_gap = gap_to_frontier(fr["trunc_kl"], fr["trunc_win"], fr["qtilt_kl"], fr["qtilt_win"], 0.5)
    return {
        "frontiers": fr,
        "bon_reward_gap_to_tilt": bon_reward_gap.tolist(),
        "bon_win_gap_to_quantile_tilt": bon_win_gap.tolist(),
        "trunc_win_gap_to_quantile_tilt": trunc_win_gap.tolist(),
        "lengths": list(config.lengths),
        "rates": list(config.rates),
        "gap_per_token": gap_table.tolist(),
        "kl_per_token": [gaps[L]["kl_per_token"] for L in config.lengths],
    }


def plot(metrics: dict, out_dir) -> list:
    fr = metrics["frontiers"]
    paths = []
    fig, (a1, a2) = new_figure(1, 2)
    a1.plot(fr["tilt_kl"], fr["tilt_reward"], "-", label="tilted (optimal)")
    a1.plot(fr["bon_kl"], fr["bon_reward"], "o", color="black", label="BoN")
    a1.plot(fr["trunc_kl"], fr["trunc_reward"], "s", label="quantile truncation")
    a1.set_xlabel("KL(π‖p)")
    a1.set_ylabel("expected reward")
    a1.set_xlim(0, max(fr["bon_kl"]) * 1.1)
    a1.legend()
    a2.plot(fr["qtilt_kl"], fr["qtilt_win"], "-", label="quantile tilt (optimal)")
    a2.plot(fr["bon_kl"], fr["bon_win"], "o", color="black", label="BoN")
    a2.plot(fr["trunc_kl"], fr["trunc_win"], "s", label="quantile truncation")
    a2.set_xlabel("KL(π‖p)")
    a2.set_ylabel("win rate vs p")
    a2.set_xlim(0, max(fr["bon_kl"]) * 1.1)
    a2.legend()
    paths += save_figure(fig, out_dir, "frontiers")
    fig, ax = new_figure()
    gap = np.asarray(metrics["gap_per_token"])
    for j, c in enumerate(metrics["rates"]):
        ax.plot(metrics["lengths"], np.maximum(gap[:, j], 1e-12), marker="o", label=f"log n = {c:g}·L")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("per-token reward gap to tilted optimum")
    ax.legend()
    paths += save_figure(fig, out_dir, "per_token_gap")
    return paths


def summary(metrics: dict) -> list[dict]:
    gap = np.asarray(metrics["gap_per_token"])
    rows = []
    for j, c in enumerate(metrics["rates"]):
        row = {"rate_c": c}
        for i, L in enumerate(metrics["lengths"]):
            if L in (4, 16, 64, 128, 256):
                row[f"gap_L{L}"] = round(float(gap[i, j]), 5)
        rows.append(row)
    rows.append({
        "rate_c": "frontier",
        "max_bon_reward_gap": round(max(metrics["bon_reward_gap_to_tilt"]), 4),
        "max_bon_win_gap": round(max(metrics["bon_win_gap_to_quantile_tilt"]), 4),
        "max_trunc_win_gap": round(max(metrics["trunc_win_gap_to_quantile_tilt"]), 4),
    })
    return rows


def paper_numbers(metrics: dict) -> dict:
    """The numbers the paper quotes: ``{macro: (value, decimals)}``. The per-token gap at the largest rate c,
    at the second and the last sequence length."""
    gap = metrics["gap_per_token"]
    return {
        "bvoMaxRewardGap": (max(metrics["bon_reward_gap_to_tilt"]), 4),
        "bvoMaxWinGap": (max(metrics["bon_win_gap_to_quantile_tilt"]), 4),
        "bvoRate": (metrics["rates"][-1], 2),
        "bvoShortL": (metrics["lengths"][1], 0),
        "bvoLongL": (metrics["lengths"][-1], 0),
        "bvoGapShort": (gap[1][-1], 4),
        "bvoGapLong": (gap[-1][-1], 4),
    }
