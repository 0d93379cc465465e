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

import contextlib
import dataclasses
import importlib
import io
import os
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from tqdm import tqdm

from bontheory.configs import apply_overrides, config_fields, type_name
from bontheory.runs import git_state, load_metrics, open_run, read_run_info
from bontheory.storage import CorruptResultError, atomic_write_json

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


def make_config(
    mod: types.ModuleType, *, quick: bool = False, sets: Sequence[str] = (), seed: int | None = None
) -> Any:
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
        aligned = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))
        return "  ".join(aligned).rstrip()

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


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or ``kill``; its folder (``root``) is marked ``interrupted`` and resumes."""

    def __init__(self, root: Path):
        super().__init__(str(root))
        self.root = root


def interrupted_message(where: Path) -> str:
    """What to tell the user after an interruption of the run in folder ``where``."""
    return (
        f"\ninterrupted: {where} is marked interrupted and every finished cell in it is saved; "
        "run the same command again to continue where it stopped."
    )


#: Seconds a run may take to reach its next cell after Ctrl-C or ``kill`` before it stops at once
#: (``BONTHEORY_STOP_GRACE`` overrides it; clusters give a process 10 to 30 seconds before SIGKILL).
STOP_GRACE = 10.0


def _say(text: str) -> None:
    """Writes to stderr with ``os.write``: safe inside a signal handler, even one that interrupted a print."""
    try:
        os.write(2, text.encode())
    except OSError:
        pass


class StopRequest(threading.Event):
    """Set by the first Ctrl-C or ``kill``: the run stops before its next cell (see :func:`stop_on_signals`).

    Attributes:
      grace: seconds after the request before the process stops at once.
      run: the run in progress (set by :func:`run_experiment`), marked ``interrupted`` by a stop at once.
    """

    def __init__(self, grace: float = STOP_GRACE):
        super().__init__()
        self.grace = grace
        self.run: Any = None
        self._timer: threading.Timer | None = None

    def request(self, what: str) -> None:
        """The first request sets the event and starts the grace timer; a second one stops at once."""
        if self.is_set():
            self.stop_now()
        self.set()
        _say(f"\n{what}: stopping after the current cell (at most {self.grace:g} s; again to stop at once)\n")
        self._timer = threading.Timer(self.grace, self.stop_now)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def stop_now(self) -> None:
        """Marks the run in progress ``interrupted``, says so and ends the process with exit code 130.

        ``os._exit`` skips the interpreter's shutdown, where XLA computations still running crash it. Every
        stored cell is safe (written atomically); the cell being computed is lost.
        """
        run = self.run
        try:
            if run is not None:
                run.mark_finished("interrupted")
        finally:
            _say(interrupted_message(run.root) + "\n" if run is not None else "\ninterrupted.\n")
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(130)


@contextlib.contextmanager
def stop_on_signals(grace: float | None = None) -> Iterator[StopRequest]:
    """Within the block, Ctrl-C (SIGINT) and ``kill`` (SIGTERM) stop a run between two cells.

    Yields the :class:`StopRequest` to pass to :func:`run_experiment`. The first signal sets it: the run
    stops before its next cell (:meth:`bontheory.runs.Run.cell`), is marked ``interrupted``, and the command
    exits with code 130. If the current cell is still computing ``grace`` seconds later (default
    :data:`STOP_GRACE`, or ``BONTHEORY_STOP_GRACE``), or at a second signal, the process stops at once
    (:meth:`StopRequest.stop_now`: the run is marked ``interrupted``, exit code 130, the cell is lost).

    Why not raise ``KeyboardInterrupt`` in the handler: a Python signal handler runs between two bytecodes of
    whatever code is running, JAX's dispatch and garbage-collection callbacks included. An exception raised
    there is lost ("Exception ignored in _xla_gc_callback", the run went on) or leaves XLA mid-call, and the
    interpreter then crashed at exit (exit code 139 in 2 of 3 tries of ``kill`` during a vBoN run).

    Outside the main thread (where no handler can be installed) no signal sets it.

    Raises:
      UsageError: if ``BONTHEORY_STOP_GRACE`` is not a number of seconds.
    """
    if grace is None:
        text = os.environ.get("BONTHEORY_STOP_GRACE", "").strip()
        try:
            grace = float(text) if text else STOP_GRACE
        except ValueError:
            grace = -1.0
        if not grace >= 0:
            raise UsageError(f"BONTHEORY_STOP_GRACE must be a number of seconds >= 0, got {text!r}")
    stop = StopRequest(grace)
    names = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

    def handler(signum: int, frame: Any) -> None:
        stop.request(names.get(signum, f"signal {signum}"))

    previous: dict[int, Any] = {}
    try:
        for signum in names:
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield stop
    finally:
        stop.cancel()
        for signum, old in previous.items():
            signal.signal(signum, old)


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
    stop: StopRequest | None = None,
) -> RunOutcome:
    """Runs one experiment into its run folder under ``out``: computes (resuming), saves metrics, plots.

    The run computes in float64 if ``x64`` or the config's ``x64`` field is true, or if JAX already does
    (the precision is part of the run folder's identity); JAX's float64 switch is restored afterwards.

    Args:
      mod: the experiment module (:func:`load_experiment`).
      config: its config (:func:`make_config`).
      out: the results folder.
      fresh: delete the run's stored cells and metrics first.
      x64: compute in float64.
      plot: draw the figures after saving the metrics.
      stop: stops the run before its next cell when set (:func:`stop_on_signals`).

    Raises:
      RunInterrupted: on Ctrl-C, ``kill`` or ``stop`` (``run.json`` says ``interrupted``).
      UsageError: if the run folder cannot be used (its ``config.json`` was edited or is damaged).
      PlotError: if ``plot()`` fails (the metrics are saved).
      Exception: whatever the experiment raises (``run.json`` says ``failed``).
    """
    import jax

    previous = bool(jax.config.read("jax_enable_x64"))
    if x64 or getattr(config, "x64", False) is True:
        jax.config.update("jax_enable_x64", True)
    try:
        return _run_experiment(mod, config, Path(out), fresh=fresh, plot=plot, stop=stop)
    finally:
        jax.config.update("jax_enable_x64", previous)


def _run_experiment(
    mod: types.ModuleType, config: Any, out: Path, *, fresh: bool, plot: bool, stop: StopRequest | None
) -> RunOutcome:
    name = experiment_name(mod)
    try:
        run = open_run(name, config, out, extra={"module": mod.__name__}, fresh=fresh, stop=stop)
    except CorruptResultError as e:
        raise UsageError(f"{e}; move the folder away, or run with --fresh to start it over") from None
    if fresh:
        log(f"{name}: --fresh: stored cells and metrics deleted")
    stored = len(list(run.cells_dir.glob("*.json"))) if run.cells_dir.is_dir() else 0
    log(f"{name}: {run.root}" + (f"  (resuming: {stored} cells stored)" if stored else ""))
    if stored:
        _warn_if_code_changed(run.root, stored)
    run.mark_started()
    start = time.monotonic()
    if stop is not None:
        stop.run = run  # a stop at once marks it interrupted
    try:
        metrics = mod.run(config, run)
        run.save_metrics(metrics)
    except KeyboardInterrupt as e:
        if stop is not None:
            stop.cancel()  # stopped in time: no stop at once
        run.mark_finished("interrupted")
        raise RunInterrupted(run.root) from e
    except BaseException as e:
        run.mark_finished("failed", error=f"{type(e).__name__}: {e}")
        raise
    finally:
        if stop is not None:
            stop.run = None
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


# ----------------------------------------------------------------------------------------------------
# Reproducing every experiment


@dataclasses.dataclass
class ReproduceOutcome:
    """What :func:`reproduce` did: one row per experiment, the failed ones, and where it was interrupted.

    ``interrupted`` is the run folder that was stopped (the results folder if it stopped between runs),
    ``None`` if it was not interrupted.
    """

    rows: list[dict[str, Any]]
    failed: list[str]
    interrupted: Path | None
    seconds: float


def reproduce(
    names: Sequence[str],
    out: Path,
    *,
    quick: bool = False,
    x64: bool = False,
    stop: StopRequest | None = None,
) -> ReproduceOutcome:
    """Runs the experiments ``names`` one after the other, then plots them; continues past a failure.

    Each experiment starts with the float64 switch the session had (:func:`run_experiment` restores it).
    Prints each run's report and, at the end, a table of all; writes it to ``out/reproduce.json``.
    ``stop`` (:func:`stop_on_signals`) stops the current run before its next cell and starts no other.
    """
    out = Path(out)
    rows: list[dict[str, Any]] = []
    done: list[tuple[types.ModuleType, RunOutcome, dict[str, Any]]] = []
    failed: list[str] = []
    start = time.monotonic()
    interrupted: Path | None = None
    for name in names:
        t0 = time.monotonic()
        try:
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
            mod = load_experiment(name)
            outcome = run_experiment(mod, make_config(mod, quick=quick), out, x64=x64, plot=False, stop=stop)
        except KeyboardInterrupt as e:
            interrupted = e.root if isinstance(e, RunInterrupted) else out
            rows.append({"experiment": name, "status": "interrupted",
                         "time": tqdm.format_interval(time.monotonic() - t0), "folder": str(interrupted)})
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
    if interrupted is None:
        log("plotting from saved metrics ...")
        for mod, outcome, row in done:
            try:
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt
                outcome.figures = plot_run(mod, outcome.root)
                row["figures"] = len(outcome.figures)
            except KeyboardInterrupt:
                interrupted = out
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
        atomic_write_json(out / "reproduce.json", {"quick": quick, "seconds": total, "experiments": rows})
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
