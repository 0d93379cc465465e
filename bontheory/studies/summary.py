r"""The summary every proxy/gold study needs, read off the method curves (docs/theory.md §5.4).

From the gold-reward curves over increasing budgets — BoN's curve and each method's curves over its parameter
grid, e.g. the output of :func:`bontheory.method_grid_curves` (or its mean over seeds) — it reports

* BoN's peak: the budget ``n*`` where its gold reward is largest, that gold value, the final value, the drop
  after the peak and whether it *falls* (:func:`bontheory.peak_and_fall`);
* per method and budget, the best parameter: **oracle** (chosen on the very curves it is scored on) and,
  given selection curves from held-out data (other seeds, a validation problem), **held out** (chosen on the
  selection curves, scored on the evaluation curves), with the gold reward each choice gets;
* per method, the drop after the peak of its oracle-best curve, and whether the method is **monotone** in n
  (a curve is monotone when it never drops below its running maximum by more than ``tol``,
  :func:`bontheory.max_drawdown`), at each parameter and for the oracle-best curve.

Budgets where a method cannot run (NaN, e.g. InferenceTimePessimism below 3 reward calls) are skipped: a
parameter's curve is judged on its finite points, and a budget with no finite value has no best parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from bontheory import validation
from bontheory.studies.curves import max_drawdown, peak_and_fall


class MethodSummary(NamedTuple):
    """One method's summary (lists and arrays over the budgets, ``len(ns)``).

    Attributes:
      grid: the parameter values.
      oracle_param: the grid value with the largest gold reward at each budget (``None`` where none runs).
      oracle_gold: that gold reward (NaN where none runs).
      held_out_param: the grid value with the largest *selection* gold reward at each budget (``None``
        without selection curves).
      held_out_gold: the evaluation gold reward of that choice.
      drop_after_peak: peak minus final value of the oracle-best curve (≥ 0).
      monotone: per grid value, whether its curve is non-decreasing in n (within ``tol``).
      best_monotone: whether the oracle-best curve is non-decreasing in n (within ``tol``).
    """

    grid: list[float]
    oracle_param: list[float | None]
    oracle_gold: np.ndarray
    held_out_param: list[float | None] | None
    held_out_gold: np.ndarray | None
    drop_after_peak: float
    monotone: list[bool]
    best_monotone: bool


class ProxyStudySummary(NamedTuple):
    """BoN's peak and fall, and each method's :class:`MethodSummary`.

    Attributes:
      ns: the budgets.
      bon_peak_n: the budget of BoN's largest gold reward (the first on ties).
      bon_peak_gold: that gold reward.
      bon_final_gold: BoN's gold reward at the largest budget.
      bon_drop_after_peak: ``bon_peak_gold − bon_final_gold``.
      bon_falls: the drop exceeds ``rel_drop`` of BoN's gain (:func:`bontheory.peak_and_fall`).
      bon_monotone: BoN's curve is non-decreasing in n (within ``tol``).
      methods: ``{method: MethodSummary}``.
    """

    ns: list[int]
    bon_peak_n: int
    bon_peak_gold: float
    bon_final_gold: float
    bon_drop_after_peak: float
    bon_falls: bool
    bon_monotone: bool
    methods: dict[str, MethodSummary]


def _grid_and_gold(rows: Any, name: str, size: int) -> tuple[list[float], np.ndarray]:
    if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)) or not rows:
        raise ValueError(f"{name} must be a non-empty list of {{'param', 'gold'}} rows")
    try:
        grid = [float(row["param"]) for row in rows]
        gold = [np.asarray(row["gold"], np.float64) for row in rows]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"{name} must be a list of {{'param', 'gold'}} rows with equal-length gold curves: {e}"
        ) from None
    if any(g.shape != (size,) for g in gold):
        raise ValueError(
            f"{name}: every gold curve must have one value per budget ({size}), got shapes {[g.shape for g in gold]}"
        )
    gold = np.stack(gold)
    if np.any(np.isinf(gold)):
        raise ValueError(f"{name}: gold curves must be finite or NaN (a budget the method cannot run)")
    return grid, gold


def _best(gold: np.ndarray, grid: list[float]) -> tuple[np.ndarray, list[float | None]]:
    """Index of the best row per budget (first maximum; -1 where every row is NaN) and its parameter."""
    filled = np.where(np.isnan(gold), -np.inf, gold)
    idx = np.argmax(filled, axis=0)
    idx = np.where(np.all(np.isnan(gold), axis=0), -1, idx)
    return idx, [grid[i] if i >= 0 else None for i in idx]


def _take(gold: np.ndarray, idx: np.ndarray) -> np.ndarray:
    cols = np.arange(gold.shape[1])
    return np.where(idx >= 0, gold[np.maximum(idx, 0), cols], np.nan)


def _monotone(curve: np.ndarray, tol: float) -> bool:
    finite = curve[np.isfinite(curve)]
    return bool(finite.size == 0 or max_drawdown(finite) <= tol)


def _drop(curve: np.ndarray) -> float:
    finite = curve[np.isfinite(curve)]
    return float(peak_and_fall(finite).drop_after_peak) if finite.size else float("nan")


@validation.validate(ns=validation.kind(validation.array, ndim=1, min_value=1), curves=validation.mapping)
def proxy_study_summary(
    ns: Any,
    curves: Mapping[str, Any],
    *,
    held_out: Mapping[str, Any] | None = None,
    methods: Sequence[str] | None = None,
    rel_drop: float = 0.05,
    tol: float = 1e-9,
) -> ProxyStudySummary:
    """BoN's peak n and gold value, each method's best parameter per n (oracle and held out), the drop after
    the peak, and whether each method is monotone in n (see the module docstring).

    Args:
      ns: the ``N`` increasing budgets of the curves.
      curves: the evaluation curves, shaped like :func:`bontheory.method_grid_curves`' output (or its mean over
        seeds): ``curves["bon"]["gold"]`` is ``float[N]`` and ``curves[method]`` a list of rows
        ``{"param": value, "gold": float[N]}``, one per grid value (NaN where the method cannot run).
      held_out: selection curves of the same shape from held-out data (other seeds or problems): the held-out
        parameter at each budget is the best on them, scored on ``curves``. ``None``: oracle only.
      methods: the methods to summarise (default: every key of ``curves`` with a list of rows).
      rel_drop: the fraction of BoN's gain whose loss counts as a fall (:func:`bontheory.peak_and_fall`).
      tol: the drop below the running maximum still counted as monotone.

    Returns:
      :class:`ProxyStudySummary`.
    """
    ns_list = [int(n) for n in np.asarray(ns).reshape(-1)]
    if not ns_list or np.any(np.diff(ns_list) <= 0):
        raise ValueError(f"ns must be non-empty and increasing, got {ns_list}")
    if not isinstance(curves, Mapping) or "bon" not in curves:
        raise ValueError("curves must be a mapping with a 'bon' entry (see method_grid_curves)")
    size = len(ns_list)
    bon = np.asarray(curves["bon"]["gold"], np.float64)
    if bon.shape != (size,) or not np.all(np.isfinite(bon)):
        raise ValueError(f"curves['bon']['gold'] must be {size} finite values, got {bon.tolist()}")
    pf = peak_and_fall(bon, rel_drop=rel_drop)
    if methods is None:
        methods = [m for m, v in curves.items() if m != "bon" and isinstance(v, list)]
    out: dict[str, MethodSummary] = {}
    for method in methods:
        grid, gold = _grid_and_gold(curves.get(method), f"curves[{method!r}]", size)
        idx, params = _best(gold, grid)
        best = _take(gold, idx)
        held_param, held_gold = None, None
        if held_out is not None:
            sel_grid, sel = _grid_and_gold(held_out.get(method), f"held_out[{method!r}]", size)
            if sel_grid != grid:
                raise ValueError(f"held_out[{method!r}] has grid {sel_grid}, curves has {grid}")
            hidx, held_param = _best(sel, grid)
            held_gold = _take(gold, hidx)
        out[method] = MethodSummary(
            grid=grid,
            oracle_param=params,
            oracle_gold=best,
            held_out_param=held_param,
            held_out_gold=held_gold,
            drop_after_peak=_drop(best),
            monotone=[_monotone(row, tol) for row in gold],
            best_monotone=_monotone(best, tol),
        )
    return ProxyStudySummary(
        ns=ns_list,
        bon_peak_n=ns_list[pf.peak_index],
        bon_peak_gold=pf.peak_value,
        bon_final_gold=pf.final_value,
        bon_drop_after_peak=pf.drop_after_peak,
        bon_falls=pf.falls,
        bon_monotone=_monotone(bon, tol),
        methods=out,
    )
