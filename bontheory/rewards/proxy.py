"""Proxy/gold reward pairs: the proxy is what BoN maximises, the gold is what we care about.

Every proxy here is a reward pytree (``__call__`` gives the proxy reward) with a ``gold`` attribute
that is itself a reward. The proxy's error is a fixed function of the sequence (drawn from
``sequence_keys``), so the same sequence gets the same proxy reward on every call.

* ``NoisyProxyReward``: ``proxy(y) = gold(y) + scale · ε(y)`` with ε Gaussian, Student-t(df) or
  Cauchy (heavy tails: BoN then selects the noise — Gao et al. 2023, Huang et al. 2025).
* ``HackProxyReward``: a rare region H (mass ``hack_mass`` under a reference policy) that the
  proxy loves and the gold hates: ``proxy = base + bonus · 1_H``, ``gold = base − penalty · 1_H``.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from bontheory import validation
from bontheory.policies.enumerate import enumerate_sequences
from bontheory.policies.policy import Policy
from bontheory.rewards.reward import as_reward
from bontheory.rewards.toy import check_tokens_fit_hash, hashed_draws

_NOISES = ("gaussian", "student_t", "cauchy")


@flax.struct.dataclass
class NoisyProxyReward:
    """``proxy(y) = gold(y) + scale · ε(y)``, ε a fixed function of the sequence.

    Attributes:
        gold: the gold reward pytree.
        key: PRNG key of the noise (leaf).
        scale: noise scale >= 0 (static).
        noise: ``"gaussian"``, ``"student_t"`` (``df`` degrees of freedom) or ``"cauchy"`` (static).
        df: Student-t degrees of freedom > 0 (static).
    """

    gold: object
    key: jax.Array
    scale: float = flax.struct.field(pytree_node=False, default=1.0)
    noise: str = flax.struct.field(pytree_node=False, default="gaussian")
    df: float = flax.struct.field(pytree_node=False, default=3.0)

    def __post_init__(self):
        if callable(self.gold):  # a plain function becomes a FunctionReward (see as_reward)
            object.__setattr__(self, "gold", as_reward(self.gold, "gold"))

    def error(self, sequences: jax.Array) -> jax.Array:
        """The unscaled noise ``ε(y)``, ``int[..., L] -> float[...]``."""
        seq = validation.sequences(sequences)
        check_tokens_fit_hash(seq)
        if self.noise not in _NOISES:
            raise ValueError(f"noise must be one of {_NOISES}, got {self.noise!r}")
        if self.noise == "student_t" and not self.df > 0:
            raise ValueError(f"df must be > 0, got {self.df}")
        dist = {"gaussian": "normal", "cauchy": "cauchy", "student_t": "student_t"}[self.noise]
        return hashed_draws(self.key, seq, dist, float(self.df))

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """Proxy reward ``int[..., L] -> float[...]``."""
        if not self.scale >= 0:
            raise ValueError(f"scale must be >= 0, got {self.scale}")
        return self.gold(sequences) + self.scale * self.error(sequences)


def _hack_uniform(key: jax.Array, sequences: jax.Array) -> jax.Array:
    seq = validation.sequences(sequences)
    check_tokens_fit_hash(seq)
    return hashed_draws(key, seq, "uniform", dtype=jnp.float32)


@flax.struct.dataclass
class HackedGoldReward:
    """Gold side of a hack pair: ``gold(y) = base(y) − penalty · 1[y ∈ H]``, ``H = {y : U(y) < threshold}``.

    Attributes:
        base: reward pytree.
        key: PRNG key defining U(y) ~ U(0, 1) per sequence (leaf).
        threshold: region threshold in [0, 1] (leaf).
        penalty: gold penalty in the region (static).
    """

    base: object
    key: jax.Array
    threshold: jax.Array
    penalty: float = flax.struct.field(pytree_node=False, default=1.0)

    def __post_init__(self):
        if callable(self.base):  # a plain function becomes a FunctionReward (see as_reward)
            object.__setattr__(self, "base", as_reward(self.base, "base"))

    def in_region(self, sequences: jax.Array) -> jax.Array:
        """``bool[...]``: whether each sequence lies in the hack region H."""
        return _hack_uniform(self.key, sequences) < self.threshold

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``."""
        hack = self.in_region(sequences)
        return self.base(sequences) - self.penalty * hack.astype(jnp.result_type(float))


@flax.struct.dataclass
class HackProxyReward:
    """Proxy side of a hack pair: ``proxy(y) = base(y) + bonus · 1[y ∈ H]``; ``.gold`` hates H.

    Build it with ``make_hack_proxy`` to calibrate H to a stated mass under a reference policy.

    Attributes:
        base: reward pytree shared by proxy and gold outside H.
        key: PRNG key defining U(y) (leaf).
        threshold: H = {y : U(y) < threshold} (leaf).
        bonus: proxy bonus in H (static).
        penalty: gold penalty in H (static).
    """

    base: object
    key: jax.Array
    threshold: jax.Array
    bonus: float = flax.struct.field(pytree_node=False, default=1.0)
    penalty: float = flax.struct.field(pytree_node=False, default=1.0)

    def __post_init__(self):
        if callable(self.base):  # a plain function becomes a FunctionReward (see as_reward)
            object.__setattr__(self, "base", as_reward(self.base, "base"))

    @property
    def gold(self) -> HackedGoldReward:
        """The gold reward ``base − penalty · 1_H``."""
        return HackedGoldReward(self.base, self.key, self.threshold, self.penalty)

    def in_region(self, sequences: jax.Array) -> jax.Array:
        """``bool[...]``: whether each sequence lies in the hack region H."""
        return _hack_uniform(self.key, sequences) < self.threshold

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """Proxy reward ``int[..., L] -> float[...]``."""
        hack = self.in_region(sequences)
        return self.base(sequences) + self.bonus * hack.astype(jnp.result_type(float))


class HackCalibration(flax.struct.PyTreeNode):
    """Mass of the hack region under the reference: exact (enumerated) or a Monte Carlo estimate.

    Attributes:
        mass: P_ref(Y ∈ H).
        stderr: its standard error (0 when exact).
        exact: whether ``mass`` was computed by enumeration (static).
    """

    mass: jax.Array
    stderr: jax.Array
    exact: bool = flax.struct.field(pytree_node=False, default=True)


@validation.validate(
    key=validation.prng_key,
    base=validation.reward,
    reference=validation.policy,
    hack_mass=validation.kind(validation.static_number, minimum=0, open_min=True, maximum=1),
    bonus=validation.static_number,
    penalty=validation.static_number,
    num_samples=validation.static_int,
    max_enumerated=validation.static_int,
)
def make_hack_proxy(
    key: jax.Array,
    base: object,
    reference: Policy,
    hack_mass: float,
    bonus: float = 1.0,
    penalty: float = 1.0,
    num_samples: int = 2**16,
    max_enumerated: int = 2**20,
) -> tuple[HackProxyReward, HackCalibration]:
    """A hack proxy whose region H has mass ≈ ``hack_mass`` under ``reference``.

    H = {y : U(y) < τ} with U(y) ~ U(0, 1) a fixed hash of y. When ``V**L <= max_enumerated``, τ is
    chosen by enumeration so that P_ref(H) is the achievable mass closest to ``hack_mass`` (exact up
    to one sequence's mass); otherwise τ is the weighted quantile of U over ``num_samples`` reference
    samples, and the returned mass is re-estimated on fresh samples with its standard error.

    Args:
        key: PRNG key (split into the region key and the calibration sampling key).
        base: reward shared by proxy and gold outside H (a reward pytree or a plain function).
        reference: the reference policy p.
        hack_mass: target P_p(H) in (0, 1).
        bonus: proxy reward added in H (error size on the proxy side).
        penalty: gold reward subtracted in H.
        num_samples: Monte Carlo sample size when not enumerable.
        max_enumerated: enumerate when V**L is at most this.

    Returns:
        ``(proxy, calibration)``; ``proxy.gold`` is the gold reward.
    """
    if not isinstance(reference, Policy):
        raise TypeError(f"reference must be a bontheory Policy, got {type(reference).__name__}")
    base = as_reward(base, "base")
    if not 0.0 < hack_mass < 1.0:
        raise ValueError(f"hack_mass must be in (0, 1), got {hack_mass}")
    region_key, sample_key = jax.random.split(key)
    fdt = jnp.result_type(float)
    total = reference.vocab_size**reference.length
    if total <= max_enumerated:
        seqs, logp = enumerate_sequences(reference, max_sequences=max_enumerated)
        u = np.asarray(_hack_uniform(region_key, seqs), np.float64)
        p = np.exp(np.asarray(logp, np.float64))
        order = np.argsort(u, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(p[order])])  # mass of the first j sequences by U
        j = int(np.argmin(np.abs(cum - hack_mass)))
        if j == 0:
            tau = 0.0
        elif j == len(u):
            tau = 1.0
        else:
            tau = 0.5 * (u[order[j - 1]] + u[order[j]])
        threshold = jnp.asarray(tau, jnp.float32)
        proxy = HackProxyReward(base, region_key, threshold, float(bonus), float(penalty))
        in_h = np.asarray(proxy.in_region(seqs))
        mass = float(np.sum(p[in_h]))
        return proxy, HackCalibration(jnp.asarray(mass, fdt), jnp.asarray(0.0, fdt), True)
    k1, k2 = jax.random.split(sample_key)
    u = np.sort(np.asarray(_hack_uniform(region_key, reference.sample(k1, int(num_samples))), np.float64))
    j = min(max(round(hack_mass * len(u)), 1), len(u) - 1)
    threshold = jnp.asarray(0.5 * (u[j - 1] + u[j]), jnp.float32)
    proxy = HackProxyReward(base, region_key, threshold, float(bonus), float(penalty))
    hits = np.asarray(proxy.in_region(reference.sample(k2, int(num_samples))), np.float64)
    mass = hits.mean()
    stderr = hits.std(ddof=1) / np.sqrt(len(hits))
    return proxy, HackCalibration(jnp.asarray(mass, fdt), jnp.asarray(stderr, fdt), False)
