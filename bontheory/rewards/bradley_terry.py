"""A learned Bradley–Terry reward model: the realistic proxy.

Preference data: pairs (y, y') drawn i.i.d. from a policy, labelled by a gold reward g through the
Bradley–Terry model ``P(y ≻ y') = σ((g(y) − g(y')) / τ)`` (τ = 0: the better one always wins,
gold ties are coin flips), each label then flipped with probability ``label_noise``.
The model r_θ (token + position embeddings, flattened, a two-layer GELU MLP, a scalar head) is
fitted by minimising the Bradley–Terry negative log-likelihood

    − Σ [ z log σ(r_θ(y) − r_θ(y')) + (1 − z) log σ(r_θ(y') − r_θ(y)) ]

with AdamW (Optax), minibatches drawn with ``fold_in(key, step)`` inside a jitted ``lax.scan``.
References: Bradley & Terry (1952); Ouyang et al. (2022) for reward modelling from preferences.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from bontheory import validation
from bontheory.policies.policy import Policy


class BradleyTerryNet(nn.Module):
    """Scalar reward network ``int32[B, L] -> float[B]``.

    Attributes:
        vocab_size: V.
        length: L.
        embed_dim: embedding width.
        hidden: MLP width.
    """

    vocab_size: int
    length: int
    embed_dim: int = 16
    hidden: int = 64

    def __post_init__(self):
        validation.static_int(self.vocab_size, "vocab_size")  # static attributes: checked when the module is built
        validation.static_int(self.length, "length")
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = nn.Embed(self.vocab_size, self.embed_dim)(tokens)
        pos = self.param("pos_embed", nn.initializers.normal(0.1), (self.length, self.embed_dim))
        x = (x + pos[None, :, :].astype(x.dtype)).reshape((tokens.shape[0], self.length * self.embed_dim))
        x = nn.gelu(nn.Dense(self.hidden)(x))
        x = nn.gelu(nn.Dense(self.hidden)(x))
        return nn.Dense(1)(x)[:, 0]


@flax.struct.dataclass
class LearnedReward:
    """A trained reward model as a reward pytree: ``__call__(int[..., L]) -> float[...]``.

    Attributes:
        module: the ``BradleyTerryNet`` (static).
        params: its parameters (leaves).
    """

    module: nn.Module = flax.struct.field(pytree_node=False)
    params: Any

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]``."""
        seq = validation.sequences(sequences, length=self.module.length)
        flat = seq.reshape((-1, self.module.length)).astype(jnp.int32)
        out = self.module.apply({"params": self.params}, flat)
        return out.reshape(seq.shape[:-1])


class BradleyTerryFit(NamedTuple):
    """Result of ``train_bradley_terry``.

    Attributes:
        reward: the fitted ``LearnedReward``.
        losses: ``float[num_steps]`` minibatch negative log-likelihood per step.
        train_accuracy: fraction of (gold-untied) training pairs ranked as the gold ranks them.
    """

    reward: LearnedReward
    losses: jax.Array
    train_accuracy: jax.Array


@validation.validate(
    key=validation.prng_key,
    gold_a=validation.rewards,
    gold_b=validation.rewards,
    temperature=validation.kind(validation.static_number, minimum=0),
    label_noise=validation.kind(validation.static_number, minimum=0, maximum=0.5),
)
def bradley_terry_labels(
    key: jax.Array,
    gold_a: jax.Array,
    gold_b: jax.Array,
    temperature: float = 0.0,
    label_noise: float = 0.0,
) -> jax.Array:
    """Sample preference labels ``z = 1[a ≻ b]`` from the Bradley–Terry model of a gold reward.

    ``P(a ≻ b) = σ((g_a − g_b)/τ)`` (τ = 0: ``1[g_a > g_b]``, ties ½), then each label is flipped
    with probability ``label_noise``.

    Args:
        key: PRNG key.
        gold_a, gold_b: ``float[N]`` gold rewards.
        temperature: τ >= 0.
        label_noise: flip probability in [0, 0.5].

    Returns:
        ``float[N]`` labels in {0, 1}.
    """
    gold_a, gold_b = jnp.asarray(gold_a), jnp.asarray(gold_b)
    if gold_a.shape != gold_b.shape:
        raise ValueError(f"gold_a and gold_b must have the same shape, got {gold_a.shape} and {gold_b.shape}")
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0.0 <= label_noise <= 0.5:
        raise ValueError(f"label_noise must be in [0, 0.5], got {label_noise}")
    k1, k2 = jax.random.split(key)
    diff = gold_a - gold_b
    if temperature > 0:
        p = jax.nn.sigmoid(diff / temperature)
    else:
        p = jnp.where(diff > 0, 1.0, jnp.where(diff < 0, 0.0, 0.5))
    z = jax.random.bernoulli(k1, p)
    flip = jax.random.bernoulli(k2, label_noise, z.shape)
    return jnp.logical_xor(z, flip).astype(jnp.result_type(float))


@validation.validate(
    reward=validation.reward, gold=validation.reward, seqs_a=validation.sequences, seqs_b=validation.sequences
)
def pairwise_accuracy(reward: Any, gold: Any, seqs_a: jax.Array, seqs_b: jax.Array) -> jax.Array:
    """Fraction of pairs with ``g(a) ≠ g(b)`` on which ``sign(r(a) − r(b)) = sign(g(a) − g(b))``.

    Args:
        reward: reward pytree to evaluate.
        gold: gold reward pytree.
        seqs_a, seqs_b: ``int[N, L]`` each.

    Returns:
        Scalar accuracy in [0, 1] (NaN when every pair is a gold tie).
    """
    if jnp.shape(seqs_a) != jnp.shape(seqs_b):
        raise ValueError(f"seqs_a and seqs_b must have the same shape, got {jnp.shape(seqs_a)} and {jnp.shape(seqs_b)}")
    dg = gold(seqs_a) - gold(seqs_b)
    dr = reward(seqs_a) - reward(seqs_b)
    untied = dg != 0
    agree = (jnp.sign(dr) == jnp.sign(dg)) & untied
    return jnp.sum(agree) / jnp.sum(untied)


@functools.partial(jax.jit, static_argnames=("module", "num_steps", "batch_size"))
def _fit(key, params, seqs_a, seqs_b, labels, learning_rate, weight_decay, module, num_steps, batch_size):
    num = seqs_a.shape[0]
    optimizer = optax.adamw(learning_rate, weight_decay=weight_decay)

    def loss_fn(p, ia):
        ra = module.apply({"params": p}, seqs_a[ia])
        rb = module.apply({"params": p}, seqs_b[ia])
        return jnp.mean(optax.sigmoid_binary_cross_entropy(ra - rb, labels[ia]))

    def step(carry, i):
        p, opt_state = carry
        idx = jax.random.randint(jax.random.fold_in(key, i), (batch_size,), 0, num)
        loss, grads = jax.value_and_grad(loss_fn)(p, idx)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), loss

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), jnp.arange(num_steps))
    return params, losses


@validation.validate(
    key=validation.prng_key,
    policy=validation.policy,
    gold=validation.reward,
    num_pairs=validation.static_int,
    num_steps=validation.static_int,
    batch_size=validation.static_int,
)
def train_bradley_terry(
    key: jax.Array,
    policy: Policy,
    gold: Any,
    num_pairs: int = 8192,
    num_steps: int = 1500,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    weight_decay: float = 1e-4,
    temperature: float = 0.0,
    label_noise: float = 0.0,
    embed_dim: int = 16,
    hidden: int = 64,
) -> BradleyTerryFit:
    """Fit a Bradley–Terry reward model on preference pairs sampled from ``policy``, labelled by ``gold``.

    Args:
        key: PRNG key (split into init, data, labels and minibatch keys).
        policy: the policy that generates the compared sequences.
        gold: gold reward pytree.
        num_pairs: number of training pairs.
        num_steps: AdamW steps (one jitted ``lax.scan``).
        batch_size: pairs per step.
        learning_rate, weight_decay: AdamW settings.
        temperature: Bradley–Terry label temperature τ (0 = noiseless preferences).
        label_noise: probability of flipping each label.
        embed_dim, hidden: network sizes.

    Returns:
        ``BradleyTerryFit(reward, losses, train_accuracy)``.
    """
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a bontheory Policy, got {type(policy).__name__}")
    for name, v in (("num_pairs", num_pairs), ("num_steps", num_steps), ("batch_size", batch_size)):
        if int(v) < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    k_init, k_a, k_b, k_lab, k_fit = jax.random.split(key, 5)
    seqs_a = policy.sample(k_a, int(num_pairs))
    seqs_b = policy.sample(k_b, int(num_pairs))
    labels = bradley_terry_labels(k_lab, gold(seqs_a), gold(seqs_b), temperature, label_noise)
    module = BradleyTerryNet(policy.vocab_size, policy.length, int(embed_dim), int(hidden))
    params = jax.jit(module.init)(k_init, seqs_a[:1])["params"]
    params, losses = _fit(
        k_fit,
        params,
        seqs_a,
        seqs_b,
        labels,
        learning_rate,
        weight_decay,
        module=module,
        num_steps=int(num_steps),
        batch_size=int(batch_size),
    )
    reward = LearnedReward(module=module, params=params)
    return BradleyTerryFit(reward, losses, pairwise_accuracy(reward, gold, seqs_a, seqs_b))
