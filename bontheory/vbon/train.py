"""Jitted training loops: Optax on a Policy pytree, ``lax.scan`` over steps, explicit keys.

The trained object is the ``Policy`` pytree itself (``module`` static, ``params`` leaves), so
``jax.grad(loss)(policy)`` and ``optimizer.update`` act on its parameters directly. A training state is a
pytree (:class:`TrainState`); the key of step ``s`` is ``fold_in(state.key, s)``, so splitting a run into
chunks (and resuming from a checkpoint between them) gives the same result as one uninterrupted run.

Static arguments: the ``objective`` (a frozen dataclass from :mod:`bontheory.vbon.objectives`), the
Optax ``optimizer`` (a ``GradientTransformation``; reuse one object to reuse the compiled loop) and
``num_steps``. Arrays (sequences, targets, rewards, reference policies) go in ``data`` as an argument.
"""

from __future__ import annotations

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from bontheory import validation as _V


@flax.struct.dataclass
class TrainState:
    """The state of a training run (a pytree).

    Attributes:
      step: int32 scalar, the number of optimiser steps taken.
      policy: the trained Policy pytree.
      opt_state: the Optax optimiser state.
      key: a typed PRNG key; step ``s`` uses ``jax.random.fold_in(key, s)``.
    """

    step: jax.Array
    policy: Any
    opt_state: Any
    key: jax.Array


@_V.validate(key=_V.prng_key, policy=_V.policy, optimizer=_V.optimizer)
def init_train_state(key: jax.Array, policy, optimizer: optax.GradientTransformation) -> TrainState:
    """A fresh training state: step 0, the optimiser initialised on ``policy``'s parameters.

    Args:
      key: a typed PRNG key (``jax.random.key``) for the sampled objectives.
      policy: the initial Policy pytree (e.g. the reference policy: vBoN starts from p).
      optimizer: an Optax gradient transformation.
    """
    return TrainState(
        step=jnp.zeros((), jnp.int32), policy=policy, opt_state=optimizer.init(policy), key=key
    )


@_V.validate(
    state=_V.train_state,
    data=_V.mapping,
    objective=_V.objective,
    optimizer=_V.optimizer,
    num_steps=_V.kind(_V.static_int, minimum=0),
)
@functools.partial(jax.jit, static_argnames=("objective", "optimizer", "num_steps"))
def train_steps(
    state: TrainState, data: dict[str, Any], *, objective, optimizer: optax.GradientTransformation, num_steps: int
) -> tuple[TrainState, dict[str, jax.Array]]:
    """Runs ``num_steps`` optimiser steps on ``objective`` (one ``lax.scan``).

    Args:
      state: the training state.
      data: the objective's arrays (see each objective's docstring).
      objective: ``objective(policy, data, key) -> (loss, aux)`` (static, hashable).
      optimizer: Optax gradient transformation (static).
      num_steps: number of steps (static).

    Returns:
      ``(new_state, history)``: ``history["loss"]`` has shape ``(num_steps,)`` (the loss *before* each
      step), and each ``aux`` diagnostic likewise.
    """

    def step_fn(st: TrainState, _):
        key = jax.random.fold_in(st.key, st.step)
        (loss, aux), grads = jax.value_and_grad(objective, has_aux=True)(st.policy, data, key)
        updates, opt_state = optimizer.update(grads, st.opt_state, st.policy)
        policy = optax.apply_updates(st.policy, updates)
        new = TrainState(step=st.step + 1, policy=policy, opt_state=opt_state, key=st.key)
        return new, {"loss": loss, **aux}

    return jax.lax.scan(step_fn, state, None, length=num_steps)
