r"""Verdicts read off curves: overoptimisation over increasing budgets (docs/theory.md §5) and the gap of
(KL, value) points to an optimal KL frontier (docs/theory.md §3).

A *curve* is ``v[t] = v(n_t)`` for budgets ``n_0 < n_1 < … < n_{T−1}``, e.g. the gold reward of BoN against n.
Overoptimisation shows as a curve that rises to a peak and then falls:

* the peak ``t* = argmax_t v[t]`` (the first one on ties), its gain ``v[t*] − v[0]`` and its drop
  ``v[t*] − v[T−1]`` to the largest budget;
* the curve *falls* when the drop exceeds a fraction ``rel_drop`` of the gain:
  ``v[t*] − v[T−1] > rel_drop · max(v[t*] − v[0], tiny)`` (``tiny = 1e-12``, so a curve whose first point is
  its peak falls as soon as it drops at all, and a constant curve does not fall);
* the *drawdown* ``max_t (max_{s ≤ t} v[s] − v[t])``: how far the curve ever drops below its running
  maximum (0 for a non-decreasing curve).

The tilted policies ``p·e^{r/β}/Z`` trace the best expected reward at each ``KL(π‖p)`` (the reward–KL
frontier) and the quantile tilts the best win rate against p (the win-rate–KL frontier); both are computed
at finitely many strengths (:func:`bontheory.reward_kl_frontier`, :func:`bontheory.win_rate_kl_frontier`).
The gap of a point ``(κ, v)`` (e.g. BoN at budget n) to such a frontier is

.. math:: \mathrm{gap}(κ, v) = F(κ) − v,

with ``F`` the piecewise-linear interpolation of the frontier points **anchored at** ``(0, v_0)``: at
``KL = 0`` the only policy is p itself, whose value ``v_0`` is ``E_p[r]`` (reward) or ½ (win rate). Without
the anchor, a point left of the frontier's first computed point (BoN at n = 1 has KL = 0 and value ``v_0``)
would be compared with that first point's value instead: a spurious positive gap. Right of the largest
computed frontier KL, ``F`` is the last frontier value.

Both frontiers maximise a linear functional of π over the ball ``KL(π‖p) ≤ κ``, so they are concave and
non-decreasing in κ: the chords and the flat extension lie below the true frontier, and the interpolated
gap is a lower bound of the true gap.

Plain NumPy on saved metrics (small, concrete arrays).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from bontheory import validation

_TINY = 1e-12
_KL_TOL = 1e-9  # KLs computed in floating point may round to tiny negatives


def _curve(values: Any, name: str = "values", *, min_len: int = 1) -> np.ndarray:
    if isinstance(values, (str, bytes)) or values is None:
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a sequence of numbers: {e}") from None
    if v.ndim != 1 or v.shape[0] < min_len:
        raise ValueError(f"{name} must be 1-D with at least {min_len} point(s), got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {v.tolist()}")
    return v


def _scalar(x: Any, name: str) -> float:
    if isinstance(x, (str, bytes, bool)) or x is None or np.ndim(x) != 0:
        raise TypeError(f"{name} must be a real number, got {x!r}")
    try:
        value = float(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a real number, got {x!r}") from e
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class PeakAndFall(NamedTuple):
    """Where a curve peaks and whether it falls afterwards (see the module docstring).

    Attributes:
      peak_index: ``t* = argmax_t v[t]`` (the first maximum).
      peak_value: ``v[t*]``.
      final_value: ``v[T−1]``.
      gain: ``v[t*] − v[0]`` (≥ 0).
      drop_after_peak: ``v[t*] − v[T−1]`` (≥ 0).
      falls: ``drop_after_peak > rel_drop · max(gain, 1e-12)``.
    """

    peak_index: int
    peak_value: float
    final_value: float
    gain: float
    drop_after_peak: float
    falls: bool


@validation.validate(values=validation.kind(validation.array, ndim=1))
def peak_and_fall(values: Any, *, rel_drop: float = 0.05) -> PeakAndFall:
    r"""The peak of a curve over increasing budgets and whether it falls after it.

    ``falls = v[t*] − v[T−1] > rel_drop · max(v[t*] − v[0], 1e-12)`` with ``t* = argmax_t v[t]``: the curve
    ends more than ``rel_drop`` of its gain below its peak.

    Args:
      values: ``float[T]``, ``T ≥ 1``, finite: the curve at increasing budgets.
      rel_drop: the fraction of the gain that counts as a fall, ``≥ 0``.

    Returns:
      :class:`PeakAndFall`.
    """
    v = _curve(values)
    rel_drop = _scalar(rel_drop, "rel_drop")
    if rel_drop < 0:
        raise ValueError(f"rel_drop must be >= 0, got {rel_drop}")
    peak = int(np.argmax(v))
    gain = float(v[peak] - v[0])
    drop = float(v[peak] - v[-1])
    return PeakAndFall(
        peak_index=peak,
        peak_value=float(v[peak]),
        final_value=float(v[-1]),
        gain=gain,
        drop_after_peak=drop,
        falls=bool(drop > rel_drop * max(gain, _TINY)),
    )


@validation.validate(values=validation.kind(validation.array, ndim=1))
def max_drawdown(values: Any) -> float:
    r"""``max_t (max_{s ≤ t} v[s] − v[t])``: the largest drop of a curve below its running maximum.

    Args:
      values: ``float[T]``, ``T ≥ 1``, finite.

    Returns:
      A float ``≥ 0``; 0 iff the curve never decreases.
    """
    v = _curve(values)
    return float(np.max(np.maximum.accumulate(v) - v))


def _kl(x: Any, name: str) -> np.ndarray:
    k = _curve(x, name)
    if np.any(k < -_KL_TOL):
        raise ValueError(f"{name} must be >= 0 (a KL divergence), got min {float(k.min())}")
    return k


@validation.validate(
    kl=validation.kind(validation.array, ndim=1),
    values=validation.kind(validation.array, ndim=1),
    frontier_kl=validation.kind(validation.array, ndim=1),
    frontier_values=validation.kind(validation.array, ndim=1),
    value_at_zero=validation.static_number,
)
def gap_to_frontier(kl: Any, values: Any, frontier_kl: Any, frontier_values: Any, value_at_zero: float) -> np.ndarray:
    r"""``F(κ_i) − v_i`` for each point, ``F`` the frontier interpolated linearly and anchored at ``(0, v_0)``.

    Args:
      kl: ``float[P]`` the points' ``KL(π‖p)`` (≥ 0).
      values: ``float[P]`` the points' values (expected reward or win rate).
      frontier_kl: ``float[F]`` the frontier points' KL (≥ 0, any order).
      frontier_values: ``float[F]`` the frontier points' values.
      value_at_zero: ``v_0``, the value of p itself (``E_p[r]`` for reward, ½ for win rate).

    Returns:
      ``float[P]`` NumPy array: positive where a point lies below the frontier.
    """
    k = _kl(kl, "kl")
    v = _curve(values, "values")
    if k.shape != v.shape:
        raise ValueError(f"kl and values must have the same length, got {k.shape} and {v.shape}")
    fk = _kl(frontier_kl, "frontier_kl")
    fv = _curve(frontier_values, "frontier_values")
    if fk.shape != fv.shape:
        raise ValueError(f"frontier_kl and frontier_values must have the same length, got {fk.shape} and {fv.shape}")
    v0 = _scalar(value_at_zero, "value_at_zero")
    kl_f = np.concatenate([[0.0], fk])
    val_f = np.concatenate([[v0], fv])
    order = np.argsort(kl_f, kind="stable")
    return np.interp(k, kl_f[order], val_f[order]) - v
