"""Overoptimisation: gold reward and gold win rate vs n for BoN and its alternatives, per proxy family.

Exact over the enumerated sequences of a random memoryless tabular policy (gold reward additive over
tokens); each curve is averaged over ``num_seeds`` draws of policy, gold and proxy. Every parametrised
method is shown at a fixed setting and at its best setting per n (oracle-tuned on gold over a grid).
χ²-pessimism and the tilted policy are shown at their population (N → ∞) targets; finite-N
InferenceTimePessimism is added by Monte Carlo (raw sampler) at a few n.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from bontheory import cell_key, pessimism_sample
from bontheory.experiments import checks
from bontheory.plotting import new_figure, save_figure
from bontheory.runner import progress
from bontheory.studies.curves import max_drawdown
from bontheory.studies.proxy import (
    DEFAULT_GRIDS,
    PROXY_FAMILIES,
    best_on_grid,
    mean_over_seeds,
    method_grid_curves,
    proxy_problem,
)
from bontheory.studies.summary import proxy_study_summary

NAME = "overoptimization"
SUMMARY = (
    "gold reward / win rate vs n: BoN rises then falls under heavy-tailed and hack proxies; "
    "truncation and pessimism do not"
)

# Parameter grids are multiples of the proxy's standard deviation under p (soft BoN λ, χ² β, tilt β) or
# plain values (M for truncation, β for regularised BoN, which multiplies log p).
_GRIDS = DEFAULT_GRIDS
_FALL_EXPECTED = ("cauchy", "student_t", "hack")  # the learned BT proxy is left to the data (Gao et al.)
_FALL_FRACTION = 0.05  # BoN "falls" when it ends more than 5% of its gain below its peak
_FIXED = {"soft_bon": 0.1, "quantile_trunc": 8.0, "chi2_pessimism_limit": 0.3, "regularized_bon": 0.3, "tilted": 0.1}


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings.

    Attributes:
      families: proxy families (see ``bontheory.studies.proxy.proxy_problem``).
      errors: proxy error size per family (same order): noise scale, hack bonus, BT label temperature.
      vocab_size: V.
      length: L (the space has V**L sequences).
      ns: sample budgets n.
      num_seeds: independent draws of (policy, gold, proxy) averaged per curve.
      hack_mass: reference mass of the hack region.
      hack_penalty: gold penalty in the hack region.
      pessimism_ns: budgets of the Monte Carlo InferenceTimePessimism curve (empty to skip).
      pessimism_draws: Monte Carlo draws per budget and seed.
      soft_bon_nodes: quadrature nodes of the exact soft-BoN pmf (0 = automatic, spacing ≤ 0.3).
      seed: random seed.
      x64: compute in float64.
    """

    families: tuple[str, ...] = ("gaussian", "cauchy", "hack", "bradley_terry")
    errors: tuple[float, ...] = (1.0, 0.5, 6.0, 0.5)
    vocab_size: int = 4
    length: int = 7
    ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 10000)
    num_seeds: int = 6
    hack_mass: float = 2e-3
    hack_penalty: float = 3.0
    pessimism_ns: tuple[int, ...] = (1, 4, 16, 64, 256, 1024)
    pessimism_draws: int = 2000
    soft_bon_nodes: int = 0
    seed: int = 0
    x64: bool = True

    def __post_init__(self):
        checks.choices(self, "families", PROXY_FAMILIES)
        checks.numbers(self, "errors", min=0.0)
        checks.same_length(self, "errors", "families")
        checks.integer(self, "vocab_size", min=2)
        checks.integer(self, "length", min=1)
        checks.integers(self, "ns", min=1, increasing=True)
        checks.integer(self, "num_seeds", min=1)
        checks.probability(self, "hack_mass")
        checks.number(self, "hack_penalty", min=0.0)
        checks.integers(self, "pessimism_ns", min=1, nonempty=False)
        checks.integer(self, "pessimism_draws", min=2)
        checks.integer(self, "soft_bon_nodes", min=0)
        checks.integer(self, "seed")
        checks.boolean(self, "x64")


QUICK = Config(
    families=("gaussian", "cauchy", "hack"),
    errors=(1.0, 0.5, 6.0),
    length=5,
    ns=(1, 4, 16, 64, 256, 1024, 10000),
    num_seeds=3,
    pessimism_ns=(1, 16, 256),
    pessimism_draws=300,
)


def _family_cell(config: Config, fam_index: int, seed_index: int) -> dict:
    family = config.families[fam_index]
    key = cell_key(jax.random.key(config.seed), family, seed_index)
    prob = proxy_problem(
        key,
        family,
        vocab_size=config.vocab_size,
        length=config.length,
        error=config.errors[fam_index],
        hack_mass=config.hack_mass,
        hack_penalty=config.hack_penalty,
    )
    out = method_grid_curves(prob, config.ns, _GRIDS, soft_bon_nodes=config.soft_bon_nodes)
    sd = out["proxy_sd"]
    if config.pessimism_ns:
        beta = _FIXED["chi2_pessimism_limit"] * sd
        r_max = float(np.max(np.asarray(prob.proxy)))
        gold = np.asarray(prob.gold)
        means, ses = [], []
        for n in config.pessimism_ns:
            idx = np.asarray(
                pessimism_sample(
                    cell_key(key, "pessimism", int(n)),
                    prob.ref_probs,
                    prob.proxy,
                    int(n),
                    beta,
                    (config.pessimism_draws,),
                    r_max=r_max,
                )
            )
            means.append(float(gold[idx].mean()))
            ses.append(float(gold[idx].std(ddof=1) / np.sqrt(len(idx))))
        out["pessimism_mc"] = {"ns": list(config.pessimism_ns), "gold": means, "se": ses}
    return out


def run(config: Config, run) -> dict:
    cells = [(f, s) for f in range(len(config.families)) for s in range(config.num_seeds)]
    results = {}
    for f, s in progress(cells, desc=NAME):
        results[(f, s)] = run.cell(f"{config.families[f]}-seed{s}", lambda f=f, s=s: _family_cell(config, f, s))
    families = {}
    for f, family in enumerate(config.families):
        families[family] = _family_metrics(config, family, [results[(f, s)] for s in range(config.num_seeds)])
    return {"ns": list(config.ns), "families": families}


def _family_metrics(config: Config, family: str, per_seed: list[dict]) -> dict:
    """Seed-averaged curves of one family, each method at its fixed and its oracle-best setting, and the
    overoptimisation verdicts."""
    avg = mean_over_seeds([{k: r[k] for k in ("bon", "gold_mean", *_GRIDS)} for r in per_seed])
    fam = {"bon": {k: avg["bon"][k].tolist() for k in ("gold", "win", "kl")}}
    fam["gold_mean_ref"] = float(avg["gold_mean"])
    for method, grid in _GRIDS.items():
        curves = {k: np.array([row[k] for row in avg[method]]) for k in ("gold", "win", "kl")}
        j = grid.index(_FIXED[method])
        fam[method] = {
            "grid": list(grid),
            "fixed_param": _FIXED[method],
            "fixed": {k: curves[k][j].tolist() for k in curves},
            "best": {k: best_on_grid(curves[k], grid).value.tolist() for k in ("gold", "win")},
            "best_param": best_on_grid(curves["gold"], grid).param,
        }
    if config.pessimism_ns:
        g = np.array([r["pessimism_mc"]["gold"] for r in per_seed])
        se = np.array([r["pessimism_mc"]["se"] for r in per_seed])
        fam["pessimism_mc"] = {
            "ns": list(config.pessimism_ns),
            "gold": g.mean(0).tolist(),
            "se": (np.sqrt((se**2).sum(0)) / len(per_seed)).tolist(),
        }
    # Theory: with Gaussian noise E[r* | r̂] increases in r̂ (no fall); heavy tails and a rare hack make
    # the top of r̂ noise-dominated (fall). "falls" = a drop of more than 5% of the gain at the peak.
    # The numbers come from the library's study summary (oracle tuning on the seed-averaged curves; held-out
    # tuning: parameters chosen on the even seeds, scored on the odd ones).
    curves = {"bon": avg["bon"], **{m: avg[m] for m in _GRIDS}}
    summ = proxy_study_summary(config.ns, curves, rel_drop=_FALL_FRACTION)
    fam["bon_peak_n"] = summ.bon_peak_n
    fam["bon_peak_gold"] = summ.bon_peak_gold
    fam["bon_final_gold"] = summ.bon_final_gold
    fam["bon_drop_after_peak"] = summ.bon_drop_after_peak
    fam["theory_predicts_fall"] = family in _FALL_EXPECTED
    fam["bon_falls"] = summ.bon_falls
    fam["bon_monotone"] = summ.bon_monotone
    for method, ms in summ.methods.items():
        fam[method]["monotone"] = ms.monotone
        fam[method]["best_monotone"] = ms.best_monotone
        fam[method]["best_drop_after_peak"] = ms.drop_after_peak
    if len(per_seed) >= 2:

        def half(start):
            return mean_over_seeds([{k: r[k] for k in ("bon", *_GRIDS)} for r in per_seed[start::2]])

        held = proxy_study_summary(config.ns, half(1), held_out=half(0), rel_drop=_FALL_FRACTION)
        for method, ms in held.methods.items():
            fam[method]["held_out_param"] = ms.held_out_param
            fam[method]["held_out_gold"] = ms.held_out_gold.tolist()
            fam[method]["oracle_gold_same_seeds"] = ms.oracle_gold.tolist()
    for method in ("quantile_trunc", "soft_bon", "regularized_bon"):
        fam[f"{method}_fixed_max_drop"] = max_drawdown(fam[method]["fixed"]["gold"])
    return fam


_LABELS = {
    "bon": "BoN",
    "soft_bon": "soft BoN",
    "quantile_trunc": "quantile trunc.",
    "chi2_pessimism_limit": "χ²-pessimism (pop.)",
    "regularized_bon": "regularised BoN",
    "tilted": "tilted (pop.)",
}


def plot(metrics: dict, out_dir) -> list:
    paths = []
    ns = np.asarray(metrics["ns"])
    fams = metrics["families"]
    for key, ylabel in (("gold", "gold reward"), ("win", "gold win rate vs p")):
        for variant in ("fixed", "best"):
            fig, axes = new_figure(1, len(fams), squeeze=False)
            for ax, (family, fam) in zip(axes[0], fams.items()):
                ax.plot(ns, fam["bon"][key], marker="o", color="black", label="BoN")
                for method in ("soft_bon", "quantile_trunc", "chi2_pessimism_limit", "regularized_bon", "tilted"):
                    y = fam[method][variant][key]
                    style = "--" if method in ("chi2_pessimism_limit", "tilted") else "-"
                    lab = _LABELS[method] + (f" ({fam[method]['fixed_param']:g})" if variant == "fixed" else "")
                    ax.plot(ns, y, style, marker=".", label=lab)
                if key == "gold" and "pessimism_mc" in fam:
                    pm = fam["pessimism_mc"]
                    ax.errorbar(
                        pm["ns"],
                        pm["gold"],
                        yerr=2 * np.asarray(pm["se"]),
                        fmt="s",
                        ms=3,
                        label="InferenceTimePessimism (MC, ±2se)",
                    )
                ax.set_xscale("log")
                ax.set_xlabel("n")
                ax.set_ylabel(ylabel)
                ax.set_title(family)
            axes[0][0].legend(fontsize=6)
            paths += save_figure(fig, out_dir, f"{key}_vs_n_{variant}")
    return paths


def summary(metrics: dict) -> list[dict]:
    rows = []
    for family, fam in metrics["families"].items():
        rows.append(
            {
                "family": family,
                "bon_peak_n": fam["bon_peak_n"],
                "bon_peak_gold": round(fam["bon_peak_gold"], 3),
                "bon_final_gold": round(fam["bon_final_gold"], 3),
                "bon_falls": fam["bon_falls"],
                "fall_predicted": fam["theory_predicts_fall"],
                "qt_fixed_final": round(fam["quantile_trunc"]["fixed"]["gold"][-1], 3),
                "qt_fixed_max_drop": round(fam["quantile_trunc_fixed_max_drop"], 4),
                "qt_best_monotone": fam["quantile_trunc"].get("best_monotone"),
                "chi2_pop": round(fam["chi2_pessimism_limit"]["fixed"]["gold"][-1], 3),
                "tilted_best": round(fam["tilted"]["best"]["gold"][-1], 3),
            }
        )
    return rows


def paper_numbers(metrics: dict) -> dict:
    """The numbers the paper quotes: ``{macro: (value, decimals)}``."""
    fams = metrics["families"]
    cauchy, hack = fams["cauchy"], fams["hack"]
    return {
        "ovMaxN": (metrics["ns"][-1], 0),
        "ovCauchyPeakN": (cauchy["bon_peak_n"], 0),
        "ovCauchyPeakGold": (cauchy["bon_peak_gold"], 2),
        "ovCauchyFinalGold": (cauchy["bon_final_gold"], 2),
        "ovCauchyTruncFinal": (cauchy["quantile_trunc"]["fixed"]["gold"][-1], 2),
        "ovHackPeakN": (hack["bon_peak_n"], 0),
        "ovHackPeakGold": (hack["bon_peak_gold"], 2),
        "ovHackFinalGold": (hack["bon_final_gold"], 2),
    }
