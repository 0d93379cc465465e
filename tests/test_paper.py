"""``paper/build.py``: figures and numbers are collected from the newest runs, and a missing one fails loudly.

LaTeX is not run here (``--no-compile``); ``make paper`` compiles.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import uuid
from pathlib import Path

import pytest

from bontheory import cli, experiments

REPO = Path(__file__).resolve().parent.parent
TINY_SOURCE = Path(__file__).with_name("_tiny_experiment.py")


def _load_build(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location(f"_paper_build_{uuid.uuid4().hex}", REPO / "paper" / "build.py")
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build
    spec.loader.exec_module(build)
    monkeypatch.setattr(build, "FIGURES", tmp_path / "figures")
    monkeypatch.setattr(build, "GENERATED", tmp_path / "generated")
    return build


def _fake_experiment(name: str):
    spec = importlib.util.spec_from_file_location(f"_tiny_{uuid.uuid4().hex}", TINY_SOURCE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    mod.NAME = name

    def plot(metrics, out_dir):  # a stand-in figure: the build only copies files
        path = Path(out_dir) / "curve.pdf"
        path.write_bytes(b"%PDF-1.4 stand-in")
        return [path]

    mod.plot = plot
    # the stand-ins have none of the real metrics: each quotes numbers it does have
    word = "".join(w.capitalize() for w in name.split("_"))
    mod.paper_numbers = lambda metrics: {f"standIn{word}LastN": (metrics["ns"][-1], 0),
                                         f"standIn{word}Mean": (metrics["table"][0]["value"], 3),
                                         f"standIn{word}Name": ("tiny_mean", 0)}
    return mod


@pytest.fixture
def registry(monkeypatch):
    build_tex = (REPO / "paper" / "main.tex").read_text()
    names = re.findall(r"^\\experimentfigures\{([^}]+)\}", build_tex, flags=re.M)
    assert names, "main.tex shows no experiment's figures"
    for name in names:
        monkeypatch.setitem(sys.modules, f"bontheory.experiments.{name}", _fake_experiment(name))
    monkeypatch.setattr(experiments, "EXPERIMENTS", tuple(names))
    monkeypatch.setenv("BONTHEORY_PROGRESS", "0")
    return names


def test_build_collects_figures_and_writes_numbers(registry, monkeypatch, tmp_path):
    build = _load_build(monkeypatch, tmp_path)
    results = tmp_path / "results"
    assert cli.main(["reproduce", "--quick", "--out", str(results)]) == 0
    assert build.main(["--results", str(results), "--no-compile"]) == 0
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(f"{n}-curve.pdf" for n in registry)
    numbers = (tmp_path / "generated" / "numbers.tex").read_text()
    # docs/theory.md §1.7's worked example, computed by the library
    assert "\\newcommand{\\exKL}{\\ensuremath{0.341530}}" in numbers
    for name in registry:  # each experiment's exported numbers, from its saved metrics (QUICK.ns ends at 4)
        word = "".join(w.capitalize() for w in name.split("_"))
        assert f"\\newcommand{{\\standIn{word}LastN}}{{\\ensuremath{{4}}}}" in numbers
        assert f"\\newcommand{{\\standIn{word}Name}}{{\\texttt{{tiny\\_mean}}}}" in numbers
        assert re.search(rf"\\newcommand{{\\standIn{word}Mean}}{{\\ensuremath{{0\.\d{{3}}}}}}", numbers)
    for name in registry:
        assert f"figures/{name}-curve" in (tmp_path / "generated" / f"figures-{name}.tex").read_text()


def test_build_fails_listing_a_missing_run_and_figure(registry, monkeypatch, tmp_path, capsys):
    build = _load_build(monkeypatch, tmp_path)
    results = tmp_path / "results"
    missing_run, no_figure = registry[0], registry[1]
    assert cli.main(["reproduce", "--quick", "--out", str(results), "--only", *registry[1:]]) == 0
    run_dir = next(results.glob(f"{no_figure}-*"))
    (run_dir / "curve.pdf").unlink()
    assert build.main(["--results", str(results), "--no-compile"]) == 1
    err = capsys.readouterr().err
    assert f"{missing_run}: no finished run" in err
    assert f"{no_figure}: its run" in err and "has no PDF figure" in err


def test_build_fails_on_a_number_missing_from_the_metrics(registry, monkeypatch, tmp_path, capsys):
    build = _load_build(monkeypatch, tmp_path)
    monkeypatch.setattr(
        sys.modules[f"bontheory.experiments.{registry[0]}"],
        "paper_numbers",
        lambda metrics: {"bogus": (metrics["no_such_key"], 2)},
    )
    results = tmp_path / "results"
    assert cli.main(["reproduce", "--quick", "--out", str(results)]) == 0
    assert build.main(["--results", str(results), "--no-compile"]) == 1
    err = capsys.readouterr().err
    assert f"{registry[0]}.paper_numbers failed" in err and "KeyError" in err and "no_such_key" in err


@pytest.mark.parametrize(
    "exported, message",
    [
        ({"standInKlBoundLastN": (4, 0)}, "is exported by both"),  # a macro of another experiment
        ({"exKL": (1.0, 2)}, "is both a worked example and exported"),
        ({"bad_name": (1.0, 2)}, "is not a LaTeX macro name"),
        ({"fine": (1.0, -1)}, "decimals"),
        ({"fine": (None, 2)}, "\\fine"),
    ],
)
def test_build_fails_on_a_bad_export(registry, monkeypatch, tmp_path, capsys, exported, message):
    build = _load_build(monkeypatch, tmp_path)
    monkeypatch.setattr(sys.modules[f"bontheory.experiments.{registry[1]}"], "paper_numbers", lambda m: exported)
    monkeypatch.setattr(
        sys.modules[f"bontheory.experiments.{registry[0]}"], "paper_numbers", lambda m: {"standInKlBoundLastN": (4, 0)}
    )
    results = tmp_path / "results"
    assert cli.main(["reproduce", "--quick", "--out", str(results), "--only", *registry[:2]]) == 0
    monkeypatch.setattr(experiments, "EXPERIMENTS", tuple(registry[:2]))
    assert build.main(["--results", str(results), "--no-compile"]) == 1
    assert message in capsys.readouterr().err


def test_tex_escape_gives_ascii_latex(monkeypatch, tmp_path):
    build = _load_build(monkeypatch, tmp_path)
    text = build._tex_escape("χ²-pessimism ≥ 2× π_n ‖ p — 50% & {x} ∑")
    assert text.isascii()
    assert r"$\chi$$^2$" in text and r"\_n" in text and r"50\%" in text and r"\&" in text and r"\{x\}" in text
