"""bontheory experiments: one thin module per experiment.

Each module ``experiments/<name>.py`` defines

* ``NAME: str`` and ``SUMMARY: str`` (one line: what the experiment shows);
* ``Config``: a frozen dataclass with documented defaults (the defaults are the ``--full`` settings), with a
  ``seed: int`` field;
* ``QUICK: Config``: the quick settings used by ``bontheory reproduce --quick`` and ``make reproduce``;
* ``run(config: Config, run: bontheory.runs.Run) -> dict``: computes and returns the metrics (JSON-able),
  storing each finished sweep cell with ``run.cell(name, compute)`` so an interrupted run resumes;
* ``plot(metrics: dict, out_dir: pathlib.Path) -> list[pathlib.Path]``: writes figures (PNG and PDF) from
  the saved metrics alone;
* optionally ``summary(metrics: dict) -> list[dict]``: rows of a short table printed at the end;
* optionally ``paper_numbers(metrics: dict) -> dict[str, tuple[float | int | str, int]]``: the numbers the
  paper quotes, ``{macro: (value, decimals)}`` (a string value, e.g. a method name, is set in typewriter
  type). ``paper/build.py`` defines each as ``\\macro`` for ``paper/main.tex``.

The experiments compute; the verdicts they draw (a curve that falls, a gap to a frontier, a regret ratio, a
claim) are library functions in :mod:`bontheory.studies`, tested on hand-made inputs. Each ``Config`` checks
its values in ``__post_init__`` with the helpers of ``bontheory.experiments.checks`` (a ``ValueError`` naming
the field).
Each cell draws its random numbers from :func:`bontheory.cell_key` of its labels (family, n, seed, ...), never
from its position in a grid, so adding a cell does not change the numbers of the others.

Add an experiment by writing such a module and adding its name to ``EXPERIMENTS`` below.
"""

EXPERIMENTS: tuple[str, ...] = (
    "kl_bound",
    "overoptimization",
    "bon_vs_optimum",
    "regime_map",
    "gao_fits",
    "token_kl",
    "vbon",
    "bon_aware",
)
