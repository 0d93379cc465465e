"""bontheory.rewards: toy rewards on token sequences, proxy/gold pairs, and a learned Bradley–Terry model.

A reward is a ``flax.struct.dataclass`` pytree with ``__call__(sequences: int[..., L]) -> float[...]``
(pure and deterministic: a proxy's noise is a fixed function of the sequence). Proxies expose their
gold reward as ``proxy.gold``.
"""
