"""Files that are whole or absent: atomic writes, JSON values, checksummed JSON.

The I/O primitives below every layer that writes results: run folders (:mod:`bontheory.runs`), figures
(:mod:`bontheory.plotting`) and training checkpoints (:mod:`bontheory.vbon.checkpoint`).

Every write goes to a temporary file in the destination's folder, is flushed to disk and renamed into place
(``os.replace`` is atomic on POSIX and Windows), so an interrupted write leaves either the old file or the
new one, never half of one. Written files get the permissions of a file created by ``open`` (``0o666`` less
the process's umask: ``0o644`` under the usual umask 022), so results on a shared filesystem are readable by
the group.

JSON: NaN and infinities are stored as JSON's common extension ``NaN``/``Infinity``/``-Infinity`` (what
Python's ``json`` module reads and writes), so values come back as floats.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class CorruptResultError(ValueError):
    """A results file exists but cannot be trusted (truncated, not JSON, or checksum mismatch)."""


def to_jsonable(obj: Any) -> Any:
    """Converts arrays, NumPy/JAX scalars, tuples, paths and dataclasses into plain JSON values.

    Dict keys become strings, tuples become lists, arrays become (nested) lists via ``tolist()``. Floats
    stay floats, including NaN and infinities.

    Raises:
      TypeError: for a value with no JSON form (e.g. an arbitrary object).
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, str, float)):
        return obj
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy / jax arrays and scalars
        return to_jsonable(obj.tolist())
    raise TypeError(f"cannot store a value of type {type(obj).__name__} as JSON: {obj!r}")


def _umask() -> int:
    """The process's umask (read without changing it where the OS allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    The folder is created if missing; the file gets mode ``0o666 & ~umask``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0o600
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


def canonical_json(obj: Any) -> str:
    """The compact JSON text of ``obj`` with sorted keys: equal values give equal text (for hashing)."""
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"))


def _checksum(payload: Any) -> str:
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


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
    data = read_json(path)
    if not isinstance(data, dict) or "sha256" not in data or "payload" not in data:
        raise CorruptResultError(f"{path} has no checksum: not written by bontheory")
    if _checksum(data["payload"]) != data["sha256"]:
        raise CorruptResultError(f"{path} fails its checksum: the file is corrupt or was edited")
    return data["payload"]


def read_json(path: str | os.PathLike) -> Any:
    """Reads a JSON file.

    Raises:
      FileNotFoundError: if the file does not exist.
      CorruptResultError: if it is not valid UTF-8 JSON.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptResultError(f"{path} is not valid JSON ({e})") from e
