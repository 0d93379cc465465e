"""Every registered experiment on a tiny config (run → JSON → summary, plot, paper numbers), ``paper/main.tex``
against the numbers the experiments export (every macro it uses is defined), and the experiments' config checks.

Running the experiments takes minutes (JIT compilation), so the fast tests read their tiny metrics from
``tests/data/tiny_metrics/<name>.json`` and a slow test checks those against fresh runs. Regenerate them with
``python tests/test_experiments.py`` after changing what an experiment stores.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from bontheory import experiments
from bontheory.runner import load_experiment

REPO = Path(__file__).resolve().parent.parent
MAIN_TEX = REPO / "paper" / "main.tex"
FIXTURES = Path(__file__).resolve().parent / "data" / "tiny_metrics"

# Far smaller than QUICK, keeping what paper_numbers reads (e.g. the cauchy and hack families).
TINY = {
    "kl_bound": dict(uniform_sizes=(2, 100), tiny_rest_size=50, n_max=100, num_ns=6),
    "overoptimization": dict(families=("cauchy", "hack"), errors=(0.5, 6.0), vocab_size=4, length=3,
                             ns=(1, 4, 16, 64), num_seeds=2, pessimism_ns=(1, 4), pessimism_draws=20),
    "bon_vs_optimum": dict(vocab_size=3, length=3, ns=(1, 2, 8), num_betas=6, truncation_ms=(2.0, 8.0),
                           lengths=(1, 2, 4, 8), rates=(0.1, 0.4), fit_min_length=2),
    "regime_map": dict(families=("gaussian", "hack"), errors=(1.0, 3.0), temperatures=(1.0,), ns=(1, 4, 16),
                       map2_temperature=1.0, alternatives=("quantile_trunc",), vocab_size=4, length=3, num_seeds=1),
    "gao_fits": dict(families=("gaussian", "hack"), errors=(1.0, 6.0), vocab_size=4, length=3, num_ns=6,
                     max_n=100, num_seeds=2, mc_samples=500),
    "token_kl": dict(vocab_size=3, length=3, ns=(1, 4, 16), mc_ns=(4,), num_trials=64, chunk_size=4,
                     long_vocab_size=5, long_length=16, long_ns=(1, 4, 16)),
    "vbon": dict(vocab_size=3, length=2, ns=(2, 4), policy_classes=("tabular_full", "tabular_memoryless"),
                 methods=("vbon_exact", "vbon_continuous", "vbon_sampled", "bon_sft"),
                 memoryless_methods=("vbon_exact",), betas=(1.0, 4.0), ms=(10,), m_study_draws=2, num_steps=5,
                 sampled_batch=4, num_reference_samples=20, num_sft_samples=20, scale_lengths=(2, 4), scale_ns=(2,),
                 scale_families=("memoryless",), scale_max_iters=20),
    "bon_aware": dict(vocab_size=3, length=2, ref_ns=(1, 4, 16), betas=(0.2, 1.0, 5.0), num_steps=5,
                      match_iterations=2, frontier_points=20),
}


def _json(x):
    """What a run stores and reads back: plain JSON values."""
    return json.loads(json.dumps(x, default=lambda o: np.asarray(o).tolist()))


class _CellRun:
    """A stand-in for ``bontheory.runs.Run``: computes each cell and returns it as stored (JSON values)."""

    def __init__(self):
        self.cells = []

    def cell(self, name, compute):
        assert name not in self.cells, f"cell name {name!r} used twice"
        self.cells.append(name)
        return _json(compute())


def tiny_run(name: str) -> tuple:
    """``(module, metrics)`` of experiment ``name`` run on its tiny config (metrics as stored: JSON values)."""
    mod = load_experiment(name)
    config = dataclasses.replace(mod.QUICK, **TINY[name])
    return mod, _json(mod.run(config, _CellRun()))


def _fixture(name: str) -> Path:
    return FIXTURES / f"{name}.json"


def _paths(x, prefix="") -> set[str]:
    """The key paths of nested metrics (list positions collapsed): their structure, not their values."""
    if isinstance(x, dict):
        return {prefix}.union(*(_paths(v, f"{prefix}.{k}") for k, v in x.items()))
    if isinstance(x, list):
        return {prefix}.union(*(_paths(v, f"{prefix}[]") for v in x))
    return {prefix}


@pytest.fixture(scope="module")
def stored_runs():
    """``{name: (module, metrics)}``: every registered experiment with the metrics of its tiny config, as stored
    under ``tests/data/tiny_metrics`` (written by running this file; checked against fresh runs by the slow
    test below)."""
    assert sorted(TINY) == sorted(experiments.EXPERIMENTS), "give every registered experiment a tiny config"
    missing = [n for n in TINY if not _fixture(n).is_file()]
    assert not missing, f"no stored tiny metrics for {missing}: run `python tests/test_experiments.py`"
    return {n: (load_experiment(n), json.loads(_fixture(n).read_text())) for n in experiments.EXPERIMENTS}


@pytest.mark.parametrize("name", sorted(TINY))
def test_paper_numbers_and_summary_from_stored_metrics(stored_runs, name):
    mod, metrics = stored_runs[name]
    if hasattr(mod, "summary"):
        rows = mod.summary(metrics)
        assert rows and all(isinstance(r, dict) for r in rows)
    numbers = mod.paper_numbers(metrics)
    assert numbers, f"{name} quotes no number"
    for macro, (value, digits) in numbers.items():
        assert re.fullmatch(r"[A-Za-z]+", macro), macro
        assert isinstance(digits, int) and digits >= 0
        assert isinstance(value, str) or np.isfinite(float(value)), (macro, value)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_experiment_runs_on_a_tiny_config(name, tmp_path):
    """End to end on the tiny config: run, plot, summary, paper numbers; and the stored tiny metrics have the
    structure a fresh run gives (else rerun ``python tests/test_experiments.py``)."""
    mod, metrics = tiny_run(name)
    paths = mod.plot(metrics, tmp_path)
    assert paths and all(Path(p).is_file() for p in paths)
    if hasattr(mod, "summary"):
        assert mod.summary(metrics)
    assert mod.paper_numbers(metrics)
    stored = json.loads(_fixture(name).read_text())
    assert _paths(stored) == _paths(metrics), "stored tiny metrics are stale: run `python tests/test_experiments.py`"


def test_cells_draw_keys_by_label_not_position():
    """Putting a family and an error size in front of a regime-map cell leaves its numbers unchanged."""
    mod = load_experiment("regime_map")
    a = dataclasses.replace(mod.QUICK, **TINY["regime_map"])  # families (gaussian, hack), errors (1, 3)
    b = dataclasses.replace(a, families=("cauchy", "gaussian", "hack"), errors=(0.5, 1.0, 3.0))
    assert _json(mod._cell(b, 2, 1, 0, 0)) == _json(mod._cell(a, 1, 0, 0, 0))
    assert _json(mod._cell(a, 1, 1, 0, 0)) != _json(mod._cell(a, 1, 0, 0, 0))


def _build():
    spec = importlib.util.spec_from_file_location(f"_paper_build_{uuid.uuid4().hex}", REPO / "paper" / "build.py")
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build
    spec.loader.exec_module(build)
    return build


def _tex_body(tex: str) -> str:
    """``tex`` without comments (an unescaped ``%`` to the end of the line)."""
    return "\n".join(re.sub(r"(?<!\\)%.*", "", line) for line in tex.splitlines())


# The LaTeX and package commands main.tex uses. A new command in main.tex must be a quoted number (exported by
# an experiment's paper_numbers or a worked example in paper/build.py), defined in main.tex, or added here.
LATEX = set("""
documentclass usepackage title author date maketitle section subsection appendix label ref eqref cite citep citet
citealp bibliographystyle bibliography input newcommand renewcommand newtheorem begin end emph textbf texttt
textit text mathrm mathbb mathcal operatorname frac tfrac sqrt sum prod log exp max min le ge ll gg to sim
propto approx star cdot ldots dots quad qquad left right bigl bigr Bigl Bigr hat tilde bar alpha beta gamma
delta varepsilon epsilon theta lambda mu pi sigma chi ell infty in footnote url href item mid
""".split())


def test_main_tex_uses_only_defined_macros(stored_runs):
    """Every macro of main.tex is a LaTeX command, defined in main.tex, a worked example of the theory, a run
    folder, or exported by an experiment's ``paper_numbers`` (run here on each experiment's stored tiny metrics)."""
    tex = _tex_body(MAIN_TEX.read_text())
    used = set(re.findall(r"\\([A-Za-z]+)", tex))
    defined = set(re.findall(r"\\(?:re)?newcommand\{?\\([A-Za-z]+)", tex))
    build = _build()
    exported: dict[str, str] = {}
    for name, (mod, metrics) in stored_runs.items():
        for macro in mod.paper_numbers(metrics):
            assert macro not in exported, f"\\{macro} exported by {exported[macro]} and {name}"
            exported[macro] = name
    theory = set(build._theory_numbers())
    assert not theory & set(exported), "a worked example and an experiment export the same macro"
    runs = {"run" + "".join(w.capitalize() for w in name.split("_")) for name in experiments.EXPERIMENTS}
    undefined = used - LATEX - defined - theory - set(exported) - runs
    assert not undefined, f"main.tex uses macros nothing defines: {sorted(undefined)}"


def test_main_tex_macro_check_can_fail(tmp_path, monkeypatch, stored_runs):
    """The check above catches a misspelt number."""
    bad = tmp_path / "main.tex"
    bad.write_text(MAIN_TEX.read_text() + "\n\\ovMaxNN\n")
    monkeypatch.setattr(sys.modules[__name__], "MAIN_TEX", bad)
    with pytest.raises(AssertionError, match="ovMaxNN"):
        test_main_tex_uses_only_defined_macros(stored_runs)


# ----------------------------------------------------------------------------------------------------
# Config checks


@pytest.mark.parametrize("name, field, value", [
    ("kl_bound", "n_max", -5),
    ("kl_bound", "n_max", 2.5),
    ("kl_bound", "uniform_sizes", (0,)),
    ("kl_bound", "binary_high_prob", 2.0),
    ("kl_bound", "tiny_top_mass", float("nan")),
    ("overoptimization", "families", ("gaussian", "nope")),
    ("overoptimization", "errors", (1.0,)),  # one per family
    ("overoptimization", "ns", (1, 16, 4)),  # increasing
    ("overoptimization", "hack_mass", 0.0),
    ("overoptimization", "num_seeds", 0),
    ("bon_vs_optimum", "token_probs", (0.5, 0.3, 0.3, 0.1)),
    ("bon_vs_optimum", "token_scores", (0, 1, 2)),
    ("bon_vs_optimum", "truncation_ms", (0.5,)),
    ("regime_map", "map2_temperature", 3.0),
    ("regime_map", "alternatives", ("chi2_pessimism",)),
    ("regime_map", "temperatures", (0.0, 1.0)),
    ("gao_fits", "mc_samples", 10),
    ("gao_fits", "num_ns", 2),
    ("token_kl", "num_trials", 0),
    ("token_kl", "x64", "yes"),
    ("vbon", "policy_classes", ("tabular_full", "lstm")),
    ("vbon", "methods", ("kl_rl",)),
    ("vbon", "ns", (2, 6)),  # powers of 2 for iterated BOND
    ("vbon", "m_study_classes", ("transformer",)),  # must be trained
    ("vbon", "learning_rate", -0.1),
    ("bon_aware", "betas", (1.0,)),  # a bracket needs two
    ("bon_aware", "betas", (2.0, 1.0)),  # increasing
    ("bon_aware", "n", 0),
])
def test_config_rejects_values_out_of_their_domain(name, field, value):
    mod = load_experiment(name)
    base = mod.Config()
    if name == "vbon" and field == "m_study_classes":
        base = dataclasses.replace(mod.QUICK, policy_classes=("tabular_full",), m_study_classes=())
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(base, **{field: value})


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_config_field_is_checked(name):
    """A value of no field's type (an ``object()``) is rejected, with a message naming the field."""
    mod = load_experiment(name)
    for field in dataclasses.fields(mod.Config):
        with pytest.raises(ValueError, match=field.name):
            dataclasses.replace(mod.Config(), **{field.name: object()})


def test_cli_exits_2_on_a_config_value_out_of_its_domain(capsys):
    from bontheory import cli

    assert cli.main(["run", "kl_bound", "--quick", "--set", "n_max=-5", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert "n_max" in err and "-5" in err


if __name__ == "__main__":  # regenerate the stored tiny metrics
    import jax

    jax.config.update("jax_enable_x64", True)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for exp in experiments.EXPERIMENTS:
        _fixture(exp).write_text(json.dumps(tiny_run(exp)[1], separators=(",", ":")) + "\n")
        print(f"wrote {_fixture(exp)}")
