"""bontheory.policies: autoregressive policies over token sequences of fixed length L.

``Policy`` is a pytree (Flax module static, params leaves) with ``vocab_size``, ``length``,
``next_token_log_probs(tokens)``, ``log_prob(sequences)`` and ``sample(key, num)``.
"""

from bontheory.policies.enumerate import MAX_ENUMERATED_SEQUENCES, all_sequences, enumerate_sequences
from bontheory.policies.kl import (
    SequenceKLEstimate,
    kl_k1,
    kl_k2,
    kl_k3,
    sequence_entropy,
    sequence_kl,
    sequence_kl_mc,
    token_kl,
)
from bontheory.policies.policy import Policy, policy_from_module
from bontheory.policies.tabular import (
    MAX_TABLE_SIZE,
    TabularPolicy,
    random_tabular_policy,
    tabular_log_probs_table,
    tabular_policy_from_logits,
)
from bontheory.policies.transformer import TransformerPolicy, init_transformer_policy

__all__ = [
    "Policy",
    "policy_from_module",
    "TabularPolicy",
    "random_tabular_policy",
    "tabular_policy_from_logits",
    "tabular_log_probs_table",
    "MAX_TABLE_SIZE",
    "TransformerPolicy",
    "init_transformer_policy",
    "enumerate_sequences",
    "all_sequences",
    "MAX_ENUMERATED_SEQUENCES",
    "kl_k1",
    "kl_k2",
    "kl_k3",
    "token_kl",
    "sequence_kl",
    "sequence_kl_mc",
    "SequenceKLEstimate",
    "sequence_entropy",
]
