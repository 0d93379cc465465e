"""A seed names one random object whatever the precision.

The random constructors (``random_tabular_policy``, ``random_token_score_reward``,
``init_transformer_policy``) and the hashed
per-sequence draws behind the hash and proxy rewards draw in float32, then cast: the same key gives the
same policy / reward with x64 off and on. The suite runs with x64 on (conftest), so each precision is
built in its own subprocess (``JAX_ENABLE_X64=0`` / ``1``) and the arrays are compared here: the float64
values cast to float32 equal the float32 ones exactly where no arithmetic follows the draw, and to a few
float32 ulps where the float64 run normalises in float64 (a different draw would differ by O(1)).
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

_BUILD = textwrap.dedent(
    """
    import sys
    import jax, jax.numpy as jnp, numpy as np
    import bontheory as bt

    out = {}
    seqs = jnp.asarray(np.indices((3, 3, 3)).reshape(3, -1).T, jnp.int32)  # all 27 sequences, V=3, L=3
    kinds = (("gaussian", {}), ("gaussian", {"temperature": 0.3}), ("dirichlet", {"concentration": 0.5}),
             ("zipf", {"zipf_exponent": 1.5}))
    for seed in (0, 1):
        key = jax.random.key(seed)
        for order in (0, 1, 2):
            p = bt.random_tabular_policy(key, 4, 3, order=order)
            out[f"logits/{seed}/{order}/gaussian"] = np.asarray(p.params["logits"])
            out[f"entropy/{seed}/{order}"] = np.asarray(bt.sequence_entropy(p))
        for kind, extra in kinds[1:]:  # the other kinds at order 1
            p = bt.random_tabular_policy(key, 4, 3, order=1, kind=kind, **extra)
            out[f"logits/{seed}/1/{kind}/{sorted(extra.items())}"] = np.asarray(p.params["logits"])
        out[f"scores/{seed}"] = np.asarray(bt.random_token_score_reward(key, 5, 3, scale=2.0).scores)
        for dist in ("normal", "uniform", "cauchy", "student_t"):
            out[f"hashed/{seed}/{dist}"] = np.asarray(bt.hashed_draws(key, seqs, dist, 0.5))
    leaves = jax.tree.leaves(bt.init_transformer_policy(jax.random.key(3), 4, 3, d_model=8).params)
    out["transformer"] = np.concatenate([np.ravel(np.asarray(x)) for x in leaves])  # float32 in both precisions
    np.savez(sys.argv[1], **out)
    """
)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """``(x32, x64)``: the arrays built with x64 off and on, the two subprocesses running side by side."""
    d = tmp_path_factory.mktemp("seed_precision")
    runs = []
    for x64 in (False, True):
        env = dict(os.environ, JAX_ENABLE_X64="1" if x64 else "0", JAX_PLATFORMS="cpu")
        path = d / f"x{64 if x64 else 32}.npz"
        cmd = [sys.executable, "-c", _BUILD, str(path)]
        runs.append((path, subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    out = []
    for path, proc in runs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        with np.load(path) as data:
            out.append(dict(data))
    return tuple(out)


def test_same_key_same_objects_with_and_without_x64(both):
    x32, x64 = both
    assert x32.keys() == x64.keys() and len(x32) == 2 * (3 + 3 + 3 + 1 + 4) + 1
    assert x32["transformer"].dtype == x64["transformer"].dtype == np.float32
    np.testing.assert_array_equal(x64["transformer"], x32["transformer"])
    eps = float(np.finfo(np.float32).eps)
    for name in set(x32) - {"transformer"}:
        a, b = x32[name], x64[name]
        assert a.dtype == np.float32 and b.dtype == np.float64, name  # each run really used its precision
        assert a.shape == b.shape, name
        assert np.all(np.isfinite(a)) and np.all(np.isfinite(b)), name
        b32 = b.astype(np.float32)
        if name.startswith("scores/") or name.split("/")[-1] in ("normal", "uniform", "cauchy"):
            # the draw itself, cast (times scale 2, exact): bit-equal after the cast back to float32
            np.testing.assert_array_equal(b32, a, err_msg=name)
        elif name.endswith("student_t"):  # n · exp(½(log(df/2) − log g)) evaluated in each precision
            np.testing.assert_allclose(a, b, rtol=16 * eps, atol=0, err_msg=name)
        else:  # log-softmax / entropy evaluated in each precision: a few float32 ulps of the largest entry
            tol = 16 * eps * max(1.0, float(np.max(np.abs(b))))
            np.testing.assert_allclose(a, b, rtol=0, atol=tol, err_msg=name)


def test_distinct_keys_give_distinct_objects(both):
    # the comparison above is not vacuous: another key changes every array by far more than its tolerance
    x32, _ = both
    assert np.max(np.abs(x32["logits/0/1/gaussian"] - x32["logits/1/1/gaussian"])) > 0.1
    assert np.max(np.abs(x32["scores/0"] - x32["scores/1"])) > 0.1
    assert np.max(np.abs(x32["hashed/0/normal"] - x32["hashed/1/normal"])) > 0.1
