"""Exact BoN theory on finite outcome spaces (issue 2; docs/theory.md §1–§3).

Every n-dependent quantity is built on :func:`reward_levels` (outcomes sorted by reward once), so arrays of
n and ``jax.vmap`` over n reuse one sort. For many n on one reference, either pass an array ``n`` (eagerly:
padding levels are then dropped, so each n costs O(#distinct rewards)), or compute
``levels = reward_levels(p, r)`` once and call the ``*_from_levels`` functions (jitted; ``n`` may be traced).

Input validation (see :mod:`bontheory.validation`): shapes and dtypes are always checked; values (negative or
unnormalised probabilities, NaN/inf rewards, n < 1 or non-integer) only when concrete, not under ``jit``.
"""
