r"""The claims of variational BoN (Amini et al., arXiv 2407.06057) checked on measured methods (docs/theory.md §6).

Every method trained toward BoN (and BoN itself, and KL-RL over its β sweep) gives points
``(KL(π‖p), E_π[r])``, one per budget n or per β. On the pooled points of one policy class:

* a method's *frontier fraction* is the fraction of its points on the reward–KL Pareto frontier of all the
  points (:func:`bontheory.pareto_frontier`: no other point has lower-or-equal KL and higher-or-equal
  reward, one of them strictly);
* a method's *closeness* to BoN is its mean ``KL(π_θ‖π_n)`` over n (KL-RL: at its best β for each n).

The claims:

* **BoN is best**: BoN's frontier fraction is at least every other method's;
* **vBoN is closest to BoN**: the method of least mean ``KL(π_θ‖π_n)`` is a vBoN variant (a method whose
  name starts with ``"vbon"``);
* **vBoN is on the frontier more often than KL-RL**: the best vBoN variant's frontier fraction exceeds
  KL-RL's (``None`` when there is no vBoN variant or no KL-RL among the methods).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from bontheory import validation
from bontheory.vbon.metrics import pareto_frontier

_VBON_PREFIX = "vbon"


@validation.validate(
    methods=validation.sequence_of,
    kl=validation.kind(validation.array, ndim=1),
    reward=validation.kind(validation.array, ndim=1),
)
def frontier_fractions(methods: Sequence[str], kl: Any, reward: Any, *, tol: float = 1e-9) -> dict[str, float]:
    r"""Per method, the fraction of its points on the reward–KL Pareto frontier of all the points.

    Args:
      methods: ``P`` labels, the method of each point.
      kl: ``float[P]`` each point's ``KL(π‖p)``.
      reward: ``float[P]`` each point's expected reward.
      tol: tolerance of "strictly better" (see :func:`bontheory.pareto_frontier`).

    Returns:
      ``{method: fraction in [0, 1]}`` in order of first appearance.
    """
    if isinstance(methods, (str, bytes)) or not isinstance(methods, Sequence):
        raise TypeError(f"methods must be a sequence of method names, got {type(methods).__name__}")
    labels = list(methods)
    if not labels:
        raise ValueError("methods must not be empty")
    if any(not isinstance(m, str) for m in labels):
        raise TypeError("methods must be strings")
    on = pareto_frontier(kl, reward, tol=tol)
    if on.shape != (len(labels),):
        raise ValueError(f"methods, kl and reward must have the same length, got {len(labels)} and {on.shape[0]}")
    labels_arr = np.asarray(labels, dtype=object)
    return {m: float(np.mean(on[labels_arr == m])) for m in dict.fromkeys(labels)}


class VBoNClaims(NamedTuple):
    """The verdicts of the three claims (see the module docstring).

    Attributes:
      bon_best: BoN's frontier fraction is ≥ every other method's.
      closest_method: the method of least mean ``KL(π_θ‖π_n)`` (the first on ties).
      vbon_closest: ``closest_method`` is a vBoN variant.
      vbon_frontier_more_than_kl_rl: the best vBoN frontier fraction > KL-RL's; ``None`` if undecidable.
    """

    bon_best: bool
    closest_method: str
    vbon_closest: bool
    vbon_frontier_more_than_kl_rl: bool | None


def _fractions(x: Any, name: str) -> dict[str, float]:
    if not isinstance(x, Mapping) or not x:
        raise ValueError(f"{name} must be a non-empty mapping from method name to number")
    out = {}
    for k, v in x.items():
        if not isinstance(k, str) or isinstance(v, (bool, str)) or not np.isscalar(v) or not np.isfinite(v):
            raise ValueError(f"{name}[{k!r}] must be a finite number, got {v!r}")
        out[k] = float(v)
    return out


@validation.validate(frontier_fraction=validation.mapping, mean_kl_to_bon=validation.mapping)
def vbon_claims(frontier_fraction: Mapping[str, float], mean_kl_to_bon: Mapping[str, float]) -> VBoNClaims:
    r"""Checks the three claims from per-method frontier fractions and closeness to BoN.

    Args:
      frontier_fraction: ``{method: fraction}`` (see :func:`frontier_fractions`), including ``"bon"`` and at
        least one other method.
      mean_kl_to_bon: ``{method: mean KL(π_θ‖π_n)}`` of the trained methods (and ``"kl_rl"``).

    Returns:
      :class:`VBoNClaims`.
    """
    frac = _fractions(frontier_fraction, "frontier_fraction")
    close = _fractions(mean_kl_to_bon, "mean_kl_to_bon")
    others = [v for k, v in frac.items() if k != "bon"]
    if "bon" not in frac or not others:
        raise ValueError("frontier_fraction must hold 'bon' and at least one other method")
    closest = min(close, key=close.get)
    vbon = [v for k, v in frac.items() if k.startswith(_VBON_PREFIX)]
    more = bool(max(vbon) > frac["kl_rl"]) if vbon and "kl_rl" in frac else None
    return VBoNClaims(
        bon_best=bool(frac["bon"] >= max(others)),
        closest_method=closest,
        vbon_closest=closest.startswith(_VBON_PREFIX),
        vbon_frontier_more_than_kl_rl=more,
    )
