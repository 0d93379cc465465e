"""One entry point that trains a policy toward BoN with any of the methods, on an enumerated space.

``train_toward_bon`` builds the objective and its data for a named method, runs the jitted Optax loop
(:func:`~bontheory.vbon.train.train_steps`) from ``init_policy`` and returns the trained policy with its
loss history. Experiments call it; everything it does is in the modules it calls.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from bontheory import validation as _V
from bontheory.lifted.distribution import tabular_table
from bontheory.lifted.vbon import lifted_vbon_data
from bontheory.rewards.reward import as_reward
from bontheory.vbon.baselines import bon_sft_data, bonbon_data, iterated_bond
from bontheory.vbon.objectives import (
    BoNBoNLoss,
    ExactDivergenceLoss,
    ExactKLRegularisedLoss,
    MaximumLikelihoodLoss,
    PolicyGradientLoss,
)
from bontheory.vbon.targets import vbon_target_log_probs
from bontheory.vbon.train import init_train_state, train_steps

#: Method names understood by :func:`train_toward_bon`.
VBON_METHODS = (
    "vbon_exact",  # exact gradient of KL(π_θ‖π_n), exact BoN target
    "vbon_lifted",  # the same loss without enumeration: tabular π_θ and p, liftable reward (bontheory.lifted)
    "vbon_continuous",  # exact gradient of KL(π_θ‖p F^{n−1}/Z), the paper's continuous form
    "vbon_sampled",  # REINFORCE, reward (n−1) log F̂ from M reference samples, exact per-token KL
    "vbon_sampled_exact",  # REINFORCE, reward log π̂_n/p (exact-target form with estimated CDFs)
    "kl_rl",  # exact gradient of β KL(π_θ‖p) − E[r]
    "bon_sft",  # maximum likelihood on exact BoN samples
    "bond",  # exact Jeffreys divergence to π_n
    "bond_iterated",  # Jeffreys toward BoN_2 of a moving anchor, log2(n) iterations
    "bonbon",  # SFT on best + IPO best-vs-worst
)


@dataclasses.dataclass(frozen=True)
class MethodSettings:
    """Hyperparameters of the methods (defaults used by the vBoN experiment).

    Attributes:
      num_steps: optimiser steps (for ``bond_iterated``: in total over the iterations).
      learning_rate: Adam learning rate for the exact-gradient methods.
      sampled_learning_rate: Adam learning rate for the sampled (REINFORCE) methods.
      num_reference_samples: M, reference draws for F̂ (sampled vBoN).
      sampled_batch: policy samples per step (sampled vBoN).
      num_sft_samples: size of the BoN-SFT data set.
      num_bonbon_pairs: number of best/worst pairs for BoNBoN.
      bonbon_sft_weight: α of the BoNBoN loss.
      backward_weight: β of BOND's Jeffreys divergence.
    """

    num_steps: int = 300
    learning_rate: float = 0.1
    sampled_learning_rate: float = 0.05
    num_reference_samples: int = 300
    sampled_batch: int = 32
    num_sft_samples: int = 1000
    num_bonbon_pairs: int = 1000
    bonbon_sft_weight: float = 0.5
    backward_weight: float = 0.5


@functools.lru_cache(maxsize=32)
def _adam(learning_rate: float) -> optax.GradientTransformation:
    # One object per learning rate, so the jitted loop's static-argument cache is reused.
    return optax.adam(learning_rate)


@_V.validate(
    key=_V.prng_key,
    method=_V.kind(_V.one_of, choices=VBON_METHODS),
    init_policy=_V.policy,
    ref_policy=_V.optional(_V.policy),
    reward=_V.optional(_V.reward),
    sequences=_V.optional(_V.sequences),
    ref_log_probs=_V.optional(_V.kind(_V.log_probs, ndim=1)),
    rewards=_V.optional(_V.rewards),
    n=_V.kind(_V.static_int, minimum=2),
    beta=_V.positive,
)
def train_toward_bon(
    key: jax.Array,
    method: str,
    init_policy,
    *,
    ref_policy,
    reward,
    sequences: jax.Array | None = None,
    ref_log_probs: jax.Array | None = None,
    rewards: jax.Array | None = None,
    n: int,
    beta: float | None = None,
    settings: MethodSettings = MethodSettings(),
) -> tuple[Any, dict[str, Any]]:
    """Trains ``init_policy`` toward best-of-``n`` of ``ref_policy`` with ``method``.

    Args:
      key: PRNG key (data sets, reference samples, policy samples).
      method: one of :data:`VBON_METHODS`.
      init_policy: the starting Policy (normally the reference, possibly re-parametrised).
      ref_policy: the reference Policy p.
      reward: the reward ``reward(int[B, L]) -> [B]`` (a reward pytree or a plain function), for the sampled
        methods and ``vbon_lifted`` (there a liftable reward, see :func:`bontheory.reward_distribution`).
      sequences: int[K, L], all sequences (every method but ``vbon_lifted``, which enumerates nothing: it
        trains a tabular ``init_policy`` toward BoN of a tabular ``ref_policy`` on spaces of any size).
      ref_log_probs: float[K], log p over them (not for ``vbon_lifted``).
      rewards: float[K], r over them (not for ``vbon_lifted``).
      n: the BoN size (≥ 2; a power of 2 for ``bond_iterated``).
      beta: KL coefficient of ``kl_rl`` (required there).
      settings: hyperparameters.

    Returns:
      ``(trained_policy, info)`` with ``info["loss"]`` the loss history (``(num_steps,)`` array).
    """
    s = settings
    kd, kt = jax.random.split(key)
    opt = _adam(float(s.learning_rate))
    state = init_train_state(kt, init_policy, opt)
    if method == "vbon_lifted":
        if ref_policy is None or reward is None:
            raise ValueError("method 'vbon_lifted' needs ref_policy and reward (tabular p, liftable reward)")
        objective, data = lifted_vbon_data(ref_policy, reward, n, tabular_table(init_policy, "init_policy")[1])
        state, hist = train_steps(state, data, objective=objective, optimizer=opt, num_steps=s.num_steps)
        return state.policy, {"loss": hist["loss"]}
    if sequences is None or ref_log_probs is None or rewards is None:
        raise ValueError(f"method {method!r} needs sequences, ref_log_probs and rewards (an enumerated space)")
    dtype = ref_log_probs.dtype

    if method in ("vbon_exact", "vbon_continuous", "bond"):
        target = vbon_target_log_probs(
            ref_log_probs, rewards, n, "continuous" if method == "vbon_continuous" else "exact"
        )
        data = {"sequences": sequences, "target_log_probs": target}
        kind = "reverse"
        if method == "bond":
            kind = "jeffreys"
            data["backward_weight"] = jnp.asarray(s.backward_weight, dtype)
        objective = ExactDivergenceLoss(kind=kind)
    elif method == "kl_rl":
        if beta is None:
            raise ValueError("method 'kl_rl' needs beta")
        data = {
            "sequences": sequences,
            "ref_log_probs": ref_log_probs,
            "rewards": rewards,
            "beta": jnp.asarray(beta, dtype),
        }
        objective = ExactKLRegularisedLoss()
    elif method == "bon_sft":
        data = bon_sft_data(kd, sequences, ref_log_probs, rewards, n, s.num_sft_samples)
        objective = MaximumLikelihoodLoss()
    elif method == "bonbon":
        data = bonbon_data(kd, sequences, ref_log_probs, rewards, n, s.num_bonbon_pairs, s.bonbon_sft_weight)
        objective = BoNBoNLoss()
    elif method == "bond_iterated":
        t = round(math.log2(n))
        if 2**t != int(n):
            raise ValueError(f"bond_iterated needs n a power of 2 (n = 2^t after t iterations), got {n}")
        state, hist = iterated_bond(
            state,
            sequences,
            rewards,
            2,
            num_iterations=t,
            steps_per_iteration=max(s.num_steps // t, 1),
            optimizer=opt,
            backward_weight=s.backward_weight,
        )
        return state.policy, {"loss": jnp.stack([h["loss"] for h in hist])}
    else:  # sampled vBoN
        reward = as_reward(reward)
        ref_r = reward(ref_policy.sample(kd, s.num_reference_samples))
        data = {
            "ref_policy": ref_policy,
            "reward": reward,
            "kl_coef": jnp.asarray(1.0, dtype),
            "n": jnp.asarray(n, dtype),
            "ref_reward_samples": ref_r,
        }
        kind = "log_cdf" if method == "vbon_sampled" else "bon_log_ratio"
        objective = PolicyGradientLoss(num_samples=s.sampled_batch, reward_kind=kind)
        opt = _adam(float(s.sampled_learning_rate))
        state = init_train_state(kt, init_policy, opt)
    state, hist = train_steps(state, data, objective=objective, optimizer=opt, num_steps=s.num_steps)
    return state.policy, {"loss": hist["loss"]}
