"""The ``bontheory`` command line: ``list``, ``run``, ``plot``, ``reproduce``.

::

    bontheory list                          # the experiments, one line each
    bontheory list NAME                     # NAME's config fields: type, full default, quick value
    bontheory run NAME [--quick | --full] [--set key=value ...] [--seed S] [--out DIR] [--fresh] [--x64]
    bontheory plot NAME | RUN_DIR [--out DIR]
    bontheory reproduce [--quick] [--out DIR] [--x64]

``NAME`` is a registered experiment (``experiments.EXPERIMENTS``) or the dotted path of any importable module
that follows the experiment protocol (see ``experiments/__init__.py``), e.g. ``mylab.sweeps.temperature``.
``--set key=value`` overrides one config field, converted according to the field's annotation (see
:mod:`bontheory.configs`). The work is done by :mod:`bontheory.runner`; this module is the wiring.

Exit codes: 0 success, 1 an experiment failed, 2 a mistake in the command (one line says which),
130 interrupted (the run resumes when the same command is run again).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from pathlib import Path
from typing import NoReturn

from bontheory import runner
from bontheory.runner import UsageError
from bontheory.runs import CorruptResultError

DEFAULT_OUT = Path("results")


def _cmd_list(args: argparse.Namespace) -> int:
    if args.name:
        mod = runner.load_experiment(args.name)
        print(f"{runner.experiment_name(mod)}: {getattr(mod, 'SUMMARY', '')}")
        print(runner.format_table(runner.config_rows(mod)))
        return 0
    names = runner.registered()
    width = max((len(n) for n in names), default=0)
    for name in names:
        try:
            summary = getattr(runner.load_experiment(name), "SUMMARY", "")
        except Exception as e:  # one broken module must not hide the others
            summary = f"(cannot import: {type(e).__name__}: {e})"
        print(f"{name:<{width}}  {summary}")
    return 0


def _check_out(out: Path) -> None:
    """``--out`` must be a folder this process can write to (created if missing)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise UsageError(f"--out {out} is not a writable folder ({e.strerror or e})") from None


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        with runner.stop_on_signals() as stop:  # from the start: a signal while importing stops before any cell
            mod = runner.load_experiment(args.name)
            config = runner.make_config(mod, quick=args.quick, sets=args.set, seed=args.seed)
            _check_out(args.out)
            outcome = runner.run_experiment(mod, config, args.out, fresh=args.fresh, x64=args.x64, stop=stop)
    except runner.RunInterrupted as e:
        runner.log(runner.interrupted_message(e.root))
        return 130
    except runner.PlotError as e:
        traceback.print_exc()
        runner.log(str(e))
        return 1
    runner.report(outcome)
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    mod, run_dir = runner.plot_target(args.target, args.out)
    try:
        figures = runner.plot_run(mod, run_dir)
    except FileNotFoundError:
        raise UsageError(f"{run_dir} has no metrics.json: the run never finished; run it again to resume") from None
    except CorruptResultError as e:
        raise UsageError(
            f"{e}; run the experiment again to recompute its metrics (finished cells are reused)"
        ) from None
    for f in figures:
        print(f)
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    names = list(args.only) if args.only else list(runner.registered())
    with runner.stop_on_signals() as stop:
        for name in names:  # a misspelt name is a mistake in the command; a broken module is reported below
            try:
                runner.load_experiment(name)
            except UsageError:
                raise
            except Exception:
                pass
        _check_out(args.out)
        outcome = runner.reproduce(names, args.out, quick=args.quick, x64=args.x64, stop=stop)
    if outcome.interrupted is not None:
        runner.log(runner.interrupted_message(outcome.interrupted))
        return 130
    if outcome.failed:
        runner.log(f"{len(outcome.failed)} experiment(s) failed: {', '.join(outcome.failed)}")
        return 1
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): ``bontheory run: error: ... (see --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bontheory",
        description="Run, resume and plot the bontheory experiments.",
        epilog="Results go to one folder per run: OUT/<experiment>-<config hash>/.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{list,run,plot,reproduce}")

    p = sub.add_parser("list", help="the experiments, one line each (or one experiment's config fields)")
    p.add_argument("name", nargs="?", help="show this experiment's config fields, full defaults and quick values")

    def out_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder (default: results)")

    p = sub.add_parser("run", help="run one experiment (resumes an interrupted run with the same config)")
    p.add_argument("name", help="a registered experiment or the dotted path of your own experiment module")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="quick settings (the experiment's QUICK config)")
    size.add_argument("--full", action="store_true", help="full settings (the Config defaults; the default)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (repeatable); `bontheory list NAME` shows the keys")
    p.add_argument("--seed", type=int, default=None, help="the config's seed")
    out_arg(p)
    p.add_argument("--fresh", action="store_true", help="delete this config's stored cells and recompute")
    p.add_argument("--x64", action="store_true", help="turn on float64 (jax_enable_x64) before running")

    p = sub.add_parser("plot", help="regenerate figures from saved metrics (no recomputation)")
    p.add_argument("target", metavar="NAME|RUN_DIR", help="an experiment (its newest run under --out) or a run folder")
    out_arg(p)

    p = sub.add_parser("reproduce", help="every experiment, then the figures; exit 1 if any failed")
    p.add_argument("--quick", action="store_true", help="quick settings (what `make reproduce` uses)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these experiments")
    out_arg(p)
    p.add_argument("--x64", action="store_true", help="turn on float64 (jax_enable_x64) before running")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bontheory`` console script; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a malformed command line (2, one line on stderr)
        return e.code if isinstance(e.code, int) else 2
    try:
        return {"list": _cmd_list, "run": _cmd_run, "plot": _cmd_plot, "reproduce": _cmd_reproduce}[args.command](args)
    except UsageError as e:
        print(f"bontheory {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        runner.log("\ninterrupted.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
