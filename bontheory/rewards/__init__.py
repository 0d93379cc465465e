"""bontheory.rewards: toy rewards on token sequences, proxy/gold pairs, and a learned Bradley–Terry model.

A reward is any pure, deterministic ``__call__(sequences: int[..., L]) -> float[...]`` (the ``Reward``
interface); a proxy's noise is a fixed function of the sequence. The built-in rewards are
``flax.struct.dataclass`` pytrees; a plain function is accepted everywhere a reward is taken (wrapped as a
``FunctionReward`` by ``as_reward``). Proxies expose their gold reward as ``proxy.gold``.
"""
