"""bontheory.studies: problems built from the exact and Monte Carlo layers (proxy/gold problems and method
curves, Gao et al.'s fits, the long-sequence limit)."""
