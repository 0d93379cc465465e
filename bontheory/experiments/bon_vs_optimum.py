"""BoN against the optimum: reward–KL and win-rate–KL frontiers, and the per-token gap to the tilted
optimum as the sequence length grows (memoryless policy, additive integer reward; exact).

Part 1 (frontiers) enumerates the sequences of a random memoryless tabular policy with an additive random
reward (no proxy error) and compares BoN's exact points ``(KL(π_n‖p), E r)`` and ``(KL, W_n)`` with the
tilted frontier (optimal for reward), the quantile-tilt frontier (optimal for win rate) and quantile
truncation. Part 2 computes, for ``log n = c·L``, the per-token reward gap of BoN to the tilted optimum at
equal KL (:func:`bontheory.studies.sequence_limit.bon_tilted_gap_per_token`), which Yang et al.
(arXiv 2404.01730) show vanishes as L → ∞. It is exact on the law of the reward computed by the lifted dynamic
program (:func:`bontheory.reward_distribution`), for L up to 4096 (``n = e^{cL}`` up to ``e^{1638}``), and the
rate at which the gap vanishes is the slope of ``log gap`` against ``log L`` over the lengths from
``fit_min_length`` on (:func:`bontheory.studies.sequence_limit.power_law_rate`). Cells where ``n`` rounds to 1
(BoN is p itself, gap 0) are left out of the figure and the fit.
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
from bontheory.studies.sequence_limit import bon_tilted_gap_per_token, power_law_rate

NAME = "bon_vs_optimum"
SUMMARY = "BoN vs the KL-regularised optimum: frontiers, and the per-token gap vanishing with L (exact, L ≤ 4096)"


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
      lengths: sequence lengths L of part 2 (exact through the lifted reward law; any size).
      rates: per-token rates c with log n = c·L (part 2).
      fit_min_length: the gap's rate is fitted on the lengths L ≥ this (part 2).
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
    lengths: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
    rates: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
    fit_min_length: int = 64
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
        checks.integer(self, "fit_min_length", min=1)
        checks.integer(self, "seed")
        checks.boolean(self, "x64")


QUICK = Config(length=6, lengths=(4, 16, 64, 256, 1024, 4096), num_betas=40)


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


def _gap_cell(config: Config, length: int) -> dict:
    g = bon_tilted_gap_per_token(
        np.asarray(config.token_probs), np.asarray(config.token_scores), int(length),
        np.asarray(config.rates) * length,
    )
    return {k: getattr(g, k) for k in g._fields}


def gap_rates(lengths, rates, gap_per_token, log_n, fit_min_length: int) -> list[dict]:
    """Per rate c: the slope of log(gap per token) against log L over the lengths ≥ ``fit_min_length``, on
    the cells where n > 1 (:func:`bontheory.studies.sequence_limit.power_law_rate`)."""
    lengths = np.asarray(lengths, float)
    gap, log_n = np.asarray(gap_per_token, float), np.asarray(log_n, float)
    out = []
    for j, c in enumerate(rates):
        use = (lengths >= fit_min_length) & (log_n[:, j] > 0)
        row = {"rate_c": c, "slope": None, "end_slope": None, "prefactor": None, "r2": None,
               "num_points": int(use.sum()),
               "min_length": int(lengths[use].min()) if use.any() else None,
               "max_length": int(lengths[use].max()) if use.any() else None}
        if (use & (gap[:, j] > 0)).sum() >= 2:
            fit = power_law_rate(lengths[use], gap[use, j])
            row.update(slope=fit.slope, prefactor=fit.prefactor, r2=fit.r2, num_points=fit.num_points)
            last = np.flatnonzero(use & (gap[:, j] > 0))[-2:]  # the rate at the longest sequences
            row["end_slope"] = power_law_rate(lengths[last], gap[last, j]).slope
        out.append(row)
    return out


def run(config: Config, run) -> dict:
    fr = run.cell("frontiers", lambda: _frontier_cell(config))
    gaps = {}
    for L in progress(config.lengths, desc=NAME):
        gaps[L] = run.cell(f"gap-L{L}", lambda L=L: _gap_cell(config, L))
    gap_table = np.array([gaps[L]["gap_per_token"] for L in config.lengths])  # (lengths, rates)
    log_n = np.array([gaps[L]["log_n"] for L in config.lengths])
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
        "log_n": log_n.tolist(),
        "kl_per_token": [gaps[L]["kl_per_token"] for L in config.lengths],
        "fit_min_length": config.fit_min_length,
        "gap_rates": gap_rates(config.lengths, config.rates, gap_table, log_n, config.fit_min_length),
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
    lengths = np.asarray(metrics["lengths"], float)
    gap = np.asarray(metrics["gap_per_token"], float)
    log_n = np.asarray(metrics["log_n"], float)
    fits = {r["rate_c"]: r for r in metrics["gap_rates"]}
    fig, (a1, a2) = new_figure(1, 2)
    for j, c in enumerate(metrics["rates"]):
        shown = (log_n[:, j] > 0) & (gap[:, j] > 0)  # n = 1 is p itself (gap 0): not a point of the curve
        fit = fits.get(c, {})
        label = f"log n = {c:g}·L"
        if fit.get("slope") is not None:
            label += f" (slope {fit['slope']:.2f})"
        (line,) = a1.plot(lengths[shown], gap[shown, j], marker="o", ms=3, label=label)
        if fit.get("slope") is not None:
            xs = lengths[(lengths >= fit["min_length"]) & (lengths <= fit["max_length"])]
            a1.plot(xs, fit["prefactor"] * xs ** fit["slope"], "--", lw=0.8, color=line.get_color())
        # the local rate: the slope of log gap between consecutive lengths (−1 is a gap of order 1/L)
        ok = np.flatnonzero(shown)
        if len(ok) >= 2:
            x0, x1 = lengths[ok[:-1]], lengths[ok[1:]]
            local = np.log(gap[ok[1:], j] / gap[ok[:-1], j]) / np.log(x1 / x0)
            a2.plot(np.sqrt(x0 * x1), local, marker="o", ms=3, color=line.get_color(), label=f"c = {c:g}")
    for ax in (a1, a2):
        ax.set_xscale("log")
        ax.set_xlabel("sequence length L")
    a1.set_yscale("log")
    a1.set_ylabel("per-token reward gap to tilted optimum")
    a1.set_title("gap at equal KL (dashed: fitted power law)", fontsize=9)
    a2.axhline(-1.0, color="grey", lw=0.8, ls=":")
    a2.set_ylabel("local slope d log gap / d log L")
    a2.set_title("rate between consecutive lengths (dotted: 1/L)", fontsize=9)
    a1.legend(fontsize=7)
    a2.legend(fontsize=7)
    paths += save_figure(fig, out_dir, "per_token_gap")
    return paths


def _slope_row(fit: dict) -> dict:
    if fit["slope"] is None:
        return {"gap_slope": None}
    return {"gap_slope": round(fit["slope"], 3), "fit_r2": round(fit["r2"], 4),
            "fit_L": f"{fit['min_length']}..{fit['max_length']}", "slope_at_longest_L": round(fit["end_slope"], 3)}


def summary(metrics: dict) -> list[dict]:
    gap = np.asarray(metrics["gap_per_token"], float)
    log_n = np.asarray(metrics["log_n"], float)
    lengths = metrics["lengths"]
    shown = [i for i, L in enumerate(lengths) if L in (4, 16, 64, 256, 1024, 4096)] or list(range(len(lengths)))
    rows = []
    for j, c in enumerate(metrics["rates"]):
        row = {"rate_c": c}
        for i in shown:
            row[f"gap_L{lengths[i]}"] = float(f"{gap[i, j]:.3g}") if log_n[i, j] > 0 else "n=1"
        row.update(_slope_row(metrics["gap_rates"][j]))
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
    at the second and the last sequence length, and its fitted rate (slope of log gap vs log L)."""
    gap = metrics["gap_per_token"]
    out = {
        "bvoMaxRewardGap": (max(metrics["bon_reward_gap_to_tilt"]), 4),
        "bvoMaxWinGap": (max(metrics["bon_win_gap_to_quantile_tilt"]), 4),
        "bvoRate": (metrics["rates"][-1], 2),
        "bvoShortL": (metrics["lengths"][1], 0),
        "bvoLongL": (metrics["lengths"][-1], 0),
        "bvoGapShort": (gap[1][-1], 4),
        "bvoGapLong": (gap[-1][-1], 6),
    }
    slopes = [r["slope"] for r in metrics["gap_rates"] if r["slope"] is not None]
    fit = metrics["gap_rates"][-1]
    if fit["slope"] is not None:
        out["bvoGapSlope"] = (fit["slope"], 2)
        out["bvoFitMinL"] = (fit["min_length"], 0)
        out["bvoGapEndSlope"] = (fit["end_slope"], 2)
    if slopes:
        out["bvoGapSlopeMin"] = (min(slopes), 2)
        out["bvoGapSlopeMax"] = (max(slopes), 2)
    return out
