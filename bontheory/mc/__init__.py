"""bontheory.mc: Monte Carlo Best-of-N — chunked selection kernels, estimators, sweeps, sharding.

* :mod:`~bontheory.mc.kernels`: ``bon_monte_carlo`` (selected draws) and ``bon_candidates`` (all n per
  trial), memory-bounded by chunking, with pluggable scores (plain, soft, regularised BoN).
* :mod:`~bontheory.mc.estimators`: mean reward, win rate, KL estimates, each with a standard error.
* :mod:`~bontheory.mc.sweep`: grids with one ``fold_in`` key per cell.
* :mod:`~bontheory.mc.distributed`: the trial axis sharded over devices and processes.
"""
