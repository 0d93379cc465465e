"""Builds ``paper/main.pdf`` from the results that ``bontheory reproduce`` wrote.

    python paper/build.py --results results          # what `make paper` runs
    python paper/build.py --results results --no-compile   # collect figures and numbers only

Steps, each failing loudly:

1. For every registered experiment, find its newest finished run under ``--results`` (a folder with a valid
   ``metrics.json``); an experiment without one is an error.
2. Copy each run's PDF figures to ``paper/figures/<experiment>-<stem>.pdf`` (the folder is rebuilt each time,
   so no stale figure survives).
3. Check that every ``\\includegraphics{figures/...}`` in ``main.tex`` names a collected figure; list every
   missing one (with the figures the run does have) and stop.
4. Write ``paper/generated/numbers.tex``: one ``\\newcommand`` per quoted number, computed from the saved
   metrics (or, for the worked examples of the theory, by the library) — never typed by hand.
5. Write ``paper/generated/figures-<experiment>.tex`` (every figure of the run, for
   ``\\experimentfigures{<experiment>}`` in ``main.tex``; an experiment shown there without a finished run or
   without figures is an error) and ``paper/generated/appendix.tex`` (each experiment's summary table and run
   folder, and the figures of experiments ``main.tex`` does not show).
6. Compile with ``latexmk`` (or ``pdflatex`` + ``bibtex``). The build installs nothing: without ``pdflatex``
   it stops at once with one line saying so (``make paper-deps`` installs TeX Live on Debian/Ubuntu).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

PAPER = Path(__file__).resolve().parent
REPO = PAPER.parent
FIGURES = PAPER / "figures"
GENERATED = PAPER / "generated"

sys.path.insert(0, str(REPO))


class BuildError(RuntimeError):
    pass


# ----------------------------------------------------------------------------------------------------
# 1-2. Runs and figures


def newest_runs(results: Path) -> tuple[dict[str, Path], dict[str, Any], list[str]]:
    """``{experiment: run folder}``, ``{experiment: module}`` and the experiments that have no finished run."""
    from bontheory.runner import experiment_name, load_experiment, registered
    from bontheory.runs import CorruptResultError, latest_run, load_metrics

    found, modules, missing = {}, {}, []
    for name in registered():
        try:
            mod = load_experiment(name)
        except Exception as e:  # reported, not hidden
            missing.append(f"{name}: cannot import its module ({type(e).__name__}: {e})")
            continue
        exp = experiment_name(mod)
        run_dir = latest_run(results, exp)
        if run_dir is None:
            missing.append(
                f"{name}: no finished run under {results} (run `bontheory run {name} --quick --out {results}`)"
            )
            continue
        try:
            load_metrics(run_dir)
        except CorruptResultError as e:
            missing.append(f"{name}: {e}")
            continue
        found[exp] = run_dir
        modules[exp] = mod
    return found, modules, missing


def collect_figures(runs: dict[str, Path]) -> dict[str, list[str]]:
    """Copies every run's ``*.pdf`` to ``figures/<experiment>-<stem>.pdf``; returns ``{experiment: [names]}``."""
    if FIGURES.exists():
        shutil.rmtree(FIGURES)
    FIGURES.mkdir(parents=True)
    collected: dict[str, list[str]] = {}
    for exp, run_dir in sorted(runs.items()):
        names = []
        for pdf in sorted(run_dir.glob("*.pdf")):
            target = FIGURES / f"{exp}-{pdf.stem}.pdf"
            shutil.copyfile(pdf, target)
            names.append(target.stem)
        collected[exp] = names
    return collected


def referenced_figures(tex: str) -> list[str]:
    """The ``figures/<name>`` targets of ``\\includegraphics`` in ``tex`` (comments ignored)."""
    body = "\n".join(line.split("%", 1)[0] if not line.lstrip().startswith("\\%") else line for line in tex.splitlines())
    names = re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{figures/([^}]+)\}", body)
    return [n[:-4] if n.endswith(".pdf") else n for n in names]


def check_figures(tex: str, runs: dict[str, Path], collected: dict[str, list[str]]) -> list[str]:
    problems = []
    have = {n for names in collected.values() for n in names}
    for name in referenced_figures(tex):
        if name in have:
            continue
        exp = next((e for e in sorted(runs, key=len, reverse=True) if name.startswith(e + "-")), None)
        if exp is None:
            problems.append(f"figures/{name}.pdf: no finished run of its experiment")
        else:
            problems.append(
                f"figures/{name}.pdf: {runs[exp]} has no {name[len(exp) + 1:]}.pdf "
                f"(it has: {', '.join(n[len(exp) + 1:] for n in collected[exp]) or 'no figures'})"
            )
    return problems


# ----------------------------------------------------------------------------------------------------
# 4. Numbers


def _fmt(value: float, digits: int) -> str:
    """A number as LaTeX that works in text and in math (a real minus sign, never a hyphen)."""
    if isinstance(value, str):
        return value
    if not math.isfinite(value):
        text = r"\infty" if value > 0 else (r"-\infty" if value < 0 else r"\mathrm{NaN}")
    else:
        text = f"{value:.{digits}f}"
        if float(text) == 0:
            text = text.lstrip("-")  # no "-0.000"
    return f"\\ensuremath{{{text}}}"


def _theory_numbers() -> dict[str, str]:
    """Worked examples of docs/theory.md, computed by the library in float64."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import bontheory as bt

    p = jnp.array([0.1, 0.2, 0.3, 0.4])
    r = jnp.array([0.0, 1.0, 1.0, 2.0])
    pmf = bt.bon_pmf(p, r, 3)
    nums = {
        "exPiOne": _fmt(float(pmf[0]), 3),
        "exPiTwo": _fmt(float(pmf[1]), 3),
        "exPiThree": _fmt(float(pmf[2]), 3),
        "exPiFour": _fmt(float(pmf[3]), 3),
        "exKL": _fmt(float(bt.bon_kl(p, r, 3)), 6),
        "exKLBound": _fmt(float(bt.bon_kl_bound(3)), 6),
        "exWinRate": _fmt(float(bt.bon_win_rate(p, r, 3)), 4),
        "exWinBound": _fmt(float(bt.bon_win_rate_bound(3)), 4),
    }
    for n, word in [(2, "Two"), (8, "Eight"), (64, "SixtyFour"), (1024, "ThousandTwentyFour")]:
        nums[f"klBound{word}"] = _fmt(float(bt.bon_kl_bound(n)), 5)
        uniform = jnp.full((100,), 0.01)
        nums[f"klUniformHundred{word}"] = _fmt(float(bt.bon_kl(uniform, jnp.arange(100.0), n)), 5)
    return nums


def _get(metrics: Any, path: str) -> Any:
    cur = metrics
    for part in path.split("."):
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    return cur


# Numbers quoted from saved metrics: macro -> (experiment, dotted path into metrics.json or a function, digits).
# A missing experiment or path is reported (the macro is then defined as "??" and the build fails).
METRIC_NUMBERS: dict[str, tuple[str, str | Callable[[Any], Any], int]] = {
    "ovMaxN": ("overoptimization", "ns.-1", 0),
    "ovCauchyPeakN": ("overoptimization", "families.cauchy.bon_peak_n", 0),
    "ovCauchyPeakGold": ("overoptimization", "families.cauchy.bon_peak_gold", 2),
    "ovCauchyFinalGold": ("overoptimization", "families.cauchy.bon_final_gold", 2),
    "ovCauchyTruncFinal": ("overoptimization", "families.cauchy.quantile_trunc.fixed.gold.-1", 2),
    "ovHackPeakN": ("overoptimization", "families.hack.bon_peak_n", 0),
    "ovHackPeakGold": ("overoptimization", "families.hack.bon_peak_gold", 2),
    "ovHackFinalGold": ("overoptimization", "families.hack.bon_final_gold", 2),
    "bvoMaxRewardGap": ("bon_vs_optimum", lambda m: max(m["bon_reward_gap_to_tilt"]), 4),
    "bvoMaxWinGap": ("bon_vs_optimum", lambda m: max(m["bon_win_gap_to_quantile_tilt"]), 4),
    "bvoRate": ("bon_vs_optimum", "rates.-1", 2),
    "bvoShortL": ("bon_vs_optimum", "lengths.1", 0),
    "bvoLongL": ("bon_vs_optimum", "lengths.-1", 0),
    "bvoGapShort": ("bon_vs_optimum", "gap_per_token.1.-1", 4),
    "bvoGapLong": ("bon_vs_optimum", "gap_per_token.-1.-1", 4),
    "rmCells": ("regime_map", lambda m: _np_size(m["families"]["gaussian"]["ratio_error_x_coverage"]), 0),
    "rmGaussWithin": ("regime_map", lambda m: _count(m["families"]["gaussian"]["ratio_error_x_coverage"], le=1.1), 0),
    "rmGaussTwice": ("regime_map", lambda m: _count(m["families"]["gaussian"]["ratio_error_x_coverage"], ge=2.0), 0),
    "rmHackWithin": ("regime_map", lambda m: _count(m["families"]["hack"]["ratio_error_x_coverage"], le=1.1), 0),
    "rmHackTwice": ("regime_map", lambda m: _count(m["families"]["hack"]["ratio_error_x_coverage"], ge=2.0), 0),
    "rmGaussMaxRatio": ("regime_map", lambda m: _max(m["families"]["gaussian"]["ratio_error_x_coverage"]), 2),
    "klNmax": ("kl_bound", "ns.-1", 0),
    "klFolkNmax": ("kl_bound", "folk.-1", 3),
    "klTinyKL": ("kl_bound", lambda m: _ref(m, "tiny top")["kl"][-1], 3),
    "klUniformKL": ("kl_bound", lambda m: _ref(m, "uniform L=100")["kl"][-1], 3),
    "klReferences": ("kl_bound", lambda m: len(m["references"]), 0),
    "klGapBoundHolds": ("kl_bound", lambda m: sum(_gap_bound_holds(m, r) for r in m["references"].values()), 0),
    "klEstMinExcess": ("kl_bound", lambda m: min(_est_excess(r).min() for r in m["references"].values()), 4),
    "klEstMaxExcess": ("kl_bound", lambda m: max(_est_excess(r).max() for r in m["references"].values()), 4),
    "vbFullExact": ("vbon", "analysis.tabular_full.mean_kl_to_bon.vbon_exact", 4),
    "vbFullCont": ("vbon", "analysis.tabular_full.mean_kl_to_bon.vbon_continuous", 4),
    "vbFullSampled": ("vbon", "analysis.tabular_full.mean_kl_to_bon.vbon_sampled", 4),
    "vbFullKlrl": ("vbon", "analysis.tabular_full.mean_kl_to_bon.kl_rl", 4),
    "vbFullClosest": ("vbon", "analysis.tabular_full.closest_method", 0),
    "vbMemExact": ("vbon", "analysis.tabular_memoryless.mean_kl_to_bon.vbon_exact", 3),
    "vbMemClosest": ("vbon", "analysis.tabular_memoryless.closest_method", 0),
    "tkN": ("token_kl", "panels.peaked/tie_heavy.exact.ns.-1", 0),
    "tkLevels": ("token_kl", "panels.peaked/tie_heavy.exact.num_levels", 0),
    "tkSequences": ("token_kl", "panels.peaked/tie_heavy.exact.num_sequences", 0),
    "tkExact": ("token_kl", "panels.peaked/tie_heavy.exact.exact_kl.-1", 3),
    "tkFolk": ("token_kl", "panels.peaked/tie_heavy.exact.folk.-1", 3),
    "tkBeirami": ("token_kl", "panels.peaked/tie_heavy.exact.beirami_expected.-1", 3),
    "gfGaussBonRsq": ("gao_fits", "families.gaussian.bon_r2", 3),
    "gfGaussRlRsq": ("gao_fits", "families.gaussian.rl_r2", 3),
    "gfHackBonRsq": ("gao_fits", "families.hack.bon_r2", 3),
    "gfHackRlRsq": ("gao_fits", "families.hack.rl_r2", 3),
}


def _ref(m: Any, prefix: str) -> Any:
    """The ``kl_bound`` reference case whose name starts with ``prefix``."""
    if prefix in m["references"]:
        return m["references"][prefix]
    (key,) = [k for k in m["references"] if k.startswith(prefix)]
    return m["references"][key]


def _gap_bound_holds(m: Any, ref: Any) -> bool:
    import numpy as np

    gap = np.asarray(m["folk"]) - np.asarray(ref["kl"])
    return bool(np.all(gap <= np.asarray(ref["gap_bound"]) + 1e-12))


def _est_excess(ref: Any) -> Any:
    import numpy as np

    return np.asarray(ref["estimate"]) - np.asarray(ref["kl"])


def _np_size(x: Any) -> int:
    import numpy as np

    return int(np.asarray(x, dtype=float).size)


def _count(x: Any, le: float | None = None, ge: float | None = None) -> int:
    import numpy as np

    a = np.asarray(x, dtype=float)
    return int(np.sum(a <= le) if le is not None else np.sum(a >= ge))


def _max(x: Any) -> float:
    import numpy as np

    return float(np.nanmax(np.asarray(x, dtype=float)))


def write_numbers(runs: dict[str, Path]) -> list[str]:
    from bontheory.runs import config_hash, load_metrics, read_run_info  # noqa: F401

    problems = []
    lines = ["% Generated by paper/build.py from saved metrics and the library. Do not edit.", ""]
    for macro, value in sorted(_theory_numbers().items()):
        lines.append(f"\\newcommand{{\\{macro}}}{{{value}}}")
    for macro, (exp, path, digits) in sorted(METRIC_NUMBERS.items()):
        if exp not in runs:
            problems.append(f"\\{macro}: needs a finished run of {exp}")
            lines.append(f"\\newcommand{{\\{macro}}}{{??}}")
            continue
        try:
            metrics = load_metrics(runs[exp])
            value = path(metrics) if callable(path) else _get(metrics, path)
            if isinstance(value, str):  # a name from the metrics, e.g. a method
                text = f"\\texttt{{{_tex_escape(value)}}}"
            else:
                text = _fmt(float(value), digits)
        except Exception as e:  # noqa: BLE001 - reported
            problems.append(f"\\{macro}: cannot read {path!r} from {exp}'s metrics ({type(e).__name__}: {e})")
            text = "??"
        lines.append(f"\\newcommand{{\\{macro}}}{{{text}}}")
    for exp, run_dir in sorted(runs.items()):
        macro = "run" + "".join(w.capitalize() for w in re.split(r"[^A-Za-z]+", exp) if w)
        lines.append(f"\\newcommand{{\\{macro}}}{{\\texttt{{{_tex_escape(run_dir.name)}}}}}")
    GENERATED.mkdir(exist_ok=True)
    (GENERATED / "numbers.tex").write_text("\n".join(lines) + "\n")
    return problems


# ----------------------------------------------------------------------------------------------------
# 5. Appendix


_UNICODE = {
    "χ": r"$\chi$", "π": r"$\pi$", "β": r"$\beta$", "λ": r"$\lambda$", "ε": r"$\varepsilon$", "σ": r"$\sigma$",
    "α": r"$\alpha$", "θ": r"$\theta$", "μ": r"$\mu$", "Δ": r"$\Delta$", "²": r"$^2$", "³": r"$^3$",
    "¹": r"$^1$", "ⁿ": r"$^n$", "⁻": r"$^-$", "≤": r"$\le$", "≥": r"$\ge$", "×": r"$\times$", "→": r"$\to$",
    "←": r"$\leftarrow$", "≈": r"$\approx$", "∞": r"$\infty$", "∝": r"$\propto$", "‖": r"$\|$", "√": r"$\surd$",
    "±": r"$\pm$", "·": r"$\cdot$", "½": r"$\frac12$", "≪": r"$\ll$", "≫": r"$\gg$", "∈": r"$\in$",
    "–": "--", "—": "---", "’": "'", "‘": "`", "“": "``", "”": "''", "…": r"\dots{}", "é": r"\'e", "â": r"\^a",
}


def _tex_escape(s: str) -> str:
    """Text as LaTeX for pdflatex: special characters escaped, common Greek and math symbols mapped."""
    import unicodedata

    rep = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
           "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}
    out = []
    for c in str(s):
        if c in rep:
            out.append(rep[c])
        elif c in _UNICODE:
            out.append(_UNICODE[c])
        elif ord(c) < 128:
            out.append(c)
        else:  # anything else: its ASCII base letter if it has one, else its Unicode name
            base = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
            out.append(base or f"[{unicodedata.name(c, 'symbol').lower()}]")
    return "".join(out)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else _tex_escape(str(v))
    return _tex_escape(v)


def shown_experiments(tex: str) -> list[str]:
    """The experiments whose figures ``main.tex`` shows with ``\\experimentfigures{NAME}``."""
    body = "\n".join(line.split("%", 1)[0] for line in tex.splitlines())
    return re.findall(r"\\experimentfigures\{([^}]+)\}", body)


def _figure_block(mod: Any, name: str, exp: str) -> list[str]:
    stem = name[len(exp) + 1:]
    caption = f"\\texttt{{{_tex_escape(exp)}}}: {_tex_escape(getattr(mod, 'SUMMARY', ''))} (\\texttt{{{_tex_escape(stem)}}})"
    return [
        "\\begin{center}\\begin{minipage}{\\linewidth}\\centering",
        f"\\includegraphics[width=0.72\\linewidth]{{figures/{name}}}",
        f"\\captionof{{figure}}{{{caption}}}\\label{{fig:{name}}}",
        "\\end{minipage}\\end{center}",
    ]


def write_figure_inputs(tex: str, runs: dict[str, Path], modules: dict[str, Any],
                        collected: dict[str, list[str]]) -> list[str]:
    """Writes ``generated/figures-<experiment>.tex`` for every experiment; returns the problems found."""
    from bontheory import experiments

    problems = []
    GENERATED.mkdir(exist_ok=True)
    for exp in shown_experiments(tex):
        if exp not in runs and exp not in experiments.EXPERIMENTS:
            problems.append(f"main.tex shows figures of {exp!r}, which is not a registered experiment")
        elif exp in runs and not collected.get(exp):
            problems.append(f"{exp}: its run {runs[exp]} has no PDF figure (did plot() run?)")
    for exp in runs:
        lines = ["% Generated by paper/build.py. Do not edit."]
        for name in collected.get(exp, []):
            lines += _figure_block(modules[exp], name, exp)
        (GENERATED / f"figures-{exp}.tex").write_text("\n".join(lines) + "\n")
    return problems


def write_appendix(tex: str, runs: dict[str, Path], modules: dict[str, Any], collected: dict[str, list[str]]) -> None:
    """Each experiment's summary table and run folder; figures of experiments ``main.tex`` does not show."""
    from bontheory.runs import load_metrics

    shown = set(shown_experiments(tex))
    out = ["% Generated by paper/build.py. Do not edit.", ""]
    for exp in sorted(runs):
        mod = modules[exp]
        out.append(f"\\subsection*{{\\texttt{{{_tex_escape(exp)}}}}}")
        out.append(f"{_tex_escape(getattr(mod, 'SUMMARY', ''))}\\\\")
        out.append(f"Run folder: \\texttt{{{_tex_escape(runs[exp].name)}}}.")
        out.append("")
        rows = None
        if hasattr(mod, "summary"):
            try:
                rows = mod.summary(load_metrics(runs[exp]))
            except Exception as e:  # noqa: BLE001 - a broken summary must not stop the paper
                print(f"warning: {exp}.summary failed: {e}", file=sys.stderr)
        if rows:
            rows = rows[:25]
            cols: list[str] = []
            for r in rows:
                cols.extend(k for k in r if k not in cols)
            out.append("\\begin{center}\\small")
            out.append("\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%")
            out.append(f"\\begin{{tabular}}{{{'r' * len(cols)}}}\\toprule")
            out.append(" & ".join(_tex_escape(c) for c in cols) + r" \\\midrule")
            for r in rows:
                out.append(" & ".join(_cell(r.get(c, "")) for c in cols) + r" \\")
            out.append("\\bottomrule\\end{tabular}}\\end{center}")
        if exp not in shown:
            for name in collected[exp]:
                out += _figure_block(mod, name, exp)
        out.append("")
    GENERATED.mkdir(exist_ok=True)
    (GENERATED / "appendix.tex").write_text("\n".join(out) + "\n")


# ----------------------------------------------------------------------------------------------------
# 6. TeX


def missing_tex() -> str | None:
    """``None`` if the TeX tools are installed, else one line saying what is missing and how to install it."""
    missing = [] if shutil.which("pdflatex") else ["pdflatex"]
    if not (shutil.which("latexmk") or shutil.which("bibtex")):
        missing.append("latexmk (or bibtex)")
    if not missing:
        return None
    return (f"{' and '.join(missing)} not found: install TeX Live with `make paper-deps` "
            "(Debian/Ubuntu, uses apt-get) or your system's TeX Live packages")


def compile_pdf() -> Path:
    if shutil.which("latexmk"):
        cmds = [["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "main.tex"]]
    else:
        pdflatex = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "main.tex"]
        cmds = [pdflatex, ["bibtex", "main"], pdflatex, pdflatex]
    for cmd in cmds:
        proc = subprocess.run(cmd, cwd=PAPER, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
            raise BuildError(f"{' '.join(cmd)} failed:\n{tail}")
    log = (PAPER / "main.log").read_text(errors="replace")
    undefined = sorted(set(re.findall(r"(?:Citation|Reference) `([^']+)' .*undefined", log)))
    if undefined:
        raise BuildError(f"undefined citations or references in main.tex: {', '.join(undefined)}")
    return PAPER / "main.pdf"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=REPO / "results", help="the folder `bontheory reproduce` wrote")
    parser.add_argument("--no-compile", action="store_true", help="collect figures and numbers, do not run LaTeX")
    args = parser.parse_args(argv)
    results = args.results if args.results.is_absolute() else Path.cwd() / args.results
    if not args.no_compile and (problem := missing_tex()):
        print(f"paper: {problem}", file=sys.stderr)
        return 1

    runs, modules, missing_runs = newest_runs(results)
    collected = collect_figures(runs)
    tex = (PAPER / "main.tex").read_text()
    problems = missing_runs + check_figures(tex, runs, collected)
    problems += write_figure_inputs(tex, runs, modules, collected)
    problems += write_numbers(runs)
    write_appendix(tex, runs, modules, collected)
    n_fig = sum(len(v) for v in collected.values())
    print(f"paper: {len(runs)} experiments, {n_fig} figures collected into {FIGURES}")
    if problems:
        print("paper: cannot build, fix these first:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    if args.no_compile:
        return 0
    try:
        pdf = compile_pdf()
    except (BuildError, subprocess.CalledProcessError) as e:
        print(f"paper: {e}", file=sys.stderr)
        return 1
    print(f"paper: wrote {pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
