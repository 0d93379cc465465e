"""The folk KL formula log n − (n−1)/n against the exact KL(π_n‖p) and Beirami et al.'s estimator.

For n from 1 to 10⁴ (log grid) on uniform references of several sizes (distinct rewards), a binary
reference, and a reference whose best outcome has tiny mass: the exact KL (docs/theory.md §1.5), the folk formula
(an upper bound, exact only without atoms), the estimator E_{π_n}[D̂(p(y))] and the collision gap bound
2n(n−1)Σp² (docs/theory.md §2.3). Everything is exact (no sampling); ``seed`` is unused but recorded.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bontheory import (
    beirami_kl_expectation,
    bon_kl,
    bon_kl_bound,
    bon_kl_gap_bound,
    bon_win_rate,
    bon_win_rate_bound,
)
from bontheory.experiments import checks
from bontheory.plotting import new_figure, save_figure
from bontheory.runner import progress

NAME = "kl_bound"
SUMMARY = "Exact KL of BoN vs the folk formula log n − (n−1)/n and Beirami's estimator, n = 1..10⁴"


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings.

    Attributes:
      uniform_sizes: sizes L of the uniform references (rewards 0..L−1, all distinct).
      binary_high_prob: P(high reward) of the binary reference.
      tiny_top_mass: mass ε of the best outcome of the "tiny top" reference.
      tiny_rest_size: the rest of that reference is uniform over this many outcomes (distinct rewards).
      n_max: largest n.
      num_ns: number of points of the log grid of n (duplicates after rounding removed).
      seed: random seed (unused: everything is exact; recorded for provenance).
      x64: compute in float64.
    """

    uniform_sizes: tuple[int, ...] = (2, 10, 100, 1000, 100_000)
    binary_high_prob: float = 0.1
    tiny_top_mass: float = 1e-3
    tiny_rest_size: int = 10_000
    n_max: int = 10_000
    num_ns: int = 60
    seed: int = 0
    x64: bool = True

    def __post_init__(self):
        checks.integers(self, "uniform_sizes", min=1, nonempty=False)
        checks.probability(self, "binary_high_prob")
        checks.probability(self, "tiny_top_mass")
        checks.integer(self, "tiny_rest_size", min=1)
        checks.integer(self, "n_max", min=1)
        checks.integer(self, "num_ns", min=1)
        checks.integer(self, "seed")
        checks.boolean(self, "x64")


QUICK = Config(uniform_sizes=(2, 10, 100, 10_000), num_ns=30)


def references(config: Config) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The reference pmfs and rewards, by name."""
    refs = {}
    for size in config.uniform_sizes:
        refs[f"uniform L={size}"] = (np.full(size, 1.0 / size), np.arange(size, dtype=float))
    q = config.binary_high_prob
    refs[f"binary P(high)={q:g}"] = (np.array([1 - q, q]), np.array([0.0, 1.0]))
    eps, rest = config.tiny_top_mass, config.tiny_rest_size
    refs[f"tiny top ε={eps:g}"] = (
        np.append(np.full(rest, (1 - eps) / rest), eps),
        np.arange(rest + 1, dtype=float),
    )
    return refs


def n_grid(config: Config) -> np.ndarray:
    return np.unique(np.round(np.logspace(0, np.log10(config.n_max), config.num_ns)).astype(np.int64))


def _cell(p: np.ndarray, r: np.ndarray, ns: np.ndarray) -> dict:
    return {
        "kl": bon_kl(p, r, ns),
        "estimate": beirami_kl_expectation(p, r, ns),
        "gap_bound": bon_kl_gap_bound(p, ns),
        "win_rate": bon_win_rate(p, r, ns),
        "collision": float(np.sum(p * p)),
        "max_prob": float(np.max(p)),
    }


def run(config: Config, run) -> dict:
    ns = n_grid(config)
    out = {"ns": ns.tolist(), "folk": bon_kl_bound(ns).tolist(), "win_bound": bon_win_rate_bound(ns).tolist()}
    refs = references(config)
    results = {}
    for name in progress(list(refs), desc=NAME):
        p, r = refs[name]
        results[name] = run.cell(name, lambda p=p, r=r: _cell(p, r, ns))
    out["references"] = results
    return out


def plot(metrics: dict, out_dir) -> list:
    ns = np.asarray(metrics["ns"], dtype=float)
    folk = np.asarray(metrics["folk"])
    fig, (a1, a2) = new_figure(1, 2)
    a1.plot(ns, folk, "k--", label="log n − (n−1)/n")
    for name, res in metrics["references"].items():
        (line,) = a1.plot(ns, res["kl"], label=name)
        a1.plot(ns, res["estimate"], ":", color=line.get_color())
        a2.plot(ns, np.maximum(folk - np.asarray(res["kl"]), 1e-12), color=line.get_color(), label=name)
    a1.set_xscale("log")
    a1.set_xlabel("n")
    a1.set_ylabel(r"KL($\pi_n \,\|\, p$)   (dotted: E[$\hat D$], Beirami et al.)")
    a1.legend(fontsize=7)
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_ylim(1e-8, None)
    a2.set_xlabel("n")
    a2.set_ylabel("folk formula − exact KL")
    return save_figure(fig, out_dir, "kl_vs_bound")


def gap_bound_holds(folk, reference: dict) -> bool:
    """Whether ``folk − KL ≤ 2n(n−1)Σp²`` (the collision gap bound) at every n of a reference case, up to
    1e-12 of rounding."""
    gap = np.asarray(folk) - np.asarray(reference["kl"])
    return bool(np.all(gap <= np.asarray(reference["gap_bound"]) + 1e-12))


def summary(metrics: dict) -> list[dict]:
    ns = np.asarray(metrics["ns"])
    folk = np.asarray(metrics["folk"])
    rows = []
    for name, res in metrics["references"].items():
        kl = np.asarray(res["kl"])
        est = np.asarray(res["estimate"])
        gap = folk - kl
        big = np.flatnonzero(gap > 0.01)
        rows.append({
            "reference": name,
            "n_gap>0.01": int(ns[big[0]]) if len(big) else None,
            "kl@n_max": round(float(kl[-1]), 5),
            "folk@n_max": round(float(folk[-1]), 5),
            "estimate@n_max": round(float(est[-1]), 5),
            "min(est−kl)": float(f"{np.min(est - kl):.3g}"),
            "max(est−kl)": float(f"{np.max(est - kl):.3g}"),
            "gap≤bound": gap_bound_holds(folk, res),
        })
    return rows


def paper_numbers(metrics: dict) -> dict:
    """The numbers the paper quotes: ``{macro: (value, decimals)}``."""
    refs = metrics["references"]
    excess = [np.asarray(r["estimate"]) - np.asarray(r["kl"]) for r in refs.values()]
    return {
        "klNmax": (metrics["ns"][-1], 0),
        "klFolkNmax": (metrics["folk"][-1], 3),
        "klTinyKL": (_reference(metrics, "tiny top")["kl"][-1], 3),
        "klUniformKL": (_reference(metrics, "uniform L=100")["kl"][-1], 3),
        "klReferences": (len(refs), 0),
        "klGapBoundHolds": (sum(gap_bound_holds(metrics["folk"], r) for r in refs.values()), 0),
        "klEstMinExcess": (min(float(e.min()) for e in excess), 4),
        "klEstMaxExcess": (max(float(e.max()) for e in excess), 4),
    }


def _reference(metrics: dict, prefix: str) -> dict:
    """The reference case named ``prefix`` (or the only one whose name starts with it)."""
    refs = metrics["references"]
    if prefix in refs:
        return refs[prefix]
    (name,) = [k for k in refs if k.startswith(prefix)]
    return refs[name]
