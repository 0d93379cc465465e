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
4. Write ``paper/generated/numbers.tex``: one ``\\newcommand`` per quoted number — each experiment exports
   the numbers the paper quotes from its saved metrics (``paper_numbers(metrics)`` in its module, next to the
   code that computes them), and the worked examples of the theory are computed by the library — never
   typed by hand.
5. Write ``paper/generated/figures-<experiment>.tex`` (every figure of the run, for
   ``\\experimentfigures{<experiment>}`` in ``main.tex``; an experiment shown there without a finished run or
   without figures is an error) and ``paper/generated/appendix.tex`` (each experiment's summary table and run
   folder, and the figures of experiments ``main.tex`` does not show).
6. Compile with ``latexmk`` (or ``pdflatex`` + ``bibtex``). The build installs nothing: without ``pdflatex``
   it stops at once with one line saying so (``make paper-deps`` installs TeX Live on Debian/Ubuntu).
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import subprocess
import sys
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
    body = "\n".join(
        line.split("%", 1)[0] if not line.lstrip().startswith("\\%") else line for line in tex.splitlines()
    )
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
                f"figures/{name}.pdf: {runs[exp]} has no {name[len(exp) + 1 :]}.pdf "
                f"(it has: {', '.join(n[len(exp) + 1 :] for n in collected[exp]) or 'no figures'})"
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


_MACRO = re.compile(r"[A-Za-z]+")


def format_number(value: Any, digits: int) -> str:
    """A quoted value as LaTeX: a string (e.g. a method name) in typewriter type, a number with ``digits``
    decimals in math."""
    if isinstance(value, str):
        return f"\\texttt{{{_tex_escape(value)}}}"
    if isinstance(value, bool) or not isinstance(digits, int) or isinstance(digits, bool) or digits < 0:
        raise TypeError(f"expected (number, decimals >= 0), got ({value!r}, {digits!r})")
    return _fmt(float(value), digits)


def experiment_numbers(runs: dict[str, Path], modules: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """``{macro: LaTeX}`` from each experiment's ``paper_numbers(metrics)`` on its newest run, and the problems
    (an export that fails, a bad macro name or value, a macro exported twice)."""
    from bontheory.runs import load_metrics

    numbers: dict[str, str] = {}
    source: dict[str, str] = {}
    problems = []
    for exp in sorted(runs):
        export = getattr(modules[exp], "paper_numbers", None)
        if export is None:
            continue
        try:
            quoted = export(load_metrics(runs[exp]))
        except Exception as e:
            problems.append(f"{exp}.paper_numbers failed on the metrics of {runs[exp]} ({type(e).__name__}: {e})")
            continue
        for macro, entry in quoted.items():
            if not isinstance(macro, str) or not _MACRO.fullmatch(macro):
                problems.append(f"{exp}.paper_numbers: {macro!r} is not a LaTeX macro name (letters only)")
                continue
            if macro in source:
                problems.append(f"\\{macro} is exported by both {source[macro]} and {exp}")
                continue
            try:
                value, digits = entry
                numbers[macro] = format_number(value, digits)
            except (TypeError, ValueError) as e:
                problems.append(f"{exp}.paper_numbers: \\{macro}: {e}")
                continue
            source[macro] = exp
    return numbers, problems


def write_numbers(runs: dict[str, Path], modules: dict[str, Any]) -> list[str]:
    """Writes ``generated/numbers.tex`` (the theory's worked examples, every experiment's exported numbers and
    each run's folder name); returns the problems found."""
    numbers, problems = experiment_numbers(runs, modules)
    theory = _theory_numbers()
    for macro in sorted(set(theory) & set(numbers)):
        problems.append(f"\\{macro} is both a worked example and exported by an experiment")
    lines = ["% Generated by paper/build.py from saved metrics and the library. Do not edit.", ""]
    for macro, value in [*sorted(theory.items()), *sorted(numbers.items())]:
        lines.append(f"\\newcommand{{\\{macro}}}{{{value}}}")
    for exp, run_dir in sorted(runs.items()):
        macro = "run" + "".join(w.capitalize() for w in re.split(r"[^A-Za-z]+", exp) if w)
        lines.append(f"\\newcommand{{\\{macro}}}{{\\texttt{{{_tex_escape(run_dir.name)}}}}}")
    GENERATED.mkdir(exist_ok=True)
    (GENERATED / "numbers.tex").write_text("\n".join(lines) + "\n")
    return problems


# ----------------------------------------------------------------------------------------------------
# 5. Appendix


_UNICODE = {
    "χ": r"$\chi$",
    "π": r"$\pi$",
    "β": r"$\beta$",
    "λ": r"$\lambda$",
    "ε": r"$\varepsilon$",
    "σ": r"$\sigma$",
    "α": r"$\alpha$",
    "θ": r"$\theta$",
    "μ": r"$\mu$",
    "Δ": r"$\Delta$",
    "²": r"$^2$",
    "³": r"$^3$",
    "¹": r"$^1$",
    "ⁿ": r"$^n$",
    "⁻": r"$^-$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "×": r"$\times$",
    "→": r"$\to$",
    "←": r"$\leftarrow$",
    "≈": r"$\approx$",
    "∞": r"$\infty$",
    "∝": r"$\propto$",
    "‖": r"$\|$",
    "√": r"$\surd$",
    "±": r"$\pm$",
    "·": r"$\cdot$",
    "½": r"$\frac12$",
    "≪": r"$\ll$",
    "≫": r"$\gg$",
    "∈": r"$\in$",
    "–": "--",
    "—": "---",
    "’": "'",
    "‘": "`",
    "“": "``",
    "”": "''",
    "…": r"\dots{}",
    "é": r"\'e",
    "â": r"\^a",
}


def _tex_escape(s: str) -> str:
    """Text as LaTeX for pdflatex: special characters escaped, common Greek and math symbols mapped."""
    import unicodedata

    rep = {
        "\\": r"\textbackslash{}",
        "_": r"\_",
        "%": r"\%",
        "&": r"\&",
        "#": r"\#",
        "$": r"\$",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "<": r"\textless{}",
        ">": r"\textgreater{}",
        "|": r"\textbar{}",
    }
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
    stem = name[len(exp) + 1 :]
    caption = (
        f"\\texttt{{{_tex_escape(exp)}}}: {_tex_escape(getattr(mod, 'SUMMARY', ''))} (\\texttt{{{_tex_escape(stem)}}})"
    )
    return [
        "\\begin{center}\\begin{minipage}{\\linewidth}\\centering",
        f"\\includegraphics[width=0.72\\linewidth]{{figures/{name}}}",
        f"\\captionof{{figure}}{{{caption}}}\\label{{fig:{name}}}",
        "\\end{minipage}\\end{center}",
    ]


def write_figure_inputs(
    tex: str, runs: dict[str, Path], modules: dict[str, Any], collected: dict[str, list[str]]
) -> list[str]:
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
            except Exception as e:
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
    return (
        f"{' and '.join(missing)} not found: install TeX Live with `make paper-deps` "
        "(Debian/Ubuntu, uses apt-get) or your system's TeX Live packages"
    )


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
    problems += write_numbers(runs, modules)
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
