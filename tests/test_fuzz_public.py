"""Every public callable × every bad-input kind: a clear error naming the argument, or the right answer.

The callables come from ``bontheory.__all__``, so a function added tomorrow is fuzzed tomorrow: the test
fails until it has a valid example call in ``EXAMPLES`` (or an entry, with its reason, in ``NOT_FUZZED``).
Each required argument (and each argument the function declares a kind for) is replaced, one at a time, by
each bad input of its kind. An outcome is classified as

* ``valid``: the input is valid (``n = 10**12``) and the call returned finite numbers;
* ``clear``: ``ValueError``/``TypeError`` whose message names the argument;
* ``silent``: the call returned numbers for a bad input;
* ``silent_nan``: the call returned NaN for a bad input (under ``jit`` that is the promise; eagerly it is not);
* ``obscure``: any other exception, or one whose message does not name the argument (or a valid input failing).

Only ``valid`` and ``clear`` pass. ``python tests/test_fuzz_public.py`` prints the counts per class and the
outcomes that are not clear.
"""

from __future__ import annotations

import collections
import inspect
import math
import re
import signal
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bontheory as bt

K = 4  # outcomes = all sequences of a V = 2, L = 2 policy, so pmfs, rewards and sequences line up
P = np.array([0.1, 0.2, 0.3, 0.4])
R = np.array([0.0, 1.0, 1.0, 2.0])

# Callables not fuzzed, with the reason. Everything else in bontheory.__all__ must be in EXAMPLES.
NOT_FUZZED = {
    # process-wide side effect: jax.distributed.initialize may run once per process
    "initialize_distributed": "initialises the distributed runtime (once per process)",
    # protocols (typing.Protocol): not instantiable, they describe what a policy / reward is
    "Policy": "a Protocol", "Reward": "a Protocol",
    # identity-like: every pytree is a valid input
    "to_host": "accepts any pytree",
    "reward_sum": "takes *rewards; SumReward, which it builds, is fuzzed",
}


def _is_result_container(value) -> bool:
    """NamedTuple results and frozen result records hold what a function computed: not a boundary."""
    return inspect.isclass(value) and (issubclass(value, (tuple, BaseException)) or value.__name__ in RESULT_RECORDS)


# Result records that are dataclasses rather than NamedTuples (built by library functions from checked input).
RESULT_RECORDS = {"HackCalibration", "TrainState"}


def _examples(checkpoint):
    """Valid keyword arguments per callable (tiny shapes, built once); ``checkpoint`` a path to write."""
    key = jax.random.key(0)
    policy = bt.random_tabular_policy(key, 2, 2)
    other = bt.random_tabular_policy(jax.random.key(1), 2, 2)
    scores = jnp.array([[0.0, 1.0], [0.5, -0.5]])
    reward = bt.TokenScoreReward(scores)
    seqs = bt.all_sequences(2, 2)
    logp = jnp.log(jnp.asarray(P))
    levels = bt.reward_levels(P, R)
    optimizer = optax.sgd(0.1)
    state = bt.init_train_state(key, policy, optimizer)
    module = bt.TabularPolicy(2, 2)
    problem = bt.proxy_problem(key, "gaussian", vocab_size=2, length=2)
    data = {"samples": seqs}
    bt.save_checkpoint(checkpoint, state)
    tilted = bt.tilted_sequence_policy(policy, bt.PatternCountReward(pattern=(0, 1)), 1.0)  # an AutomatonPolicy
    pkr = dict(key=key, ref_probs=P, rewards=R)
    pol = dict(key=key, policy=policy, reward=reward, num_trials=4)
    cand = dict(key=key, rewards=jnp.asarray(R), log_probs=logp)
    return {
        # exact/: pmfs, divergences, metrics, bounds
        **{
            f: dict(ref_probs=P, rewards=R, n=3)
            for f in ("bon_expected_reward", "bon_kl", "bon_kl_estimate", "bon_log_pmf", "bon_pmf", "bon_win_rate")
        },
        **{
            f: dict(levels=levels, n=3)
            for f in (
                "bon_expected_reward_from_levels",
                "bon_kl_from_levels",
                "bon_log_pmf_from_levels",
                "bon_pmf_from_levels",
                "bon_win_rate_from_levels",
                "level_log_mass_of_max",
            )
        },
        "bon_sample_exact": dict(pkr, n=3, shape=(2,)),
        "bon_sample_exact_from_levels": dict(key=key, levels=levels, n=3, shape=(2,)),
        "bon_kl_bound": dict(n=3),
        "bon_win_rate_bound": dict(n=3),
        "bonbon_beta": dict(n=3),
        "bon_kl_estimator": dict(eps=0.1, n=3),
        "bon_kl_gap_bound": dict(ref_probs=P, n=3),
        "bon_win_rate_gap_bound": dict(ref_probs=P, n=3),
        **{f: dict(p=P, q=P[::-1].copy()) for f in ("chi2_divergence", "kl_divergence", "total_variation")},
        "win_rate": dict(policy_probs=P, ref_probs=P, rewards=R),
        "reward_levels": dict(ref_probs=P, rewards=R, fields=("log_cdf", "log_ratio")),
        "compact_levels": dict(levels=levels),
        "mid_cdf": dict(ref_probs=P, rewards=R),
        "chi2_coverage": dict(comparator_probs=P, ref_probs=P),
        "max_density_ratio": dict(comparator_probs=P, ref_probs=P),
        "em_divergence": dict(comparator_probs=P, ref_probs=P, m=2.0),
        "expected_reward": dict(policy_probs=P, rewards=R),
        "pairwise_error": dict(ref_probs=P, proxy_rewards=R, gold_rewards=R[::-1].copy()),
        "reward_model_error": dict(ref_probs=P, proxy_rewards=R, gold_rewards=R[::-1].copy()),
        "proxy_gold_metrics": dict(policy_probs=P, ref_probs=P, proxy_rewards=R, gold_rewards=R),
        "regret": dict(policy_probs=P, comparator_probs=P, gold_rewards=R),
        "win_rate_regret": dict(policy_probs=P, comparator_probs=P, ref_probs=P, gold_rewards=R),
        "chi2_pessimism_pmf": dict(ref_probs=P, rewards=R, beta=0.5),
        "chi2_pessimism_threshold": dict(ref_probs=P, rewards=R, beta=0.5),
        "regularized_bon_pmf": dict(ref_probs=P, rewards=R, n=3, beta=0.5),
        "regularized_bon_score": dict(ref_probs=P, rewards=R, beta=0.5),
        "auto_num_nodes": dict(ref_probs=P, rewards=R, n=3, temperature=0.5),
        "soft_bon_pmf": dict(ref_probs=P, rewards=R, n=3, temperature=0.5),
        "soft_bon_log_pmf": dict(ref_probs=P, rewards=R, n=3, temperature=0.5),
        "tilted_pmf": dict(ref_probs=P, rewards=R, beta=0.5),
        "quantile_tilted_pmf": dict(ref_probs=P, rewards=R, c=1.0),
        "reward_kl_frontier": dict(ref_probs=P, rewards=R, betas=np.array([0.5, 1.0])),
        "win_rate_kl_frontier": dict(ref_probs=P, rewards=R, cs=np.array([0.5, 1.0])),
        "quantile_truncated_pmf": dict(ref_probs=P, rewards=R, m=2.0),
        "quantile_truncation_sampler_pmf": dict(ref_probs=P, rewards=R, n=3, m=2.0),
        # mc/: samplers, kernels, estimators, sweeps
        "draw_outcomes": dict(key=key, ref_probs=P, num=3),
        "pessimism_num_candidates": dict(n=3),
        "pessimism_sample": dict(pkr, n=3, beta=0.5),
        "quantile_truncation_sample": dict(pkr, n=3, m=2.0),
        "regularized_bon_sample": dict(pkr, n=3, beta=0.5),
        "soft_bon_sample": dict(pkr, n=3, temperature=0.5),
        "select_pessimism": dict(
            key=key,
            rewards=jnp.array([0.0, 1.0, 1.0, 2.0, 0.5]),
            log_probs=jnp.log(jnp.full(5, 0.2)),
            beta=0.5,
            r_max=2.0,
        ),
        "select_quantile_truncation": dict(cand, m=2.0),
        "select_regularized_bon": dict(cand, beta=0.5),
        "select_soft_bon": dict(cand, temperature=0.5),
        "bon_candidates": dict(pol, n=3),
        "bon_monte_carlo": dict(pol, n=3),
        "sharded_bon_monte_carlo": dict(pol, n=3),
        "bon_cell": dict(pol, n=3),
        "bon_trials": dict(
            key=key, trial_indices=jnp.arange(4), policy=policy, reward=reward, n=3, chunk_size=3, trial_batch=4
        ),
        "candidate_trials": dict(
            key=key, trial_indices=jnp.arange(4), policy=policy, reward=reward, n=3, chunk_size=3, trial_batch=4
        ),
        "pessimism_policy_sample": dict(pol, n=3, beta=0.5, r_max=2.0),
        "quantile_truncation_policy_sample": dict(pol, n=3, m=2.0),
        "regularized_bon_policy_sample": dict(pol, n=3, beta=0.5),
        "soft_bon_policy_sample": dict(pol, n=3, temperature=0.5),
        "regularized_bon_scorer": dict(beta=0.5),
        "soft_bon_scorer": dict(temperature=0.5),
        "reward_scorer": dict(cand),
        "bon_sweep": dict(key=key, policies={"p": policy}, rewards={"r": reward}, ns=[2], seeds=[0], num_trials=4),
        "cell_key": dict(key=key),
        "exact_space": dict(policy=policy, reward=reward),
        "trial_mesh": dict(),
        "beirami_kl_estimate": dict(log_probs=logp, n=3),
        "bon_log_ratio_from_reference": dict(
            selected_rewards=jnp.array([1.0, 2.0]), reference_rewards=jnp.array([0.0, 1.0, 2.0]), n=3
        ),
        "log_ratio_kl_estimates": dict(log_ratios=jnp.array([0.1, 0.2, -0.1])),
        "mean_estimate": dict(values=jnp.array([0.1, 0.2, 0.3])),
        "plugin_kl_estimate": dict(indices=jnp.array([0, 1, 3]), log_ref_probs=logp),
        "sequence_index": dict(sequences=seqs, vocab_size=2),
        "win_rate_estimate": dict(selected_rewards=jnp.array([1.0, 2.0]), reference_rewards=jnp.array([0.0, 1.0, 2.0])),
        # policies/
        "all_sequences": dict(vocab_size=2, length=2),
        "enumerate_sequences": dict(policy=policy),
        "sequence_entropy": dict(policy=policy),
        "kl_k1": dict(logp_policy=logp, logp_ref=logp[::-1]),
        "kl_k2": dict(logp_policy=logp, logp_ref=logp[::-1]),
        "kl_k3": dict(logp_policy=logp, logp_ref=logp[::-1]),
        "sequence_kl": dict(policy_a=policy, policy_b=other),
        "sequence_kl_mc": dict(key=key, policy_a=policy, policy_b=other, num=4),
        "token_kl": dict(policy_a=policy, policy_b=other, tokens=seqs),
        "ModulePolicy": dict(module=policy.module, params=policy.params),
        "policy_from_module": dict(key=key, module=module),
        "random_tabular_policy": dict(key=key, vocab_size=2, length=2),
        "tabular_log_probs_table": dict(policy=policy),
        "tabular_policy_from_logits": dict(logits=jnp.zeros((2, 1, 2))),
        "TabularPolicy": dict(vocab_size=2, length=2),
        "TransformerPolicy": dict(vocab_size=2, length=2),
        "init_transformer_policy": dict(key=key, vocab_size=2, length=2, d_model=4, num_heads=1, num_layers=1),
        # rewards/
        "as_reward": dict(reward=reward),
        "FunctionReward": dict(fn=lambda s: jnp.sum(s, axis=-1).astype(float)),
        "TokenScoreReward": dict(scores=scores),
        "TokenCountReward": dict(target=0, weight=1.0),
        "PatternReward": dict(pattern=(0,), value=1.0),
        "PalindromeReward": dict(),
        "QuantizedReward": dict(base=reward, step=0.5),
        "SequenceHashReward": dict(key=key),
        "NoisyProxyReward": dict(gold=reward, key=key),
        "HackProxyReward": dict(base=reward, key=key, threshold=jnp.asarray(0.1)),
        "HackedGoldReward": dict(base=reward, key=key, threshold=jnp.asarray(0.1)),
        "hashed_draws": dict(key=key, sequences=seqs, distribution="normal"),
        "sequence_keys": dict(key=key, sequences=seqs),
        "random_token_score_reward": dict(key=key, vocab_size=2, length=2),
        "make_hack_proxy": dict(key=key, base=reward, reference=policy, hack_mass=0.25),
        "BradleyTerryNet": dict(vocab_size=2, length=2),
        "LearnedReward": dict(module=bt.BradleyTerryNet(2, 2), params=None),
        "bradley_terry_labels": dict(key=key, gold_a=jnp.asarray(R), gold_b=jnp.asarray(R[::-1])),
        "pairwise_accuracy": dict(reward=reward, gold=reward, seqs_a=seqs, seqs_b=seqs[::-1]),
        "train_bradley_terry": dict(key=key, policy=policy, gold=reward, num_pairs=8, num_steps=2, batch_size=4),
        "SentimentReward": dict(scores=jnp.array([0.0, 1.0, -1.0])),
        "sentiment_reward": dict(vocab_size=3),
        # studies/
        "additive_reward_distribution": dict(token_probs=np.array([0.5, 0.5]), token_scores=np.array([0, 1]), length=2),
        "bon_tilted_gap_per_token": dict(
            token_probs=np.array([0.5, 0.5]), token_scores=np.array([0, 1]), length=2, log_n=np.array([0.5, 1.0])
        ),
        "token_tilt_kl_reward": dict(
            token_probs=np.array([0.5, 0.5]), token_scores=np.array([0, 1]), beta=np.array([0.5, 1.0])
        ),
        "best_on_grid": dict(values=np.array([[0.1, 0.2], [0.3, 0.1]]), grid=[0.5, 1.0]),
        "bon_unbiased_estimate": dict(key=key, proxy=jnp.asarray(R), values=jnp.asarray(R[::-1]), ns=jnp.array([1, 2])),
        "compare_regrets": dict(bon_regret=np.array([0.2, 0.1]), alt_regret=np.array([0.1, 0.1])),
        "count_regimes": dict(ratios=np.array([1.0, 1.5, 3.0])),
        "fit_gao_bon": dict(d=np.array([0.0, 0.5, 1.0, 1.5]), y=np.array([0.0, 0.4, 0.6, 0.7])),
        "fit_gao_rl": dict(d=np.array([0.0, 0.5, 1.0, 1.5]), y=np.array([0.0, 0.4, 0.6, 0.7])),
        "frontier_fractions": dict(methods=["a", "b"], kl=np.array([0.1, 0.2]), reward=np.array([0.3, 0.5])),
        "gap_to_frontier": dict(
            kl=np.array([0.1, 0.2]),
            values=np.array([0.3, 0.4]),
            frontier_kl=np.array([0.1, 0.3]),
            frontier_values=np.array([0.4, 0.6]),
            value_at_zero=0.0,
        ),
        "max_drawdown": dict(values=np.array([0.1, 0.3, 0.2])),
        "peak_and_fall": dict(values=np.array([0.1, 0.3, 0.2])),
        "mean_over_seeds": dict(results=[{"a": [1.0, 2.0]}, {"a": [3.0, 4.0]}]),
        "method_pmfs": dict(method="bon", ref_probs=P, rewards=R, ns=np.array([1, 2])),
        "method_gold_curves": dict(problem=problem, method="bon", budgets=np.array([1, 2])),
        "method_grid_curves": dict(problem=problem, budgets=np.array([1, 2]), grids={"tilted": (1.0,)}),
        "optimum_comparator": dict(ref_probs=P, gold_rewards=R),
        "proxy_problem": dict(key=key, family="gaussian", vocab_size=2, length=2),
        "vbon_claims": dict(frontier_fraction={"bon": 1.0, "vbon": 0.5}, mean_kl_to_bon={"vbon": 0.1, "kl_rl": 0.2}),
        # vbon/
        "approximation_metrics": dict(log_probs=logp, ref_log_probs=logp, rewards=R, bon_log_probs=logp),
        "forward_kl": dict(log_target=logp, log_q=logp[::-1]),
        "reverse_kl": dict(log_q=logp, log_target=logp[::-1]),
        "jeffreys_divergence": dict(log_q=logp, log_target=logp[::-1], backward_weight=0.5),
        "harmonic_number": dict(k=3),
        "log_bon_ratio": dict(log_cdf_strict=jnp.log(0.5), log_cdf=jnp.log(0.7), n=3),
        "vbon_target_log_probs": dict(ref_log_probs=logp, rewards=R, n=3),
        "tie_effect": dict(ref_log_probs=logp, rewards=R, n=3),
        "empirical_log_cdfs": dict(sample_rewards=jnp.array([0.0, 1.0]), ref_reward_samples=jnp.array([0.0, 0.5, 1.0])),
        "pareto_frontier": dict(kl=np.array([0.1, 0.2]), reward=np.array([0.3, 0.5])),
        "bon_sft_data": dict(key=key, sequences=seqs, ref_log_probs=logp, rewards=R, n=3, num_samples=4),
        "bonbon_data": dict(key=key, sequences=seqs, ref_log_probs=logp, rewards=R, n=3, num_pairs=4),
        "expand_tabular_policy": dict(policy=policy, order=1),
        "init_train_state": dict(key=key, policy=policy, optimizer=optimizer),
        "iterated_bond": dict(
            state=state, sequences=seqs, rewards=R, n=2, num_iterations=1, steps_per_iteration=1, optimizer=optimizer
        ),
        "sequence_token_kl": dict(policy=policy, ref_policy=other, sequences=seqs),
        "train_steps": dict(
            state=state, data=data, objective=bt.MaximumLikelihoodLoss(), optimizer=optimizer, num_steps=1
        ),
        "train_with_checkpoints": dict(
            state=state,
            data=data,
            objective=bt.MaximumLikelihoodLoss(),
            optimizer=optimizer,
            num_steps=1,
            chunk_steps=1,
        ),
        "train_toward_bon": dict(
            key=key,
            method="bon_sft",
            init_policy=policy,
            ref_policy=policy,
            reward=reward,
            sequences=seqs,
            ref_log_probs=logp,
            rewards=R,
            n=2,
            settings=bt.MethodSettings(num_steps=1, num_sft_samples=4),
        ),
        "checked": dict(fn=bt.bon_kl_bound),
        "beirami_kl_estimator": dict(eps=0.1, n=3),
        "beirami_kl_expectation": dict(ref_probs=P, rewards=R, n=3),
        "bon_log_ratio_from_levels": dict(
            selected_rewards=jnp.array([1.0, 2.0]),
            level_rewards=jnp.array([0.0, 1.0, 2.0]),
            level_masses=jnp.array([0.1, 0.5, 0.4]),
            n=3,
        ),
        "level_kl_estimate": dict(
            selected_rewards=jnp.array([1.0, 2.0]),
            level_rewards=jnp.array([0.0, 1.0, 2.0]),
            level_masses=jnp.array([0.1, 0.5, 0.4]),
            n=3,
        ),
        "level_kl_estimate_from_reference": dict(
            selected_rewards=jnp.array([1.0, 2.0]), reference_rewards=jnp.array([0.0, 1.0, 2.0]), n=3
        ),
        "kl_regularised_surrogate": dict(policy=policy, ref_policy=other, sequences=seqs, rewards=R, kl_coef=0.1),
        "bon_aware_objective": dict(policy_log_probs=logp, ref_log_probs=logp[::-1], rewards=R, n=3, beta=0.5),
        "train_bon_aware": dict(
            key=key, init_policy=policy, sequences=seqs, ref_log_probs=logp, rewards=R, n=2, beta=0.5, num_steps=1
        ),
        "ExactBoNAwareLoss": dict(),
        "SampledBoNAwareLoss": dict(n=2, num_trials=2),
        "PatternCountReward": dict(pattern=(0,), weight=1.0),
        "SumReward": dict(terms=(reward, reward)),
        "reward_automaton": dict(reward=bt.TokenCountReward(), vocab_size=2, length=2),
        "reward_distribution": dict(policy=policy, reward=bt.TokenCountReward()),
        "proxy_problem_from_rewards": dict(policy=policy, proxy=reward, gold=bt.TokenCountReward()),
        "power_law_rate": dict(x=np.array([1.0, 2.0, 4.0]), y=np.array([1.0, 0.5, 0.25])),
        "bon_level_log_probs": dict(log_probs=jnp.log(jnp.array([0.25, 0.5, 0.25])), n=3),
        "level_log_cdfs": dict(log_probs=jnp.log(jnp.array([0.25, 0.5, 0.25]))),
        "bon_sample_sequences_exact": dict(key=key, policy=policy, reward=bt.TokenCountReward(), n=3, num_samples=2),
        "sample_sequences_given_level_law": dict(
            key=key,
            policy=policy,
            reward=bt.TokenCountReward(),
            level_log_probs=jnp.log(jnp.array([0.25, 0.5, 0.25])),
            num_samples=2,
        ),
        "chi2_pessimism_sampler_pmf": dict(ref_probs=P, rewards=R, n=3, beta=0.5),
        "method_n_for_budget": dict(method="bon", budget=np.array([4, 8])),
        "method_reward_calls": dict(method="bon", n=np.array([1, 2])),
        "proxy_spread": dict(problem=problem),
        "tilted_sequence_policy": dict(policy=policy, reward=bt.TokenCountReward(), beta=1.0),
        "lifted_reward_kl_frontier": dict(policy=policy, reward=bt.TokenCountReward(), betas=np.array([0.5, 1.0])),
        "AutomatonPolicy": dict(
            logits=tilted.logits,
            transition=tilted.transition,
            vocab_size=tilted.vocab_size,
            length=tilted.length,
            order=tilted.order,
        ),
        "bon_level_log_probs_at_log_n": dict(log_probs=np.log(np.array([0.25, 0.5, 0.25])), log_n=np.array([0.5, 2.0])),
        "proxy_study_summary": dict(
            ns=np.array([1, 2]),
            curves={"bon": {"gold": np.array([0.1, 0.2])}, "tilted": [{"param": 1.0, "gold": np.array([0.1, 0.3])}]},
        ),
        "vbon_log_ratio": dict(log_probs=jnp.log(jnp.array([0.25, 0.5, 0.25])), n=3),
        "lifted_vbon_loss": dict(policy=policy, ref_policy=other, reward=bt.TokenCountReward(), n=3),
        "lifted_vbon_data": dict(ref_policy=policy, reward=bt.TokenCountReward(), n=3, order=0),
        "lifted_bon_aware_data": dict(reward=bt.TokenCountReward(), vocab_size=2, length=2),
        "lifted_bon_aware_objective": dict(
            policy=policy, ref_policy=other, reward=bt.TokenCountReward(), n=3, beta=0.5
        ),
        "train_bon_aware_lifted": dict(
            key=key, init_policy=policy, ref_policy=other, reward=bt.TokenCountReward(), n=2, beta=0.5, num_steps=1
        ),
        "LiftedVBoNLoss": dict(num_values=3, order=0),
        "LiftedBoNAwareLoss": dict(num_values=3),
        "MethodSettings": dict(),
        "BoNBoNLoss": dict(),
        "ExactKLRegularisedLoss": dict(),
        "MaximumLikelihoodLoss": dict(),
        "ExactDivergenceLoss": dict(kind="reverse"),
        "PolicyGradientLoss": dict(num_samples=4, reward_kind="log_cdf"),
        "load_checkpoint": dict(path=checkpoint, template=state),
        "save_checkpoint": dict(path=checkpoint, state=state),
    }


# --------------------------------------------------------------------------------------------------
# Kinds of argument (by declared checker, else by name) and their bad inputs

NAME_KINDS = {
    "level_masses": "probs",
    "level_rewards": "rewards",
    "policy_log_probs": "log_probs",
    "kl_coef": "nonnegative",
    "x": "values",
    "fn": "other",
    "terms": "other",
    "budget": "values",
    "budgets": "values",
    **dict.fromkeys(("ref_probs", "policy_probs", "comparator_probs", "p", "q", "token_probs"), "probs"),
    **dict.fromkeys(
        (
            "log_probs",
            "ref_log_probs",
            "bon_log_probs",
            "log_q",
            "log_target",
            "log_ref_probs",
            "logp_policy",
            "logp_ref",
        ),
        "log_probs",
    ),
    **dict.fromkeys(("rewards", "proxy_rewards", "gold_rewards", "gold_a", "gold_b", "proxy"), "rewards"),
    **dict.fromkeys(
        (
            "values",
            "selected_rewards",
            "reference_rewards",
            "log_ratios",
            "sample_rewards",
            "ref_reward_samples",
            "kl",
            "reward_values",
            "y",
            "d",
            "frontier_kl",
            "frontier_values",
            "ratios",
            "bon_regret",
            "alt_regret",
            "log_n",
            "token_scores",
        ),
        "values",
    ),
    "n": "sample_size",
    **dict.fromkeys(
        (
            "vocab_size",
            "length",
            "num_trials",
            "num",
            "num_samples",
            "num_pairs",
            "num_steps",
            "chunk_steps",
            "num_iterations",
            "steps_per_iteration",
            "chunk_size",
            "trial_batch",
            "batch_size",
            "d_model",
            "num_heads",
            "num_layers",
        ),
        "static_int",
    ),
    **dict.fromkeys(("beta", "temperature", "hack_mass", "eps", "m", "c", "betas", "cs", "step", "scale"), "positive"),
    **dict.fromkeys(("key",), "key"),
    **dict.fromkeys(("policy", "policy_a", "policy_b", "ref_policy", "init_policy", "reference"), "policy"),
    **dict.fromkeys(("reward", "gold", "base"), "reward"),
    **dict.fromkeys(("sequences", "tokens", "seqs_a", "seqs_b", "indices"), "sequences"),
    **dict.fromkeys(("method", "family", "distribution", "kind", "reward_kind", "target"), "choice"),
    "shape": "shape",
}

CHECKER_KINDS = {
    "probs": "probs",
    "log_probs": "log_probs",
    "rewards": "rewards",
    "values": "values",
    "real": "real",
    "sample_size": "sample_size",
    "static_sample_size": "static_sample_size",
    "static_int": "static_int",
    "positive": "positive",
    "nonnegative": "nonnegative",
    "at_least_one": "at_least_one",
    "unit_interval": "unit_interval",
    "finite": "finite",
    "prng_key": "key",
    "policy": "policy",
    "optional_policy": "policy",
    "reward": "reward",
    "optional_reward": "reward",
    "sequences": "sequences",
    "static_shape": "shape",
    "one_of": "choice",
    "subset_of": "choice",
    "log_densities": "log_densities",
    "array": "values",
    "static_number": "number",
    "path": "path",
    "has_attributes": "other",
    "mapping": "other",
    "sequence_of": "other",
    "sample_sizes": "sample_sizes",
}

OUTCOME_KINDS = {"probs", "log_probs", "rewards"}


def _bad_probs(v, log=False):
    v = np.asarray(v, dtype=float)
    lin = np.exp(v) if log else v
    neg = lin.copy()
    neg[..., 0] -= 0.5 + neg[..., 0]
    neg[..., -1] += 0.5 + lin[..., 0]
    nan = v.copy()
    nan[..., 0] = np.nan
    out = [("unnormalised", np.log(2 * lin) if log else 2 * lin), ("NaN", nan)]
    if not log:
        out.append(("negative", neg))
    else:
        out.append(("+inf", np.where(np.arange(v.shape[-1]) == 0, np.inf, v)))
    return out


def _common_array_bad(v):
    v = np.asarray(v)
    return [
        ("K=0", v[..., :0]),
        ("0-d array", np.asarray(0.5)),
        ("string", "0.5"),
        ("None", None),
        ("bool dtype", np.ones(v.shape, dtype=bool)),
        ("complex dtype", v.astype(complex)),
    ]


def _mismatched(v, dtype=float):
    v = np.asarray(v, dtype=dtype)
    extra = np.concatenate([v, v[..., :1]], axis=-1)
    return (
        "mismatched K",
        extra / extra.sum(-1, keepdims=True) if np.all(v >= 0) and np.isclose(v.sum(), 1) else extra,
    )


def bad_inputs(kind, valid, many_outcomes):
    """(label, value, is_valid) for one argument of ``kind`` whose valid example is ``valid``."""
    if kind in ("probs", "log_probs"):
        out = _bad_probs(valid, log=kind == "log_probs") + _common_array_bad(valid)
        return [(lb, x, False) for lb, x in out + ([_mismatched(valid)] if many_outcomes else [])]
    if kind == "rewards":
        v = np.asarray(valid, dtype=float)
        nan, inf = v.copy(), v.copy()
        nan[..., 0], inf[..., 0] = np.nan, np.inf
        out = [("NaN", nan), ("inf", inf)] + _common_array_bad(v) + ([_mismatched(v)] if many_outcomes else [])
        return [(lb, x, False) for lb, x in out]
    if kind in ("values", "real"):
        v = np.asarray(valid, dtype=float)
        nan = v.copy()
        nan.flat[0] = np.nan
        return [
            ("NaN", nan, False),
            ("string", "0.5", False),
            ("None", None, False),
            ("complex dtype", v.astype(complex), False),
        ]
    if kind == "sample_size":
        return [
            ("n=0", 0, False),
            ("n=-1", -1, False),
            ("n=2.5", 2.5, False),
            ("n=NaN", float("nan"), False),
            ("string", "3", False),
            ("None", None, False),
            ("n=10**12", 10**12, True),
        ]
    if kind == "log_densities":
        v = np.asarray(valid, dtype=float)
        nan, inf = v.copy(), v.copy()
        nan[..., 0], inf[..., 0] = np.nan, np.inf
        out = [("NaN", nan), ("+inf", inf)] + _common_array_bad(v) + ([_mismatched(v)] if many_outcomes else [])
        return [(lb, x, False) for lb, x in out]
    if kind == "sample_sizes":
        return [
            ("n=0", np.array([0, 2]), False),
            ("n=2.5", np.array([1, 2.5]), False),
            ("string", "3", False),
            ("None", None, False),
            ("empty", np.array([], dtype=int), False),
            ("n=10**12", [1, 10**12], True),
        ]
    if kind == "number":
        return [
            ("NaN", float("nan"), False),
            ("inf", float("inf"), False),
            ("string", "1", False),
            ("None", None, False),
        ]
    if kind == "path":
        return [("None", None, False), ("int", 3, False)]
    if kind == "static_sample_size":
        return [
            ("n=0", 0, False),
            ("n=-1", -1, False),
            ("n=2.5", 2.5, False),
            ("string", "3", False),
            ("None", None, False),
        ]
    if kind == "static_int":
        return [("-1", -1, False), ("2.5", 2.5, False), ("string", "3", False), ("None", None, False)]
    if kind in ("positive", "nonnegative", "at_least_one", "unit_interval", "finite"):
        shape = np.shape(valid)
        out = [
            ("-1", np.full(shape, -1.0), False),
            ("NaN", np.full(shape, np.nan), False),
            ("string", "1", False),
            ("None", None, False),
        ]
        if kind == "unit_interval":
            out.append(("2", np.full(shape, 2.0), False))
        if kind == "finite":
            out = [
                ("inf", np.full(shape, np.inf), False),
                ("NaN", np.full(shape, np.nan), False),
                ("string", "1", False),
                ("None", None, False),
            ]
        return out
    if kind == "key":
        return [("string", "key", False), ("None", None, False), ("int", 0, False)]
    if kind in ("policy", "reward"):
        return [("string", kind, False), ("None", None, False), ("array", np.zeros(3), False)]
    if kind == "sequences":
        v = np.asarray(valid)
        return [
            ("float dtype", v.astype(float), False),
            ("negative ids", -np.ones_like(v), False),
            ("string", "01", False),
            ("None", None, False),
            ("0-d array", np.asarray(1), False),
        ]
    if kind == "choice":
        return [("unknown", "no-such-choice", False), ("None", None, False)]
    if kind == "shape":
        return [("negative", (-1,), False), ("string", "2", False), ("float", (2.5,), False), ("plain int", 2, True)]
    # any other required argument: None and a string are never valid where a value is required
    return [("string", "x", False), ("None", None, False)]


# Where a name means something else in one callable: (callable, argument) -> kind.
KIND_OVERRIDES = {
    ("bon_sweep", "rewards"): "other",  # name -> reward mapping
    ("TokenCountReward", "target"): "static_int",  # a token id
    ("PatternReward", "value"): "finite",
    ("select_regularized_bon", "log_probs"): "real",
    **{
        (f, "log_probs"): "log_densities"
        for f in ("select_soft_bon", "select_quantile_truncation", "select_pessimism", "reward_scorer")
    },
    **{(f, a): "log_densities" for f in ("kl_k1", "kl_k2", "kl_k3") for a in ("logp_policy", "logp_ref")},
    ("beirami_kl_estimate", "log_probs"): "values",
    ("bon_level_log_probs", "log_probs"): "log_densities",
    ("bon_level_log_probs_at_log_n", "log_probs"): "log_densities",
    ("proxy_study_summary", "ns"): "values",
    ("vbon_log_ratio", "log_probs"): "log_densities",
    ("LiftedVBoNLoss", "order"): "static_int",
    ("LiftedVBoNLoss", "num_values"): "static_int",
    ("LiftedBoNAwareLoss", "num_values"): "static_int",
    ("AutomatonPolicy", "order"): "static_int",
    ("level_log_cdfs", "log_probs"): "log_densities",
}


def argument_kinds(name, fn, example):
    """``{argument: kind}`` for the arguments to fuzz: declared kinds, else by name for required ones."""
    declared = {
        a: CHECKER_KINDS.get(getattr(c, "__name__", ""), "other")
        for a, c in getattr(fn, "argument_kinds", {}).items()
        if a in example
    }
    sig = inspect.signature(fn)
    out = {}
    for a, p in sig.parameters.items():
        if a not in example:
            continue
        required = p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        if (name, a) in KIND_OVERRIDES:
            out[a] = KIND_OVERRIDES[(name, a)]
        elif a in declared:
            out[a] = declared[a]
        elif required or a in NAME_KINDS:
            out[a] = NAME_KINDS.get(a, "other")
    return out


# --------------------------------------------------------------------------------------------------
# Classification

CLASSES = ("valid", "clear", "silent", "silent_nan", "obscure")


def _has_nan(out) -> bool:
    for leaf in jax.tree.leaves(out):
        if isinstance(leaf, (jax.Array, np.ndarray, float, np.floating)) and not (
            hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)
        ):
            a = np.asarray(leaf)
            if a.dtype.kind in "fc" and np.any(np.isnan(a)):
                return True
    return False


def _names(message: str, argument: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(argument)}(?![A-Za-z0-9_])", message) is not None


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang("no answer within the time limit")


def classify(fn, kwargs, argument, is_valid, seconds=20):
    """One call's class and detail; a call running longer than ``seconds`` (a hang: a loop that never ends
    on a bad value) is obscure."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        return _classify(fn, kwargs, argument, is_valid)
    except _Hang as e:
        return "obscure", f"hang: {e}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _classify(fn, kwargs, argument, is_valid):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = fn(**kwargs)
            jax.block_until_ready(jax.tree.leaves(out))
        except (ValueError, TypeError) as e:
            if is_valid:
                return "obscure", f"{type(e).__name__}: {e}"
            return ("clear" if _names(str(e), argument) else "obscure"), f"{type(e).__name__}: {e}"
        except _Hang:
            raise
        except Exception as e:
            return "obscure", f"{type(e).__name__}: {e}"
    if _has_nan(out):
        return ("obscure" if is_valid else "silent_nan"), "NaN in the result"
    return ("valid" if is_valid else "silent"), "returned"


def public_callables():
    for name in sorted(bt.__all__):
        value = getattr(bt, name)
        if callable(value) and not _is_result_container(value):
            yield name, value


def run_fuzz(checkpoint, verbose=False):
    """Runs every (callable, argument, bad input); returns the outcomes."""
    examples = _examples(checkpoint)
    outcomes = []
    for name, fn in public_callables():
        if name in NOT_FUZZED or name not in examples:  # a missing example fails the test above
            continue
        example = examples[name]
        kinds = argument_kinds(name, fn, example)
        many = sum(k in OUTCOME_KINDS for k in kinds.values()) >= 2
        for argument, kind in kinds.items():
            if argument in PYTREE_LEAF_FIELDS.get(name, ()):
                continue
            for label, value, is_valid in bad_inputs(kind, example[argument], many):
                kwargs = dict(example, **{argument: value})
                if verbose:
                    print(f"{time.time():.1f}", name, argument, label, file=sys.stderr, flush=True)
                cls, detail = classify(fn, kwargs, argument, is_valid)
                outcomes.append((name, argument, label, cls, detail))
    return outcomes


def counts(outcomes):
    c = collections.Counter(o[3] for o in outcomes)
    return {k: c.get(k, 0) for k in CLASSES} | {"inputs": len(outcomes), "callables": len({o[0] for o in outcomes})}


# Outcomes that are not a failure although not `clear`, each with its reason: (callable, argument, label).
ALLOWED = {
    # n must be <= K samples here: 10**12 is out of this function's domain, and its error names ns
    ("bon_unbiased_estimate", "ns", "n=10**12"),
    # its exact law enumerates at least n + 1 states: 10**12 is refused (ExactLawTooLarge, naming n and max_states)
    ("chi2_pessimism_sampler_pmf", "n", "n=10**12"),
    # order=None is a valid value: the full-history (non-Markov) table
    ("expand_tabular_policy", "order", "None"),
    # fields=None is the default: every field
    ("reward_levels", "fields", "None"),
    # ref_policy and reward are needed only by the sampled methods; the example method (bon_sft) is exact
    ("train_toward_bon", "ref_policy", "None"),
    ("train_toward_bon", "reward", "None"),
}

# Array fields of pytree records (flax.struct dataclasses): JAX rebuilds a record from its leaves with tracers,
# batching specs (ints, None) and placeholders (tree_unflatten calls the constructor), so the constructor cannot
# check them; they are checked where the record is used (the policy / reward kinds, and the call on sequences).
# Static fields (sizes, settings) are checked by the constructor and are fuzzed.
PYTREE_LEAF_FIELDS = {
    "FunctionReward": {"fn"},
    "HackProxyReward": {"base", "key", "threshold"},
    "HackedGoldReward": {"base", "key", "threshold"},
    "LearnedReward": {"module", "params"},
    "ModulePolicy": {"module", "params"},
    "NoisyProxyReward": {"gold", "key"},
    "QuantizedReward": {"base"},
    "SentimentReward": {"scores"},
    "SequenceHashReward": {"key"},
    "TokenScoreReward": {"scores"},
    "SumReward": {"terms"},
    "AutomatonPolicy": {"logits", "transition"},
}


def test_every_public_callable_has_an_example_call(tmp_path):
    examples = _examples(tmp_path / "checkpoint")
    missing = [n for n, _ in public_callables() if n not in examples and n not in NOT_FUZZED]
    assert not missing, f"add a valid example call to EXAMPLES for: {missing}"


@pytest.mark.slow
def test_every_example_call_is_valid(tmp_path):
    """The examples themselves run and return finite numbers (slow: every function compiles once)."""
    examples = _examples(tmp_path / "checkpoint")
    broken = []
    for name, fn in public_callables():
        if name in examples:
            cls, detail = classify(fn, examples[name], "", True)
            if cls != "valid":
                broken.append((name, detail))
    assert not broken, broken


def test_bad_inputs_get_a_clear_error_naming_the_argument(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a path argument given a bad value must not litter the working directory
    outcomes = run_fuzz(tmp_path / "checkpoint")
    bad = [o for o in outcomes if o[3] not in ("valid", "clear") and o[:3] not in ALLOWED]
    summary = counts(outcomes)
    print(summary)
    assert not bad, f"{summary}\n" + "\n".join(f"{o[0]}({o[1]}={o[2]}): {o[3]}: {o[4][:160]}" for o in bad)


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    import os
    import tempfile

    os.chdir(tempfile.mkdtemp())
    outs = run_fuzz("checkpoint", verbose=True)
    print(counts(outs))
    for o in outs:
        if o[3] not in ("valid", "clear"):
            print(f"{o[3]:10s} {o[0]}({o[1]}={o[2]}): {o[4][:200]}")
    assert math.isfinite(0.0)
