"""Regime map: where is BoN within 10% of the best alternative, and where does it lose by 2× or more?

For each proxy family and error size, a random memoryless tabular policy is enumerated and every method's
exact gold-reward curve is computed over n and its parameter grid
(:func:`bontheory.alternatives.sweeps.method_grid_curves`). The comparator of coverage C is
``π*_C = quantile_truncated_pmf(p, r*, C)``: the best gold policy with density ratio ≤ C (its
``C_∞ = C`` and ``1 + χ²(π*_C‖p) ≈ C``). Regret = ``J(π*_C) − J(π)``, averaged over seeds, floored at
``floor · sd(r*)`` (methods can beat a weak comparator).

Map 1 (error × coverage): regret(BoN at its best n ≤ n_max) / regret(best alternative, best parameter).
Map 2 (error × n), at coverage ``map2_coverage``: regret(BoN at n) / regret(best budget-n alternative:
soft BoN, finite-N quantile truncation, regularised BoN, each at its best parameter). Oracle tuning on
gold is used throughout: the map shows what each method *can* achieve.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from bontheory.alternatives import quantile_truncated_pmf
from bontheory.alternatives.sweeps import method_grid_curves, proxy_problem
from bontheory.plotting import new_figure, save_figure
from bontheory.progress import progress

NAME = "regime_map"
SUMMARY = "heatmaps of regret(BoN)/regret(best alternative) over proxy error × coverage and × n"

_FINITE_N = ("soft_bon", "quantile_trunc", "regularized_bon")
_ALL_ALT = ("soft_bon", "quantile_trunc", "regularized_bon", "chi2_pessimism", "tilted")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings.

    Attributes:
      families: proxy families.
      errors: proxy error sizes (rows of the maps), in units of the family's ``error`` argument.
      coverages: comparator coverages C (columns of map 1).
      ns: budgets n (columns of map 2; BoN's best n is searched over them).
      map2_coverage: comparator coverage of map 2.
      vocab_size: V.
      length: L.
      num_seeds: independent problems averaged per cell.
      floor: regret floor in units of sd(r*) under p.
      seed: random seed.
      x64: float64.
    """

    families: tuple[str, ...] = ("gaussian", "cauchy", "hack")
    errors: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)
    coverages: tuple[float, ...] = (2.0, 8.0, 32.0, 128.0, 512.0)
    ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000)
    map2_coverage: float = 32.0
    vocab_size: int = 4
    length: int = 6
    num_seeds: int = 3
    floor: float = 0.01
    seed: int = 0
    x64: bool = True


QUICK = Config(
    families=("gaussian", "hack"),
    errors=(0.3, 1.0, 3.0, 10.0),
    length=5,
    ns=(1, 4, 16, 64, 256, 1024, 10000),
    num_seeds=1,
)


def _cell(config: Config, f: int, e: int, s: int) -> dict:
    key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), f), e), s)
    family = config.families[f]
    err = config.errors[e]
    kw = {"hack_penalty": 3.0, "hack_mass": 2e-3} if family == "hack" else {}
    prob = proxy_problem(key, family, vocab_size=config.vocab_size, length=config.length, error=err, **kw)
    curves = method_grid_curves(prob, config.ns)
    p = np.asarray(prob.ref_probs)
    gold = np.asarray(prob.gold)
    comp = np.asarray(quantile_truncated_pmf(prob.ref_probs, prob.gold, np.asarray(config.coverages))) @ gold
    bon = np.asarray(curves["bon"]["gold"])
    best_alt = np.max([np.max([row["gold"] for row in curves[m]], axis=0) for m in _ALL_ALT], axis=0)  # (ns,)
    best_finite = np.max([np.max([row["gold"] for row in curves[m]], axis=0) for m in _FINITE_N], axis=0)
    gold_sd = float(np.sqrt(p @ (gold - p @ gold) ** 2))
    return {
        "comparator": comp,
        "bon": bon,
        "best_alt_any_n": float(np.max(best_alt)),
        "best_finite": best_finite,
        "gold_sd": gold_sd,
    }


def run(config: Config, run) -> dict:
    cells = [(f, e, s) for f in range(len(config.families)) for e in range(len(config.errors))
             for s in range(config.num_seeds)]
    res = {}
    for f, e, s in progress(cells, desc=NAME):
        res[(f, e, s)] = run.cell(
            f"{config.families[f]}-err{config.errors[e]:g}-seed{s}", lambda f=f, e=e, s=s: _cell(config, f, e, s)
        )
    if config.map2_coverage not in config.coverages:
        raise ValueError("map2_coverage must be one of coverages")
    j2 = list(config.coverages).index(config.map2_coverage)
    out = {"families": {}, "errors": list(config.errors), "coverages": list(config.coverages), "ns": list(config.ns)}
    for f, family in enumerate(config.families):
        ratio_cov = np.zeros((len(config.errors), len(config.coverages)))
        ratio_n = np.zeros((len(config.errors), len(config.ns)))
        bon_best_n = []
        both_cov = np.zeros_like(ratio_cov, dtype=bool)
        both_n = np.zeros_like(ratio_n, dtype=bool)
        for e in range(len(config.errors)):
            rs = [res[(f, e, s)] for s in range(config.num_seeds)]
            fl = config.floor * np.mean([r["gold_sd"] for r in rs])
            comp = np.mean([r["comparator"] for r in rs], axis=0)  # (C,)
            bon = np.mean([r["bon"] for r in rs], axis=0)  # (ns,)
            best_alt = np.mean([r["best_alt_any_n"] for r in rs])
            finite = np.mean([r["best_finite"] for r in rs], axis=0)
            reg_bon = np.maximum(comp - bon.max(), fl)
            reg_alt = np.maximum(comp - best_alt, fl)
            ratio_cov[e] = reg_bon / reg_alt
            both_cov[e] = (reg_bon <= fl) & (reg_alt <= fl)
            c2 = comp[j2]
            ratio_n[e] = np.maximum(c2 - bon, fl) / np.maximum(c2 - finite, fl)
            both_n[e] = (c2 - bon <= fl) & (c2 - finite <= fl)
            bon_best_n.append(int(config.ns[int(np.argmax(bon))]))
        out["families"][family] = {
            "ratio_error_x_coverage": ratio_cov.tolist(),
            "ratio_error_x_n": ratio_n.tolist(),
            "bon_best_n": bon_best_n,
            "both_beat_comparator_coverage": both_cov.tolist(),
            "both_beat_comparator_n": both_n.tolist(),
        }
    return out


def _heat(ax, mat, both, xlabels, ylabels, title, xlabel):
    mat = np.asarray(mat, float)
    both = np.asarray(both, bool)
    im = ax.imshow(np.log2(np.maximum(mat, 1e-3)), origin="lower", aspect="auto", cmap="RdBu_r", vmin=-3, vmax=3)
    ax.set_xticks(range(len(xlabels)))
    ax.set_xticklabels([f"{x:g}" for x in xlabels], fontsize=6)
    ax.set_yticks(range(len(ylabels)))
    ax.set_yticklabels([f"{y:g}" for y in ylabels], fontsize=6)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat[i, j]
            mark = "≤10%" if v <= 1.1 else ("≥2×" if v >= 2 else "")
            if both[i, j]:
                mark = "both ≥ π*"
            ax.text(j, i, f"{v:.2g}\n{mark}", ha="center", va="center", fontsize=5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("proxy error")
    ax.set_title(title, fontsize=8)
    ax.grid(False)
    return im


def plot(metrics: dict, out_dir) -> list:
    fams = metrics["families"]
    paths = []
    for key, bkey, xs, xlabel, stem in (
        ("ratio_error_x_coverage", "both_beat_comparator_coverage", metrics["coverages"], "comparator coverage C",
         "regret_ratio_coverage"),
        ("ratio_error_x_n", "both_beat_comparator_n", metrics["ns"], "n", "regret_ratio_n"),
    ):
        fig, axes = new_figure(1, len(fams), squeeze=False)
        im = None
        for ax, (family, fam) in zip(axes[0], fams.items()):
            im = _heat(ax, fam[key], fam[bkey], xs, metrics["errors"], f"{family}: regret(BoN)/regret(best alt.)", xlabel)
        fig.colorbar(im, ax=axes[0].tolist(), label="log2 ratio")
        paths += save_figure(fig, out_dir, stem)
    return paths


def summary(metrics: dict) -> list[dict]:
    rows = []
    for family, fam in metrics["families"].items():
        cov = np.asarray(fam["ratio_error_x_coverage"])
        byn = np.asarray(fam["ratio_error_x_n"])
        rows.append({
            "family": family,
            "cov_cells_within_10pct": int(np.sum(cov <= 1.1)),
            "cov_cells_ge_2x": int(np.sum(cov >= 2)),
            "n_cells_within_10pct": int(np.sum(byn <= 1.1)),
            "n_cells_ge_2x": int(np.sum(byn >= 2)),
            "max_ratio_cov": round(float(cov.max()), 3),
            "cov_cells_both_beat_comparator": int(np.sum(fam["both_beat_comparator_coverage"])),
            "bon_best_n_by_error": fam["bon_best_n"],
        })
    return rows
