"""Run folders: provenance, resumable sweeps.

A run lives in one folder ``<out>/<experiment>-<config hash>/``:

* ``config.json``  the experiment name, the config (every field), the seed, and the provenance of the
  session that created the folder: package/JAX/NumPy/Python versions, backend, devices, float64 on/off,
  and the git commit (with whether the checkout had uncommitted changes) when run from a git checkout;
* ``run.json``  the run's status (``running``, ``complete``, ``interrupted``, ``failed``), and one entry per
  session that worked on it (start and end time, provenance, cells computed and reused), so a run resumed
  on another machine or JAX version says so;
* ``cells/<cell>.json``  one file per finished sweep cell, each holding a SHA-256 checksum of its payload,
  so a corrupt or partial file is detected and recomputed, never silently used;
* ``metrics.json`` (checksummed; read it with :func:`load_metrics`) and one CSV per table: every metrics
  entry that is a list of flat records (dicts of numbers and strings) is also written as ``<key>.csv``, and
  the experiment's ``summary(metrics)`` rows as ``summary.csv``;
* figures as PNG and PDF (see :mod:`bontheory.plotting`).

Every file is written atomically (:mod:`bontheory.storage`), so an interrupted run leaves either the old
file or the new one, never half of one. The same config always maps to the same folder (the hash covers
every field, the seed and the precision), so a run started again continues where it stopped, and a changed
config gets a new folder instead of mixing results.

What the hash does *not* cover is the code: if you change an experiment's computation without changing its
config, stored cells from the old code are reused (``bontheory run`` warns when the git commit differs
from the one that created the folder). Start afresh with ``bontheory run NAME --fresh``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import hashlib
import io
import json
import os
import platform
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from bontheory.storage import (
    CorruptResultError,
    atomic_write_json,
    atomic_write_text,
    canonical_json,
    read_checked_json,
    read_json,
    to_jsonable,
)

_FOLDER_RE = re.compile(r"^(?P<experiment>.+)-(?P<hash>[0-9a-f]{12})$")


def _read_json(path: Path) -> Any:
    """Reads a JSON file; ``None`` if it is missing or unreadable."""
    try:
        return read_json(path)
    except (OSError, CorruptResultError):
        return None


# ----------------------------------------------------------------------------------------------------
# Configs and provenance


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as a plain dict (nested dataclasses and tuples made JSON-able)."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise TypeError(f"a config must be a dataclass instance, got {type(config).__name__}")
    return to_jsonable(config)


def config_hash(experiment: str, config: Any, x64: bool) -> str:
    """A short stable hash (12 hex digits) of a run's identity: experiment, every config field, precision.

    Args:
      experiment: the experiment's name.
      config: the config (every field counts, the seed included).
      x64: whether the run computes with float64 (``jax_enable_x64``): the same config in float32 and in
        float64 gives different numbers, so it is a different run.
    """
    blob = canonical_json({"experiment": experiment, "config": config_to_dict(config), "x64": bool(x64)})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def git_state() -> dict[str, Any]:
    """The code's git commit and whether the checkout has uncommitted changes, if bontheory runs from one.

    Returns:
      ``{"git_commit": <40 hex digits>, "git_dirty": bool}`` when this ``bontheory`` package is a tracked
      folder of a git checkout (dirty: a tracked file differs from the commit; untracked files such as
      results do not count); ``{}`` otherwise (an installed package, or no ``git``).
    """
    package = Path(__file__).resolve().parent

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(package), *args], capture_output=True, text=True, timeout=30)

    try:
        if git("ls-files", "--error-unmatch", "__init__.py").returncode != 0:
            return {}
        head, status = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {}
    if head.returncode != 0 or status.returncode != 0:
        return {}
    return {"git_commit": head.stdout.strip(), "git_dirty": bool(status.stdout.strip())}


def provenance() -> dict[str, Any]:
    """Where and with what a computation ran: versions, backend, devices, float64 on/off, git commit.

    The git commit and dirty flag (see :func:`git_state`) are present only when bontheory runs from a
    git checkout.
    """
    import jax
    import numpy as np

    from bontheory import __version__

    return {
        **git_state(),
        "bontheory_version": __version__,
        "jax_version": jax.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "process_count": jax.process_count(),
        "x64": bool(jax.config.read("jax_enable_x64")),
    }


# ----------------------------------------------------------------------------------------------------
# Tables


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def is_table(value: Any) -> bool:
    """True if ``value`` is a non-empty list of flat records (dicts whose values are numbers/strings/None)."""
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(row, Mapping) and all(_is_scalar(v) for v in row.values()) for row in value)
    )


def _table_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    rows = [to_jsonable(dict(r)) for r in rows]
    columns: list[str] = []
    for row in rows:  # union of keys, in order of first appearance
        columns.extend(k for k in row if k not in columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------
# Runs


def _safe_cell_filename(name: str) -> str:
    safe = "".join(c if (c.isalnum() or c in "-_.=,") else "_" for c in name)
    if safe != name or len(safe) > 150 or safe.startswith("."):
        # distinct names must never share a file: add a hash of the original name
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
        safe = f"{safe[:120].lstrip('.')}~{digest}"
    return safe


@dataclasses.dataclass(frozen=True)
class Run:
    """One run folder. Create it with :func:`open_run`; experiments receive it as ``run(config, run)``.

    Attributes:
      root: the folder.
      experiment: the experiment's name.
      config: the config (a frozen dataclass).
      stats: counters for this session: ``computed`` and ``reused`` cells, ``recomputed_corrupt``.
      x64: whether the run computes in float64 (part of the folder's identity).
      stop: when set (e.g. by a signal handler), the next :meth:`cell` raises ``KeyboardInterrupt`` instead
        of starting: the run stops between cells, never inside a computation.
    """

    root: Path
    experiment: str
    config: Any
    stats: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"computed": 0, "reused": 0, "recomputed_corrupt": 0}, compare=False
    )
    x64: bool = False
    stop: threading.Event | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def cells_dir(self) -> Path:
        return self.root / "cells"

    def cell_path(self, name: str) -> Path:
        """The file holding sweep cell ``name`` (distinct names always get distinct files)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a cell name must be a non-empty string, got {name!r}")
        return self.cells_dir / f"{_safe_cell_filename(name)}.json"

    def _read_cell(self, name: str) -> Any:
        stored = read_checked_json(self.cell_path(name))
        if not isinstance(stored, dict) or stored.get("cell") != name or "value" not in stored:
            raise CorruptResultError(f"{self.cell_path(name)} does not hold cell {name!r}")
        return stored["value"]

    def has_cell(self, name: str) -> bool:
        """True if the cell is stored and passes its checksum."""
        try:
            self._read_cell(name)
        except (FileNotFoundError, CorruptResultError):
            return False
        return True

    def cell(self, name: str, compute: Callable[[], Any]) -> Any:
        """Returns the stored result of sweep cell ``name``, computing and storing it first if needed.

        ``compute()`` must return JSON-able data (arrays are converted with ``tolist``). A stored cell that
        is corrupt or partial is recomputed (with a warning on stderr), never silently used. Results come
        back as plain JSON values (dicts, lists, floats), whether they were just computed or read from disk,
        so a resumed run and an uninterrupted one see identical values.

        Args:
          name: a unique name for the cell within the run, e.g. ``f"n={n},trial={t}"``.
          compute: a function of no arguments computing the cell.

        Raises:
          KeyboardInterrupt: if the run was asked to stop (``stop`` is set).
        """
        if self.stop is not None and self.stop.is_set():
            raise KeyboardInterrupt(f"stop requested before cell {name!r}")
        try:
            value = self._read_cell(name)
        except FileNotFoundError:
            pass
        except CorruptResultError as e:
            print(f"warning: recomputing cell {name!r}: {e}", file=sys.stderr)
            self.stats["recomputed_corrupt"] += 1
        else:
            self.stats["reused"] += 1
            return value
        value = to_jsonable(compute())
        atomic_write_json(self.cell_path(name), {"cell": name, "value": value}, checksum=True)
        self.stats["computed"] += 1
        return json.loads(json.dumps(value))

    def clear_cells(self) -> int:
        """Deletes every stored cell (``--fresh``); returns how many were deleted."""
        count = 0
        if self.cells_dir.is_dir():
            for p in self.cells_dir.glob("*.json"):
                p.unlink()
                count += 1
        return count

    # -- metrics and tables ------------------------------------------------------------------------

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.json"

    def save_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """Writes ``metrics.json`` (checksummed) atomically, and each table entry as ``<key>.csv``.

        A table entry is a top-level key whose value is a list of flat records (see :func:`is_table`).
        """
        if not isinstance(metrics, Mapping):
            raise TypeError(f"an experiment's run() must return a dict of metrics, got {type(metrics).__name__}")
        data = to_jsonable(metrics)
        for key, value in data.items():
            if is_table(value):
                self.save_table(key, value)
        return atomic_write_json(self.metrics_path, data, checksum=True)

    def load_metrics(self) -> Any:
        """Reads ``metrics.json``; raises ``CorruptResultError`` if it cannot be trusted."""
        return read_checked_json(self.metrics_path)

    def save_table(self, name: str, rows: Iterable[Mapping[str, Any]]) -> Path:
        """Writes a list of flat dicts as ``<name>.csv`` atomically (columns: the union of the rows' keys)."""
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise ValueError(f"a table name must be letters, digits, '-' or '_', got {name!r}")
        return atomic_write_text(self.root / f"{name}.csv", _table_csv(rows))

    # -- status ------------------------------------------------------------------------------------

    @property
    def info_path(self) -> Path:
        return self.root / "run.json"

    def _update_info(self, **session_fields: Any) -> None:
        info = _read_json(self.info_path)
        if not isinstance(info, dict) or not isinstance(info.get("sessions"), list):
            info = {"experiment": self.experiment, "sessions": []}
        status = session_fields.pop("status", None)
        if session_fields.pop("new_session", False):
            info["sessions"].append({})
        if not info["sessions"]:
            info["sessions"].append({})
        info["sessions"][-1].update(session_fields)
        if status is not None:
            info["status"] = status
        info["cells_stored"] = len(list(self.cells_dir.glob("*.json"))) if self.cells_dir.is_dir() else 0
        atomic_write_json(self.info_path, info)

    def mark_started(self) -> None:
        """Records a new session in ``run.json`` (status ``running``) with the current provenance."""
        self._update_info(new_session=True, status="running", started=_now(), provenance=provenance())

    def mark_finished(self, status: str, error: str | None = None) -> None:
        """Records the end of the session: ``complete``, ``interrupted`` or ``failed`` (with the error)."""
        fields: dict[str, Any] = {"ended": _now(), "status": status, **{f"cells_{k}": v for k, v in self.stats.items()}}
        if error is not None:
            fields["error"] = error
        # the provenance at the end tells whether the experiment switched float64 on while running
        import jax

        fields["x64_at_end"] = bool(jax.config.read("jax_enable_x64"))
        self._update_info(**fields)


def open_run(
    experiment: str,
    config: Any,
    out_dir: str | os.PathLike,
    *,
    extra: Mapping[str, Any] | None = None,
    fresh: bool = False,
    x64: bool | None = None,
    stop: threading.Event | None = None,
) -> Run:
    """Opens (creating if needed) the run folder for ``experiment`` with ``config`` under ``out_dir``.

    The folder name carries a hash of the config and the precision, so the same config resumes the same
    folder and a changed config, or the same config in the other precision, gets a new one.
    ``config.json`` is written when the folder is created (or if it is missing) and kept afterwards: it
    records who created the run; ``run.json`` records each later session. ``extra`` entries (e.g. the
    experiment's module) are added to a new ``config.json``. ``fresh=True`` deletes the stored cells and
    metrics and writes ``config.json`` anew: the run starts over.

    Args:
      experiment, config: the run's experiment name and config (a dataclass).
      out_dir: the results folder holding run folders.
      extra: entries added to a new ``config.json``.
      fresh: start over (see above).
      x64: whether the run computes in float64; by default JAX's current ``jax_enable_x64``.
      stop: an event that stops the run at its next cell when set (see :class:`Run`).

    Raises:
      CorruptResultError: if the folder's ``config.json`` is not valid JSON, or holds a different config or
        precision (a hand-edited file or a hash collision): the folder cannot be trusted to resume.
    """
    if x64 is None:
        import jax

        x64 = bool(jax.config.read("jax_enable_x64"))
    config_dict = config_to_dict(config)
    root = Path(out_dir) / f"{experiment}-{config_hash(experiment, config, x64)}"
    root.mkdir(parents=True, exist_ok=True)
    run = Run(root=root, experiment=experiment, config=config, x64=x64, stop=stop)
    path = root / "config.json"
    if fresh:
        run.clear_cells()
        run.metrics_path.unlink(missing_ok=True)
    elif path.exists():
        existing = read_json(path)
        if not isinstance(existing, dict) or "config" not in existing:
            raise CorruptResultError(f"{path} is not a bontheory config.json: it was edited or damaged")
        if (existing.get("experiment"), existing["config"], existing.get("x64")) != (
            experiment, json.loads(json.dumps(config_dict)), x64
        ):
            raise CorruptResultError(
                f"{path} holds a different experiment, config or precision than the one being run: "
                "it was edited (or the folder was copied)"
            )
        return run
    atomic_write_json(
        path,
        {
            "experiment": experiment,
            "config": config_dict,
            "seed": config_dict.get("seed"),
            "x64": x64,
            "created": _now(),
            "provenance": provenance(),
            **(extra or {}),
        },
    )
    return run
    atomic_write_json(
        root / "config.json",
        {
            "experiment": experiment,
            "config": config_dict,
            "seed": config_dict.get("seed"),
            "created": _now(),
            "provenance": provenance(),
            **(extra or {}),
        },
    )
    return run


# ----------------------------------------------------------------------------------------------------
# Finding runs


def read_run_info(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a run folder, with ``status`` from ``run.json`` (``"unknown"`` if absent).

    Raises:
      FileNotFoundError: if ``run_dir`` has no readable ``config.json``.
    """
    run_dir = Path(run_dir)
    info = _read_json(run_dir / "config.json")
    if not isinstance(info, dict) or "experiment" not in info:
        raise FileNotFoundError(f"{run_dir} is not a bontheory run folder (no readable config.json)")
    status = _read_json(run_dir / "run.json")
    info = dict(info)
    info["status"] = status.get("status", "unknown") if isinstance(status, dict) else "unknown"
    return info


def find_runs(out_dir: str | os.PathLike, experiment: str | None = None) -> list[Path]:
    """Run folders under ``out_dir`` (of ``experiment`` if given), oldest first.

    A folder's age is the modification time of its ``metrics.json`` (or of ``config.json`` if it has no
    metrics yet).
    """
    out = Path(out_dir)
    if not out.is_dir():
        return []
    found = []
    for d in out.iterdir():
        m = _FOLDER_RE.match(d.name)
        if not (d.is_dir() and m):
            continue
        try:
            info = read_run_info(d)
        except FileNotFoundError:
            continue
        if experiment is not None and info["experiment"] != experiment:
            continue
        stamp = d / "metrics.json" if (d / "metrics.json").exists() else d / "config.json"
        found.append((stamp.stat().st_mtime_ns, d.name, d))
    return [d for _, _, d in sorted(found)]


def latest_run(out_dir: str | os.PathLike, experiment: str, *, with_metrics: bool = True) -> Path | None:
    """The newest run folder of ``experiment`` under ``out_dir`` (with a ``metrics.json`` if asked)."""
    runs = [d for d in find_runs(out_dir, experiment) if not with_metrics or (d / "metrics.json").exists()]
    return runs[-1] if runs else None


def load_metrics(run_dir: str | os.PathLike) -> Any:
    """Reads a run folder's ``metrics.json`` (checksummed).

    Raises:
      FileNotFoundError: if the run has no metrics (it never finished).
      CorruptResultError: if the file is corrupt or was edited.
    """
    return read_checked_json(Path(run_dir) / "metrics.json")
