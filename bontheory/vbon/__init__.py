"""bontheory.vbon: variational BoN — training policies toward the BoN distribution, exactly measured.

Objectives (:mod:`~bontheory.vbon.objectives`) are static loss objects called as
``objective(policy, data, key) -> (loss, aux)``; :func:`train_steps` runs them with Optax in one jitted
``lax.scan``; :func:`approximation_metrics` measures the result exactly over an enumerated space.
:mod:`~bontheory.vbon.bon_aware` trains the reverse way: the policy BoN samples from, knowing BoN is applied at
inference (docs/theory.md §6.7).
"""
