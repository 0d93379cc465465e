"""Run folders (``bontheory.runs``) and the file primitives below them (``bontheory.storage``)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading

import numpy as np
import pytest

from bontheory import runs, storage
from bontheory.runs import CorruptResultError, open_run


@dataclasses.dataclass(frozen=True)
class Cfg:
    ns: tuple[int, ...] = (1, 2)
    beta: float = 0.5
    seed: int = 0


def test_same_config_same_folder_any_change_new_folder(tmp_path):
    a = open_run("exp", Cfg(), tmp_path)
    assert open_run("exp", Cfg(), tmp_path).root == a.root
    others = {
        open_run("exp", Cfg(seed=1), tmp_path).root,
        open_run("exp", Cfg(beta=0.25), tmp_path).root,
        open_run("exp", Cfg(ns=(1, 2, 4)), tmp_path).root,
        open_run("other", Cfg(), tmp_path).root,
    }
    assert a.root not in others and len(others) == 4


def test_config_json_is_kept_and_a_mismatching_one_is_refused(tmp_path):
    run = open_run("exp", Cfg(), tmp_path)
    first = (run.root / "config.json").read_text()
    open_run("exp", Cfg(), tmp_path)
    assert (run.root / "config.json").read_text() == first  # the creator's provenance is kept
    data = json.loads(first)
    data["config"]["beta"] = 9.0
    (run.root / "config.json").write_text(json.dumps(data))
    with pytest.raises(CorruptResultError, match="different experiment, config or precision"):
        open_run("exp", Cfg(), tmp_path)
    (run.root / "config.json").write_text(first[: len(first) // 2])  # damaged: refused, not overwritten
    with pytest.raises(CorruptResultError, match="not valid JSON"):
        open_run("exp", Cfg(), tmp_path)
    assert open_run("exp", Cfg(), tmp_path, fresh=True).root == run.root  # starting over rewrites it
    assert json.loads((run.root / "config.json").read_text())["config"]["beta"] == 0.5


def test_precision_is_part_of_the_identity(tmp_path):
    f32, f64 = open_run("exp", Cfg(), tmp_path, x64=False), open_run("exp", Cfg(), tmp_path, x64=True)
    assert f32.root != f64.root and (f32.x64, f64.x64) == (False, True)
    assert [json.loads((r.root / "config.json").read_text())["x64"] for r in (f32, f64)] == [False, True]
    assert open_run("exp", Cfg(), tmp_path, x64=True).root == f64.root


def test_a_stop_request_stops_before_the_next_cell(tmp_path):
    stop = threading.Event()
    run = open_run("exp", Cfg(), tmp_path, stop=stop)
    assert run.cell("a", lambda: 1) == 1
    stop.set()
    with pytest.raises(KeyboardInterrupt, match="before cell 'b'"):
        run.cell("b", lambda: pytest.fail("computed a cell after the stop"))
    assert run.has_cell("a") and not run.has_cell("b")


def test_cells_round_trip_arrays_and_nan_identically_whether_computed_or_read(tmp_path):
    run = open_run("exp", Cfg(), tmp_path)
    value = {"x": np.arange(3.0), "nan": float("nan"), "inf": np.float32(np.inf), "t": (1, 2)}
    computed = run.cell("c", lambda: value)
    read = open_run("exp", Cfg(), tmp_path).cell("c", lambda: pytest.fail("recomputed a stored cell"))
    assert json.dumps(computed, sort_keys=True) == json.dumps(read, sort_keys=True)
    assert read["x"] == [0.0, 1.0, 2.0] and math.isnan(read["nan"]) and read["inf"] == math.inf
    assert read["t"] == [1, 2]


def test_distinct_cell_names_never_share_a_file(tmp_path):
    run = open_run("exp", Cfg(), tmp_path)
    names = ["a/b", "a_b", "a b", "a:b", "." * 3, "x" * 400, "x" * 401]
    paths = {run.cell_path(n) for n in names}
    assert len(paths) == len(names)
    for i, n in enumerate(names):
        run.cell(n, lambda i=i: i)
    assert [run.cell(n, lambda: pytest.fail("recomputed")) for n in names] == list(range(len(names)))
    assert all(p.parent == run.cells_dir for p in paths)


@pytest.mark.parametrize("damage", ["truncate", "empty", "edit", "garbage", "no_checksum", "other_cell"])
def test_damaged_cell_is_detected_and_recomputed(tmp_path, damage, capsys):
    run = open_run("exp", Cfg(), tmp_path)
    run.cell("a", lambda: [1.0, 2.0])
    run.cell("b", lambda: [3.0])
    path = run.cell_path("a")
    text = path.read_text()
    if damage == "truncate":
        path.write_text(text[:-10])
    elif damage == "empty":
        path.write_text("")
    elif damage == "edit":
        path.write_text(text.replace("2.0", "2.5"))
    elif damage == "garbage":
        path.write_bytes(b"\xff\xfe\x00garbage")
    elif damage == "no_checksum":
        path.write_text(json.dumps({"cell": "a", "value": [1.0, 2.0]}))
    else:
        path.write_text(run.cell_path("b").read_text())
    assert not run.has_cell("a")
    calls = []
    assert run.cell("a", lambda: calls.append(1) or [1.0, 2.0]) == [1.0, 2.0]
    assert calls == [1] and run.has_cell("a")
    assert "recomputing cell 'a'" in capsys.readouterr().err
    assert run.stats["recomputed_corrupt"] == 1


def test_interrupted_compute_leaves_no_cell_and_no_temp_file(tmp_path):
    run = open_run("exp", Cfg(), tmp_path)

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.cell("a", interrupted)
    assert not run.has_cell("a")
    assert not any(p.name.endswith(".tmp") for p in run.root.rglob("*"))


def test_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    storage.atomic_write_json(path, {"v": 1}, checksum=True)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        storage.atomic_write_json(path, {"v": 2}, checksum=True)
    monkeypatch.undo()
    assert storage.read_checked_json(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_metrics_tables_become_csv_and_metrics_are_checksummed(tmp_path):
    run = open_run("exp", Cfg(), tmp_path)
    metrics = {
        "rows": [{"n": 1, "kl": 0.0}, {"n": 2, "kl": 0.19, "note": "x"}],
        "curve": [0.1, 0.2],
        "nested": [{"a": [1, 2]}],  # not flat: no CSV
    }
    run.save_metrics(metrics)
    assert (run.root / "rows.csv").read_text() == "n,kl,note\n1,0.0,\n2,0.19,x\n"
    assert not (run.root / "curve.csv").exists() and not (run.root / "nested.csv").exists()
    assert runs.load_metrics(run.root) == json.loads(json.dumps(metrics))
    (run.root / "metrics.json").write_text((run.root / "metrics.json").read_text().replace("0.19", "0.2"))
    with pytest.raises(CorruptResultError):
        runs.load_metrics(run.root)
    with pytest.raises(TypeError, match="dict of metrics"):
        run.save_metrics([1, 2])


def test_to_jsonable_rejects_objects_with_no_json_form():
    with pytest.raises(TypeError, match="cannot store"):
        storage.to_jsonable({"f": object()})


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_written_files_get_the_permissions_open_would_give(tmp_path, umask):
    old = os.umask(umask)
    try:
        for path in (storage.atomic_write_bytes(tmp_path / "b.bin", b"x"),
                     storage.atomic_write_json(tmp_path / "c.json", {"v": 1}, checksum=True)):
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    finally:
        os.umask(old)


def test_find_runs_and_latest_run(tmp_path):
    assert runs.find_runs(tmp_path / "missing") == []
    a = open_run("exp", Cfg(seed=0), tmp_path)
    b = open_run("exp", Cfg(seed=1), tmp_path)
    open_run("exp_long", Cfg(), tmp_path)  # a name that starts with the other's must not be confused
    (tmp_path / "not-a-run").mkdir()
    assert runs.latest_run(tmp_path, "exp") is None  # no finished run yet
    b.save_metrics({"x": 1})
    a.save_metrics({"x": 0})
    os.utime(b.root / "metrics.json", ns=(2 * 10**18, 2 * 10**18))
    assert runs.latest_run(tmp_path, "exp") == b.root
    assert set(runs.find_runs(tmp_path, "exp")) == {a.root, b.root}
    assert len(runs.find_runs(tmp_path)) == 3


def test_run_json_records_sessions_and_status(tmp_path):
    run = open_run("exp", Cfg(), tmp_path)
    run.mark_started()
    run.cell("a", lambda: 1)
    run.mark_finished("interrupted")
    run2 = open_run("exp", Cfg(), tmp_path)
    run2.mark_started()
    run2.cell("a", lambda: 2)
    run2.mark_finished("complete")
    info = json.loads((run.root / "run.json").read_text())
    assert info["status"] == "complete" and len(info["sessions"]) == 2
    assert info["sessions"][0]["cells_computed"] == 1 and info["sessions"][1]["cells_reused"] == 1
    assert "jax_version" in info["sessions"][1]["provenance"]
    assert runs.read_run_info(run.root)["status"] == "complete"
