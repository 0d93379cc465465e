"""A tiny experiment following the protocol of ``experiments/__init__.py``, for the CLI and run tests.

It is loaded under a fresh module name per test (see ``tests/test_cli.py``), so its counters start at zero.
``CALLS`` counts calls of ``run``, cell computations and ``plot``; setting ``INTERRUPT_AFTER = k`` makes the
(k+1)-th cell computation raise ``KeyboardInterrupt`` (a simulated Ctrl-C after k finished cells), and
``SIGNAL_AFTER = k`` makes the (k+1)-th cell computation send ``SIGNALS`` SIGTERMs to its own process (a real
``kill`` in the middle of a cell) and then finish the cell.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from typing import Literal

import numpy as np

from bontheory.plotting import new_figure, save_figure
from bontheory.runner import progress

NAME = "tiny"
SUMMARY = "a tiny experiment for the tests: the mean of n uniforms, per n"

CALLS = {"run": 0, "compute": 0, "plot": 0}
INTERRUPT_AFTER: int | None = None
SIGNAL_AFTER: int | None = None
SIGNALS = 1


@dataclasses.dataclass(frozen=True)
class Inner:
    """A nested config block.

    Attributes:
      width: an int field of a nested config.
    """

    width: int = 3


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings.

    Attributes:
      ns: the sample sizes (one sweep cell each).
      scale: multiplies every value.
      mode: a Literal field.
      flag: a bool field.
      limit: an optional int.
      pair: a fixed-length tuple.
      inner: a nested dataclass.
      sleep: seconds to sleep per cell (to interrupt a real process in the tests).
      seed: the random seed.
    """

    ns: tuple[int, ...] = (1, 2, 4, 8, 16)
    scale: float = 1.0
    mode: Literal["mean", "max"] = "mean"
    flag: bool = False
    limit: int | None = None
    pair: tuple[float, float] = (0.0, 1.0)
    inner: Inner = Inner()
    sleep: float = 0.0
    seed: int = 0

    def __post_init__(self):
        if self.scale < 0:
            raise ValueError(f"scale must be >= 0, got {self.scale}")


QUICK = Config(ns=(1, 2, 3, 4))


def _compute(seed: int, n: int, config: Config) -> dict:
    if INTERRUPT_AFTER is not None and CALLS["compute"] >= INTERRUPT_AFTER:
        raise KeyboardInterrupt
    if SIGNAL_AFTER is not None and CALLS["compute"] == SIGNAL_AFTER:
        for _ in range(SIGNALS):
            os.kill(os.getpid(), signal.SIGTERM)
    CALLS["compute"] += 1
    if config.sleep:
        time.sleep(config.sleep)
    u = np.random.default_rng([seed, n]).uniform(size=n) * config.scale
    return {"value": float(u.mean() if config.mode == "mean" else u.max()), "draws": u}


def run(config: Config, run) -> dict:
    CALLS["run"] += 1
    rows = []
    for n in progress(config.ns, desc="tiny"):
        cell = run.cell(f"n={n}", lambda n=n: _compute(config.seed, n, config))
        rows.append({"n": n, "value": cell["value"], "first_draw": cell["draws"][0]})
    return {"table": rows, "ns": list(config.ns), "nan": float("nan")}


def plot(metrics: dict, out_dir):
    CALLS["plot"] += 1
    fig, ax = new_figure()
    ax.plot([r["n"] for r in metrics["table"]], [r["value"] for r in metrics["table"]], marker="o")
    ax.set_xlabel("n")
    return save_figure(fig, out_dir, "values")


def summary(metrics: dict) -> list[dict]:
    return [{"n": r["n"], "value": r["value"]} for r in metrics["table"]]
