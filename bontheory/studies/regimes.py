r"""Regret of BoN against the best alternative, measured against the optimum itself (docs/theory.md §5).

On a proxy/gold problem (:class:`bontheory.studies.proxy.ProxyProblem`) the comparator is the gold-best
outcome ``y* = argmax_y r*(y)``, i.e. the point mass ``π* = δ_{y*}``. Then

* the optimum ``J(π*) = r*(y*)`` and each method's regret ``R(π) = J(π*) − J(π) ≥ 0``
  (:func:`bontheory.regret`);
* the coverage of the comparator ``C = 1 + χ²(π*‖p) = 1/p(y*)`` (:func:`bontheory.chi2_coverage`), equal for
  a point mass to ``C_∞ = max π*/p`` (:func:`bontheory.max_density_ratio`).

Two methods are compared by the ratio of their seed-averaged regrets, ``R̄_BoN / R̄_alt`` (each floored at
``1e-12`` so a method that reaches the optimum does not divide by zero): at each budget n, and at each
method's best budget (``min_n R̄_BoN(n) / min_n R̄_alt(n)``). A ratio ≤ 1.1 says BoN is within 10% of the
alternative, ≥ 2 that it loses by a factor two or more.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bontheory import validation
from bontheory.exact.metrics import chi2_coverage, expected_reward, max_density_ratio

_REGRET_FLOOR = 1e-12


class OptimumComparator(NamedTuple):
    """The gold-best outcome as a comparator.

    Attributes:
      probs: ``float[K]`` the point mass ``δ_{y*}`` at ``y* = argmax r*`` (the first on ties).
      index: ``y*``.
      optimum: ``J(π*) = r*(y*)``.
      coverage: ``C = 1 + χ²(π*‖p) = 1/p(y*)``.
      max_ratio: ``C_∞ = max_y π*(y)/p(y) = 1/p(y*)``.
    """

    probs: jax.Array
    index: int
    optimum: float
    coverage: float
    max_ratio: float


@validation.validate(
    ref_probs=validation.unconverted(validation.kind(validation.probs, ndim=1)),
    gold_rewards=validation.unconverted(validation.rewards),
)
def optimum_comparator(ref_probs: Any, gold_rewards: Any) -> OptimumComparator:
    r"""The point mass at the gold-best outcome, its value and its coverage under ``p``.

    Args:
      ref_probs: ``float[K]`` reference pmf p.
      gold_rewards: ``float[K]`` gold reward r*.

    Returns:
      :class:`OptimumComparator`.
    """
    p = validation.probs(ref_probs, "ref_probs", ndim=1)
    gold = validation.rewards(gold_rewards, "gold_rewards", ndim=1)
    validation.same_outcomes([("ref_probs", p), ("gold_rewards", gold)])
    best = int(jnp.argmax(gold))
    dtype = jnp.result_type(p.dtype, gold.dtype, float)
    delta = jnp.zeros(gold.shape, dtype).at[best].set(1.0)
    return OptimumComparator(
        probs=delta,
        index=best,
        optimum=float(expected_reward(delta, gold)),
        coverage=float(chi2_coverage(delta, p)),
        max_ratio=float(max_density_ratio(delta, p)),
    )


class RegretComparison(NamedTuple):
    """BoN against an alternative by seed-averaged regret (see the module docstring).

    Attributes:
      ratio_at_best_n: ``max(min_n R̄_BoN, floor) / max(min_n R̄_alt, floor)``.
      ratio_per_n: ``float[N]``, ``max(R̄_BoN(n), floor) / max(R̄_alt(n), floor)``.
      bon_best_index: ``argmin_n R̄_BoN(n)`` (the first on ties).
    """

    ratio_at_best_n: float
    ratio_per_n: np.ndarray
    bon_best_index: int


def _regrets(x: Any, name: str) -> np.ndarray:
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of regrets, got {type(x).__name__}")
    try:
        a = np.asarray(x, np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be an array of regrets: {e}") from None
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N,) or (seeds, N) with N, seeds >= 1, got {np.shape(x)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    return a


@validation.validate(
    bon_regret=validation.kind(validation.array, min_value=0), alt_regret=validation.kind(validation.array, min_value=0)
)
def compare_regrets(bon_regret: Any, alt_regret: Any, *, floor: float = _REGRET_FLOOR) -> RegretComparison:
    r"""Ratios of BoN's to an alternative's regret, averaged over seeds first.

    Args:
      bon_regret: ``float[S, N]`` (or ``float[N]``) BoN's regret per seed and budget.
      alt_regret: ``float[S, N]`` (or ``float[N]``) the alternative's regret (e.g. the best alternative's,
        tuned per seed and budget).
      floor: the smallest regret used as a denominator (> 0).

    Returns:
      :class:`RegretComparison`.
    """
    b = _regrets(bon_regret, "bon_regret")
    a = _regrets(alt_regret, "alt_regret")
    if a.shape != b.shape:
        raise ValueError(f"bon_regret and alt_regret must have the same shape, got {b.shape} and {a.shape}")
    floor = float(floor)
    if not (np.isfinite(floor) and floor > 0):
        raise ValueError(f"floor must be finite and > 0, got {floor}")
    rb, ra = b.mean(axis=0), a.mean(axis=0)
    return RegretComparison(
        ratio_at_best_n=float(max(rb.min(), floor) / max(ra.min(), floor)),
        ratio_per_n=np.maximum(rb, floor) / np.maximum(ra, floor),
        bon_best_index=int(np.argmin(rb)),
    )


class RegimeCounts(NamedTuple):
    """How many ratios ``R̄_BoN / R̄_alt`` fall in each regime.

    Attributes:
      cells: the number of ratios.
      within: ratios ≤ ``within`` (BoN within 10% of the alternative at the default 1.1).
      loses: ratios ≥ ``loses`` (BoN loses by a factor two or more at the default 2).
    """

    cells: int
    within: int
    loses: int


@validation.validate(ratios=validation.kind(validation.array, min_value=0))
def count_regimes(ratios: Any, *, within: float = 1.1, loses: float = 2.0) -> RegimeCounts:
    r"""Counts the regret ratios (any shape, e.g. a map) in the regimes ``≤ within`` and ``≥ loses``.

    Args:
      ratios: regret ratios (positive, finite), any shape.
      within, loses: the regime thresholds, ``1 ≤ within < loses``.

    Returns:
      :class:`RegimeCounts`.
    """
    if isinstance(ratios, (str, bytes)) or ratios is None:
        raise TypeError(f"ratios must be an array of numbers, got {type(ratios).__name__}")
    try:
        r = np.asarray(ratios, np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"ratios must be an array of numbers: {e}") from None
    if not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ValueError("ratios must be finite and > 0")
    for name, x in (("within", within), ("loses", loses)):
        if isinstance(x, (bool, str, bytes)) or x is None or np.ndim(x) != 0:
            raise TypeError(f"{name} must be a real number, got {x!r}")
    within, loses = float(within), float(loses)
    if not (1.0 <= within < loses < np.inf):
        raise ValueError(f"the thresholds must satisfy 1 <= within < loses < inf, got within={within}, loses={loses}")
    return RegimeCounts(cells=int(r.size), within=int(np.sum(r <= within)), loses=int(np.sum(r >= loses)))
