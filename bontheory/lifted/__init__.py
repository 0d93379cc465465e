"""bontheory.lifted: exact BoN on sequence spaces too large to enumerate (docs/theory.md §8).

When the policy is tabular (memoryless or Markov of order k) and the reward is a finite automaton that adds
integer increments (token counts, integer token scores, pattern presence and pattern counts, sums of these),
the law of the reward under the policy is a forward dynamic program over (position, context, automaton state,
partial reward). Every exact function of :mod:`bontheory.exact` then applies to ``(exp(log_probs), values)``.
"""
