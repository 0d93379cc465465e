"""Gao et al. fits: gold reward of BoN vs d = √KL fitted by R_bon(d) = d(α − βd) (and the RL form
d(α − β log d) for comparison), on exact BoN curves of token-level proxy/gold problems.

Per family, error size and seed, the exact BoN gold reward gain ``gold(n) − gold(1)`` and ``KL(π_n‖p)`` are
computed on a fine grid of n over the enumerated sequences; both forms are fitted by least squares
(:mod:`bontheory.studies.fits`). A Monte Carlo check compares the exact curve with the unbiased
order-statistics estimate from K reference samples.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from bontheory import cell_key, draw_outcomes
from bontheory.experiments import checks
from bontheory.plotting import new_figure, save_figure
from bontheory.runner import progress
from bontheory.studies.fits import bon_unbiased_estimate, fit_gao_bon, fit_gao_rl
from bontheory.studies.proxy import PROXY_FAMILIES, method_gold_curves, proxy_problem

NAME = "gao_fits"
SUMMARY = "Gao et al.'s d(α − βd) fitted to exact BoN gold-reward curves (d = √KL): coefficients and R²"


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings.

    Attributes:
      families: proxy families.
      errors: error size per family (same order).
      vocab_size: V.
      length: L.
      num_ns: points of the n grid (log-spaced integers from 1 to max_n).
      max_n: largest n.
      num_seeds: independent problems per family.
      mc_samples: reference samples K of the Monte Carlo check (0 to skip); compared for n ≤ K/50.
      seed: random seed.
      x64: float64.
    """

    families: tuple[str, ...] = ("gaussian", "student_t", "cauchy", "hack", "bradley_terry")
    errors: tuple[float, ...] = (1.0, 1.0, 0.5, 6.0, 0.5)
    vocab_size: int = 4
    length: int = 7
    num_ns: int = 40
    max_n: int = 10000
    num_seeds: int = 4
    mc_samples: int = 200000
    seed: int = 0
    x64: bool = True

    def __post_init__(self):
        checks.choices(self, "families", PROXY_FAMILIES)
        checks.numbers(self, "errors", min=0.0)
        checks.same_length(self, "errors", "families")
        checks.integer(self, "vocab_size", min=2)
        checks.integer(self, "length", min=1)
        checks.integer(self, "max_n", min=2)
        checks.integer(self, "num_ns", min=3)  # the fits need three points
        checks.integer(self, "num_seeds", min=1)
        checks.integer(self, "mc_samples", min=0)
        if 0 < self.mc_samples < 50:  # the check compares n <= K/50
            raise ValueError(f"mc_samples must be 0 (no check) or >= 50, got {self.mc_samples!r}")
        checks.integer(self, "seed")
        checks.boolean(self, "x64")


QUICK = Config(
    families=("gaussian", "cauchy", "hack"), errors=(1.0, 0.5, 6.0), length=5, num_ns=25, num_seeds=2,
    mc_samples=50000,
)


def _ns(config: Config) -> np.ndarray:
    return np.unique(np.round(np.logspace(0, np.log10(config.max_n), config.num_ns)).astype(int))


def _cell(config: Config, f: int, s: int) -> dict:
    family = config.families[f]
    key = cell_key(jax.random.key(config.seed), family, s)
    prob = proxy_problem(key, family, vocab_size=config.vocab_size, length=config.length, error=config.errors[f])
    ns = _ns(config)
    c = method_gold_curves(prob, "bon", ns)
    d = np.sqrt(np.maximum(c.kl, 0.0))
    y = c.gold_reward - c.gold_reward[0]
    fb = fit_gao_bon(d, y)
    fr = fit_gao_rl(d, y)
    out = {
        "ns": ns, "d": d, "gain": y,
        "bon_alpha": fb.alpha, "bon_beta": fb.beta, "bon_r2": fb.r2, "bon_fitted": fb.fitted,
        "rl_alpha": fr.alpha, "rl_beta": fr.beta, "rl_r2": fr.r2,
    }
    if config.mc_samples and s == 0:
        k1, k2 = jax.random.split(cell_key(key, "mc"))
        idx = draw_outcomes(k1, prob.ref_probs, config.mc_samples)
        est = np.asarray(bon_unbiased_estimate(k2, prob.proxy[idx], prob.gold[idx], ns))
        out["mc_gold"] = est
        small = ns <= config.mc_samples // 50  # the estimator's variance grows with n/K
        out["mc_max_abs_err"] = float(np.max(np.abs(est - c.gold_reward)[small]))
    return out


def run(config: Config, run) -> dict:
    cells = [(f, s) for f in range(len(config.families)) for s in range(config.num_seeds)]
    res = {}
    for f, s in progress(cells, desc=NAME):
        res[(f, s)] = run.cell(f"{config.families[f]}-seed{s}", lambda f=f, s=s: _cell(config, f, s))
    fams = {}
    for f, family in enumerate(config.families):
        rs = [res[(f, s)] for s in range(config.num_seeds)]
        agg = {}
        for k in ("bon_alpha", "bon_beta", "bon_r2", "rl_alpha", "rl_beta", "rl_r2"):
            v = np.array([r[k] for r in rs])
            agg[k] = float(v.mean())
            agg[k + "_sd"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        agg["seeds"] = [{k: r[k] for k in ("d", "gain", "bon_fitted", "ns")} for r in rs]
        if "mc_max_abs_err" in rs[0]:
            agg["mc_max_abs_err"] = rs[0]["mc_max_abs_err"]
        fams[family] = agg
    return {"families": fams}


def plot(metrics: dict, out_dir) -> list:
    fams = metrics["families"]
    fig, axes = new_figure(1, len(fams), squeeze=False)
    for ax, (family, fam) in zip(axes[0], fams.items()):
        for i, sd in enumerate(fam["seeds"]):
            ax.plot(sd["d"], sd["gain"], "o", ms=3, label="BoN (exact)" if i == 0 else None)
            ax.plot(sd["d"], sd["bon_fitted"], "-", color="black", lw=1, label="d(α − βd) fit" if i == 0 else None)
        ax.set_title(f"{family}: R²={fam['bon_r2']:.3f} (RL form {fam['rl_r2']:.3f})", fontsize=8)
        ax.set_xlabel("d = √KL")
        ax.set_ylabel("gold reward gain")
    axes[0][0].legend()
    return save_figure(fig, out_dir, "gao_fits")


def summary(metrics: dict) -> list[dict]:
    rows = []
    for family, fam in metrics["families"].items():
        rows.append({
            "family": family,
            "alpha": round(fam["bon_alpha"], 3), "alpha_sd": round(fam["bon_alpha_sd"], 3),
            "beta": round(fam["bon_beta"], 3), "beta_sd": round(fam["bon_beta_sd"], 3),
            "R2_bon_form": round(fam["bon_r2"], 4), "R2_rl_form": round(fam["rl_r2"], 4),
            "mc_check_max_abs_err_n<=K/50": round(fam.get("mc_max_abs_err", float("nan")), 4),
        })
    return rows


def paper_numbers(metrics: dict) -> dict:
    """The numbers the paper quotes: ``{macro: (value, decimals)}``."""
    fams = metrics["families"]
    return {
        "gfGaussBonRsq": (fams["gaussian"]["bon_r2"], 3),
        "gfGaussRlRsq": (fams["gaussian"]["rl_r2"], 3),
        "gfHackBonRsq": (fams["hack"]["bon_r2"], 3),
        "gfHackRlRsq": (fams["hack"]["rl_r2"], 3),
    }
