"""The ``bontheory`` command line, end to end on a tiny experiment in a temporary folder.

The experiment (``tests/_tiny_experiment.py``) is registered by monkeypatching ``experiments.EXPERIMENTS``,
so these tests do not depend on the real experiments.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bontheory import cli, experiments
from bontheory.runs import find_runs, load_metrics

TINY_SOURCE = Path(__file__).with_name("_tiny_experiment.py")


def _load_fresh(name: str = "tiny"):
    """The tiny experiment under a new module name (fresh counters)."""
    spec = importlib.util.spec_from_file_location(f"_tiny_{uuid.uuid4().hex}", TINY_SOURCE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses and typing.get_type_hints look the module up
    spec.loader.exec_module(mod)
    mod.NAME = name
    return mod


@pytest.fixture
def tiny(monkeypatch):
    mod = _load_fresh()
    monkeypatch.setattr(experiments, "EXPERIMENTS", ("tiny",))
    monkeypatch.setitem(sys.modules, "bontheory.experiments.tiny", mod)
    monkeypatch.setenv("BONTHEORY_PROGRESS", "0")
    return mod


def _only_run(out: Path) -> Path:
    runs = find_runs(out, "tiny")
    assert len(runs) == 1, runs
    return runs[0]


def test_list_shows_each_experiment_with_its_summary(tiny, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and tiny.SUMMARY in out
    assert cli.main(["list", "tiny"]) == 0
    out = capsys.readouterr().out
    for key in ("ns", "scale", "inner.width", "seed"):
        assert key in out


def test_run_end_to_end_writes_config_metrics_csv_and_figures(tiny, tmp_path, capsys):
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 0
    root = _only_run(tmp_path)
    config = json.loads((root / "config.json").read_text())
    assert config["experiment"] == "tiny" and config["config"]["ns"] == [1, 2, 3, 4]
    prov = config["provenance"]
    for key in ("jax_version", "bontheory_version", "devices", "x64", "numpy_version"):
        assert key in prov
    assert json.loads((root / "run.json").read_text())["status"] == "complete"
    metrics = load_metrics(root)
    assert [r["n"] for r in metrics["table"]] == [1, 2, 3, 4]
    assert math.isnan(metrics["nan"])
    assert (root / "table.csv").read_text().splitlines()[0] == "n,value,first_draw"
    assert len((root / "summary.csv").read_text().splitlines()) == 5
    assert (root / "values.png").stat().st_size > 0 and (root / "values.pdf").stat().st_size > 0
    out = capsys.readouterr().out
    assert "value" in out and str(root) in out  # the summary table and the folder are printed
    assert tiny.CALLS == {"run": 1, "compute": 4, "plot": 1}


def _git_head() -> str | None:
    repo = Path(cli.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return None
    return head.stdout.strip() if head.returncode == 0 else None


def test_provenance_records_the_git_commit_and_a_resume_under_another_commit_warns(tiny, tmp_path, capsys):
    head = _git_head()
    if head is None:
        pytest.skip("bontheory does not run from a git checkout here")
    tiny.INTERRUPT_AFTER = 2
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 130
    root = _only_run(tmp_path)
    config = json.loads((root / "config.json").read_text())
    assert config["provenance"]["git_commit"] == head and isinstance(config["provenance"]["git_dirty"], bool)
    assert json.loads((root / "run.json").read_text())["sessions"][0]["provenance"]["git_commit"] == head
    capsys.readouterr()

    config["provenance"]["git_commit"] = "0123456789ab" + "0" * 28  # as if created by another commit
    (root / "config.json").write_text(json.dumps(config))
    tiny.INTERRUPT_AFTER = None
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "created by commit 0123456789ab" in err and f"this is commit {head[:12]}" in err
    assert "2 stored cells are reused" in err and "--fresh" in err
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path), "--fresh"]) == 0  # starts over:
    assert json.loads((root / "config.json").read_text())["provenance"]["git_commit"] == head  # a new creator
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 0
    assert "created by commit" not in capsys.readouterr().err


def test_full_and_quick_and_seed_get_separate_folders(tiny, tmp_path):
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 0
    assert cli.main(["run", "tiny", "--quick", "--seed", "3", "--out", str(tmp_path)]) == 0
    assert cli.main(["run", "tiny", "--full", "--out", str(tmp_path)]) == 0
    runs = find_runs(tmp_path, "tiny")
    assert len(runs) == 3
    seeds = sorted(json.loads((r / "config.json").read_text())["config"]["seed"] for r in runs)
    assert seeds == [0, 0, 3]


def test_set_overrides_fields_with_types(tiny, tmp_path):
    args = ["run", "tiny", "--quick", "--out", str(tmp_path), "--set", "ns=(2,5)", "--set", "scale=2.5",
            "--set", "flag=yes", "--set", "limit=none", "--set", "pair=0.5,1e3", "--set", "inner.width=7",
            "--set", "mode=max"]
    assert cli.main(args) == 0
    config = json.loads((_only_run(tmp_path) / "config.json").read_text())["config"]
    assert config == {"ns": [2, 5], "scale": 2.5, "mode": "max", "flag": True, "limit": None,
                      "pair": [0.5, 1000.0], "inner": {"width": 7}, "sleep": 0.0, "seed": 0}
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path), "--set", "limit=1e3"]) == 0
    limits = sorted(str(json.loads((r / "config.json").read_text())["config"]["limit"]) for r in find_runs(tmp_path))
    assert limits == ["1000", "None"]


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("nope=1", "unknown config key 'nope'"),
        ("scale=abc", "bad value for scale"),
        ("ns=1,x", "bad value for ns"),
        ("ns=1.5", "bad value for ns"),
        ("flag=maybe", "bad value for flag"),
        ("pair=1,2,3", "bad value for pair"),
        ("mode=median", "bad value for mode"),
        ("inner.depth=2", "unknown config key 'inner.depth'"),
        ("scale=-1", "the config rejects scale=-1"),
        ("scale", "expects key=value"),
    ],
)
def test_set_rejects_unknown_keys_and_bad_values(tiny, tmp_path, capsys, assignment, message):
    rc = cli.main(["run", "tiny", "--quick", "--out", str(tmp_path), "--set", assignment])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    if "unknown" in message:  # the error lists the valid keys with their types
        assert "valid keys" in err and "scale: float" in err and "inner.width: int" in err
    assert tiny.CALLS["run"] == 0 and not find_runs(tmp_path)


def test_unknown_experiment_is_a_clear_error(tiny, capsys):
    assert cli.main(["run", "nonexistent", "--quick"]) == 2
    assert "unknown experiment 'nonexistent'" in capsys.readouterr().err


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(tiny, tmp_path, capsys):
    interrupted, clean = tmp_path / "a", tmp_path / "b"
    tiny.INTERRUPT_AFTER = 2  # Ctrl-C after two finished cells
    assert cli.main(["run", "tiny", "--out", str(interrupted)]) == 130
    assert "run the same command again" in capsys.readouterr().err
    root = _only_run(interrupted)
    assert len(list((root / "cells").glob("*.json"))) == 2
    assert not (root / "metrics.json").exists()
    assert json.loads((root / "run.json").read_text())["status"] == "interrupted"

    tiny.INTERRUPT_AFTER = None
    assert cli.main(["run", "tiny", "--out", str(interrupted)]) == 0
    assert tiny.CALLS["compute"] == 5  # 2 before the interruption + the 3 missing ones; none recomputed
    info = json.loads((root / "run.json").read_text())
    assert info["status"] == "complete" and len(info["sessions"]) == 2
    assert info["sessions"][-1]["cells_reused"] == 2 and info["sessions"][-1]["cells_computed"] == 3

    assert cli.main(["run", "tiny", "--out", str(clean)]) == 0
    resumed, uninterrupted = load_metrics(root), load_metrics(_only_run(clean))
    assert json.dumps(resumed, sort_keys=True) == json.dumps(uninterrupted, sort_keys=True)


def test_corrupt_or_truncated_files_are_detected_and_recomputed(tiny, tmp_path, capsys):
    assert cli.main(["run", "tiny", "--out", str(tmp_path)]) == 0
    root = _only_run(tmp_path)
    reference = load_metrics(root)
    cells = sorted((root / "cells").glob("*.json"))
    text = cells[0].read_text()
    cells[0].write_text(text[: len(text) // 2])  # truncated
    data = json.loads(cells[1].read_text())
    data["payload"]["value"]["value"] += 1.0  # valid JSON, wrong content
    cells[1].write_text(json.dumps(data))
    shutil.copy(cells[3], cells[2])  # another cell's (valid) file in this cell's place
    (root / "metrics.json").write_text('{"sha256": "0", "payload": {"tab')  # partial metrics

    # plot refuses the corrupt metrics instead of drawing them
    assert cli.main(["plot", str(root)]) == 2
    assert "run the experiment again" in capsys.readouterr().err

    before = tiny.CALLS["compute"]
    assert cli.main(["run", "tiny", "--out", str(tmp_path)]) == 0
    assert tiny.CALLS["compute"] - before == 3
    assert "recomputing cell" in capsys.readouterr().err
    assert json.dumps(load_metrics(root), sort_keys=True) == json.dumps(reference, sort_keys=True)


def test_fresh_recomputes_everything(tiny, tmp_path):
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 0
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path), "--fresh"]) == 0
    assert tiny.CALLS["compute"] == 8


def test_plot_regenerates_figures_from_saved_metrics_alone(tiny, tmp_path, monkeypatch, capsys):
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 0
    root = _only_run(tmp_path)
    shutil.rmtree(root / "cells")  # nothing to recompute from
    for f in list(root.glob("*.png")) + list(root.glob("*.pdf")):
        f.unlink()

    def forbidden(*args, **kwargs):
        raise AssertionError("plot must not recompute")

    monkeypatch.setattr(tiny, "run", forbidden)
    assert cli.main(["plot", "tiny", "--out", str(tmp_path)]) == 0
    assert (root / "values.png").exists() and (root / "values.pdf").exists()
    (root / "values.png").unlink()
    assert cli.main(["plot", str(root)]) == 0  # by run folder
    assert (root / "values.png").exists()
    assert tiny.CALLS["plot"] == 3
    assert "values.pdf" in capsys.readouterr().out


def test_plot_picks_the_newest_run(tiny, tmp_path, capsys):
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 0
    time.sleep(0.02)
    assert cli.main(["run", "tiny", "--quick", "--seed", "1", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert cli.main(["plot", "tiny", "--out", str(tmp_path)]) == 0
    newest = find_runs(tmp_path, "tiny")[-1]
    assert json.loads((newest / "config.json").read_text())["config"]["seed"] == 1
    assert str(newest) in capsys.readouterr().out
    assert cli.main(["plot", "tiny", "--out", str(tmp_path / "empty")]) == 2


def test_reproduce_continues_past_a_failure_and_exits_nonzero(tiny, tmp_path, monkeypatch, capsys):
    broken = _load_fresh("broken")

    def fail(config, run):
        raise RuntimeError("boom")

    broken.run = fail
    monkeypatch.setitem(sys.modules, "bontheory.experiments.broken", broken)
    monkeypatch.setattr(experiments, "EXPERIMENTS", ("broken", "tiny"))
    assert cli.main(["reproduce", "--quick", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "broken: FAILED (RuntimeError: boom)" in captured.err
    assert "FAILED" in captured.out and "ok" in captured.out
    root = _only_run(tmp_path)
    assert (root / "values.png").exists() and (root / "values.pdf").exists()
    assert json.loads((find_runs(tmp_path, "broken")[0] / "run.json").read_text())["status"] == "failed"
    report = json.loads((tmp_path / "reproduce.json").read_text())
    assert [e["status"] for e in report["experiments"]] == ["FAILED", "ok"]

    monkeypatch.setattr(experiments, "EXPERIMENTS", ("tiny",))
    assert cli.main(["reproduce", "--quick", "--out", str(tmp_path)]) == 0


def test_convert_value_covers_the_annotations():
    from typing import Literal, Optional

    from bontheory.configs import convert_value

    assert convert_value("1_000", int) == 1000 and convert_value("2e6", int) == 2_000_000
    assert convert_value("3", float) == 3.0 and isinstance(convert_value("3", float), float)
    assert convert_value("()", tuple[int, ...]) == ()
    assert convert_value("[1, 2]", tuple[int, ...]) == (1, 2)
    assert convert_value("7,", tuple[int, ...]) == (7,)
    assert convert_value("a,b", tuple[str, ...]) == ("a", "b")
    assert convert_value("None", Optional[float]) is None  # noqa: UP045 - typing.Union, not types.UnionType
    assert convert_value("0.5", float | None) == 0.5
    assert convert_value("2", Literal[1, 2]) == 2
    for text, tp in [("1.5", int), ("x", float), ("2", bool), ("1,2", tuple[int, int, int]), ("inf", int)]:
        with pytest.raises(ValueError):
            convert_value(text, tp)


def _script() -> str:
    script = Path(sys.executable).with_name("bontheory")
    if not script.exists():
        found = shutil.which("bontheory")
        if found is None:
            pytest.skip("the bontheory console script is not installed")
        script = Path(found)
    return str(script)


def _external_package(tmp_path: Path) -> tuple[dict, str]:
    """The tiny experiment as an importable package of the user's own: ``<pkg>.tiny``."""
    pkg = f"bt_user_{uuid.uuid4().hex[:8]}"
    (tmp_path / "src" / pkg).mkdir(parents=True)
    (tmp_path / "src" / pkg / "__init__.py").write_text("")
    shutil.copy(TINY_SOURCE, tmp_path / "src" / pkg / "tiny.py")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "src"), BONTHEORY_PROGRESS="0", JAX_PLATFORMS="cpu")
    return env, f"{pkg}.tiny"


def test_installed_script_runs_a_user_experiment_and_resumes_after_kill(tmp_path):
    env, module = _external_package(tmp_path)
    out = tmp_path / "results"
    cmd = [_script(), "run", module, "--quick", "--set", "sleep=0.25", "--set", "ns=1,2,3,4,5,6,7,8", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        roots = find_runs(out, "tiny")
        if roots and len(list((roots[0] / "cells").glob("*.json"))) >= 2:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"the run made no progress: {proc.communicate()}")
    proc.send_signal(signal.SIGTERM)  # `kill`
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    root = find_runs(out, "tiny")[0]
    assert f"interrupted: {root} is marked interrupted" in err and "run the same command again" in err
    assert "Traceback" not in err
    stored = len(list((root / "cells").glob("*.json")))
    assert 2 <= stored < 8
    assert json.loads((root / "run.json").read_text())["status"] == "interrupted"

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info = json.loads((root / "run.json").read_text())
    assert info["status"] == "complete" and info["sessions"][-1]["cells_reused"] == stored
    assert [r["n"] for r in load_metrics(root)["table"]] == list(range(1, 9))
    assert (root / "values.pdf").exists()
    assert "tiny: done" in done.stdout


@pytest.mark.parametrize("how", ["second signal", "grace over"])
def test_a_long_cell_is_abandoned_at_a_second_signal_or_after_the_grace_period(tmp_path, how):
    env, module = _external_package(tmp_path)
    env["BONTHEORY_STOP_GRACE"] = "0.5" if how == "grace over" else "600"
    out = tmp_path / "results"
    cmd = [_script(), "run", module, "--quick", "--set", "sleep=30", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (find_runs(out, "tiny") and (find_runs(out, "tiny")[0] / "run.json").exists()):
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run did not start: {proc.communicate()}")
        time.sleep(0.05)
    time.sleep(0.5)  # inside the first 30-second cell
    proc.send_signal(signal.SIGTERM)
    if how == "second signal":
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - sent < 20  # not the 30 seconds the cell would take
    root = find_runs(out, "tiny")[0]
    assert f"interrupted: {root} is marked interrupted" in err and "Traceback" not in err
    assert json.loads((root / "run.json").read_text())["status"] == "interrupted"
    assert not list((root / "cells").glob("*.json"))  # the abandoned cell was never stored


def test_a_bad_stop_grace_is_a_mistake(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BONTHEORY_STOP_GRACE", "soon")
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 2
    _one_line_error(capsys, "BONTHEORY_STOP_GRACE must be a number of seconds")


def test_a_failing_plot_keeps_the_metrics_and_says_how_to_replot(tiny, tmp_path, monkeypatch, capsys):
    def broken_plot(metrics, out_dir):
        raise RuntimeError("no ink")

    monkeypatch.setattr(tiny, "plot", broken_plot)
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 1
    root = _only_run(tmp_path)
    assert "bontheory plot" in capsys.readouterr().err
    assert load_metrics(root)["ns"] == [1, 2, 3, 4]
    assert json.loads((root / "run.json").read_text())["status"] == "complete"


# ----------------------------------------------------------------------------------------------------
# Signals: stop between cells, exit 130, name the run folder


def test_sigterm_stops_the_run_after_the_current_cell(tiny, tmp_path, capsys):
    tiny.SIGNAL_AFTER = 1  # `kill` arrives while the second cell computes
    assert cli.main(["run", "tiny", "--out", str(tmp_path)]) == 130
    root = _only_run(tmp_path)
    err = capsys.readouterr().err
    assert f"interrupted: {root} is marked interrupted" in err and "run the same command again" in err
    assert tiny.CALLS["compute"] == 2  # the cell being computed finished; no further cell started
    assert len(list((root / "cells").glob("*.json"))) == 2
    assert json.loads((root / "run.json").read_text())["status"] == "interrupted"
    tiny.SIGNAL_AFTER = None
    assert cli.main(["run", "tiny", "--out", str(tmp_path)]) == 0
    assert tiny.CALLS["compute"] == 5


def test_signal_handlers_are_restored_after_a_run(tiny, tmp_path):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


# ----------------------------------------------------------------------------------------------------
# Precision is part of a run's identity


@pytest.fixture
def float32():
    import jax

    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", previous)


def test_x64_gets_its_own_run_folder(tiny, tmp_path, float32):
    import jax

    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 0
    assert cli.main(["run", "tiny", "--quick", "--x64", "--out", str(tmp_path)]) == 0
    assert jax.config.read("jax_enable_x64") is False  # the switch is restored after the run
    runs = find_runs(tmp_path, "tiny")
    assert len(runs) == 2 and tiny.CALLS["compute"] == 8  # nothing reused across precisions
    configs = [json.loads((r / "config.json").read_text()) for r in runs]
    assert sorted(c["x64"] for c in configs) == [False, True]
    assert all(c["provenance"]["x64"] == c["x64"] for c in configs)
    assert cli.main(["run", "tiny", "--quick", "--x64", "--out", str(tmp_path)]) == 0  # resumes its own
    assert tiny.CALLS["compute"] == 8


# ----------------------------------------------------------------------------------------------------
# Every mistake in the command: exit code 2 and one line naming it, no traceback


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_out_that_is_a_file_or_under_a_file(tiny, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert cli.main(["run", "tiny", "--quick", "--out", str(afile)]) == 2
    _one_line_error(capsys, f"--out {afile} is a file")
    assert cli.main(["reproduce", "--quick", "--out", str(afile / "sub")]) == 2
    _one_line_error(capsys, f"--out {afile / 'sub'} is not a writable folder")
    assert tiny.CALLS["run"] == 0


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_out_that_is_not_writable(tiny, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert cli.main(["run", "tiny", "--quick", "--out", str(locked)]) == 2
        _one_line_error(capsys, f"--out {locked} is not a writable folder")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("damage", ["garbage", "not_a_config", "edited_value", "edited_precision"])
def test_an_edited_or_corrupt_config_json_is_refused(tiny, tmp_path, capsys, damage):
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 0
    root = _only_run(tmp_path)
    path = root / "config.json"
    data = json.loads(path.read_text())
    if damage == "garbage":
        path.write_text('{"experiment": "tiny", "conf')
    elif damage == "not_a_config":
        path.write_text("[1, 2]")
    elif damage == "edited_value":
        data["config"]["scale"] = 3.0
        path.write_text(json.dumps(data))
    else:
        data["x64"] = not data["x64"]
        path.write_text(json.dumps(data))
    capsys.readouterr()
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 2
    _one_line_error(capsys, str(path), "--fresh")
    assert tiny.CALLS["run"] == 1
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path), "--fresh"]) == 0  # starts it over
    assert json.loads(path.read_text())["config"]["scale"] == 1.0


def test_plot_of_a_folder_with_a_corrupt_config_json(tiny, tmp_path, capsys):
    assert cli.main(["run", "tiny", "--quick", "--out", str(tmp_path)]) == 0
    root = _only_run(tmp_path)
    (root / "config.json").write_text("{")
    capsys.readouterr()
    assert cli.main(["plot", str(root)]) == 2
    _one_line_error(capsys, "not a bontheory run folder")


@pytest.mark.parametrize("argv, needle", [
    (["run", "tiny", "--quick", "--set", "scale=-1"], "the config rejects scale=-1: scale must be >= 0"),
    (["run", "tiny", "--quick", "--set", "ns=1,x"], "bad value for ns"),
    (["run", "tiny", "--bogus"], "unrecognized arguments: --bogus"),
    (["run", "tiny", "--seed", "x"], "argument --seed: invalid int value"),
    (["run"], "the following arguments are required: name"),
    (["run", "nonexistent"], "unknown experiment 'nonexistent'"),
    (["run", "no_such_pkg_xyz.mod"], "experiment module 'no_such_pkg_xyz.mod' not found"),
    (["reproduce", "--only", "tiny", "nonexistent"], "unknown experiment 'nonexistent'"),
    (["plot", "tiny"], "no finished run of tiny"),
])
def test_mistakes_in_the_command(tiny, tmp_path, capsys, argv, needle):
    assert cli.main([*argv, "--out", str(tmp_path)] if argv != ["run"] else argv) == 2
    _one_line_error(capsys, needle)
    assert tiny.CALLS["run"] == 0


def test_a_config_type_error_is_a_mistake_too(tiny, tmp_path, capsys, monkeypatch):
    original = tiny.Config.__post_init__

    def strict(self):
        original(self)
        if self.seed > 10:
            raise TypeError(f"seed must be small, got {self.seed}")

    monkeypatch.setattr(tiny.Config, "__post_init__", strict)
    assert cli.main(["run", "tiny", "--quick", "--seed", "11", "--out", str(tmp_path)]) == 2
    _one_line_error(capsys, "seed must be small, got 11")
