"""The sharded Monte Carlo sweep gives the same numbers on 1 device, 4 devices and 2 processes × 2 devices.

Each configuration runs in a fresh subprocess (XLA_FLAGS / the distributed runtime must be set before JAX
starts); the three subprocesses run concurrently and are compared with the in-process single-device sweep.
The draws must be identical (same per-trial keys ``fold_in(key, i)``), so the comparison is exact.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import bontheory as bt
from bontheory import bon_monte_carlo, bon_sweep

N, TRIALS, CHUNK = 5, 1000, 2  # 1000 trials: not a multiple of 3 devices' worth of padding checks

WORKER = textwrap.dedent(
    """
    import json, os, sys
    mode, out = sys.argv[1], sys.argv[2]
    import jax
    if mode == "multi":
        from bontheory import initialize_distributed
        initialize_distributed(local_device_count=2)  # reads BONTHEORY_COORDINATOR / _NUM_PROCESSES / _PROCESS_ID
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import bontheory as bt
    from bontheory import bon_sweep, sharded_bon_monte_carlo, trial_mesh
    N, TRIALS, CHUNK = {N}, {TRIALS}, {CHUNK}
    policy = bt.random_tabular_policy(jax.random.key(0), 3, 3, order=1, temperature=0.7)
    reward = bt.TokenCountReward(target=0)
    mesh = trial_mesh()
    draws = sharded_bon_monte_carlo(jax.random.key(7), policy, reward, N, TRIALS, mesh=mesh, chunk_size=CHUNK)
    rows = bon_sweep(jax.random.key(9), {{"p": policy}}, {{"count": reward}}, [N], [0, 1], TRIALS,
                     chunk_size=CHUNK, mesh=mesh)
    res = {{"devices": jax.device_count(), "processes": jax.process_count(), "rows": rows,
            "draws": {{k: np.asarray(v).tolist() for k, v in draws._asdict().items()}}}}
    with open(out, "w") as f:
        json.dump(res, f)
    """
).format(N=N, TRIALS=TRIALS, CHUNK=CHUNK)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _has_gloo():
    try:
        from jax._src.lib import xla_client

        return hasattr(xla_client._xla, "make_gloo_tcp_collectives")
    except Exception:  # pragma: no cover
        return False


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mc_dist")
    script = tmp / "worker.py"
    script.write_text(WORKER)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_FLAGS", "BONTHEORY_", "JAX_"))}
    procs = {}
    env4 = dict(base, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    procs["four"] = subprocess.Popen([sys.executable, str(script), "four", str(tmp / "four.json")], env=env4,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if _has_gloo():
        port = _free_port()
        for pid in range(2):
            env = dict(base, BONTHEORY_COORDINATOR=f"127.0.0.1:{port}", BONTHEORY_NUM_PROCESSES="2",
                       BONTHEORY_PROCESS_ID=str(pid))
            procs[f"multi{pid}"] = subprocess.Popen(
                [sys.executable, str(script), "multi", str(tmp / f"multi{pid}.json")], env=env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
    out = {}
    for name, proc in procs.items():
        try:
            log, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for p in procs.values():
                p.kill()
            pytest.fail(f"subprocess {name} timed out")
        assert proc.returncode == 0, f"{name} failed:\n{log.decode()[-4000:]}"
        out[name] = json.loads((tmp / f"{name}.json").read_text())
    return out


@pytest.fixture(scope="module")
def single():
    policy = bt.random_tabular_policy(jax.random.key(0), 3, 3, order=1, temperature=0.7)
    reward = bt.TokenCountReward(target=0)
    draws = bon_monte_carlo(jax.random.key(7), policy, reward, N, TRIALS, chunk_size=CHUNK)
    rows = bon_sweep(jax.random.key(9), {"p": policy}, {"count": reward}, [N], [0, 1], TRIALS, chunk_size=CHUNK)
    return {"rows": rows, "draws": {k: np.asarray(v) for k, v in draws._asdict().items()}}


def _assert_same(res, single):
    for k, v in single["draws"].items():
        got = np.asarray(res["draws"][k])
        assert got.shape == v.shape, k
        if np.issubdtype(v.dtype, np.integer):
            np.testing.assert_array_equal(got, v, err_msg=k)
        else:
            np.testing.assert_allclose(got, v, rtol=1e-12, atol=0, err_msg=k)
    assert len(res["rows"]) == len(single["rows"])
    for a, b in zip(res["rows"], single["rows"]):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(b[key], float):
                np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-15, err_msg=key)
            else:
                assert a[key] == b[key], key


def test_four_devices_same_numbers_as_one(results, single):
    assert results["four"]["devices"] == 4
    _assert_same(results["four"], single)


@pytest.mark.skipif(not _has_gloo(), reason="this jaxlib has no gloo CPU collectives")
def test_two_processes_same_numbers_as_one(results, single):
    for pid in range(2):
        res = results[f"multi{pid}"]
        assert res["processes"] == 2 and res["devices"] == 4
        _assert_same(res, single)
