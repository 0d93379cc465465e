"""Training objectives toward the BoN distribution (vBoN) and the baselines, as static loss objects.

Each objective is a small frozen dataclass (hashable, so it can be a static argument of ``jax.jit``)
holding only *static* settings (batch sizes, which target); everything numeric comes in ``data``, a dict
of arrays and pytrees passed as an argument of the jitted training loop (never closed over). Calling
``objective(policy, data, key)`` returns ``(loss, aux)`` where ``loss`` is a scalar to minimise by gradient
descent on the ``policy`` pytree and ``aux`` a dict of scalar diagnostics.

Exact objectives work on an enumerated outcome space: ``data["sequences"]`` holds all ``V**L`` sequences,
and ``policy.log_prob(data["sequences"])`` the vector over which the divergences of
:mod:`bontheory.vbon.divergences` are computed; ``jax.grad`` of the loss is then the exact gradient.

Sampled objectives draw sequences from the policy and use score-function (REINFORCE) gradients with a
leave-one-out baseline, as vBoN is trained without enumeration.

References:
  Amini, Vieira, Ash, Cotterell. Variational Best-of-N Alignment. arXiv 2407.06057.
  Sessa et al. BOND: Aligning LLMs with Best-of-N Distillation. arXiv 2407.14622.
  Gui, Gârbacea, Veitch. BoNBoN Alignment for Large Language Models. arXiv 2406.00832.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from bontheory import validation as _V
from bontheory.vbon.divergences import forward_kl, jeffreys_divergence, log_bon_ratio, reverse_kl

Data = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ExactDivergenceLoss:
    r"""Exact divergence from the policy to a target over all enumerated sequences.

    ``kind="reverse"``: KL(π_θ‖t) — **vBoN** with t = π_n (exact target) or t ∝ p F^{n−1} (continuous
    target), Amini et al. eq. 5. ``kind="forward"``: KL(t‖π_θ) — BoN-SFT with infinite data.
    ``kind="jeffreys"``: (1−β) KL(t‖π_θ) + β KL(π_θ‖t) — **BOND** (Sessa et al.), β =
    ``data["backward_weight"]``.

    ``data``: ``sequences`` int[K, L] (all sequences), ``target_log_probs`` float[K] (normalised),
    and for ``jeffreys`` ``backward_weight`` (scalar).
    """

    kind: str = "reverse"

    def __post_init__(self):
        if self.kind not in ("reverse", "forward", "jeffreys"):
            raise ValueError(f"kind must be 'reverse', 'forward' or 'jeffreys', got {self.kind!r}")

    def __call__(self, policy, data: Data, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        del key
        log_q = policy.log_prob(data["sequences"])
        log_t = data["target_log_probs"]
        if self.kind == "reverse":
            loss = reverse_kl(log_q, log_t)
        elif self.kind == "forward":
            loss = forward_kl(log_t, log_q)
        else:
            loss = jeffreys_divergence(log_q, log_t, data["backward_weight"])
        return loss, {"reverse_kl": reverse_kl(jax.lax.stop_gradient(log_q), log_t)}


@dataclasses.dataclass(frozen=True)
class ExactKLRegularisedLoss:
    r"""Exact KL-regularised RL on the reward r: minimise β KL(π_θ‖p) − E_{π_θ}[r].

    .. math:: \mathcal{L}(\theta) = \beta\,\mathrm{KL}(\pi_\theta \,\|\, p) - \mathbb{E}_{\pi_\theta}[r]
              = \beta\,\mathrm{KL}(\pi_\theta \,\|\, \pi_\beta) + \text{const},\quad \pi_\beta \propto p\,e^{r/\beta}

    With r replaced by ``(n−1)·log F(r)`` and β = 1 this is the continuous-form vBoN objective.

    ``data``: ``sequences`` int[K, L], ``ref_log_probs`` float[K], ``rewards`` float[K], ``beta`` scalar.
    """

    def __call__(self, policy, data: Data, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        del key
        log_q = policy.log_prob(data["sequences"])
        kl = reverse_kl(log_q, data["ref_log_probs"])
        reward = jnp.sum(jnp.exp(log_q) * data["rewards"], axis=-1)
        return data["beta"] * kl - reward, {"kl_to_ref": kl, "expected_reward": reward}


@dataclasses.dataclass(frozen=True)
class MaximumLikelihoodLoss:
    r"""Maximum likelihood on a fixed set of sequences (BoN-SFT when they are exact BoN samples).

    .. math:: \mathcal{L}(\theta) = -\frac{1}{D}\sum_{i=1}^{D} \log \pi_\theta(y_i)

    ``data``: ``samples`` int[D, L].
    """

    def __call__(self, policy, data: Data, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        del key
        nll = -jnp.mean(policy.log_prob(data["samples"]))
        return nll, {"nll": nll}


@dataclasses.dataclass(frozen=True)
class BoNBoNLoss:
    r"""The BoNBoN loss (Gui et al., arXiv 2406.00832): SFT on the best of n plus IPO best-vs-worst.

    .. math::
        h_i = \log\frac{\pi_\theta(y^+_i)}{p(y^+_i)} - \log\frac{\pi_\theta(y^-_i)}{p(y^-_i)},\qquad
        \mathcal{L} = -\alpha\,\overline{\log\pi_\theta(y^+)}
            + (1-\alpha)\,\overline{\Bigl(h - \tfrac{1}{2\beta^*}\Bigr)^2},
        \quad \beta^* = \frac{1}{2(n-1)H_{n-1}}

    (β* makes the IPO optimum's best-vs-worst log-ratio gap equal BoN's in the continuous case; see
    :func:`bonbon_beta`.) ``data``: ``best`` int[D, L], ``worst`` int[D, L], ``ref_log_best`` float[D],
    ``ref_log_worst`` float[D], ``beta`` scalar, ``sft_weight`` scalar α in [0, 1].
    """

    def __call__(self, policy, data: Data, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        del key
        log_best = policy.log_prob(data["best"])
        log_worst = policy.log_prob(data["worst"])
        h = (log_best - data["ref_log_best"]) - (log_worst - data["ref_log_worst"])
        ipo = jnp.mean((h - 0.5 / data["beta"]) ** 2)
        sft = -jnp.mean(log_best)
        alpha = data["sft_weight"]
        return alpha * sft + (1.0 - alpha) * ipo, {"sft": sft, "ipo": ipo}


@_V.validate(sample_rewards=_V.kind(_V.values, min_size=1), ref_reward_samples=_V.kind(_V.values, min_size=1))
def empirical_log_cdfs(sample_rewards: jax.Array, ref_reward_samples: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""Add-one-smoothed empirical CDFs of the reference reward at given rewards (Amini et al., §4).

    With M reference rewards r_1..r_M, the scored outcome itself counted as one more draw:

    .. math:: \hat F_-(r) = \frac{\#\{j: r_j < r\} + 1}{M + 1},\qquad
              \hat F(r) = \frac{\#\{j: r_j \le r\} + 1}{M + 1}

    ``F̂₋`` is the paper's smoothed estimate (used in the continuous form, never 0); ``F̂ − F̂₋`` counts the
    reference draws tied with r (used by the exact-target reward :func:`log_bon_ratio`, where the own draw
    is then the "+1" of the strict count, so ``F̂ ≥ F̂₋`` always holds).

    Rewards within ``8·eps·(|r| + |r_j|)`` of each other count as tied: the same sequence scored in a
    different batch shape can differ in the last bit (XLA reassociates sums), and a comparison that
    splits such a pair biases the estimate (it did, visibly, in the unbiasedness test).

    Args:
      sample_rewards: ``(B,)`` rewards at which to evaluate.
      ref_reward_samples: ``(M,)`` rewards of reference samples.

    Returns:
      ``(log F̂₋, log F̂)``, each ``(B,)``.
    """
    m = ref_reward_samples.shape[-1]
    dtype = jnp.result_type(sample_rewards.dtype, float)
    diff = ref_reward_samples[None, :].astype(dtype) - sample_rewards[:, None].astype(dtype)
    tol = _tie_tolerance(sample_rewards[:, None].astype(dtype), ref_reward_samples[None, :].astype(dtype))
    less = jnp.sum(diff < -tol, axis=-1)
    leq = jnp.sum(diff <= tol, axis=-1)
    denom = jnp.log(jnp.asarray(m + 1, dtype))
    return jnp.log((less + 1).astype(dtype)) - denom, jnp.log((leq + 1).astype(dtype)) - denom


def _tie_tolerance(a: jax.Array, b: jax.Array) -> jax.Array:
    return 8 * jnp.finfo(a.dtype).eps * (jnp.abs(a) + jnp.abs(b))


@_V.validate(policy=_V.policy, ref_policy=_V.policy, sequences=_V.sequences)
def sequence_token_kl(policy, ref_policy, sequences: jax.Array) -> jax.Array:
    r"""Exact per-position KL between two autoregressive policies along given sequences.

    .. math:: k_t(y_{<t}) = \sum_{v=1}^{V} \pi(v \mid y_{<t}) \bigl(\log\pi(v \mid y_{<t}) - \log p(v \mid y_{<t})\bigr)

    (the full-vocabulary sum: the lowest-variance per-token KL; E_{y∼π}[Σ_t k_t] = KL(π‖p) by the chain
    rule). Args: ``sequences`` int[B, L]. Returns ``(B, L)``.
    """
    log_q = policy.next_token_log_probs(sequences)
    log_p = ref_policy.next_token_log_probs(sequences)
    return reverse_kl(log_q, log_p)


@dataclasses.dataclass(frozen=True)
class PolicyGradientLoss:
    r"""Sampled KL-regularised policy gradient (REINFORCE, leave-one-out baseline, exact per-token KL).

    The surrogate's gradient is an unbiased estimate of the gradient of

    .. math:: \mathcal{L}(\theta) = c\,\mathrm{KL}(\pi_\theta \,\|\, p) - \mathbb{E}_{y\sim\pi_\theta}[R(y)]

    for the sequence reward R chosen by ``reward_kind``:

    * ``"log_cdf"`` — **vBoN, continuous target**: R = (n−1) log F̂₋(r(y)) with F̂₋ the add-one-smoothed
      empirical CDF from M reference rewards (:func:`empirical_log_cdfs`), c = 1 (Amini et al., eq. 8:
      the same as β = 1/(n−1) on reward log F). Optimum ∝ p F̂₋^{n−1}.
    * ``"bon_log_ratio"`` — **vBoN, exact target**: R = log π̂_n(y)/p(y) from the estimated F̂₋, F̂
      (:func:`log_bon_ratio`), c = 1. Optimum = the BoN pmf of the estimated CDF.
    * ``"raw"`` — **KL-regularised RL**: R = r(y), c = β.

    Per batch of B policy samples, with per-position exact KL k_t (:func:`sequence_token_kl`), token s of
    sample i gets the return-to-go G_{i,s} = R_i − c Σ_{t>s} k_{i,t} (the KL of earlier positions does not
    depend on token s, so dropping it keeps the estimate unbiased), baseline b_{i,s} = mean over j ≠ i of
    G_{j,s} (independent of sample i, so unbiased), and the surrogate is

    .. math:: -\frac{1}{B}\sum_i \sum_s (G_{i,s} - b_{i,s}) \log\pi_\theta(y_{i,s}\mid y_{i,<s})
              + \frac{c}{B}\sum_i\sum_t k_{i,t}

    (the last term carries the pathwise gradient of the per-token KL).

    Attributes:
      num_samples: B ≥ 2, policy samples per step (static).
      reward_kind: ``"log_cdf"``, ``"bon_log_ratio"`` or ``"raw"``.

    ``data``: ``ref_policy`` (a Policy pytree), ``reward`` (a reward pytree: ``reward(int[B, L]) -> [B]``),
    ``kl_coef`` scalar c, and for the vBoN kinds ``n`` (scalar) and ``ref_reward_samples`` float[M].
    ``aux`` holds the batch estimate of the objective E[R] − c·KL and its parts.
    """

    num_samples: int = 16
    reward_kind: str = "log_cdf"

    def __post_init__(self):
        if self.reward_kind not in ("log_cdf", "bon_log_ratio", "raw"):
            raise ValueError(f"reward_kind must be 'log_cdf', 'bon_log_ratio' or 'raw', got {self.reward_kind!r}")
        _V.static_int(self.num_samples, "num_samples", minimum=2)
        if self.num_samples < 2:
            raise ValueError(f"num_samples must be >= 2 for a leave-one-out baseline, got {self.num_samples}")

    def sequence_reward(self, data: Data, sequences: jax.Array) -> jax.Array:
        """The sequence reward R(y) for ``sequences`` int[B, L] → ``(B,)``."""
        r = data["reward"](sequences)
        if self.reward_kind == "raw":
            return r
        log_fm, log_f = empirical_log_cdfs(r, data["ref_reward_samples"])
        n = jnp.asarray(data["n"], log_f.dtype)
        if self.reward_kind == "log_cdf":
            return (n - 1.0) * log_fm
        # exact target: the own draw supplies the +1 of the strict count, so F̂₋ = #{<}/(M+1) here.
        m = data["ref_reward_samples"].shape[-1]
        ref_r = data["ref_reward_samples"].astype(log_f.dtype)
        rr = r[:, None].astype(log_f.dtype)
        less = jnp.sum(ref_r[None, :] - rr < -_tie_tolerance(rr, ref_r[None, :]), axis=-1).astype(log_f.dtype)
        log_fs = jnp.log(less) - jnp.log(jnp.asarray(m + 1, log_f.dtype))
        return log_bon_ratio(log_fs, log_f, n)

    def __call__(self, policy, data: Data, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        seqs = jax.lax.stop_gradient(policy.sample(key, self.num_samples))
        reward = jax.lax.stop_gradient(self.sequence_reward(data, seqs))
        c = data["kl_coef"]
        surrogate, kl = kl_regularised_surrogate(policy, data["ref_policy"], seqs, reward, c)
        kl_est = jnp.mean(kl)
        mean_r = jnp.mean(reward)
        return surrogate, {"objective": mean_r - c * kl_est, "kl_to_ref": kl_est, "reward": mean_r}


@_V.validate(
    policy=_V.policy,
    ref_policy=_V.policy,
    sequences=_V.sequences,
    rewards=_V.kind(_V.values, min_size=2),
    kl_coef=_V.nonnegative,
)
def kl_regularised_surrogate(
    policy, ref_policy, sequences: jax.Array, rewards: jax.Array, kl_coef: jax.Array
) -> tuple[jax.Array, jax.Array]:
    r"""The REINFORCE surrogate of :class:`PolicyGradientLoss` on given policy samples (docs/theory.md §6.3).

    For B ≥ 2 samples ``sequences`` of π_θ with sequence rewards R_i (treated as constants), token s of
    sample i gets the return-to-go G_{i,s} = R_i − c Σ_{t>s} k_{i,t} (exact per-position KL k, see
    :func:`sequence_token_kl`) and the leave-one-out baseline b_{i,s} = mean_{j≠i} G_{j,s}; the surrogate

    .. math:: -\frac{1}{B}\sum_i \sum_s (G_{i,s} - b_{i,s}) \log\pi_\theta(y_{i,s}\mid y_{i,<s})
              + \frac{c}{B}\sum_i\sum_t k_{i,t}

    has an unbiased gradient of c KL(π_θ‖p) − E_{π_θ}[R]. With R = 0 it is the gradient of the KL alone.

    Args:
      policy: the trained Policy π_θ.
      ref_policy: the reference Policy p.
      sequences: int[B, L], samples of π_θ (B ≥ 2; not differentiated).
      rewards: float[B], their sequence rewards R (not differentiated).
      kl_coef: scalar c.

    Returns:
      ``(surrogate, kl)``: the scalar surrogate, and float[B] the per-sequence Σ_t k_t (an unbiased
      estimate of KL(π_θ‖p) each, without gradient).
    """
    seqs = jax.lax.stop_gradient(sequences)
    reward = jax.lax.stop_gradient(rewards)
    b = seqs.shape[0]
    log_tok = policy.next_token_log_probs(seqs)  # (B, L, V)
    log_ref = ref_policy.next_token_log_probs(seqs)
    kl_tok = reverse_kl(log_tok, jax.lax.stop_gradient(log_ref))  # (B, L)
    chosen = jnp.take_along_axis(log_tok, seqs[..., None].astype(jnp.int32), axis=-1)[..., 0]  # (B, L)
    kl_sg = jax.lax.stop_gradient(kl_tok)
    # Σ_{t>s} k_t = total − cumulative up to and including s.
    kl_to_go = jnp.sum(kl_sg, axis=-1, keepdims=True) - jnp.cumsum(kl_sg, axis=-1)
    ret = reward[:, None] - kl_coef * kl_to_go  # (B, L)
    baseline = (jnp.sum(ret, axis=0, keepdims=True) - ret) / (b - 1)
    adv = ret - baseline
    surrogate = -jnp.mean(jnp.sum(adv * chosen, axis=-1)) + kl_coef * jnp.mean(jnp.sum(kl_tok, axis=-1))
    return surrogate, jnp.sum(kl_sg, axis=-1)
