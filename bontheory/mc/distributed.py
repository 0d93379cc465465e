"""The Monte Carlo kernel sharded over the trial axis: many devices, many processes.

The trial axis is split across a 1-D :class:`jax.sharding.Mesh` (axis ``"trials"``) with
:func:`jax.shard_map`. Device ``d`` of ``D`` runs global trials ``d·T/D … (d+1)·T/D − 1`` (``T`` padded up to
a multiple of ``D``; padding trials are computed and dropped), and trial ``i`` always uses the key
``fold_in(key, i)`` — so the draws are the same numbers whatever the number of devices or processes, and
the same as :func:`bontheory.mc.bon_monte_carlo` on one device.

Many machines: JAX's multi-controller runtime. Every process runs the same program; call
:func:`initialize_distributed` first (before any other JAX call), then build the mesh with
:func:`trial_mesh` (it spans the devices of all processes) and call :func:`sharded_bon_monte_carlo`; every
process gets all T draws back (all-gathered). Launch, e.g. 2 machines::

    # on every machine i = 0, 1 (same script, same arguments):
    BONTHEORY_COORDINATOR=10.0.0.1:1234 BONTHEORY_NUM_PROCESSES=2 BONTHEORY_PROCESS_ID=$i python sweep.py

On CPU, collectives use gloo (``jax_cpu_collectives_implementation = "gloo"``, set by
:func:`initialize_distributed`); on GPU/TPU clusters JAX's own collectives are used (and on managed
clusters — SLURM, Cloud TPU — ``jax.distributed.initialize()`` with no arguments finds its peers).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bontheory.mc.kernels import BoNDraws, Scorer, bon_trials, kernel_sizes, validate_kernel_inputs
from bontheory.rewards.reward import as_reward

#: Name of the mesh axis the trials are sharded over.
TRIAL_AXIS = "trials"


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_count: int | None = None,
    cpu_collectives: str = "gloo",
) -> None:
    """Join a multi-process JAX run (call before any other JAX computation).

    Arguments default to the environment variables ``BONTHEORY_COORDINATOR`` (``host:port`` of process
    0), ``BONTHEORY_NUM_PROCESSES`` and ``BONTHEORY_PROCESS_ID``; if none is set anywhere,
    ``jax.distributed.initialize()`` is called without arguments (cluster auto-detection).

    Args:
        coordinator_address: ``"host:port"`` of process 0's coordinator service.
        num_processes: total number of processes.
        process_id: this process's id in ``[0, num_processes)``.
        local_device_count: on CPU, force this many devices per process (``jax_num_cpu_devices``).
        cpu_collectives: CPU collectives implementation (``"gloo"``; ``"mpi"`` needs an MPI build).
    """
    env = os.environ
    coordinator_address = coordinator_address or env.get("BONTHEORY_COORDINATOR")
    if num_processes is None and "BONTHEORY_NUM_PROCESSES" in env:
        num_processes = int(env["BONTHEORY_NUM_PROCESSES"])
    if process_id is None and "BONTHEORY_PROCESS_ID" in env:
        process_id = int(env["BONTHEORY_PROCESS_ID"])
    if local_device_count is not None:
        jax.config.update("jax_num_cpu_devices", int(local_device_count))
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    if coordinator_address is None and num_processes is None and process_id is None:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(
            coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
        )


def trial_mesh(devices: Any = None) -> Mesh:
    """A 1-D mesh with axis ``"trials"`` over ``devices`` (default: all devices of all processes)."""
    devs = np.asarray(jax.devices() if devices is None else devices).reshape(-1)
    if devs.size < 1:
        raise ValueError("trial_mesh needs at least one device")
    return Mesh(devs, (TRIAL_AXIS,))


def to_host(x: Any) -> Any:
    """A pytree of (possibly multi-process sharded) arrays as NumPy arrays, complete on every process."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(x, tiled=True)
    return jax.device_get(x)


def _replicate(tree: Any, mesh: Mesh) -> Any:
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda x: jax.device_put(np.asarray(x), sharding), tree)


@functools.partial(
    jax.jit, static_argnames=("mesh", "n", "per_device", "chunk_size", "trial_batch", "scorer")
)
def _sharded(key_data, policy, reward, *, mesh, n, per_device, chunk_size, trial_batch, scorer):
    def body(key_data, policy, reward):
        key = jax.random.wrap_key_data(key_data)
        start = jax.lax.axis_index(TRIAL_AXIS) * per_device
        idx = start + jnp.arange(per_device)
        return bon_trials(key, idx, policy, reward, n=n, chunk_size=chunk_size, trial_batch=trial_batch, scorer=scorer)

    spec = PartitionSpec(TRIAL_AXIS)
    out_specs = BoNDraws(*([spec] * len(BoNDraws._fields)))
    return jax.shard_map(
        body, mesh=mesh, in_specs=(PartitionSpec(), PartitionSpec(), PartitionSpec()), out_specs=out_specs,
        check_vma=False,
    )(key_data, policy, reward)


@validate_kernel_inputs
def sharded_bon_monte_carlo(
    key: jax.Array,
    policy: Any,
    reward: Any,
    n: int,
    num_trials: int,
    *,
    mesh: Mesh | None = None,
    chunk_size: int | None = None,
    trial_batch: int | None = None,
    scorer: Scorer | None = None,
) -> BoNDraws:
    """:func:`bontheory.mc.bon_monte_carlo` with the trial axis sharded over a mesh's devices.

    Identical draws to the single-device kernel for the same arguments (same per-trial keys
    ``fold_in(key, i)``), whatever the number of devices or processes.

    Args:
        key: PRNG key (a typed key from ``jax.random.key``; the same on every process).
        policy, reward, n, num_trials, chunk_size, trial_batch, scorer: as in ``bon_monte_carlo``; the
            policy and reward must be the same on every process (they are replicated).
        mesh: a 1-D mesh with axis ``"trials"`` (default :func:`trial_mesh` over all devices).

    Returns:
        :class:`BoNDraws` of JAX arrays (on the default device) with all ``num_trials`` trials, on every
        process — the same type as :func:`bontheory.mc.bon_monte_carlo` returns.
    """
    chunk, batch = kernel_sizes(n, num_trials, chunk_size, trial_batch)
    reward = as_reward(reward)
    mesh = trial_mesh() if mesh is None else mesh
    if mesh.axis_names != (TRIAL_AXIS,):
        raise ValueError(f"mesh must be 1-D with axis {TRIAL_AXIS!r}, got axes {mesh.axis_names}")
    num_devices = mesh.devices.size
    per_device = -(-num_trials // num_devices)
    key_data = np.asarray(jax.random.key_data(key))
    args = _replicate((key_data, policy, reward), mesh)
    out = _sharded(
        *args, mesh=mesh, n=n, per_device=per_device, chunk_size=chunk, trial_batch=min(batch, per_device),
        scorer=scorer,
    )
    out = to_host(out)
    return BoNDraws(*(jnp.asarray(np.asarray(x)[:num_trials]) for x in out))
