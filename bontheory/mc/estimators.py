"""Statistics of Monte Carlo BoN draws, each with a standard error.

Every estimator returns an :class:`Estimate` ``(mean, stderr)``; ``stderr`` is the usual plug-in standard
error of the mean of i.i.d. per-trial terms (``std(ddof=1)/√T``) unless stated otherwise, so an exact value
lies within ``4·stderr`` of the estimate with probability ≈ 1 − 6·10⁻⁵ (normal approximation).

Estimators (T selected draws ``Ŷ_i ~ π_n``, M fresh reference draws ``Y'_j ~ p``):

* mean reward ``(1/T) Σ r(Ŷ_i)``;
* win rate against the reference, ties counted ½: the two-sample U-statistic
  ``W = (1/TM) Σ_ij [1{r(Ŷ_i) > r(Y'_j)} + ½·1{r(Ŷ_i) = r(Y'_j)}]`` with the Hoeffding variance
  ``Var(h̄_i)/T + Var(ḡ_j)/M``;
* KL(π_n‖p): the plug-in ``KL(π̂_n‖p)`` over an enumerable space (empirical frequencies against exact p;
  biased upward by ≈ (K_eff − 1)/(2T)); the Beirami et al. estimator (arXiv 2401.01879)
  ``mean D̂(p(Ŷ_i))`` with p from the policy; and k1/k3 from per-draw log-ratios ``log π_n(Ŷ)/p(Ŷ)``
  (exact over enumerable spaces, or estimated from the reference rewards' empirical CDF by
  :func:`bon_log_ratio_from_reference`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float, Int

from bontheory import validation as _V
from bontheory.numerics import safe_log
from bontheory.results import Estimate

_Values = Float[ArrayLike, " T"]


@_V.validate(values=_V.values)
def mean_estimate(values: _Values) -> Estimate:
    """Sample mean and its standard error.

    Args:
        values: ``float[T]`` i.i.d. per-trial values, T ≥ 2.

    Returns:
        ``Estimate(mean = x̄, stderr = std(x, ddof=1)/√T)``.
    """
    return _mean_se(values)


@jax.jit
def _mean_se(x):
    return Estimate(jnp.mean(x), jnp.std(x, ddof=1) / jnp.sqrt(x.shape[0]))


@_V.validate(selected_rewards=_V.values, reference_rewards=_V.values)
def win_rate_estimate(selected_rewards: _Values, reference_rewards: Float[ArrayLike, " M"]) -> Estimate:
    """Win rate of selected draws against fresh reference draws, ties counted ½.

    ``W = (1/TM) Σ_{i,j} h(x_i, y_j)``, ``h(x, y) = 1{x > y} + ½·1{x = y}`` (an unbiased U-statistic for
    ``P(r(Ŷ) > r(Y')) + ½ P(r(Ŷ) = r(Y'))``), computed in O((T + M) log(T + M)) by sorting. Standard error
    from the Hoeffding decomposition ``Var(h̄_i)/T + Var(ḡ_j)/M`` with ``h̄_i = (1/M) Σ_j h(x_i, y_j)``,
    ``ḡ_j = (1/T) Σ_i h(x_i, y_j)``.

    Args:
        selected_rewards: ``float[T]`` rewards of the selected draws.
        reference_rewards: ``float[M]`` rewards of independent draws from the reference policy.

    Returns:
        :class:`Estimate`.
    """
    return _win_rate(selected_rewards, reference_rewards)


@jax.jit
def _win_rate(x, y):
    t, m = x.shape[0], y.shape[0]
    ys = jnp.sort(y)
    xs = jnp.sort(x)
    # h̄_i = (#{y < x_i} + #{y <= x_i}) / (2M)
    h_bar = (jnp.searchsorted(ys, x, side="left") + jnp.searchsorted(ys, x, side="right")) / (2.0 * m)
    # ḡ_j = (#{x > y_j} + #{x >= y_j}) / (2T)
    g_bar = ((t - jnp.searchsorted(xs, y, side="right")) + (t - jnp.searchsorted(xs, y, side="left"))) / (2.0 * t)
    mean = jnp.mean(h_bar)
    var = jnp.var(h_bar, ddof=1) / t + jnp.var(g_bar, ddof=1) / m
    return Estimate(mean, jnp.sqrt(var))


@_V.validate(log_probs=_V.log_prob_values, n=_V.sample_size)
def beirami_kl_estimate(log_probs: _Values, n: ArrayLike) -> Estimate:
    """Beirami et al.'s KL(π_n‖p) estimator averaged over selected draws (arXiv 2401.01879), from their
    **log**-probabilities.

    ``mean_i D̂(ε_i)``, ``ε_i = p(Ŷ_i) = exp(log_probs_i)``, with
    ``D̂(ε) = (1−ε)ⁿ [log n + (n−1) log(1−ε) − (n−1)/n] + (1 − (1−ε)ⁿ) log((1 − (1−ε)ⁿ)/ε)``
    (computed by :func:`bontheory.beirami_kl_estimator`, which takes probabilities; the exact expectation is
    :func:`bontheory.beirami_kl_expectation`).

    Args:
        log_probs: ``float[T]`` log-probabilities (≤ 0) of the selected draws under the reference policy;
            probabilities are refused with a message saying so.
        n: the BoN sample size.

    Returns:
        :class:`Estimate` of ``E_{π_n}[D̂(p(Y))]`` (which the paper conjectures is ≥ KL).
    """
    from bontheory.exact.bounds import beirami_kl_estimator

    return mean_estimate(beirami_kl_estimator(jnp.exp(log_probs), n))


@_V.validate(sequences=_V.sequences, vocab_size=_V.static_int)
def sequence_index(sequences: Int[ArrayLike, "*batch L"], vocab_size: int) -> Int[Array, "*batch"]:
    """Index of each sequence in the lexicographic enumeration (token 0 most significant).

    ``i = Σ_t y_t V^{L−1−t}``, the order of :func:`bontheory.policies.enumerate_sequences`.

    Args:
        sequences: ``int[..., L]``.
        vocab_size: V.

    Returns:
        ``int32[...]`` (V**L must fit in int32).
    """
    seq = sequences
    length = seq.shape[-1]
    if vocab_size**length > 2**31 - 1:
        raise ValueError(f"V**L = {vocab_size}**{length} does not fit an int32 index")
    powers = jnp.asarray([vocab_size ** (length - 1 - t) for t in range(length)], jnp.int32)
    return jnp.sum(seq.astype(jnp.int32) * powers.reshape((1,) * (seq.ndim - 1) + (length,)), axis=-1)


@_V.validate(indices=_V.values, log_ref_probs=_V.kind(_V.log_probs, ndim=1))
def plugin_kl_estimate(indices: Int[ArrayLike, " T"], log_ref_probs: Float[ArrayLike, " K"]) -> Estimate:
    """Plug-in ``KL(π̂‖p) = Σ_k π̂_k log(π̂_k/p_k)`` from empirical frequencies over an enumerable space.

    ``π̂_k = #{i : index_i = k}/T``. The plug-in is biased upward (≈ (support − 1)/(2T) for large T); the
    standard error is the delta-method one, ``sqrt(Var_{π̂}[log(π̂/p)]/T)``.

    Args:
        indices: ``int[T]`` outcome indices of the selected draws (e.g. :func:`sequence_index`).
        log_ref_probs: ``float[K]`` exact reference log-probabilities of all K outcomes.

    Returns:
        :class:`Estimate`.
    """
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"indices must be integer outcome indices, got dtype {indices.dtype}")
    k = log_ref_probs.shape[0]
    if _V.is_concrete(indices) and (int(jnp.min(indices)) < 0 or int(jnp.max(indices)) >= k):
        lo, hi = int(jnp.min(indices)), int(jnp.max(indices))
        raise ValueError(f"indices must lie in [0, K) = [0, {k}), got values in [{lo}, {hi}]")
    return _plugin_kl(indices, log_ref_probs)


@jax.jit
def _plugin_kl(idx, log_p):
    t, k = idx.shape[0], log_p.shape[0]
    counts = jnp.bincount(idx, length=k)
    freq = counts / t
    log_ratio = jnp.where(counts > 0, safe_log(freq) - log_p, 0.0)
    kl = jnp.sum(freq * log_ratio)
    var = jnp.sum(freq * (log_ratio - kl) ** 2)
    return Estimate(kl, jnp.sqrt(var / t))


@_V.validate(log_ratios=_V.values)
def log_ratio_kl_estimates(log_ratios: _Values) -> tuple[Estimate, Estimate]:
    """k1 and k3 estimates of KL(π‖p) from draws of π and their log-ratios ``ℓ = log π(Y) − log p(Y)``.

    k1 = mean ℓ; k3 = mean[(ρ − 1) − log ρ] with ``ρ = p/π = e^{−ℓ}``, written ``expm1(−ℓ) + ℓ`` (both unbiased,
    k3 is non-negative per draw; Schulman's estimators, reused from :mod:`bontheory.policies`).

    Variance: k1's is ``Var_π(ℓ)``; k3's involves ``E_π[ρ²] = Σ p²/π``, which is unbounded when π puts much less
    mass than p somewhere (under BoN draws, n ≥ 2: infinite in the continuous limit). Its standard error then
    means nothing; prefer k1 there (see :func:`bontheory.bon_cell`).

    Args:
        log_ratios: ``float[T]`` per-draw ``log π(Y_i) − log p(Y_i)``.

    Returns:
        ``(k1, k3)`` as :class:`Estimate`.
    """
    return _k1_k3(log_ratios)


@jax.jit
def _k1_k3(lr):
    from bontheory.policies.kl import kl_k1, kl_k3

    zero = jnp.zeros_like(lr)
    return _mean_se(kl_k1(lr, zero)), _mean_se(kl_k3(lr, zero))


@_V.validate(
    selected_rewards=_V.kind(_V.values, min_size=1),
    reference_rewards=_V.kind(_V.values, min_size=1),
    n=_V.static_sample_size,
)
def bon_log_ratio_from_reference(
    selected_rewards: _Values, reference_rewards: Float[ArrayLike, " M"], n: int
) -> Float[Array, " T"]:
    """Estimated ``log π_n(y)/p(y)`` for selected draws from the reference rewards' empirical CDF.

    ``π_n(y)/p(y) = (F(y)ⁿ − F⁻(y)ⁿ)/(F(y) − F⁻(y))`` (docs/theory.md §1.3) depends on y only through its reward,
    so it can be estimated with ``F̂(r) = (#{r'_j ≤ r} + ½)/(M + 1)`` and ``F̂⁻(r) = (#{r'_j < r} + ½)/(M + 1)``;
    when no reference reward equals r (an atomless reward) the ratio's limit ``n F̂ⁿ⁻¹`` is used. Consistent as
    M → ∞; biased when n is comparable to M (the top of the CDF is then poorly resolved).

    Args:
        selected_rewards: ``float[T]``.
        reference_rewards: ``float[M]`` rewards of independent reference draws.
        n: BoN sample size.

    Returns:
        ``float[T]`` estimated log-ratios (feed to :func:`log_ratio_kl_estimates`).
    """
    return _log_ratio_ref(selected_rewards, reference_rewards, n)


@functools.partial(jax.jit, static_argnums=2)
def _log_ratio_ref(x, y, n):
    ys = jnp.sort(y)
    m = ys.shape[0]
    le = jnp.searchsorted(ys, x, side="right")
    lt = jnp.searchsorted(ys, x, side="left")
    log_f = jnp.log((le + 0.5) / (m + 1.0))
    log_fm = jnp.log((lt + 0.5) / (m + 1.0))
    tied = le > lt
    # log(Fⁿ − F⁻ⁿ) − log(F − F⁻), both differences in stable form.
    d = jnp.where(tied, log_fm - log_f, -1.0)
    level = n * log_f + jnp.log(-jnp.expm1(n * d)) - (log_f + jnp.log(-jnp.expm1(d)))
    dense = jnp.log(float(n)) + (n - 1) * log_f
    return jnp.where(tied, level, dense)


@_V.validate(
    selected_rewards=_V.kind(_V.values, min_size=1),
    level_rewards=_V.kind(_V.rewards, ndim=1),
    level_masses=_V.kind(_V.probs, ndim=1),
    n=_V.static_sample_size,
)
def bon_log_ratio_from_levels(
    selected_rewards: _Values, level_rewards: Float[ArrayLike, " J"], level_masses: Float[ArrayLike, " J"], n: int
) -> Float[Array, " T"]:
    r"""Exact ``log π_n(y)/p(y)`` of selected draws from the **known** reward levels of the reference.

    ``π_n(y)/p(y) = (F_ℓⁿ − F⁻_ℓⁿ)/m_ℓ`` depends on y only through its reward level ℓ (docs/theory.md §1), so
    the law of the reward under p — values ``r_ℓ`` with masses ``m_ℓ``, e.g. from :func:`bontheory.reward_levels`
    or a lifted reward distribution — gives it for every draw, whatever the number of sequences.

    Args:
        selected_rewards: ``float[T]`` rewards of the selected draws; each must equal one of ``level_rewards``
            (to a few ulps).
        level_rewards: ``float[J]`` the reward values (any order; repeated values are merged).
        level_masses: ``float[J]`` their masses under p (a pmf).
        n: BoN sample size.

    Returns:
        ``float[T]`` log-ratios (their mean is :func:`level_kl_estimate`).

    Raises:
        ValueError: a selected reward matches no level of positive mass (checked when concrete).
    """
    from bontheory.exact.bon import bon_log_pmf

    v = jnp.asarray(level_rewards)
    dtype = jnp.result_type(v.dtype, jnp.asarray(level_masses).dtype, float)
    v, m = v.astype(dtype), jnp.asarray(level_masses, dtype)
    x = jnp.asarray(selected_rewards).astype(dtype)
    log_ratio = bon_log_pmf(m, v, n) - safe_log(m)  # per level
    order = jnp.argsort(v)
    vs = v[order]
    j = jnp.clip(jnp.searchsorted(vs, x), 0, vs.shape[0] - 1)
    below = jnp.clip(j - 1, 0, vs.shape[0] - 1)
    j = jnp.where(jnp.abs(vs[below] - x) < jnp.abs(vs[j] - x), below, j)  # nearest level
    idx = order[j]
    if _V.is_concrete(x, v, m):
        tol = 64 * jnp.finfo(dtype).eps * (1 + jnp.abs(x))
        bad = (jnp.abs(v[idx] - x) > tol) | (m[idx] <= 0)
        if bool(jnp.any(bad)):
            first = float(x[jnp.argmax(bad)])
            raise ValueError(
                f"selected_rewards has a value ({first:.6g}) that is no level of positive mass in level_rewards"
            )
    return log_ratio[idx]


@_V.validate(
    selected_rewards=_V.kind(_V.values, min_size=2),
    level_rewards=_V.kind(_V.rewards, ndim=1),
    level_masses=_V.kind(_V.probs, ndim=1),
    n=_V.static_sample_size,
)
def level_kl_estimate(
    selected_rewards: _Values, level_rewards: Float[ArrayLike, " J"], level_masses: Float[ArrayLike, " J"], n: int
) -> Estimate:
    r"""Tie-aware KL(π_n‖p) from BoN draws and the **known** level masses of the reward under p: unbiased.

    ``KL̂ = (1/T) Σ_i log((F_{ℓ_i}ⁿ − F⁻_{ℓ_i}ⁿ)/m_{ℓ_i})``, ℓ_i the reward level of draw i. Since
    ``KL(π_n‖p) = E_{π_n}[log π_n(Y)/p(Y)]`` and the ratio is constant on a level, each term has mean exactly
    KL (docs/theory.md §2, "Estimators that handle ties"). Unlike Beirami's estimator, which uses the draw's
    own mass p(y), it uses the mass of the draw's *level*: with diffuse ties (many sequences per reward value)
    that is the relevant mass.

    Args:
        selected_rewards: ``float[T]`` rewards of T ≥ 2 BoN draws.
        level_rewards, level_masses: the reward's law under p (see :func:`bon_log_ratio_from_levels`).
        n: BoN sample size.

    Returns:
        :class:`Estimate` (mean and ``std/√T``).
    """
    return mean_estimate(bon_log_ratio_from_levels(selected_rewards, level_rewards, level_masses, n))


@_V.validate(
    selected_rewards=_V.kind(_V.values, min_size=2),
    reference_rewards=_V.kind(_V.values, min_size=1),
    n=_V.static_sample_size,
)
def level_kl_estimate_from_reference(
    selected_rewards: _Values, reference_rewards: Float[ArrayLike, " M"], n: int
) -> Estimate:
    r"""Tie-aware KL(π_n‖p) from BoN draws, the level masses estimated from M reference rewards.

    The mean of :func:`bon_log_ratio_from_reference` (``F̂ = (#{r'_j ≤ r} + ½)/(M + 1)``, the level's ratio
    ``(F̂ⁿ − F̂⁻ⁿ)/(F̂ − F̂⁻)``). Consistent as M → ∞ with T fixed; biased at finite M (the plug-in of a
    non-linear function of F̂): the bias is of order ``n²/M`` at the top levels, so use ``M ≫ n²·m_top`` or
    the known masses (:func:`level_kl_estimate`). The standard error is over the T draws only (it ignores the
    reference's sampling error).

    Args:
        selected_rewards: ``float[T]``, T ≥ 2.
        reference_rewards: ``float[M]`` rewards of independent draws from p.
        n: BoN sample size.

    Returns:
        :class:`Estimate`.
    """
    return mean_estimate(bon_log_ratio_from_reference(selected_rewards, reference_rewards, n))
