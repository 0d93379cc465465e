r"""Sweeps shared by the regime experiments: proxy/gold problems on enumerated token sequences, and the
gold-reward / gold-win-rate curves of every method over a grid of sample budgets n.

A *problem* is ``(ref_probs, proxy, gold)``, each ``float[K]`` over the ``K = V^L`` sequences of a tabular
token-level policy (:func:`proxy_problem`, or :func:`proxy_problem_from_rewards` for one's own policy and
reward functions). Everything downstream is exact (no sampling).

Methods (``param`` is each method's knob; ``n`` its sample size; *calls* the reward-model calls one output
costs, :func:`method_reward_calls`):

========================  ==============================================  =============  ==============
method                    pmf at sample size n                            param          reward calls
========================  ==============================================  =============  ==============
``bon``                   :func:`bontheory.exact.bon_pmf`                 (none)         n
``soft_bon``              :func:`soft_bon_pmf`                            temperature λ  n
``quantile_trunc``        :func:`quantile_truncation_sampler_pmf`         M              n
``chi2_pessimism``        :func:`chi2_pessimism_sampler_pmf` (finite N)   β              2n + 1
``chi2_pessimism_limit``  :func:`chi2_pessimism_pmf` (population, N → ∞)  β              ∞ (no budget)
``regularized_bon``       :func:`regularized_bon_pmf`                     β              n
``tilted``                :func:`bontheory.exact.tilted_pmf` (no n)       β              ∞ (no budget)
========================  ==============================================  =============  ==============

**Equal budgets.** :func:`method_gold_curves` and :func:`method_grid_curves` take *budgets* in reward-model
calls by default (``per="calls"``): at budget B each method runs at the largest n it can afford
(:func:`method_n_for_budget`; χ²-pessimism at ``n = ⌊(B − 1)/2⌋``, undefined — NaN — below B = 3), and the
curves state the n and the calls spent. ``per="n"`` compares at equal sample sizes instead.

**Parameters in units of the proxy's spread.** Both functions read the parameters of :data:`SCALED_METHODS`
(soft-BoN λ, χ² β, tilt β) as multiples of the proxy's standard deviation under p (:func:`proxy_spread`);
M (truncation) and β of regularised BoN (which multiplies log p) are plain. :func:`method_pmfs` takes
absolute parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from bontheory import validation
from bontheory.exact.bon import bon_pmf
from bontheory.exact.divergences import kl_divergence, win_rate
from bontheory.exact.metrics import regret
from bontheory.exact.pessimism import chi2_pessimism_pmf
from bontheory.exact.pessimism_sampler import chi2_pessimism_sampler_pmf
from bontheory.exact.regularized import regularized_bon_pmf
from bontheory.exact.soft_bon import soft_bon_pmf
from bontheory.exact.tilted import tilted_pmf
from bontheory.exact.truncation import quantile_truncation_sampler_pmf
from bontheory.results import EnumeratedSpace
from bontheory.rewards.reward import as_reward

METHODS = ("bon", "soft_bon", "quantile_trunc", "chi2_pessimism", "chi2_pessimism_limit", "regularized_bon", "tilted")
#: Population targets (N → ∞): their pmf does not depend on n and they have no finite budget.
POPULATION_METHODS = ("chi2_pessimism_limit", "tilted")
PROXY_FAMILIES = ("gaussian", "student_t", "cauchy", "hack", "bradley_terry")  # see proxy_problem


class ProxyProblem(NamedTuple):
    """A proxy-vs-gold problem: an enumerated space whose rewards are the proxy, and the gold reward.

    Attributes:
      space: the :class:`~bontheory.results.EnumeratedSpace` (sequences, reference log-probabilities, and
        the proxy reward as its ``rewards``).
      gold: ``float[K]`` the gold reward of each sequence.
    """

    space: EnumeratedSpace
    gold: Float[Array, " K"]

    @property
    def ref_probs(self) -> Float[Array, " K"]:
        """``float[K]`` the reference pmf ``exp(log_probs)`` in the default float dtype, renormalised."""
        p = jnp.exp(self.space.log_probs.astype(jnp.result_type(float)))
        return p / jnp.sum(p)

    @property
    def proxy(self) -> Float[Array, " K"]:
        """``float[K]`` the proxy reward (``space.rewards``)."""
        return self.space.rewards


@validation.validate(policy=validation.policy, proxy=validation.reward, gold=validation.reward)
def proxy_problem_from_rewards(policy: Any, proxy: Any, gold: Any) -> ProxyProblem:
    """A proxy/gold problem from a policy and two reward functions, in one call.

    Enumerates the policy's ``V^L`` sequences (:func:`bontheory.policies.enumerate_sequences`) and scores
    them with both rewards. Any reward is accepted: a built-in reward pytree or a plain function
    ``int[..., L] -> float[...]`` (wrapped by :func:`bontheory.rewards.as_reward`).

    Args:
      policy: a :class:`~bontheory.policies.Policy` small enough to enumerate.
      proxy: the reward the methods optimise (``r̂``).
      gold: the reward the user cares about (``r*``).

    Returns:
      :class:`ProxyProblem` (``space.rewards`` the proxy, ``gold`` the gold reward, both ``float[K]``).

    Example::

        problem = proxy_problem_from_rewards(policy, lambda s: my_rm(s), lambda s: jnp.sum(s == 0, -1))
        curves = method_gold_curves(problem, "bon", [1, 4, 16])
    """
    from bontheory.policies.enumerate import enumerate_sequences

    seqs, logp = enumerate_sequences(policy)
    proxy_r = as_reward(proxy, "proxy")(seqs)
    gold_r = as_reward(gold, "gold")(seqs)
    return ProxyProblem(EnumeratedSpace(seqs, logp, proxy_r), gold_r)


@validation.validate(key=validation.prng_key)
def proxy_problem(
    key: jax.Array,
    family: str,
    *,
    vocab_size: int = 4,
    length: int = 6,
    order: int | None = 0,
    error: float = 1.0,
    policy_temperature: float = 1.0,
    hack_mass: float = 1e-3,
    hack_penalty: float = 3.0,
    bt_pairs: int = 2048,
    bt_steps: int = 400,
) -> ProxyProblem:
    r"""Enumerates a random tabular policy and a proxy/gold pair on its ``V^L`` sequences.

    The gold reward is additive: ``r*(y) = Σ_t s_t(y_t)`` with random per-token scores. Families:

    * ``"gaussian"``, ``"student_t"`` (df = 3), ``"cauchy"``: ``r̂ = r* + error · ε(y)``;
    * ``"hack"``: a rare region H of reference mass ``hack_mass``; ``r̂ = r* + error · 1_H`` and the gold
      subtracts ``hack_penalty`` on H (proxy loves, gold hates);
    * ``"bradley_terry"``: a small network trained by :func:`bontheory.rewards.train_bradley_terry` on
      ``bt_pairs`` preference pairs labelled by ``r*`` with Bradley–Terry temperature ``error``.

    Args:
      key: PRNG key (policy, gold and proxy keys are split from it).
      family: one of the above.
      vocab_size, length, order, policy_temperature: the reference policy (see ``random_tabular_policy``).
      error: proxy error size (noise scale, hack bonus, or label temperature).

    Returns:
      :class:`ProxyProblem` over the ``V^L`` sequences (``ref_probs`` in float64 when x64 is on).
    """
    from bontheory.policies.tabular import random_tabular_policy
    from bontheory.rewards.bradley_terry import train_bradley_terry
    from bontheory.rewards.proxy import NoisyProxyReward, make_hack_proxy
    from bontheory.rewards.toy import random_token_score_reward

    k_pol, k_gold, k_proxy = jax.random.split(key, 3)
    policy = random_tabular_policy(k_pol, vocab_size, length, order=order, temperature=policy_temperature)
    gold = random_token_score_reward(k_gold, vocab_size, length)

    if family in ("gaussian", "student_t", "cauchy"):
        proxy = NoisyProxyReward(gold, k_proxy, scale=float(error), noise=family, df=3.0)
        return proxy_problem_from_rewards(policy, proxy, gold)
    if family == "hack":
        proxy, _ = make_hack_proxy(k_proxy, gold, policy, hack_mass, bonus=float(error), penalty=float(hack_penalty))
        return proxy_problem_from_rewards(policy, proxy, proxy.gold)
    if family == "bradley_terry":
        fit = train_bradley_terry(
            k_proxy, policy, gold, num_pairs=bt_pairs, num_steps=bt_steps, temperature=float(error)
        )
        return proxy_problem_from_rewards(policy, fit.reward, gold)
    raise ValueError(f"unknown proxy family {family!r}")


@validation.validate(
    ref_probs=validation.probs, rewards=validation.rewards, ns=validation.unconverted(validation.sample_sizes)
)
def method_pmfs(method: str, ref_probs: Any, rewards: Any, ns: Any, param: Any = None, **kwargs: Any) -> jax.Array:
    """The pmf of ``method`` (see the module table) at each sample size in ``ns``: ``float[len(ns), K]``.

    ``param`` is absolute (not scaled by the proxy's spread). ``kwargs`` go to the method's pmf (soft BoN's
    ``num_nodes``; χ²-pessimism's ``r_max``, ``max_states``).

    Raises:
      ExactLawTooLarge: the finite-N χ²-pessimism law is too large to enumerate (many distinct rewards and
        large n; see :func:`chi2_pessimism_sampler_pmf`).
    """
    ns = jnp.asarray(ns)
    if method == "bon":
        return bon_pmf(ref_probs, rewards, ns)
    if method == "soft_bon":
        return soft_bon_pmf(ref_probs, rewards, ns, param, **kwargs)
    if method == "quantile_trunc":
        return quantile_truncation_sampler_pmf(ref_probs, rewards, ns, param)
    if method == "regularized_bon":
        return regularized_bon_pmf(ref_probs, rewards, ns, param)
    if method == "chi2_pessimism":
        return chi2_pessimism_sampler_pmf(ref_probs, rewards, np.asarray(ns).reshape(-1), param, **kwargs).reshape(
            ns.shape + (jnp.shape(ref_probs)[-1],)
        )
    if method == "chi2_pessimism_limit":
        pmf = chi2_pessimism_pmf(ref_probs, rewards, param)
    elif method == "tilted":
        pmf = tilted_pmf(ref_probs, rewards, param)
    else:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    return jnp.broadcast_to(pmf, ns.shape + pmf.shape[-1:])


@validation.validate(n=validation.unconverted(validation.sample_sizes))
def method_reward_calls(method: str, n: Any) -> np.ndarray:
    """Reward-model calls one output of ``method`` costs at sample size ``n`` (see the module table).

    BoN and its single-batch alternatives score n candidates; InferenceTimePessimism scores ``2n + 1``
    (n for its threshold, n proposals, one fallback). Population targets cost ``inf`` (no finite budget).

    Args:
      method: one of :data:`METHODS`.
      n: sample sizes ≥ 1 (any shape).

    Returns:
      ``float64`` array of the shape of ``n``.
    """
    _check_method(method)
    n = np.asarray(validation.sample_size(n, "n"), np.float64)
    if method in POPULATION_METHODS:
        return np.full(n.shape, np.inf)
    if method == "chi2_pessimism":
        return 2 * n + 1
    return n


@validation.validate(budget=validation.kind(validation.array, min_value=1, finite=False))
def method_n_for_budget(method: str, budget: Any) -> np.ndarray:
    """The largest sample size n whose cost (:func:`method_reward_calls`) is at most ``budget`` calls.

    Args:
      method: one of :data:`METHODS`, not a population target.
      budget: reward-model calls ≥ 1 per output (any shape).

    Returns:
      ``int64`` array of the shape of ``budget``; 0 where the method cannot run (pessimism below 3 calls).

    Raises:
      ValueError: ``method`` is a population target (it has no finite budget).
    """
    _check_method(method)
    if method in POPULATION_METHODS:
        raise ValueError(f"{method} is a population target (N → ∞): it has no finite budget")
    b = np.asarray(validation.sample_size(budget, "budget"), np.int64)
    if method == "chi2_pessimism":
        return (b - 1) // 2
    return b


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


@validation.validate(problem=validation.has_attributes("space", "gold", what="a ProxyProblem (from proxy_problem)"))
def proxy_spread(problem: ProxyProblem) -> float:
    """The proxy's standard deviation under p: the unit of the :data:`SCALED_METHODS` parameters."""
    p = np.asarray(problem.ref_probs, np.float64)
    proxy = np.asarray(problem.proxy, np.float64)
    return float(np.sqrt(p @ (proxy - p @ proxy) ** 2))


class GoldCurves(NamedTuple):
    """Per-budget metrics of one method and parameter (each ``float[len(budgets)]``; NaN where the method
    cannot run at that budget).

    ``gold_regret`` is the gold-reward regret ``E_{π*}[r*] − E_π[r*]`` against the comparator given to
    :func:`method_gold_curves` (``None`` without one). ``n`` is the method's sample size at each budget and
    ``reward_calls`` the reward-model calls it spends there (``inf`` for population targets).
    """

    gold_reward: np.ndarray
    gold_win_rate: np.ndarray
    proxy_reward: np.ndarray
    kl: np.ndarray
    gold_regret: np.ndarray | None = None
    n: np.ndarray | None = None
    reward_calls: np.ndarray | None = None


@validation.validate(
    problem=validation.has_attributes("space", "gold", what="a ProxyProblem (from proxy_problem)"),
    budgets=validation.kind(validation.array, ndim=1, min_value=1),
)
def method_gold_curves(
    problem: ProxyProblem,
    method: str,
    budgets: Any,
    param: Any = None,
    *,
    per: str = "calls",
    comparator_probs: Any = None,
    **kwargs: Any,
) -> GoldCurves:
    """Gold reward, gold win rate against p (ties ½), proxy reward and KL to p of ``method`` at each budget.

    Every finite-budget method is exact at finite n (χ²-pessimism included: :func:`chi2_pessimism_sampler_pmf`).

    Args:
      problem: a :class:`ProxyProblem`.
      method: one of :data:`METHODS`.
      budgets: ``int[B]`` reward-model calls per output (``per="calls"``, the default: equal budgets across
        methods, n from :func:`method_n_for_budget`), or sample sizes n (``per="n"``).
      param: the method's parameter; for :data:`SCALED_METHODS` in units of the proxy's standard deviation
        under p (:func:`proxy_spread`), as in :func:`method_grid_curves`.
      per: ``"calls"`` or ``"n"``.
      comparator_probs: a pmf π* over the outcomes (``float[K]``): also the gold regret
        :func:`bontheory.regret` ``(π_n, π*, r*)`` at each budget.
      kwargs: to the method's pmf (soft BoN's ``num_nodes``; χ²-pessimism's ``r_max``, ``max_states``).

    Returns:
      :class:`GoldCurves` (with the n used and the calls spent at each budget).

    Raises:
      ExactLawTooLarge: χ²-pessimism's finite-N law is too large for this problem (many distinct proxy values
        and large n): quantise the proxy or use the Monte Carlo sampler :func:`bontheory.pessimism_sample`.
    """
    _check_method(method)
    if per not in ("calls", "n"):
        raise ValueError(f"per must be 'calls' or 'n', got {per!r}")
    budgets = np.asarray(budgets)
    if method in POPULATION_METHODS:
        ns = np.ones(budgets.shape, np.int64)
        calls = np.full(budgets.shape, np.inf)
    elif per == "calls":
        ns = method_n_for_budget(method, budgets)
        calls = np.where(ns > 0, method_reward_calls(method, np.maximum(ns, 1)), np.nan)
    else:
        ns = np.asarray(validation.sample_size(budgets, "budgets"), np.int64)
        calls = method_reward_calls(method, ns)
    if method in SCALED_METHODS and param is not None:
        param = float(param) * proxy_spread(problem)
    ok = ns > 0
    nan = np.full(budgets.shape, np.nan)
    pmf = method_pmfs(method, problem.ref_probs, problem.proxy, ns[ok], param, **kwargs)
    total = jnp.sum(pmf, axis=-1, keepdims=True)
    worst = float(jnp.max(jnp.abs(total - 1))) if pmf.shape[0] else 0.0
    if worst > 1e-6:
        raise ValueError(f"{method} pmf sums to 1 only within {worst:.2g} (soft BoN: increase num_nodes)")
    pmf = pmf / total  # rounding only
    p = jnp.broadcast_to(problem.ref_probs, pmf.shape)

    def fill(values):
        out = nan.copy()
        out[ok] = np.asarray(values)
        return out

    gold_regret = None
    if comparator_probs is not None:
        gold_regret = fill(regret(pmf, comparator_probs, problem.gold))
    return GoldCurves(
        gold_reward=fill(pmf @ problem.gold),
        gold_win_rate=fill(win_rate(pmf, p, jnp.broadcast_to(problem.gold, pmf.shape))),
        proxy_reward=fill(pmf @ problem.proxy),
        kl=fill(kl_divergence(pmf, p)),
        gold_regret=gold_regret,
        n=ns,
        reward_calls=calls,
    )


#: Default parameter grids of :func:`method_grid_curves`. Soft-BoN λ, χ² β and tilt β are multiples of the
#: proxy's standard deviation under p; M (truncation) and β (regularised BoN, multiplying log p) are plain.
#: χ²-pessimism appears as its population target (its exact finite-N law is enumerable only for proxies with
#: few distinct values; add ``"chi2_pessimism"`` to a grid for those).
DEFAULT_GRIDS: dict[str, tuple[float, ...]] = {
    "soft_bon": (0.03, 0.1, 0.3, 1.0),
    "quantile_trunc": (2.0, 8.0, 32.0, 128.0),
    "chi2_pessimism_limit": (0.03, 0.1, 0.3, 1.0),
    "regularized_bon": (0.1, 0.3, 1.0, 3.0),
    "tilted": (0.03, 0.1, 0.3, 1.0),
}
SCALED_METHODS = ("soft_bon", "chi2_pessimism", "chi2_pessimism_limit", "tilted")


def _curve_dict(c: GoldCurves) -> dict[str, np.ndarray]:
    out = {"gold": c.gold_reward, "win": c.gold_win_rate, "kl": c.kl}
    if c.gold_regret is not None:
        out["regret"] = c.gold_regret
    return out


@validation.validate(
    problem=validation.has_attributes("space", "gold", what="a ProxyProblem (from proxy_problem)"),
    budgets=validation.kind(validation.array, ndim=1, min_value=1),
)
def method_grid_curves(
    problem: ProxyProblem,
    budgets: Any,
    grids: dict[str, tuple[float, ...]] | None = None,
    *,
    per: str = "calls",
    soft_bon_nodes: int | None = None,
    comparator_probs: Any = None,
) -> dict[str, Any]:
    """Curves of BoN and of every method over its parameter grid (see :data:`DEFAULT_GRIDS`).

    Budgets and parameters are read as in :func:`method_gold_curves`: ``budgets`` in reward-model calls
    (``per="calls"``, default) or sample sizes (``per="n"``); the grid values of :data:`SCALED_METHODS` in
    units of the proxy's standard deviation under p. With ``comparator_probs`` (a pmf π* over the outcomes)
    every curve also has ``"regret"``, the gold regret against π*.

    Returns:
      ``{"proxy_sd", "gold_mean", "reward_calls", "bon": {gold, win, kl}, <method>: [{param, gold, win, kl}, ...],
      "n": {<method>: n per budget}}`` with arrays of length ``len(budgets)``; ``param`` is the grid value (before
      scaling by ``proxy_sd``); ``reward_calls[method]`` the calls each method spends per budget.
    """
    grids = DEFAULT_GRIDS if grids is None else grids
    budgets = np.asarray(budgets)
    out: dict[str, Any] = {
        "proxy_sd": proxy_spread(problem),
        "gold_mean": float(np.asarray(problem.ref_probs) @ np.asarray(problem.gold)),
    }
    c = method_gold_curves(problem, "bon", budgets, per=per, comparator_probs=comparator_probs)
    out["bon"] = _curve_dict(c)
    calls, ns = {"bon": c.reward_calls}, {"bon": c.n}
    for method, grid in grids.items():
        rows = []
        for g in grid:
            kw = {"num_nodes": soft_bon_nodes} if (method == "soft_bon" and soft_bon_nodes) else {}
            c = method_gold_curves(problem, method, budgets, g, per=per, comparator_probs=comparator_probs, **kw)
            rows.append({"param": g, **_curve_dict(c)})
        out[method] = rows
        calls[method], ns[method] = c.reward_calls, c.n
    out["reward_calls"], out["n"] = calls, ns
    return out


@validation.validate(results=validation.sequence_of)
def mean_over_seeds(results: Sequence[Any]) -> Any:
    """The mean over seeds of equally shaped results (e.g. :func:`method_grid_curves` outputs, or the same
    read back from JSON).

    Dicts are averaged key by key and lists of dicts element by element; every other value (a number, an
    array, a list of numbers) is a leaf, averaged over the seeds as a ``float64`` array.

    Args:
      results: ``S ≥ 1`` results with the same nested structure and leaf shapes.

    Returns:
      The same structure with NumPy ``float64`` leaves.
    """
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Sequence) or not results:
        raise ValueError("results must be a non-empty sequence (one result per seed)")
    return _mean_tree(list(results), "results")


def _mean_tree(xs: list[Any], path: str) -> Any:
    first = xs[0]
    if isinstance(first, Mapping):
        if any(not isinstance(x, Mapping) or x.keys() != first.keys() for x in xs):
            raise ValueError(f"results must all have the same structure: {path} has different keys")
        return {k: _mean_tree([x[k] for x in xs], f"{path}[{k!r}]") for k in first}
    if isinstance(first, (list, tuple)) and first and isinstance(first[0], Mapping):
        if any(not isinstance(x, (list, tuple)) or len(x) != len(first) for x in xs):
            raise ValueError(f"results must all have the same structure: {path} has different lengths")
        return [_mean_tree([x[i] for x in xs], f"{path}[{i}]") for i in range(len(first))]
    try:
        leaves = np.stack([np.asarray(x, np.float64) for x in xs])
    except (TypeError, ValueError) as e:
        raise ValueError(f"results must all have the same structure and numeric leaves: {path}: {e}") from None
    return np.mean(leaves, axis=0)


class GridBest(NamedTuple):
    """The best grid row at each budget (oracle tuning): ``value[j] = max_g values[g, j]``, attained at
    ``param[j] = grid[index[j]]`` (the first maximum on ties)."""

    value: np.ndarray
    index: np.ndarray
    param: list[float]


@validation.validate(values=validation.kind(validation.array, ndim=2), grid=validation.sequence_of)
def best_on_grid(values: Any, grid: Sequence[float]) -> GridBest:
    """The best parameter of a grid at each budget, by maximum of ``values``.

    Args:
      values: ``float[G, N]``, row g the curve (over N budgets) of grid value ``grid[g]``; finite.
      grid: the ``G`` parameter values.

    Returns:
      :class:`GridBest`.
    """
    v = np.asarray(values, np.float64)
    grid = list(grid)
    if v.ndim != 2 or v.shape[0] != len(grid) or v.shape[0] == 0:
        raise ValueError(
            f"values must have shape (len(grid), N) with len(grid) >= 1, got {v.shape} for {len(grid)} grid values"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite")
    index = np.argmax(v, axis=0)
    return GridBest(value=np.max(v, axis=0), index=index, param=[grid[i] for i in index])
