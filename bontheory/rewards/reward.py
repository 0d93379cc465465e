"""The reward interface, and plain functions as rewards.

A reward is any pure, deterministic ``int[..., L] -> float[...]`` (``Reward``). The Monte Carlo kernels pass
the reward into ``jit`` as an argument, so inside the library a reward is a pytree: the built-in rewards are
``flax.struct.dataclass`` pytrees (arrays are leaves, settings static), and a plain Python function is wrapped
as a ``FunctionReward`` (the function a static field, hashed by identity) by ``as_reward``, which every
reward-taking entry point applies at its boundary.

A new function object (e.g. a ``lambda`` written inside a loop) is a new static argument, so ``jit``
recompiles for it: define the function once and reuse it. A function that closes over arrays bakes them into
the compiled program as constants; for large arrays write a ``flax.struct.dataclass`` reward instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import flax.struct
import jax
import jax.numpy as jnp

from bontheory import validation


@runtime_checkable
class Reward(Protocol):
    """The reward interface: ``__call__(sequences: int[..., L]) -> float[...]``, pure and deterministic."""

    def __call__(self, sequences: jax.Array) -> jax.Array: ...


@flax.struct.dataclass
class FunctionReward:
    """A plain function ``int[..., L] -> float[...]`` as a reward pytree.

    The function is a static field (no leaves), so a ``FunctionReward`` passes through ``jit`` as an
    argument and two wrappers of the same function are equal (one compilation).

    Attributes:
        fn: the function (static; hashable). It must be traceable by JAX (``jax.numpy``, not NumPy), pure
            and deterministic, and map a batch of sequences to one reward each (integer or boolean results
            are converted to JAX's default float dtype).
    """

    fn: Callable[[jax.Array], jax.Array] = flax.struct.field(pytree_node=False)

    def __call__(self, sequences: jax.Array) -> jax.Array:
        """``int[..., L] -> float[...]`` (an integer or boolean result becomes JAX's default float dtype)."""
        out = jnp.asarray(self.fn(validation.sequences(sequences)))
        if not jnp.issubdtype(out.dtype, jnp.floating):
            out = out.astype(jnp.result_type(float))
        return out


def as_reward(reward: Any, name: str = "reward") -> Any:
    """``reward`` as a pytree reward: a pytree is returned as is, a plain callable is wrapped.

    A callable that JAX treats as a single leaf (a function, a ``lambda``, a ``functools.partial``, a bound
    method, an instance of an unregistered class with ``__call__``) cannot be a ``jit`` argument; it becomes
    ``FunctionReward(reward)``. A registered pytree (any ``flax.struct.dataclass`` reward, a
    ``FunctionReward``) is returned unchanged.

    Args:
        reward: a callable ``int[..., L] -> float[...]``.
        name: the argument's name, for error messages.

    Returns:
        A reward pytree with the same values as ``reward``.

    Raises:
        TypeError: ``reward`` is not callable, or is a plain callable that cannot be hashed (it becomes a
            static argument of ``jit``).
    """
    if not callable(reward):
        raise TypeError(f"{name} must be callable on int[..., L] sequences, got {type(reward).__name__}")
    leaves = jax.tree.leaves(reward)
    if not (len(leaves) == 1 and leaves[0] is reward):
        return reward
    try:
        hash(reward)
    except TypeError:
        raise TypeError(
            f"{name} is a plain callable ({type(reward).__name__}) that cannot be hashed; it would be a static "
            "argument of jit. Pass a function, or make the reward a flax.struct.dataclass pytree"
        ) from None
    return FunctionReward(reward)
