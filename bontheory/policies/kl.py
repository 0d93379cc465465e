"""KL divergence between autoregressive policies: exact (chain rule) and sampled estimators.

Chain rule for sequences y = (y_0..y_{L-1}):

    KL(a ‖ b) = E_{y~a}[ Σ_t KL(a(·|y_{<t}) ‖ b(·|y_{<t})) ]

with each per-token KL a full-vocabulary sum ``Σ_v a(v|·) (log a(v|·) − log b(v|·))``.
``sequence_kl`` computes it exactly: by a forward recursion over contexts for two tabular policies
(cost L·V^{k+1}, k the larger order), otherwise by enumerating all V^{L-1} prefixes in batches.
``sequence_kl_mc`` averages the per-token KL sums over sampled sequences (unbiased, low variance).
``kl_k1``/``kl_k2``/``kl_k3`` are the per-sample estimators from log-probabilities (Schulman,
"Approximating KL divergence", 2020), k3 written with ``expm1``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from bontheory import validation
from bontheory.numerics import entropy_from_log_probs, kl_from_log_probs
from bontheory.policies.enumerate import MAX_ENUMERATED_SEQUENCES, index_to_tokens
from bontheory.policies.policy import Policy
from bontheory.policies.tabular import TabularPolicy
from bontheory.results import Estimate


@validation.validate(logp_policy=validation.log_densities, logp_ref=validation.log_densities)
def kl_k1(logp_policy: jax.Array, logp_ref: jax.Array) -> jax.Array:
    """k1 estimator of KL(π‖p) for samples y ~ π: ``log π(y) − log p(y)`` (unbiased, can be negative).

    Args:
        logp_policy: ``float[...]`` log π(y).
        logp_ref: ``float[...]`` log p(y), same shape.

    Returns:
        ``float[...]``.
    """
    logp_policy, logp_ref = jnp.asarray(logp_policy), jnp.asarray(logp_ref)
    _check_same_shape(logp_policy, logp_ref)
    return logp_policy - logp_ref


@validation.validate(logp_policy=validation.log_densities, logp_ref=validation.log_densities)
def kl_k2(logp_policy: jax.Array, logp_ref: jax.Array) -> jax.Array:
    """k2 estimator ``½ (log π(y) − log p(y))²`` (biased, low variance), ``float[...]``."""
    return 0.5 * jnp.square(kl_k1(logp_policy, logp_ref))


@validation.validate(logp_policy=validation.log_densities, logp_ref=validation.log_densities)
def kl_k3(logp_policy: jax.Array, logp_ref: jax.Array) -> jax.Array:
    """k3 estimator of KL(π‖p) for y ~ π: ``(ρ − 1) − log ρ`` with ``ρ = p(y)/π(y)``.

    Written as ``expm1(−k1) + k1`` (never ``exp(·) − 1 − ·``): unbiased and >= 0.

    Args:
        logp_policy: ``float[...]`` log π(y).
        logp_ref: ``float[...]`` log p(y).

    Returns:
        ``float[...]``, non-negative.
    """
    k1 = kl_k1(logp_policy, logp_ref)
    return jnp.expm1(-k1) + k1


def _check_same_shape(a: jax.Array, b: jax.Array) -> None:
    if a.shape != b.shape:
        raise ValueError(f"log-probability arrays must have the same shape, got {a.shape} and {b.shape}")


def _check_pair(policy_a: Policy, policy_b: Policy) -> None:
    for name, p in (("policy_a", policy_a), ("policy_b", policy_b)):
        if not isinstance(p, Policy):
            raise TypeError(f"{name} must be a bontheory Policy, got {type(p).__name__}")
    if (policy_a.vocab_size, policy_a.length) != (policy_b.vocab_size, policy_b.length):
        raise ValueError(
            "policies must share vocab_size and length, got "
            f"(V, L) = {(policy_a.vocab_size, policy_a.length)} and {(policy_b.vocab_size, policy_b.length)}"
        )


@validation.validate(policy_a=validation.policy, policy_b=validation.policy, tokens=validation.sequences)
def token_kl(policy_a: Policy, policy_b: Policy, tokens: jax.Array) -> jax.Array:
    """Per-position full-vocabulary KL ``KL(a(·|y_{<t}) ‖ b(·|y_{<t}))`` along given sequences.

    Args:
        policy_a, policy_b: policies with the same V and L.
        tokens: ``int[B, L]``.

    Returns:
        ``float[B, L]``; its sum over t averaged over y ~ a is the sequence KL.
    """
    _check_pair(policy_a, policy_b)
    return kl_from_log_probs(policy_a.next_token_log_probs(tokens), policy_b.next_token_log_probs(tokens))


def _expand_table(logp: jax.Array, k_from: int, k_to: int, vocab: int) -> jax.Array:
    """Re-index an order-k_from table ``(L, V**k_from, V)`` by order-k_to contexts (k_to >= k_from)."""
    ctx = jnp.arange(vocab**k_to) % (vocab**k_from)
    return logp[:, ctx, :]


@functools.partial(jax.jit, static_argnums=(2, 3))
def _tabular_kl(logp_a: jax.Array, logp_b: jax.Array, k: int, vocab: int) -> jax.Array:
    return _tabular_expectation(kl_from_log_probs(logp_a, logp_b), logp_a, k, vocab)


def _tabular_expectation(rows: jax.Array, logp_a: jax.Array, k: int, vocab: int) -> jax.Array:
    """``Σ_t E_{c_t ~ a}[rows[t, c_t]]`` by the forward recursion over order-k contexts."""
    if k == 0:
        return jnp.sum(rows)
    low = vocab ** (k - 1)
    mu0 = jnp.zeros((vocab**k,), rows.dtype).at[0].set(1.0)

    def step(mu, xs):
        kl_t, la_t = xs
        contrib = jnp.sum(jnp.where(mu > 0, mu * kl_t, 0.0))  # unreachable contexts contribute 0 (0·∞ = 0)
        joint = mu[:, None] * jnp.exp(la_t)  # (C, V): P(c_t = c, y_t = v)
        # c = c_low + V^{k-1} c_high; the next context is y + V c_low (drop the oldest digit).
        mu_next = jnp.sum(joint.reshape(vocab, low, vocab), axis=0).reshape(vocab**k)
        return mu_next, contrib

    _, contribs = jax.lax.scan(step, mu0, (rows, logp_a))
    return jnp.sum(contribs)


@functools.partial(jax.jit, static_argnames=("batch_size", "total"))
def _prefix_batch_kl(policy_a: Policy, policy_b: Policy, start: jax.Array, batch_size: int, total: int):
    length = policy_a.length
    index = start + jnp.arange(batch_size, dtype=jnp.int32)
    valid = index < total
    prefixes = index_to_tokens(jnp.minimum(index, total - 1), policy_a.vocab_size, length - 1)
    tokens = jnp.concatenate([prefixes, jnp.zeros((batch_size, 1), jnp.int32)], axis=1)
    la = policy_a.next_token_log_probs(tokens)
    lb = policy_b.next_token_log_probs(tokens)
    per_pos = kl_from_log_probs(la, lb)  # (B, L)
    tok_lp = jnp.take_along_axis(la, tokens[..., None], axis=-1)[..., 0]  # (B, L)
    log_w = jnp.sum(tok_lp[:, : length - 1], axis=-1)  # log a(y_{<L-1})
    w = jnp.where(valid, jnp.exp(log_w), 0.0)
    return jnp.sum(jnp.where(w > 0, w * jnp.sum(per_pos, axis=-1), 0.0))  # prefixes a never reaches: 0·∞ = 0


@validation.validate(
    policy_a=validation.policy,
    policy_b=validation.policy,
    batch_size=validation.static_int,
    max_prefixes=validation.static_int,
)
def sequence_kl(
    policy_a: Policy,
    policy_b: Policy,
    batch_size: int = 2**14,
    max_prefixes: int = MAX_ENUMERATED_SEQUENCES,
    method: str = "auto",
) -> jax.Array:
    """Exact ``KL(a ‖ b)`` over whole sequences by the chain rule with full-vocabulary sums.

    ``KL(a‖b) = Σ_t E_{y_{<t}~a} KL(a(·|y_{<t}) ‖ b(·|y_{<t}))``.

    Args:
        policy_a, policy_b: policies with the same V and L.
        batch_size: prefixes per jitted batch (enumeration method).
        max_prefixes: refuse (``ValueError``) to enumerate more than this many V^{L-1} prefixes.
        method: ``"auto"`` (recursion when both are tabular, else enumeration), ``"recursion"``,
            or ``"enumeration"``.

    Returns:
        Scalar ``float`` KL in nats.
    """
    _check_pair(policy_a, policy_b)
    if method not in ("auto", "recursion", "enumeration"):
        raise ValueError(f"method must be 'auto', 'recursion' or 'enumeration', got {method!r}")
    both_tabular = all(isinstance(getattr(p, "module", None), TabularPolicy) for p in (policy_a, policy_b))
    if method == "recursion" and not both_tabular:
        raise ValueError("method='recursion' needs two tabular policies")
    vocab, length = policy_a.vocab_size, policy_a.length
    if method in ("auto", "recursion") and both_tabular:
        ka, kb = policy_a.module.context_order, policy_b.module.context_order
        k = max(ka, kb)
        la = _expand_table(jax.nn.log_softmax(policy_a.params["logits"], axis=-1), ka, k, vocab)
        lb = _expand_table(jax.nn.log_softmax(policy_b.params["logits"], axis=-1), kb, k, vocab)
        return _tabular_kl(la, lb, k, vocab)
    total = vocab ** (length - 1)
    if total > min(int(max_prefixes), 2**31 - 1):
        raise ValueError(
            f"exact sequence KL needs V**(L-1) = {total} prefixes (> max_prefixes = {max_prefixes}); use sequence_kl_mc"
        )
    batch_size = max(1, min(int(batch_size), total))
    acc = 0.0
    for start in range(0, total, batch_size):
        acc = acc + _prefix_batch_kl(policy_a, policy_b, jnp.asarray(start, jnp.int32), batch_size, total)
    return jnp.asarray(acc)


@validation.validate(
    key=validation.prng_key,
    policy_a=validation.policy,
    policy_b=validation.policy,
    num=validation.kind(validation.static_int, minimum=2),
)
def sequence_kl_mc(key: jax.Array, policy_a: Policy, policy_b: Policy, num: int) -> Estimate:
    """Monte Carlo chain-rule KL: average over y ~ a of ``Σ_t KL(a(·|y_{<t}) ‖ b(·|y_{<t}))``.

    Unbiased, with lower variance than the k1/k3 estimators (the last token is summed out exactly).

    Args:
        key: PRNG key.
        policy_a, policy_b: policies with the same V and L.
        num: number of sampled sequences (>= 2, static).

    Returns:
        :class:`~bontheory.results.Estimate` ``(mean, stderr)``.
    """
    _check_pair(policy_a, policy_b)
    if int(num) < 2:
        raise ValueError(f"num must be >= 2 for a standard error, got {num}")
    return _sequence_kl_mc(key, policy_a, policy_b, int(num))


@functools.partial(jax.jit, static_argnums=3)
def _sequence_kl_mc(key, policy_a, policy_b, num):
    seqs = policy_a.sample(key, num)
    per_seq = jnp.sum(token_kl(policy_a, policy_b, seqs), axis=-1)
    mean = jnp.mean(per_seq)
    stderr = jnp.std(per_seq, ddof=1) / jnp.sqrt(num)
    return Estimate(mean, stderr)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _tabular_entropy(logp: jax.Array, k: int, vocab: int) -> jax.Array:
    return _tabular_expectation(entropy_from_log_probs(logp), logp, k, vocab)


@validation.validate(policy=validation.policy, batch_size=validation.static_int, max_sequences=validation.static_int)
def sequence_entropy(
    policy: Policy, batch_size: int = 2**16, max_sequences: int = MAX_ENUMERATED_SEQUENCES
) -> jax.Array:
    """Exact entropy of the sequence distribution, ``H(π) = Σ_t E_{y_{<t}~π} H(π(·|y_{<t}))`` (chain rule).

    Tabular policies use the forward recursion over contexts; others enumerate all V**L sequences.

    Args:
        policy: a ``Policy``.
        batch_size: enumeration batch size (non-tabular).
        max_sequences: enumeration cap (non-tabular); larger spaces raise ``ValueError``.

    Returns:
        Scalar entropy in nats (between 0 and L log V).
    """
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a bontheory Policy, got {type(policy).__name__}")
    if isinstance(getattr(policy, "module", None), TabularPolicy):
        logp = jax.nn.log_softmax(policy.params["logits"], axis=-1)
        return _tabular_entropy(logp, policy.module.context_order, policy.vocab_size)
    from bontheory.policies.enumerate import enumerate_sequences

    _, logp = enumerate_sequences(policy, batch_size=batch_size, max_sequences=max_sequences)
    return entropy_from_log_probs(logp)
