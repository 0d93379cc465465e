"""bontheory.studies: problems built from the exact and Monte Carlo layers (proxy/gold problems and method
curves, Gao et al.'s fits, the long-sequence limit), and the verdicts the experiments draw from them (a curve
that peaks and falls, the gap to an optimal KL frontier, regret ratios against the optimum, the vBoN claims)."""
