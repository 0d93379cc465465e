r"""Gao et al. functional forms for gold reward vs ``d = √KL``, and the unbiased BoN estimate from samples.

Gao, Schulman, Hilton, "Scaling Laws for Reward Model Overoptimization" (arXiv 2210.10760) fit the gold
reward gain over the reference, as a function of ``d = √KL(π‖p)``, by

.. math:: R_{bon}(d) = d(α − β d), \qquad R_{RL}(d) = d(α − β \log d).

Both are linear in ``(α, β)``, so they are fitted by least squares without intercept (``R(0) = 0``).
The BoN gold reward at every ``n ≤ K`` is estimated without bias from one set of K reference samples,
sorted by proxy reward: ``Σ_{i=n}^{K} C(i−1, n−1)/C(K, n) · r*_{(i)}``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from bontheory import validation


class GaoFit(NamedTuple):
    """A least-squares fit ``R(d) = d(α − β g(d))``: coefficients, R² and the fitted values."""

    alpha: float
    beta: float
    r2: float
    fitted: np.ndarray


def _fit(d: np.ndarray, y: np.ndarray, g: np.ndarray) -> GaoFit:
    d = np.asarray(d, np.float64)
    y = np.asarray(y, np.float64)
    if d.shape != y.shape or d.ndim != 1 or len(d) < 3:
        raise ValueError(f"d and y must be 1-D of equal length >= 3, got {d.shape} and {y.shape}")
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(y))):
        raise ValueError("d and y must be finite")
    x = np.stack([d, -d * g], axis=1)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    fitted = x @ coef
    ss_res = float(np.sum((y - fitted) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    return GaoFit(float(coef[0]), float(coef[1]), r2, fitted)


@validation.validate(d=validation.kind(validation.array, ndim=1), y=validation.kind(validation.array, ndim=1))
def fit_gao_bon(d: Any, y: Any) -> GaoFit:
    r"""Least-squares fit of ``y ≈ d(α − β d)`` (Gao et al.'s BoN form). ``d = √KL``, ``y`` = gold gain."""
    d = np.asarray(d, np.float64)
    return _fit(d, y, d)


@validation.validate(d=validation.kind(validation.array, ndim=1), y=validation.kind(validation.array, ndim=1))
def fit_gao_rl(d: Any, y: Any) -> GaoFit:
    r"""Least-squares fit of ``y ≈ d(α − β log d)`` (Gao et al.'s RL form); points with ``d = 0`` contribute 0."""
    d = np.asarray(d, np.float64)
    g = np.where(d > 0, np.log(np.where(d > 0, d, 1.0)), 0.0)
    return _fit(d, y, g)


@validation.validate(
    key=validation.prng_key,
    proxy=validation.rewards,
    values=validation.rewards,
    ns=validation.unconverted(validation.sample_sizes),
)
def bon_unbiased_estimate(key: jax.Array, proxy: Any, values: Any, ns: Any) -> jax.Array:
    r"""Unbiased estimate of ``E_{π_n}[v]`` for each n from K i.i.d. reference samples.

    Sort the samples by proxy reward (ties in uniformly random order, which matches BoN's tie-break);
    with ``v_{(i)}`` the value of the i-th smallest,

    .. math:: \hat V_n = \sum_{i=n}^{K} \frac{\binom{i-1}{n-1}}{\binom{K}{n}}\, v_{(i)}

    (the average of ``v`` at the proxy-argmax over all ``C(K, n)`` subsets of size n). Weights in log space.

    Args:
      key: PRNG key (random tie order).
      proxy: ``float[K]`` proxy rewards of the samples.
      values: ``float[K]`` the quantity to average (e.g. gold rewards).
      ns: ``int[J]`` budgets, each ``1 ≤ n ≤ K``.

    Returns:
      ``float[J]``.
    """
    proxy = jnp.asarray(proxy)
    values = jnp.asarray(values)
    ns = jnp.asarray(ns)
    k = proxy.shape[-1]
    if proxy.shape != values.shape or proxy.ndim != 1:
        raise ValueError(f"proxy and values must be 1-D of equal shape, got {proxy.shape}, {values.shape}")
    if not isinstance(ns, jax.core.Tracer) and (np.any(np.asarray(ns) < 1) or np.any(np.asarray(ns) > k)):
        raise ValueError(f"ns: every n must be in [1, K={k}], got {np.asarray(ns)}")
    u = jax.random.uniform(key, (k,))
    order = jnp.lexsort((u, proxy))
    v = values[order].astype(jnp.result_type(float))
    i = jnp.arange(1, k + 1, dtype=v.dtype)[None, :]
    n = ns.astype(v.dtype)[:, None]
    log_w = (gammaln(i) - gammaln(n) - gammaln(i - n + 1)) - (gammaln(k + 1.0) - gammaln(n + 1) - gammaln(k - n + 1))
    w = jnp.where(i >= n, jnp.exp(jnp.where(i >= n, log_w, 0.0)), 0.0)
    return w @ v
