r"""Log-space CDFs of a level law and the BoN level law, for laws whose masses underflow float64.

:mod:`bontheory.exact.levels` works on probabilities; a lifted law (:func:`~bontheory.lifted.reward_distribution`)
has log-masses far below 1e-300, so the CDFs and the BoN level law are kept in log space here
(docs/theory.md §1.4, §8.2):

.. math::
    \log F_\ell = \begin{cases} \operatorname{logcumsumexp}(\log m)_\ell & F_\ell < 1/2 \\
                                \operatorname{log1p}(-T_\ell) & \text{else} \end{cases},\qquad
    T_\ell = \sum_{j > \ell} m_j,

    \log q_\ell(n) = n \log F_\ell + \log\!\big(-\operatorname{expm1}(n \log(F^-_\ell / F_\ell))\big),\qquad
    \log(F^-_\ell/F_\ell) = \operatorname{log1p}(-m_\ell / F_\ell).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from bontheory import validation
from bontheory.numerics import safe_log


@validation.validate(log_probs=validation.log_densities)
def level_log_cdfs(log_probs: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""``(log F, log(F⁻/F))`` of a level law given by ``log_probs`` ``float[K]`` (levels in increasing reward).

    ``log F`` comes from the head (log-cumsum) below 1/2 and from the tail (``log1p(-T)``) above, so both the
    lowest and the highest levels are accurate; ``log(F⁻/F) = log1p(-m/F)`` (``-inf`` on the lowest level).
    """
    log_probs = log_probs - jax.lax.stop_gradient(jax.nn.logsumexp(log_probs))  # renormalise (rounding)
    head = jax.lax.cumlogsumexp(log_probs)
    tail_incl = jax.lax.cumlogsumexp(log_probs, reverse=True)  # log(1 − F⁻)
    tail = jnp.concatenate([tail_incl[1:], jnp.full((1,), -jnp.inf, log_probs.dtype)])  # log(1 − F)
    use_head = head < jnp.log(0.5)
    log_cdf = jnp.where(use_head, head, jnp.log1p(-jnp.exp(jnp.where(use_head, -1.0, tail))))
    ratio = jnp.exp(jnp.minimum(log_probs - log_cdf, 0.0))  # m / F in [0, 1]
    log_ratio = jnp.where(ratio < 1, jnp.log1p(-jnp.where(ratio < 1, ratio, 0.0)), -jnp.inf)
    return log_cdf, log_ratio


@validation.validate(log_probs=validation.log_densities, n=validation.sample_size)
def bon_level_log_probs(log_probs: jax.Array, n: jax.Array) -> jax.Array:
    r"""``log q_ℓ(n) = log(F_ℓ^n − F_ℓ^{−n})``: the level law of best-of-n, ``float[K]`` (``n`` scalar)."""
    log_cdf, log_ratio = level_log_cdfs(log_probs)
    n = jnp.asarray(n, log_probs.dtype)
    x = n * log_ratio
    body = safe_log(-jnp.expm1(jnp.where(x > -jnp.inf, x, -jnp.inf)))
    # A level far lighter than F (m/F < e^-30, e.g. mass 1e-320 next to the top): log1p(-m/F) rounds to 0 and
    # the body to log 0; there 1 − (1 − m/F)^n = −expm1(−e^s) with s = log n + log(m/F) (+ O(m/F)).
    log_x = log_probs - jax.lax.stop_gradient(jax.nn.logsumexp(log_probs)) - log_cdf
    s = jnp.log(n) + log_x
    tiny = (log_x < -30) & (log_probs > -jnp.inf)
    tiny_body = jnp.where(s < -30, s, safe_log(-jnp.expm1(-jnp.exp(jnp.where(tiny, s, 0.0)))))
    return n * log_cdf + jnp.where(tiny, tiny_body, body)
