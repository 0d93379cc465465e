"""Shared figure style for bontheory experiments.

Importing this module selects matplotlib's non-interactive ``Agg`` backend (figures are written to files,
never shown), so experiments run the same on a laptop, a headless server and in CI.

Typical use in an experiment's ``plot(metrics, out_dir)``::

    from bontheory.plotting import new_figure, save_figure

    fig, ax = new_figure()
    ax.plot(ns, kls, label="KL(BoN || ref)")
    ax.set_xscale("log")
    ax.legend()
    return save_figure(fig, out_dir, "kl_vs_n")   # [out_dir/kl_vs_n.png, out_dir/kl_vs_n.pdf]

Figure files are named ``<stem>.png`` and ``<stem>.pdf``; ``paper/build.py`` copies the PDFs of the newest
run of each experiment to ``paper/figures/<experiment>-<stem>.pdf``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from bontheory.storage import atomic_write_bytes

#: A colour-blind-safe palette (Okabe & Ito, 2008), in the order lines are drawn.
COLORS: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

#: The rcParams every bontheory figure uses (applied by :func:`new_figure` and :func:`save_figure`).
STYLE: dict[str, Any] = {
    "figure.figsize": (4.8, 3.4),
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.5,
    "lines.markersize": 4,
    "axes.prop_cycle": matplotlib.cycler(color=list(COLORS)),
    "pdf.fonttype": 42,  # embed TrueType fonts: text stays editable and searchable in the PDF
    "ps.fonttype": 42,
}

plt.rcParams.update(STYLE)


def color_cycle() -> Iterator[str]:
    """An endless iterator over :data:`COLORS` (for drawing series with matching colours by hand)."""
    while True:
        yield from COLORS


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    width: float | None = None,
    height: float | None = None,
    **subplots_kwargs: Any,
) -> tuple[plt.Figure, Any]:
    """A figure in the house style: ``plt.subplots`` with the default size scaled per panel.

    Args:
      nrows, ncols: the panel grid.
      width, height: figure size in inches; by default 4.2 inches per column and 3.2 per row.
      **subplots_kwargs: passed to ``plt.subplots`` (e.g. ``sharey=True``, ``squeeze=False``).

    Returns:
      ``(fig, axes)`` as from ``plt.subplots``.
    """
    plt.rcParams.update(STYLE)
    w = width if width is not None else 4.2 * ncols + 0.6
    h = height if height is not None else 3.2 * nrows
    subplots_kwargs.setdefault("constrained_layout", True)
    return plt.subplots(nrows, ncols, figsize=(w, h), **subplots_kwargs)


def _atomic_savefig(fig: plt.Figure, path: Path, fmt: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    atomic_write_bytes(path, buf.getvalue())


def save_figure(
    fig: plt.Figure,
    out_dir: str | os.PathLike,
    stem: str,
    *,
    formats: Sequence[str] = ("png", "pdf"),
    close: bool = True,
) -> list[Path]:
    """Writes ``fig`` as ``<out_dir>/<stem>.png`` and ``<out_dir>/<stem>.pdf``, each atomically.

    Each file is written to a temporary file in ``out_dir`` and renamed into place, so an interrupted
    plot never leaves half a figure.

    Args:
      fig: the matplotlib figure.
      out_dir: the folder (created if missing), normally the run folder passed to ``plot``.
      stem: the file name without extension; letters, digits, ``-`` and ``_`` only (it becomes part of a
        LaTeX file name in ``paper/``).
      formats: the file formats to write.
      close: close the figure afterwards (frees memory in long ``reproduce`` runs).

    Returns:
      The written paths, in the order of ``formats``.

    Raises:
      ValueError: if ``stem`` is empty or has characters other than letters, digits, ``-`` and ``_``.
    """
    if not stem or not all(c.isalnum() or c in "-_" for c in stem):
        raise ValueError(f"figure stem must be letters, digits, '-' or '_' only, got {stem!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for fmt in formats:
            path = out / f"{stem}.{fmt}"
            _atomic_savefig(fig, path, fmt)
            paths.append(path)
    finally:
        if close:
            plt.close(fig)
    return paths
