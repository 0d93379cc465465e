"""The ``bontheory`` command line: ``list``, ``run``, ``plot``, ``reproduce``.

::

    bontheory list                          # the experiments, one line each
    bontheory list NAME                     # NAME's config fields: type, full default, quick value
    bontheory run NAME [--quick | --full] [--set key=value ...] [--seed S] [--out DIR] [--fresh] [--x64]
    bontheory plot NAME | RUN_DIR [--out DIR]
    bontheory reproduce [--quick] [--out DIR] [--x64]

``NAME`` is a registered experiment (``experiments.EXPERIMENTS``) or the dotted path of any importable module
that follows the experiment protocol (see ``experiments/__init__.py``), e.g. ``mylab.sweeps.temperature``.

``--set key=value`` overrides one config field, converted according to the field's annotation: ``int``
(``1000``, ``1_000``, ``1e3``), ``float``, ``bool`` (``true/false``, ``yes/no``, ``1/0``), ``str``, tuples
(``1,2,4`` or ``(1,2,4)``; ``()`` is empty), ``X | None`` (``none``), ``Literal[...]``, and fields of nested
dataclass configs (``--set model.d_model=64``). An unknown key or a value of the wrong type is an error that
lists the valid keys.

Exit codes: 0 success, 1 an experiment failed, 2 bad command line, 130 interrupted (the run resumes when the
same command is run again).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import signal
import sys
import time
import traceback
import types
import typing
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any


DEFAULT_OUT = Path("results")


class ConfigError(ValueError):
    """A bad command-line request: unknown experiment, unknown config key, or a value of the wrong type."""


# ----------------------------------------------------------------------------------------------------
# Experiments


_REQUIRED = ("Config", "QUICK", "run", "plot")


def registered() -> tuple[str, ...]:
    """The registered experiment names, in order."""
    from bontheory import experiments

    return tuple(experiments.EXPERIMENTS)


def load_experiment(name: str) -> types.ModuleType:
    """The module of experiment ``name`` (registered, or a dotted module path), checked against the protocol.

    Raises:
      ConfigError: if there is no such experiment or the module lacks part of the protocol.
    """
    if name in registered():
        module_name = f"bontheory.experiments.{name}"
    elif "." in name:
        module_name = name
    else:
        raise ConfigError(
            f"unknown experiment {name!r}; registered: {', '.join(registered()) or '(none)'} "
            "(or give the dotted path of your own experiment module)"
        )
    try:
        mod = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and module_name.startswith(e.name):
            raise ConfigError(f"experiment module {module_name!r} not found") from e
        raise
    missing = [attr for attr in _REQUIRED if not hasattr(mod, attr)]
    if missing:
        raise ConfigError(f"experiment module {module_name!r} lacks {', '.join(missing)} (see bontheory/experiments/__init__.py)")
    if not dataclasses.is_dataclass(mod.Config):
        raise ConfigError(f"{module_name}.Config must be a dataclass")
    return mod


def _experiment_name(mod: types.ModuleType) -> str:
    return getattr(mod, "NAME", mod.__name__.rsplit(".", 1)[-1])


# ----------------------------------------------------------------------------------------------------
# --set key=value


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be evaluated: fall back to what the dataclass stored
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def config_fields(config: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Every settable key of a dataclass config (nested dataclasses as ``a.b``) → ``(annotation, value)``."""
    hints = _type_hints(type(config))
    out: dict[str, tuple[Any, Any]] = {}
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(config_fields(value, prefix=f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = (hints.get(f.name, Any), value)
    return out


_TRUE = {"true", "yes", "on", "1", "t", "y"}
_FALSE = {"false", "no", "off", "0", "f", "n"}


def _parse_int(text: str) -> int:
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        d = Decimal(t.replace("_", ""))
    except InvalidOperation as e:
        raise ValueError(f"{text!r} is not an integer") from e
    if not d.is_finite() or d != d.to_integral_value():
        raise ValueError(f"{text!r} is not an integer")
    return int(d)


def _split_sequence(text: str) -> list[str]:
    t = text.strip()
    if len(t) >= 2 and t[0] + t[-1] in ("()", "[]"):
        t = t[1:-1].strip()
    if not t:
        return []
    parts = [p.strip() for p in t.split(",")]
    if parts and parts[-1] == "":  # "(1,)"
        parts = parts[:-1]
    return parts


def _guess(text: str) -> Any:
    for conv in (_parse_int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def convert_value(text: str, tp: Any) -> Any:
    """Converts the command-line string ``text`` to a value of annotation ``tp``.

    Raises:
      ValueError: if ``text`` is not a valid value of ``tp``.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return _guess(text)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) < len(args) and text.strip().lower() in ("none", "null"):
            return None
        for option in options:
            try:
                return convert_value(text, option)
            except ValueError:
                continue
        raise ValueError(f"{text!r} is not a valid {_type_name(tp)}")
    if origin is typing.Literal:
        for choice in args:
            if str(choice) == text.strip() or (not isinstance(choice, str) and _guess(text) == choice):
                return choice
        raise ValueError(f"{text!r} is not one of {', '.join(map(repr, args))}")
    if tp is type(None):
        if text.strip().lower() in ("none", "null"):
            return None
        raise ValueError(f"{text!r} is not None")
    if tp is bool:
        t = text.strip().lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        raise ValueError(f"{text!r} is not a boolean (use true or false)")
    if tp is int:
        return _parse_int(text)
    if tp is float:
        try:
            return float(text.strip().replace("_", ""))
        except ValueError as e:
            raise ValueError(f"{text!r} is not a number") from e
    if tp is str:
        return text
    if tp in (tuple, list) or origin in (tuple, list):
        parts = _split_sequence(text)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if args == ((),):  # tuple[()]
                args = ()
            if len(parts) != len(args):
                raise ValueError(f"{text!r} has {len(parts)} items; {_type_name(tp)} needs {len(args)}")
            values = [convert_value(p, a) for p, a in zip(parts, args)]
        else:
            elem = args[0] if args else Any
            values = [convert_value(p, elem) for p in parts]
        return list(values) if (tp is list or origin is list) else tuple(values)
    if isinstance(tp, type) and issubclass(tp, (int, float, str)):  # e.g. an Enum subclass of str
        try:
            return tp(text)
        except Exception as e:
            raise ValueError(f"{text!r} is not a valid {tp.__name__}") from e
    raise ValueError(f"fields of type {_type_name(tp)} cannot be set from the command line")


def _describe_fields(config: Any) -> str:
    lines = []
    for key, (tp, value) in config_fields(config).items():
        lines.append(f"  {key}: {_type_name(tp)} = {value!r}")
    return "\n".join(lines)


def _replace_path(config: Any, path: list[str], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(config, **{path[0]: value})
    inner = getattr(config, path[0])
    return dataclasses.replace(config, **{path[0]: _replace_path(inner, path[1:], value)})


def apply_overrides(config: Any, assignments: Sequence[str]) -> Any:
    """A copy of the dataclass ``config`` with ``key=value`` assignments applied, each type-checked.

    Raises:
      ConfigError: for a malformed assignment, an unknown key (the message lists the valid keys), a value
        that does not convert to the field's type, or a value the config itself rejects.
    """
    fields = config_fields(config)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {assignment!r}")
        if key not in fields:
            raise ConfigError(
                f"unknown config key {key!r} for {type(config).__module__}.{type(config).__qualname__}; "
                f"valid keys:\n{_describe_fields(config)}"
            )
        tp, _ = fields[key]
        try:
            value = convert_value(text, tp)
        except ValueError as e:
            raise ConfigError(f"bad value for {key} ({_type_name(tp)}): {e}") from None
        try:
            config = _replace_path(config, key.split("."), value)
        except (ValueError, TypeError) as e:  # the config's own __post_init__ checks
            raise ConfigError(f"the config rejects {key}={text}: {e}") from None
    return config


# ----------------------------------------------------------------------------------------------------
# Tables


def _format_cell(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of flat dicts as an aligned plain-text table (floats with 4 significant digits)."""
    if not rows:
        return "(no rows)"
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    cells = [[_format_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows) for c in columns
    ]  # numbers right-aligned, text left-aligned

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([fmt(columns), fmt(["-" * w for w in widths]), *(fmt(r) for r in cells)])


# ----------------------------------------------------------------------------------------------------
# Running and plotting


@dataclasses.dataclass
class RunOutcome:
    """What :func:`run_experiment` did."""

    name: str
    root: Path
    seconds: float
    stats: dict[str, int]
    figures: list[Path]
    summary: list[dict[str, Any]] | None


def _enable_x64_if_asked(config: Any, x64: bool) -> None:
    if x64 or getattr(config, "x64", False) is True or getattr(config, "float64", False) is True:
        import jax

        jax.config.update("jax_enable_x64", True)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def plot_run(mod: types.ModuleType, run_dir: Path) -> list[Path]:
    """Regenerates ``mod``'s figures in ``run_dir`` from its saved ``metrics.json`` alone."""
    from bontheory import plotting  # noqa: F401  (selects the Agg backend and the house style)
    from bontheory.runs import load_metrics

    metrics = load_metrics(run_dir)
    figures = mod.plot(metrics, Path(run_dir))
    return [Path(p) for p in (figures or [])]


def _summary(mod: types.ModuleType, metrics: Any) -> list[dict[str, Any]] | None:
    fn = getattr(mod, "summary", None)
    if fn is None:
        return None
    rows = fn(metrics)
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
    """
    from bontheory.runs import open_run

    _enable_x64_if_asked(config, x64)
    name = _experiment_name(mod)
    run = open_run(name, config, out, extra={"module": mod.__name__})
    if fresh:
        removed = run.clear_cells()
        run.metrics_path.unlink(missing_ok=True)
        if removed:
            _log(f"{name}: --fresh: deleted {removed} stored cells")
    stored = len(list(run.cells_dir.glob("*.json"))) if run.cells_dir.is_dir() else 0
    _log(f"{name}: {run.root}" + (f"  (resuming: {stored} cells stored)" if stored else ""))
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
        _log(f"{name}: summary() failed ({type(e).__name__}: {e}); the metrics are saved in {run.root}")
        rows = None
    outcome = RunOutcome(name, run.root, seconds, dict(run.stats), [], rows)
    if plot:
        try:
            outcome.figures = plot_run(mod, run.root)
        except Exception as e:
            raise PlotError(name, run.root, e) from e
    return outcome


class PlotError(RuntimeError):
    """``plot()`` failed after the metrics were saved: fix it and run ``bontheory plot RUN_DIR``."""

    def __init__(self, name: str, root: Path, error: BaseException):
        super().__init__(
            f"{name}: plot() failed ({type(error).__name__}: {error}); the metrics are saved: "
            f"fix plot() and run `bontheory plot {root}`"
        )


def _report(outcome: RunOutcome) -> None:
    from tqdm import tqdm

    format_duration = tqdm.format_interval

    s = outcome.stats
    print(
        f"{outcome.name}: done in {format_duration(outcome.seconds)} "
        f"({s['computed']} cells computed, {s['reused']} reused) -> {outcome.root}"
    )
    if outcome.summary:
        print(format_table(outcome.summary))
    for f in outcome.figures:
        print(f"  figure: {f}")


def _interrupted_message(out: Path) -> str:
    return (
        "\ninterrupted: every finished cell is saved under "
        f"{out}; run the same command again to continue where it stopped."
    )


# ----------------------------------------------------------------------------------------------------
# Commands


def _cmd_list(args: argparse.Namespace) -> int:
    if args.name:
        mod = load_experiment(args.name)
        print(f"{_experiment_name(mod)}: {getattr(mod, 'SUMMARY', '')}")
        full, quick = config_fields(mod.Config()), config_fields(mod.QUICK)
        rows = [
            {"key": k, "type": _type_name(tp), "full": repr(v), "quick": repr(quick[k][1]) if k in quick else ""}
            for k, (tp, v) in full.items()
        ]
        print(format_table(rows))
        return 0
    names = registered()
    width = max((len(n) for n in names), default=0)
    for name in names:
        try:
            summary = getattr(load_experiment(name), "SUMMARY", "")
        except Exception as e:  # one broken module must not hide the others
            summary = f"(cannot import: {type(e).__name__}: {e})"
        print(f"{name:<{width}}  {summary}")
    return 0


def _make_config(mod: types.ModuleType, quick: bool, sets: Sequence[str], seed: int | None) -> Any:
    config = mod.QUICK if quick else mod.Config()
    config = apply_overrides(config, list(sets or []))
    if seed is not None:
        if "seed" not in config_fields(config):
            raise ConfigError(f"{_experiment_name(mod)}'s config has no seed field")
        config = apply_overrides(config, [f"seed={seed}"])
    return config


def _cmd_run(args: argparse.Namespace) -> int:
    mod = load_experiment(args.name)
    config = _make_config(mod, args.quick, args.set, args.seed)
    try:
        outcome = run_experiment(mod, config, args.out, fresh=args.fresh, x64=args.x64)
    except KeyboardInterrupt:
        _log(_interrupted_message(args.out))
        return 130
    except PlotError as e:
        traceback.print_exc()
        _log(str(e))
        return 1
    _report(outcome)
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from bontheory.runs import CorruptResultError, latest_run, read_run_info

    target = Path(args.target)
    if target.is_dir() and (target / "config.json").exists():
        run_dir = target
        info = read_run_info(run_dir)
        name = info["experiment"]
        module = info.get("module")
        mod = load_experiment(name if name in registered() or not module else module)
    else:
        mod = load_experiment(args.target)
        run_dir = latest_run(args.out, _experiment_name(mod))
        if run_dir is None:
            raise ConfigError(
                f"no finished run of {_experiment_name(mod)} under {args.out}; "
                f"`bontheory run {args.target}` first (or give a run folder)"
            )
    try:
        figures = plot_run(mod, run_dir)
    except FileNotFoundError:
        raise ConfigError(f"{run_dir} has no metrics.json: the run never finished; run it again to resume") from None
    except CorruptResultError as e:
        raise ConfigError(f"{e}; run the experiment again to recompute its metrics (finished cells are reused)") from None
    for f in figures:
        print(f)
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    format_duration = tqdm.format_interval
    from bontheory.runs import atomic_write_json

    names = list(args.only) if args.only else list(registered())
    rows: list[dict[str, Any]] = []
    done: list[tuple[types.ModuleType, RunOutcome]] = []
    failed: list[str] = []
    start = time.monotonic()
    interrupted = False
    import jax

    x64_default = bool(jax.config.read("jax_enable_x64"))
    for name in names:
        t0 = time.monotonic()
        jax.config.update("jax_enable_x64", x64_default)  # no experiment inherits another's float64 switch
        try:
            mod = load_experiment(name)
            config = _make_config(mod, args.quick, [], None)
            outcome = run_experiment(mod, config, args.out, x64=args.x64, plot=False)
        except KeyboardInterrupt:
            rows.append({"experiment": name, "status": "interrupted", "time": format_duration(time.monotonic() - t0)})
            interrupted = True
            break
        except Exception as e:
            traceback.print_exc()
            _log(f"{name}: FAILED ({type(e).__name__}: {e}); continuing with the next experiment")
            failed.append(name)
            rows.append({"experiment": name, "status": "FAILED", "time": format_duration(time.monotonic() - t0),
                         "error": f"{type(e).__name__}: {e}"[:80]})
            continue
        _report(outcome)
        done.append((mod, outcome))
        rows.append({"experiment": name, "status": "ok", "time": format_duration(outcome.seconds),
                     "cells": outcome.stats["computed"] + outcome.stats["reused"], "folder": str(outcome.root)})
    jax.config.update("jax_enable_x64", x64_default)
    if not interrupted:
        _log("plotting from saved metrics ...")
        for (mod, outcome), row in zip(done, [r for r in rows if r["status"] == "ok"]):
            try:
                outcome.figures = plot_run(mod, outcome.root)
                row["figures"] = len(outcome.figures)
            except KeyboardInterrupt:
                interrupted = True
                break
            except Exception as e:
                traceback.print_exc()
                _log(f"{outcome.name}: plotting FAILED ({type(e).__name__}: {e})")
                failed.append(outcome.name)
                row["status"] = "plot FAILED"
    total = time.monotonic() - start
    print(format_table(rows))
    print(f"total {format_duration(total)}")
    try:
        atomic_write_json(args.out / "reproduce.json", {"quick": args.quick, "seconds": total, "experiments": rows})
    except OSError:
        pass
    if interrupted:
        _log(_interrupted_message(args.out))
        return 130
    if failed:
        _log(f"{len(failed)} experiment(s) failed: {', '.join(failed)}")
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bontheory`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    previous = None
    try:  # `kill` (SIGTERM) is handled like Ctrl-C: the run records it was interrupted
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    except ValueError:  # not in the main thread
        pass
    try:
        return {"list": _cmd_list, "run": _cmd_run, "plot": _cmd_plot, "reproduce": _cmd_reproduce}[args.command](args)
    except ConfigError as e:
        print(f"bontheory {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _log("\ninterrupted.")
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
