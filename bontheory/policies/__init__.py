"""bontheory.policies: autoregressive policies over token sequences of fixed length L.

``Policy`` is the interface (``vocab_size``, ``length``, ``next_token_log_probs(tokens)``,
``token_log_probs(sequences)``, ``log_prob(sequences)``, ``sample(key, num)``); ``ModulePolicy`` is its
pytree implementation for a Flax module (static) and its parameters (leaves), with each module kind
(tabular, transformer) supplying its own sampling and log-probabilities.
"""
