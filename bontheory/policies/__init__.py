"""bontheory.policies: autoregressive policies over token sequences of fixed length L.

``Policy`` is a pytree (Flax module static, params leaves) with ``vocab_size``, ``length``,
``next_token_log_probs(tokens)``, ``log_prob(sequences)`` and ``sample(key, num)``.
"""
