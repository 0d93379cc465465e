"""Running experiments: find one, build its config, run it into its run folder, plot it, reproduce them all.

The command line (:mod:`bontheory.cli`) is wiring over these functions; a script can call them too::

    from bontheory.runner import load_experiment, make_config, run_experiment

    mod = load_experiment("kl_bound")
    outcome = run_experiment(mod, make_config(mod, quick=True, sets=["num_ns=8"]), Path("results"))

An experiment shows the progress of its sweep with :func:`progress` (``tqdm``)::

    from bontheory.runner import progress

    for n in progress(config.ns, desc=NAME):
        run.cell(f"n={n}", lambda: compute(n))
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import os
import sys
import time
import traceback
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from tqdm import tqdm

from bontheory.configs import apply_overrides, config_fields, type_name
from bontheory.runs import git_state, load_metrics, open_run, read_run_info
from bontheory.storage import atomic_write_json

T = TypeVar("T")

class UsageError(ValueError):
    """A mistake in what was asked for (an unknown experiment or key, a bad value, an unusable folder).

    The command line reports it in one line and exits with code 2.
    """


# ----------------------------------------------------------------------------------------------------
# Experiments


_REQUIRED = ("Config", "QUICK", "run", "plot")


def registered() -> tuple[str, ...]:
    """The registered experiment names, in order (``bontheory.experiments.EXPERIMENTS``)."""
    from bontheory import experiments

    return tuple(experiments.EXPERIMENTS)


def load_experiment(name: str) -> types.ModuleType:
    """The module of experiment ``name`` (registered, or a dotted module path), checked against the protocol.

    Raises:
      UsageError: if there is no such experiment or the module lacks part of the protocol.
    """
    if name in registered():
        module_name = f"bontheory.experiments.{name}"
    elif "." in name:
        module_name = name
    else:
        raise UsageError(
            f"unknown experiment {name!r}; registered: {', '.join(registered()) or '(none)'} "
            "(or give the dotted path of your own experiment module)"
        )
    try:
        mod = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and module_name.startswith(e.name):
            raise UsageError(f"experiment module {module_name!r} not found") from e
        raise
    missing = [attr for attr in _REQUIRED if not hasattr(mod, attr)]
    if missing:
        raise UsageError(
            f"experiment module {module_name!r} lacks {', '.join(missing)} (see bontheory/experiments/__init__.py)"
        )
    if not dataclasses.is_dataclass(mod.Config):
        raise UsageError(f"{module_name}.Config must be a dataclass")
    return mod


def experiment_name(mod: types.ModuleType) -> str:
    """The experiment's ``NAME`` (the last part of its module name if it has none)."""
    return getattr(mod, "NAME", mod.__name__.rsplit(".", 1)[-1])


def make_config(mod: types.ModuleType, *, quick: bool = False, sets: Sequence[str] = (), seed: int | None = None) -> Any:
    """The experiment's config: ``QUICK`` or ``Config()``, with ``key=value`` overrides and the seed applied.

    Raises:
      UsageError: for an unknown key, a value of the wrong type, or a value the config rejects (a
        ``ValueError``/``TypeError`` from its ``__post_init__``), naming the key.
    """
    try:
        config = mod.QUICK if quick else mod.Config()
        config = apply_overrides(config, list(sets))
        if seed is not None:
            if "seed" not in config_fields(config):
                raise UsageError(f"{experiment_name(mod)}'s config has no seed field")
            config = apply_overrides(config, [f"seed={seed}"])
    except UsageError:
        raise
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    return config


def config_rows(mod: types.ModuleType) -> list[dict[str, str]]:
    """One row per config key: its type, full (``Config()``) value and quick (``QUICK``) value."""
    full, quick = config_fields(mod.Config()), config_fields(mod.QUICK)
    return [
        {"key": k, "type": type_name(tp), "full": repr(v), "quick": repr(quick[k][1]) if k in quick else ""}
        for k, (tp, v) in full.items()
    ]


# ----------------------------------------------------------------------------------------------------
# Progress


#: Seconds between two progress lines when stderr is not a terminal (a log file, CI).
LOG_INTERVAL = 30.0


class _PlainLines(io.TextIOBase):
    """A text stream for tqdm that turns each redraw (``"\\r" + line``) into a plain line of its own."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, s: str) -> int:
        line = s.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")
            self.stream.flush()
        return len(s)

    def flush(self) -> None:
        self.stream.flush()


def _mode(stream: IO[str]) -> str:
    env = os.environ.get("BONTHEORY_PROGRESS", "").strip().lower()
    if env in ("0", "off", "false", "no"):
        return "off"
    if env in ("1", "on", "true", "yes", "tty"):
        return "tty"
    try:
        return "tty" if stream.isatty() else "log"
    except (AttributeError, ValueError):
        return "log"


def progress(iterable: Iterable[T], desc: str | None = None, *, total: int | None = None,
             file: IO[str] | None = None) -> tqdm:
    """``tqdm(iterable)`` set up for experiment logs: yields the items of ``iterable`` while showing progress.

    On a terminal: tqdm's bar with the elapsed time and the time left, redrawn in place. Anywhere else (a log
    file, CI): a plain line at the start, at most every :data:`LOG_INTERVAL` seconds, and at the end, so the
    log stays readable. ``BONTHEORY_PROGRESS=0`` silences it, ``BONTHEORY_PROGRESS=1`` forces the terminal
    bar.

    Args:
      iterable: the items (e.g. the cells of a sweep).
      desc: a short label printed before the bar.
      total: the number of items; taken from ``len(iterable)`` if it has one.
      file: where to write (default ``sys.stderr``).

    Returns:
      The ``tqdm`` iterator over ``iterable``.
    """
    stream = file if file is not None else sys.stderr
    mode = _mode(stream)
    if mode == "tty":
        return tqdm(iterable, desc=desc, total=total, file=stream, dynamic_ncols=True)
    return tqdm(iterable, desc=desc, total=total, file=_PlainLines(stream), mininterval=LOG_INTERVAL,
                ascii=True, disable=mode == "off")


# ----------------------------------------------------------------------------------------------------
# Tables


def _format_cell(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of flat dicts as an aligned plain-text table (floats with 4 significant digits)."""
    if not rows:
        return "(no rows)"
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    cells = [[_format_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    numeric = [  # numbers right-aligned, text left-aligned
        all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows) for c in columns
    ]

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([fmt(columns), fmt(["-" * w for w in widths]), *(fmt(r) for r in cells)])


# ----------------------------------------------------------------------------------------------------
# Running and plotting


@dataclasses.dataclass
class RunOutcome:
    """What :func:`run_experiment` did: the run folder, time, cell counts, figures and summary rows."""

    name: str
    root: Path
    seconds: float
    stats: dict[str, int]
    figures: list[Path]
    summary: list[dict[str, Any]] | None


class PlotError(RuntimeError):
    """``plot()`` failed after the metrics were saved: fix it and run ``bontheory plot RUN_DIR``."""

    def __init__(self, name: str, root: Path, error: BaseException):
        super().__init__(
            f"{name}: plot() failed ({type(error).__name__}: {error}); the metrics are saved: "
            f"fix plot() and run `bontheory plot {root}`"
        )


def log(msg: str) -> None:
    """A message for the user on stderr."""
    print(msg, file=sys.stderr, flush=True)


def _enable_x64_if_asked(config: Any, x64: bool) -> None:
    if x64 or getattr(config, "x64", False) is True or getattr(config, "float64", False) is True:
        import jax

        jax.config.update("jax_enable_x64", True)


def _describe_commit(state: Mapping[str, Any]) -> str:
    return f"{state['git_commit'][:12]}" + (" with uncommitted changes" if state.get("git_dirty") else "")


def _warn_if_code_changed(root: Path, stored: int) -> None:
    """Warns when the run folder was created by another git commit than the one running now."""
    created = read_run_info(root).get("provenance", {})
    now = git_state()
    if created.get("git_commit") and now.get("git_commit") and created["git_commit"] != now["git_commit"]:
        log(f"warning: {root} was created by commit {_describe_commit(created)}; this is commit "
            f"{_describe_commit(now)}. Its {stored} stored cells are reused as they are: if the computation "
            "changed, run again with --fresh.")


def plot_run(mod: types.ModuleType, run_dir: Path) -> list[Path]:
    """Regenerates ``mod``'s figures in ``run_dir`` from its saved ``metrics.json`` alone."""
    from bontheory import plotting  # noqa: F401  (selects the Agg backend and the house style)

    metrics = load_metrics(run_dir)
    figures = mod.plot(metrics, Path(run_dir))
    return [Path(p) for p in (figures or [])]


def _summary(mod: types.ModuleType, metrics: Any) -> list[dict[str, Any]] | None:
    fn = getattr(mod, "summary", None)
    rows = fn(metrics) if fn is not None else None
    return [dict(r) for r in rows] if rows else None


def run_experiment(
    mod: types.ModuleType,
    config: Any,
    out: Path,
    *,
    fresh: bool = False,
    x64: bool = False,
    plot: bool = True,
) -> RunOutcome:
    """Runs one experiment into its run folder under ``out``: computes (resuming), saves metrics, plots.

    Raises whatever the experiment raises; ``run.json`` records ``failed`` or ``interrupted`` first.

    Raises:
      PlotError: if ``plot()`` fails (the metrics are saved).
    """
    _enable_x64_if_asked(config, x64)
    name = experiment_name(mod)
    run = open_run(name, config, out, extra={"module": mod.__name__}, fresh=fresh)
    if fresh:
        log(f"{name}: --fresh: stored cells and metrics deleted")
    stored = len(list(run.cells_dir.glob("*.json"))) if run.cells_dir.is_dir() else 0
    log(f"{name}: {run.root}" + (f"  (resuming: {stored} cells stored)" if stored else ""))
    if stored:
        _warn_if_code_changed(run.root, stored)
    run.mark_started()
    start = time.monotonic()
    try:
        metrics = mod.run(config, run)
        run.save_metrics(metrics)
    except KeyboardInterrupt:
        run.mark_finished("interrupted")
        raise
    except BaseException as e:
        run.mark_finished("failed", error=f"{type(e).__name__}: {e}")
        raise
    seconds = time.monotonic() - start
    run.mark_finished("complete")
    metrics = run.load_metrics()  # summarise and plot exactly what was saved
    try:
        rows = _summary(mod, metrics)
        if rows:
            run.save_table("summary", rows)
    except Exception as e:  # the metrics are safe; a broken summary only loses the table
        traceback.print_exc()
        log(f"{name}: summary() failed ({type(e).__name__}: {e}); the metrics are saved in {run.root}")
        rows = None
    outcome = RunOutcome(name, run.root, seconds, dict(run.stats), [], rows)
    if plot:
        try:
            outcome.figures = plot_run(mod, run.root)
        except Exception as e:
            raise PlotError(name, run.root, e) from e
    return outcome


def report(outcome: RunOutcome) -> None:
    """Prints what a run did: time, cells computed and reused, its folder, its summary table, its figures."""
    s = outcome.stats
    print(
        f"{outcome.name}: done in {tqdm.format_interval(outcome.seconds)} "
        f"({s['computed']} cells computed, {s['reused']} reused) -> {outcome.root}"
    )
    if outcome.summary:
        print(format_table(outcome.summary))
    for f in outcome.figures:
        print(f"  figure: {f}")


def interrupted_message(out: Path) -> str:
    """What to tell the user after an interruption."""
    return (
        "\ninterrupted: every finished cell is saved under "
        f"{out}; run the same command again to continue where it stopped."
    )


# ----------------------------------------------------------------------------------------------------
# Reproducing every experiment


@dataclasses.dataclass
class ReproduceOutcome:
    """What :func:`reproduce` did: one row per experiment, the failed ones, whether it was interrupted."""

    rows: list[dict[str, Any]]
    failed: list[str]
    interrupted: bool
    seconds: float


def reproduce(names: Sequence[str], out: Path, *, quick: bool = False, x64: bool = False) -> ReproduceOutcome:
    """Runs the experiments ``names`` one after the other, then plots them; continues past a failure.

    Each experiment starts with the float64 switch the session had (none inherits another's). Prints each
    run's report and, at the end, a table of all; writes it to ``out/reproduce.json``.
    """
    import jax

    rows: list[dict[str, Any]] = []
    done: list[tuple[types.ModuleType, RunOutcome, dict[str, Any]]] = []
    failed: list[str] = []
    start = time.monotonic()
    interrupted = False
    x64_default = bool(jax.config.read("jax_enable_x64"))
    for name in names:
        t0 = time.monotonic()
        jax.config.update("jax_enable_x64", x64_default)
        try:
            mod = load_experiment(name)
            outcome = run_experiment(mod, make_config(mod, quick=quick), out, x64=x64, plot=False)
        except KeyboardInterrupt:
            rows.append({"experiment": name, "status": "interrupted",
                         "time": tqdm.format_interval(time.monotonic() - t0)})
            interrupted = True
            break
        except Exception as e:
            traceback.print_exc()
            log(f"{name}: FAILED ({type(e).__name__}: {e}); continuing with the next experiment")
            failed.append(name)
            rows.append({"experiment": name, "status": "FAILED", "time": tqdm.format_interval(time.monotonic() - t0),
                         "error": f"{type(e).__name__}: {e}"[:80]})
            continue
        report(outcome)
        row = {"experiment": name, "status": "ok", "time": tqdm.format_interval(outcome.seconds),
               "cells": outcome.stats["computed"] + outcome.stats["reused"], "folder": str(outcome.root)}
        rows.append(row)
        done.append((mod, outcome, row))
    jax.config.update("jax_enable_x64", x64_default)
    if not interrupted:
        log("plotting from saved metrics ...")
        for mod, outcome, row in done:
            try:
                outcome.figures = plot_run(mod, outcome.root)
                row["figures"] = len(outcome.figures)
            except KeyboardInterrupt:
                interrupted = True
                break
            except Exception as e:
                traceback.print_exc()
                log(f"{outcome.name}: plotting FAILED ({type(e).__name__}: {e})")
                failed.append(outcome.name)
                row["status"] = "plot FAILED"
    total = time.monotonic() - start
    print(format_table(rows))
    print(f"total {tqdm.format_interval(total)}")
    try:
        atomic_write_json(Path(out) / "reproduce.json", {"quick": quick, "seconds": total, "experiments": rows})
    except OSError:
        pass
    return ReproduceOutcome(rows, failed, interrupted, total)


def plot_target(target: str, out: Path) -> tuple[types.ModuleType, Path]:
    """The experiment module and run folder that ``bontheory plot TARGET`` means.

    ``target`` is a run folder, or an experiment whose newest finished run under ``out`` is meant.

    Raises:
      UsageError: if the folder is not a readable run folder or the experiment has no finished run.
    """
    from bontheory.runs import latest_run

    path = Path(target)
    if path.is_dir() and (path / "config.json").exists():
        try:
            info = read_run_info(path)
        except FileNotFoundError as e:
            raise UsageError(str(e)) from None
        name, module = info["experiment"], info.get("module")
        return load_experiment(name if name in registered() or not module else module), path
    mod = load_experiment(target)
    run_dir = latest_run(out, experiment_name(mod))
    if run_dir is None:
        raise UsageError(
            f"no finished run of {experiment_name(mod)} under {out}; "
            f"`bontheory run {target}` first (or give a run folder)"
        )
    return mod, run_dir
