"""The README's Python examples run as written (each ```python block, in order, in a fresh namespace)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_readme_has_python_examples():
    assert len(_python_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    monkeypatch.setenv("BONTHEORY_PROGRESS", "0")
    code = _python_blocks()[index]
    module = types.ModuleType(f"readme_block_{index}")  # a real module: dataclasses look theirs up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, f"README.md python block {index}", "exec"), module.__dict__)


def test_readme_experiment_example_runs_through_the_cli(tmp_path, monkeypatch):
    """The 'Adding an experiment' example is a working experiment module: run it, resume it, re-plot it."""
    from bontheory import cli
    from bontheory.runs import find_runs, load_metrics

    blocks = [b for b in _python_blocks() if "def run(config, run)" in b]
    assert len(blocks) == 1
    pkg = tmp_path / "readme_exps"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "kl_vs_folk.py").write_text(blocks[0])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("BONTHEORY_PROGRESS", "0")
    out = tmp_path / "results"
    assert cli.main(["run", "readme_exps.kl_vs_folk", "--quick", "--out", str(out)]) == 0
    (root,) = find_runs(out)
    metrics = load_metrics(root)
    bound = dict(zip(sorted({row["n"] for row in metrics["rows"]}), metrics["bound"]))
    assert all(row["kl"] <= bound[row["n"]] + 1e-6 for row in metrics["rows"])
    assert (root / "rows.csv").exists() and (root / "kl_vs_n.pdf").exists()
    (root / "kl_vs_n.pdf").unlink()
    assert cli.main(["plot", str(root)]) == 0 and (root / "kl_vs_n.pdf").exists()
