"""Shared test configuration.

* float64 on, so exact functions can be checked against float64 references;
* rank promotion raises, so broadcasting mistakes fail loudly;
* a hypothesis profile ``ci`` (the default) with no deadline (JIT compiles are slow the first time)
  and a fixed example count, so the suite stays within its time budget.  ``HYPOTHESIS_PROFILE=thorough``
  runs many more examples.
"""

import os

import jax
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=25,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=500,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
