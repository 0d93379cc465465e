"""Run folders: provenance, atomic writes, resumable sweeps.

A run lives in one folder ``<out>/<experiment>-<config hash>/``:

* ``config.json``  the experiment name, the config (every field), the seed, package/JAX/NumPy versions,
  devices, and whether float64 is on;
* ``cells/<cell>.json``  one file per finished sweep cell, each holding a SHA-256 checksum of its payload,
  so a corrupt or partial file is detected and recomputed, never silently used;
* ``metrics.json`` (and CSV tables, where an experiment has tables)  the run's results;
* figures as PNG and PDF.

Every write goes to a temporary file in the same folder and is renamed into place (``os.replace`` is
atomic on POSIX and Windows), so an interrupted run leaves either the old file or the new one, never half
of one. The same config always maps to the same folder (the hash covers every field and the seed), so a run
started again continues where it stopped, and a changed config gets a new folder instead of mixing results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CorruptResultError",
    "Run",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "config_hash",
    "config_to_dict",
    "open_run",
    "read_checked_json",
    "to_jsonable",
]


class CorruptResultError(ValueError):
    """A results file exists but cannot be trusted (truncated, not JSON, or checksum mismatch)."""


def to_jsonable(obj: Any) -> Any:
    """Converts arrays, NumPy/JAX scalars, tuples and dataclasses into plain JSON values.

    Non-finite floats are written as the strings ``"nan"``, ``"inf"`` and ``"-inf"`` (JSON has no such
    numbers); :func:`from_jsonable_float` reads them back.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy / jax arrays and scalars
        return to_jsonable(obj.tolist())
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        if math.isnan(obj):
            return "nan"
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    raise TypeError(f"cannot store a value of type {type(obj).__name__} as JSON: {obj!r}")


def from_jsonable_float(value: Any) -> float:
    """Reads a float written by :func:`to_jsonable` (including ``"nan"``/``"inf"``)."""
    return float(value)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _canonical(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"))


def _checksum(payload: Any) -> str:
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


def atomic_write_json(path: str | os.PathLike, payload: Any, *, checksum: bool = False) -> Path:
    """Writes ``payload`` as indented JSON, atomically.

    With ``checksum=True`` the file holds ``{"sha256": ..., "payload": ...}`` and must be read back with
    :func:`read_checked_json`.
    """
    data = to_jsonable(payload)
    if checksum:
        data = {"sha256": _checksum(data), "payload": data}
    return atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_checked_json(path: str | os.PathLike) -> Any:
    """Reads a file written with ``atomic_write_json(..., checksum=True)``.

    Raises:
      FileNotFoundError: if the file does not exist.
      CorruptResultError: if the file is not valid JSON, lacks a checksum, or its checksum disagrees.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptResultError(f"{path} is not valid JSON ({e})") from e
    if not isinstance(data, dict) or "sha256" not in data or "payload" not in data:
        raise CorruptResultError(f"{path} has no checksum: not written by bontheory.runs")
    if _checksum(data["payload"]) != data["sha256"]:
        raise CorruptResultError(f"{path} fails its checksum: the file is corrupt or was edited")
    return data["payload"]


def config_to_dict(config: Any) -> dict[str, Any]:
    """A frozen-dataclass config as a plain dict (nested dataclasses and tuples made JSON-able)."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise TypeError(f"a config must be a dataclass instance, got {type(config).__name__}")
    return to_jsonable(config)


def config_hash(experiment: str, config: Any) -> str:
    """A short stable hash of the experiment name and every config field (the seed included)."""
    return hashlib.sha256(_canonical({"experiment": experiment, "config": config_to_dict(config)}).encode()).hexdigest()[:12]


def _provenance() -> dict[str, Any]:
    import jax
    import numpy as np

    from bontheory import __version__

    return {
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


@dataclasses.dataclass(frozen=True)
class Run:
    """One run folder. Create it with :func:`open_run`.

    Attributes:
      root: the folder.
      experiment: the experiment's name.
      config: the config (a frozen dataclass).
    """

    root: Path
    experiment: str
    config: Any

    @property
    def cells_dir(self) -> Path:
        return self.root / "cells"

    def cell_path(self, name: str) -> Path:
        safe = "".join(c if (c.isalnum() or c in "-_.=,") else "_" for c in name)
        return self.cells_dir / f"{safe}.json"

    def has_cell(self, name: str) -> bool:
        """True if the cell is stored and passes its checksum."""
        try:
            read_checked_json(self.cell_path(name))
        except (FileNotFoundError, CorruptResultError):
            return False
        return True

    def cell(self, name: str, compute: Callable[[], Any]) -> Any:
        """Returns the stored result of sweep cell ``name``, computing and storing it first if needed.

        ``compute()`` must return JSON-able data (arrays are converted). A stored cell that is corrupt or
        partial is recomputed (and a warning printed), never silently used. Results come back as plain
        JSON values (lists, floats), whether they were just computed or read from disk, so a resumed run
        and an uninterrupted one see identical values.
        """
        path = self.cell_path(name)
        try:
            return read_checked_json(path)
        except FileNotFoundError:
            pass
        except CorruptResultError as e:
            print(f"warning: recomputing cell {name!r}: {e}")
        result = to_jsonable(compute())
        atomic_write_json(path, result, checksum=True)
        return json.loads(json.dumps(result))

    def save_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """Writes ``metrics.json`` (checksummed) atomically."""
        return atomic_write_json(self.root / "metrics.json", metrics, checksum=True)

    def load_metrics(self) -> Any:
        """Reads ``metrics.json``; raises ``CorruptResultError`` if it cannot be trusted."""
        return read_checked_json(self.root / "metrics.json")

    def save_table(self, name: str, rows: list[Mapping[str, Any]]) -> Path:
        """Writes a list of flat dicts as ``<name>.csv`` atomically (columns from the first row)."""
        import csv
        import io

        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
            writer.writeheader()
            for row in rows:
                writer.writerow(to_jsonable(dict(row)))
        return atomic_write_text(self.root / f"{name}.csv", buf.getvalue())


def open_run(experiment: str, config: Any, out_dir: str | os.PathLike) -> Run:
    """Opens (creating if needed) the run folder for ``experiment`` with ``config`` under ``out_dir``.

    The folder name carries a hash of the config, so the same config resumes the same folder and a
    changed config gets a new one. ``config.json`` is (re)written with the current provenance.
    """
    root = Path(out_dir) / f"{experiment}-{config_hash(experiment, config)}"
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        root / "config.json",
        {"experiment": experiment, "config": config_to_dict(config), "provenance": _provenance()},
    )
    return Run(root=root, experiment=experiment, config=config)
