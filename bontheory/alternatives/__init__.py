"""bontheory.alternatives: alternatives to BoN (soft BoN, quantile truncation, chi2-pessimism, regularised BoN) and proxy-vs-gold metrics."""

__all__: list[str] = []
