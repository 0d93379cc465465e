"""Regime map: where is BoN within 10% of the best alternative, and where does it lose by 2× or more?

For each proxy family, error size and reference-policy temperature, a random memoryless tabular policy is
enumerated and every method's exact gold-reward curve is computed over n and its parameter grid
(:func:`bontheory.studies.proxy.method_grid_curves`). The comparator is the optimum itself, the
gold-best sequence ``y*``: regret = ``r*(y*) − J(π)`` (always ≥ 0), and its coverage is
``C = 1 + χ²(δ_{y*}‖p) = C_∞ = 1/p(y*)`` (:func:`bontheory.studies.regimes.optimum_comparator`; the
regret ratios are :func:`bontheory.studies.regimes.compare_regrets`). The policy temperature moves the coverage: a
peaked reference (low temperature) covers ``y*`` badly (large C), a flat one well.

Map 1 (error × coverage): regret(BoN at its best n ≤ n_max) / regret(best alternative at its best n ≤ n_max
and parameter), averaged over seeds (columns are labelled by the mean log10 C). Only budget-n methods are
compared (finite-N quantile truncation, regularised BoN, soft BoN), so every method has the same samples.
Map 2 (error × n), at the temperature ``map2_temperature``: regret(BoN at n) / regret(best budget-n
alternative at n: finite-N quantile truncation and regularised BoN, and soft BoN if included).
Alternatives are tuned on gold (oracle): the maps show what each method *can* achieve.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from bontheory import cell_key
from bontheory.experiments import checks
from bontheory.plotting import new_figure, save_figure
from bontheory.runner import progress
from bontheory.studies.proxy import DEFAULT_GRIDS, PROXY_FAMILIES, method_grid_curves, proxy_problem
from bontheory.studies.regimes import compare_regrets, count_regimes, optimum_comparator

NAME = "regime_map"
SUMMARY = "heatmaps of regret(BoN)/regret(best alternative) over proxy error × coverage and × n"

_FINITE_N = ("soft_bon", "quantile_trunc", "regularized_bon")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings.

    Attributes:
      families: proxy families.
      errors: proxy error sizes (rows of the maps), in units of the family's ``error`` argument.
      temperatures: reference-policy temperatures (columns of map 1; they set the coverage of y*).
      ns: budgets n (columns of map 2; BoN's best n is searched over them).
      map2_temperature: the temperature of map 2 (one of ``temperatures``).
      alternatives: the budget-n alternatives compared with BoN (soft BoN is the slowest to compute).
        Population targets (χ²-pessimism, tilted) are excluded: they stand for unlimited samples, while
        BoN is limited to ``n ≤ max(ns)``.
      vocab_size: V.
      length: L.
      num_seeds: independent problems averaged per cell.
      seed: random seed.
      x64: float64.
    """

    families: tuple[str, ...] = ("gaussian", "cauchy", "hack")
    errors: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)
    temperatures: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000)
    map2_temperature: float = 1.0
    alternatives: tuple[str, ...] = ("soft_bon", "quantile_trunc", "regularized_bon")
    vocab_size: int = 4
    length: int = 6
    num_seeds: int = 3
    seed: int = 0
    x64: bool = True

    def __post_init__(self):
        checks.choices(self, "families", PROXY_FAMILIES)
        checks.numbers(self, "errors", min=0.0)
        checks.numbers(self, "temperatures", min=0.0, min_open=True)
        checks.integers(self, "ns", min=1, increasing=True)
        checks.one_of(self, "map2_temperature", self.temperatures)
        checks.choices(self, "alternatives", _FINITE_N)
        checks.integer(self, "vocab_size", min=2)
        checks.integer(self, "length", min=1)
        checks.integer(self, "num_seeds", min=1)
        checks.integer(self, "seed")
        checks.boolean(self, "x64")


QUICK = Config(
    families=("gaussian", "hack"),
    errors=(0.3, 1.0, 3.0, 10.0),
    temperatures=(0.5, 1.0, 2.0),
    length=5,
    ns=(1, 4, 16, 64, 256, 1024, 10000),
    alternatives=("quantile_trunc", "regularized_bon"),
    num_seeds=2,
)


def _cell(config: Config, f: int, e: int, t: int, s: int) -> dict:
    family = config.families[f]
    key = cell_key(
        jax.random.key(config.seed),
        family,
        f"error={float(config.errors[e])!r}",
        f"temperature={float(config.temperatures[t])!r}",
        s,
    )
    kw = {"hack_penalty": 3.0, "hack_mass": 2e-3} if family == "hack" else {}
    prob = proxy_problem(
        key,
        family,
        vocab_size=config.vocab_size,
        length=config.length,
        error=config.errors[e],
        policy_temperature=config.temperatures[t],
        **kw,
    )
    best = optimum_comparator(prob.ref_probs, prob.gold)  # π* = δ_{y*}, y* the gold-best sequence
    grids = {m: DEFAULT_GRIDS[m] for m in config.alternatives}
    curves = method_grid_curves(prob, config.ns, grids, comparator_probs=best.probs)
    # each alternative at its best parameter per n (oracle-tuned on gold), then the best alternative
    per_method = {m: np.min([row["regret"] for row in curves[m]], axis=0) for m in config.alternatives}
    return {
        "optimum": best.optimum,
        "coverage": best.coverage,
        "bon_regret": curves["bon"]["regret"],
        "best_alt_regret": np.min(list(per_method.values()), axis=0),
        "best_method_any_n": min(config.alternatives, key=lambda m: float(np.min(per_method[m]))),
    }


def run(config: Config, run) -> dict:
    t2 = list(config.temperatures).index(config.map2_temperature)
    cells = [
        (f, e, t, s)
        for f in range(len(config.families))
        for e in range(len(config.errors))
        for t in range(len(config.temperatures))
        for s in range(config.num_seeds)
    ]
    res = {}
    for c in progress(cells, desc=NAME):
        f, e, t, s = c
        name = f"{config.families[f]}-err{config.errors[e]:g}-temp{config.temperatures[t]:g}-seed{s}"
        res[c] = run.cell(name, lambda c=c: _cell(config, *c))
    out = {
        "families": {},
        "errors": list(config.errors),
        "temperatures": list(config.temperatures),
        "ns": list(config.ns),
        "map2_temperature": config.map2_temperature,
    }
    for f, family in enumerate(config.families):
        ne, nt = len(config.errors), len(config.temperatures)
        ratio_cov = np.zeros((ne, nt))
        log_cov = np.zeros((ne, nt))
        ratio_n = np.zeros((ne, len(config.ns)))
        winners = []
        bon_best_n = []
        for e in range(ne):
            row_w = []
            for t in range(nt):
                rs = [res[(f, e, t, s)] for s in range(config.num_seeds)]
                cmp = compare_regrets([r["bon_regret"] for r in rs], [r["best_alt_regret"] for r in rs])
                ratio_cov[e, t] = cmp.ratio_at_best_n
                log_cov[e, t] = np.mean([np.log10(r["coverage"]) for r in rs])
                row_w.append(rs[0]["best_method_any_n"])
                if t == t2:
                    ratio_n[e] = cmp.ratio_per_n
                    bon_best_n.append(int(config.ns[cmp.bon_best_index]))
            winners.append(row_w)
        out["families"][family] = {
            "ratio_error_x_coverage": ratio_cov.tolist(),
            "log10_coverage": log_cov.tolist(),
            "ratio_error_x_n": ratio_n.tolist(),
            "bon_best_n": bon_best_n,
            "best_alternative": winners,
        }
    # column labels of map 1: mean log10 coverage per temperature over families and errors
    out["coverages"] = [
        float(
            10
            ** np.mean(
                [fam["log10_coverage"][e][t] for fam in out["families"].values() for e in range(len(config.errors))]
            )
        )
        for t in range(len(config.temperatures))
    ]
    return out


def _heat(ax, mat, xlabels, ylabels, title, xlabel):
    mat = np.asarray(mat, float)
    im = ax.imshow(np.log2(np.maximum(mat, 1e-3)), origin="lower", aspect="auto", cmap="RdBu_r", vmin=-3, vmax=3)
    ax.set_xticks(range(len(xlabels)))
    ax.set_xticklabels(xlabels, fontsize=6)
    ax.set_yticks(range(len(ylabels)))
    ax.set_yticklabels([f"{y:g}" for y in ylabels], fontsize=6)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat[i, j]
            mark = "≤10%" if v <= 1.1 else ("≥2×" if v >= 2 else "")
            ax.text(j, i, f"{v:.2g}\n{mark}", ha="center", va="center", fontsize=5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("proxy error")
    ax.set_title(title, fontsize=8)
    ax.grid(False)
    return im


def plot(metrics: dict, out_dir) -> list:
    fams = metrics["families"]
    paths = []
    cov_labels = [f"{c:.3g}\n(T={t:g})" for c, t in zip(metrics["coverages"], metrics["temperatures"])]
    for key, xs, xlabel, stem in (
        ("ratio_error_x_coverage", cov_labels, "coverage C = 1/p(y*) (policy temperature)", "regret_ratio_coverage"),
        (
            "ratio_error_x_n",
            [f"{n:g}" for n in metrics["ns"]],
            f"n (policy temperature {metrics['map2_temperature']:g})",
            "regret_ratio_n",
        ),
    ):
        fig, axes = new_figure(1, len(fams), squeeze=False)
        im = None
        for ax, (family, fam) in zip(axes[0], fams.items()):
            im = _heat(ax, fam[key], xs, metrics["errors"], f"{family}: regret(BoN)/regret(best alt.)", xlabel)
        fig.colorbar(im, ax=axes[0].tolist(), label="log2 ratio")
        paths += save_figure(fig, out_dir, stem)
    return paths


def summary(metrics: dict) -> list[dict]:
    rows = []
    for family, fam in metrics["families"].items():
        cov = np.asarray(fam["ratio_error_x_coverage"])
        byn = np.asarray(fam["ratio_error_x_n"])
        c_cov, c_n = count_regimes(cov), count_regimes(byn)
        rows.append(
            {
                "family": family,
                "cov_cells_within_10pct": c_cov.within,
                "cov_cells_ge_2x": c_cov.loses,
                "n_cells_within_10pct": c_n.within,
                "n_cells_ge_2x": c_n.loses,
                "max_ratio_cov": round(float(cov.max()), 3),
                "max_ratio_n": round(float(byn.max()), 3),
                "bon_best_n_by_error": fam["bon_best_n"],
            }
        )
    return rows


def paper_numbers(metrics: dict) -> dict:
    """The numbers the paper quotes: ``{macro: (value, decimals)}`` (map 1: error × coverage)."""
    gauss = metrics["families"]["gaussian"]["ratio_error_x_coverage"]
    hack = metrics["families"]["hack"]["ratio_error_x_coverage"]
    g, h = count_regimes(gauss), count_regimes(hack)
    return {
        "rmCells": (g.cells, 0),
        "rmGaussWithin": (g.within, 0),
        "rmGaussTwice": (g.loses, 0),
        "rmHackWithin": (h.within, 0),
        "rmHackTwice": (h.loses, 0),
        "rmGaussMaxRatio": (float(np.max(gauss)), 2),
    }
