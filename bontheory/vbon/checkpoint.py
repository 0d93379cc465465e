"""Checkpoints of a training run: parameters, optimiser state, step and key, written atomically.

Format: ``flax.serialization`` msgpack of the :class:`~bontheory.vbon.train.TrainState` with the typed
key stored as its raw key data. The file is written to a temporary file and renamed into place
(:func:`bontheory.storage.atomic_write_bytes`), so an interrupted write leaves the previous checkpoint.
Loading needs a *template* state of the same structure (e.g. ``init_train_state`` of the same policy and
optimiser), as usual for Flax serialisation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp

from bontheory import validation
from bontheory.storage import atomic_write_bytes
from bontheory.vbon.train import TrainState, train_steps


def _to_raw(state: TrainState) -> TrainState:
    return state.replace(key=jax.random.key_data(state.key))


@validation.validate(path=validation.path, state=validation.train_state)
def save_checkpoint(path: str | os.PathLike, state: TrainState) -> Path:
    """Writes ``state`` (parameters, optimiser state, step, key) to ``path`` atomically.

    Returns:
      The path written.
    """
    data = flax.serialization.to_bytes(jax.device_get(_to_raw(state)))
    return atomic_write_bytes(path, data)


@validation.validate(path=validation.path, template=validation.train_state)
def load_checkpoint(path: str | os.PathLike, template: TrainState) -> TrainState:
    """Reads a checkpoint written by :func:`save_checkpoint` into the structure of ``template``.

    Raises:
      FileNotFoundError: if there is no checkpoint at ``path``.
      ValueError: if the file does not match the template's structure.
    """
    raw_template = _to_raw(template)
    try:
        raw = flax.serialization.from_bytes(raw_template, Path(path).read_bytes())
    except FileNotFoundError:
        raise
    except Exception as e:  # msgpack / structure errors
        raise ValueError(f"checkpoint {path} does not match the training state's structure: {e}") from e
    raw = jax.tree.map(jnp.asarray, raw)
    impl = jax.random.key_impl(template.key)
    return raw.replace(key=jax.random.wrap_key_data(raw.key, impl=impl))


@validation.validate(
    state=validation.train_state,
    data=validation.mapping,
    objective=validation.objective,
    optimizer=validation.optimizer,
    num_steps=validation.kind(validation.static_int, minimum=0),
    chunk_steps=validation.static_int,
    path=validation.optional(validation.path),
)
def train_with_checkpoints(
    state: TrainState,
    data: dict[str, Any],
    *,
    objective,
    optimizer,
    num_steps: int,
    chunk_steps: int,
    path: str | os.PathLike | None = None,
) -> tuple[TrainState, dict[str, Any]]:
    """Trains until ``state.step == num_steps`` in chunks of ``chunk_steps``, checkpointing after each.

    If ``path`` holds a checkpoint it is loaded first (with ``state`` as template) and training resumes
    from its step; the per-step keys are ``fold_in(key, step)``, so a resumed run equals an uninterrupted
    one. The history returned covers only the steps run in this call.

    Args:
      state: initial state (and template for loading).
      data: the objective's arrays.
      objective, optimizer: as for :func:`~bontheory.vbon.train.train_steps`.
      num_steps: total number of steps of the run.
      chunk_steps: steps per jitted chunk (and between checkpoints); the last chunk may be shorter.
      path: checkpoint file, or ``None`` for no checkpointing.

    Returns:
      ``(final_state, history)`` with history arrays concatenated over chunks.
    """
    if chunk_steps < 1 or num_steps < 0:
        raise ValueError(f"need chunk_steps >= 1 and num_steps >= 0, got {chunk_steps}, {num_steps}")
    if path is not None and Path(path).exists():
        state = load_checkpoint(path, state)
    histories = []
    while int(state.step) < num_steps:
        k = min(chunk_steps, num_steps - int(state.step))
        state, hist = train_steps(state, data, objective=objective, optimizer=optimizer, num_steps=k)
        histories.append(hist)
        if path is not None:
            save_checkpoint(path, state)
    history = jax.tree.map(lambda *xs: jnp.concatenate(xs), *histories) if histories else {}
    return state, history
