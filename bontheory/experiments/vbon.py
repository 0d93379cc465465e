r"""Variational BoN and the other ways of training toward BoN, measured exactly on enumerated sequences.

Controlled generation: a reference policy over V^L token sequences (tabular memoryless, and a tiny random
transformer), the toy "sentiment" reward with negation (:func:`bontheory.vbon.sentiment_reward`:
non-additive, many ties). For each n, each method is trained from the reference with Adam
(:func:`bontheory.vbon.train_toward_bon`) into a policy class — tabular full history (can represent π_n
exactly), tabular memoryless (cannot), the transformer — and measured exactly: KL(π_θ‖π_n), KL(π_n‖π_θ),
reward gap, win rates, and its (KL to p, E[r]) point. KL-RL is swept over β. The continuous-form target's
own distance to π_n (the tie effect), and the sampled vBoN error against the number M of reference
samples, are reported too. The paper's claims (Amini et al., arXiv 2407.06057: BoN best; vBoN closest to
BoN and most often on the reward–KL Pareto frontier, more than KL-RL) are checked in ``summary``.

A second part ("scale") asks how the approximation error of the memoryless and the Markov-1 policy families
behaves on long sequences, beyond enumeration: for a random memoryless reference over V tokens, L positions
(L up to 512) and the additive integer reward ``R(y) = Σ_t y_t``, the exact vBoN loss

.. math:: \mathrm{KL}(\pi_\theta\|\pi_n) = \mathrm{KL}(\pi_\theta\|p) - \sum_\rho m_\theta(\rho)\,\lambda_n(\rho),
          \qquad \lambda_n = \log(q_n/m)

(docs/theory.md §8.6; :func:`bontheory.lifted_vbon_data`: the chain-rule KL of tabular policies, the law
:math:`m_\theta` of R under :math:`\pi_\theta` by the lifted dynamic program, differentiable, and :math:`\lambda_n`
from the law of R under p in log space) is minimised by L-BFGS
(``optax.lbfgs``) until the gradient norm is below ``scale_grad_tol``, so the error measures the family, not the
optimiser. Yang et al. (arXiv 2404.01730) show BoN with log n ∝ L is asymptotically equivalent to the tilted
optimum, a memoryless policy here; the summary states whether the memoryless error at fixed n vanishes with L,
in total and per token.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from bontheory import (
    VBON_METHODS,
    MethodSettings,
    approximation_metrics,
    cell_key,
    empirical_log_cdfs,
    enumerate_sequences,
    expand_tabular_policy,
    init_transformer_policy,
    random_tabular_policy,
    reverse_kl,
    sentiment_reward,
    tie_effect,
    tilted_pmf,
    train_toward_bon,
    vbon_target_log_probs,
)
from bontheory.experiments import checks
from bontheory.plotting import new_figure, save_figure
from bontheory.runner import progress
from bontheory.studies.vbon_claims import frontier_fractions, vbon_claims

NAME = "vbon"
SUMMARY = (
    "vBoN vs KL-RL, BoN-SFT, BOND, BoNBoN trained toward BoN: exact approximation error, Pareto frontier; "
    "memoryless/Markov error vs L to 512 (lifted, L-BFGS)"
)

LABELS = {
    "bon": "BoN (exact)",
    "vbon_exact": "vBoN (exact target)",
    "vbon_continuous": "vBoN (continuous pF^{n-1})",
    "vbon_sampled": "vBoN (sampled, M refs)",
    "vbon_sampled_exact": "vBoN (sampled, exact-target form)",
    "kl_rl": "KL-RL (β sweep)",
    "bon_sft": "BoN-SFT",
    "bond": "BOND (Jeffreys)",
    "bond_iterated": "BOND iterated (2^t)",
    "bonbon": "BoNBoN",
}

POLICY_CLASSES = ("tabular_full", "tabular_memoryless", "transformer")
SCALE_FAMILIES = ("memoryless", "markov1")

# one fixed colour per method across panels (the house palette has fewer colours than methods)
_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
COLORS = {m: _TAB10[i % 10] for i, m in enumerate(m for m in LABELS if m != "bon")}


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings.

    Attributes:
      vocab_size: V (token 0 is "not"; the others carry sentiment ±1, ±2, 0).
      length: L (V^L sequences are enumerated).
      ns: BoN sizes (powers of 2, for iterated BOND).
      policy_classes: trained policy classes: ``tabular_full``, ``tabular_memoryless`` (reference is a
        random memoryless tabular policy) and ``transformer`` (reference is a random tiny transformer).
      methods: methods trained on the full-history tabular class.
      memoryless_methods: methods trained on the memoryless tabular class.
      transformer_methods: methods trained on the transformer class.
      transformer_learning_rate: Adam learning rate for the transformer (exact methods; sampled ones use half).
        Reverse-KL training of the transformer collapses to a point mass (where the gradient vanishes) at
        learning rates ≥ 0.03; 0.003 trains stably.
      m_study_classes: policy classes of the error-vs-M study.
      betas: KL-RL coefficients swept.
      ms: numbers M of reference samples for the sampled-vBoN error-vs-M study.
      m_study_n: n of the error-vs-M study.
      m_study_draws: independent F̂ draws for the estimation-only error.
      num_steps, learning_rate, sampled_batch, num_reference_samples, num_sft_samples: training settings.
      reference_temperature: temperature of the random tabular reference.
      transformer_logit_scale: logit scale of the random transformer reference.
      scale_vocab_size: V of the scale part (reward R(y) = Σ_t y_t, integer).
      scale_lengths: sequence lengths L of the scale part (exact, not enumerated).
      scale_ns: BoN sizes n of the scale part.
      scale_families: trained policy families of the scale part: ``memoryless`` and/or ``markov1``.
      scale_grad_tol: L-BFGS stops when the gradient norm of the exact loss is below this.
      scale_max_iters: L-BFGS iteration cap (a cell that hits it is reported as not converged).
      seed: random seed.
      x64: compute in float64.
    """

    vocab_size: int = 4
    length: int = 6
    ns: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    policy_classes: tuple[str, ...] = ("tabular_full", "tabular_memoryless", "transformer")
    methods: tuple[str, ...] = (
        "vbon_exact",
        "vbon_continuous",
        "vbon_sampled",
        "vbon_sampled_exact",
        "bon_sft",
        "bond",
        "bond_iterated",
        "bonbon",
    )
    memoryless_methods: tuple[str, ...] = (
        "vbon_exact",
        "vbon_continuous",
        "vbon_sampled",
        "bon_sft",
        "bond",
        "bond_iterated",
        "bonbon",
    )
    transformer_methods: tuple[str, ...] = ("vbon_exact", "vbon_continuous", "vbon_sampled", "bon_sft", "bond")
    transformer_learning_rate: float = 0.003
    m_study_classes: tuple[str, ...] = ("tabular_full", "tabular_memoryless")
    betas: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    ms: tuple[int, ...] = (10, 30, 100, 300, 1000)
    m_study_n: int = 8
    m_study_draws: int = 20
    num_steps: int = 400
    learning_rate: float = 0.1
    sampled_batch: int = 32
    num_reference_samples: int = 300
    num_sft_samples: int = 1000
    reference_temperature: float = 1.0
    transformer_logit_scale: float = 3.0
    scale_vocab_size: int = 4
    scale_lengths: tuple[int, ...] = (8, 32, 128, 512)
    scale_ns: tuple[int, ...] = (2, 8, 64, 512)
    scale_families: tuple[str, ...] = ("memoryless", "markov1")
    scale_grad_tol: float = 1e-7
    scale_max_iters: int = 1000
    seed: int = 0
    x64: bool = True

    def __post_init__(self):
        checks.integer(self, "vocab_size", min=3)  # "not" and at least two sentiment words
        checks.integer(self, "length", min=1)
        checks.integers(self, "ns", min=1, increasing=True)
        checks.choices(self, "policy_classes", POLICY_CLASSES)
        trained = tuple(m for m in VBON_METHODS if m != "kl_rl")  # KL-RL is swept over betas
        for field in ("methods", "memoryless_methods", "transformer_methods"):
            checks.choices(self, field, trained)
        if "bond_iterated" in (*self.methods, *self.memoryless_methods, *self.transformer_methods):
            if any(n & (n - 1) for n in self.ns):
                raise ValueError(f"ns must be powers of 2 when bond_iterated is trained, got {self.ns!r}")
        checks.number(self, "transformer_learning_rate", min=0.0, min_open=True)
        checks.choices(self, "m_study_classes", self.policy_classes, nonempty=False)
        checks.numbers(self, "betas", min=0.0, min_open=True)
        checks.integers(self, "ms", min=1)
        checks.integer(self, "m_study_n", min=1)
        checks.integer(self, "m_study_draws", min=1)
        checks.integer(self, "num_steps", min=1)
        checks.number(self, "learning_rate", min=0.0, min_open=True)
        for field in ("sampled_batch", "num_reference_samples", "num_sft_samples"):
            checks.integer(self, field, min=1)
        checks.number(self, "reference_temperature", min=0.0, min_open=True)
        checks.number(self, "transformer_logit_scale", min=0.0, min_open=True)
        checks.integer(self, "scale_vocab_size", min=2)
        checks.integers(self, "scale_lengths", min=1, increasing=True, nonempty=False)
        checks.integers(self, "scale_ns", min=2, increasing=True)
        checks.choices(self, "scale_families", SCALE_FAMILIES, nonempty=False)
        checks.number(self, "scale_grad_tol", min=0.0, min_open=True)
        checks.integer(self, "scale_max_iters", min=1)
        checks.integer(self, "seed")
        checks.boolean(self, "x64")


QUICK = Config(
    length=4,
    ns=(2, 8, 32),
    policy_classes=("tabular_full", "tabular_memoryless", "transformer"),
    methods=("vbon_exact", "vbon_continuous", "vbon_sampled", "bon_sft", "bond", "bonbon"),
    memoryless_methods=("vbon_exact", "vbon_continuous", "bond"),
    transformer_methods=("vbon_exact", "vbon_continuous", "bon_sft"),
    betas=(1.0, 2.0, 4.0, 8.0),
    ms=(10, 300),
    m_study_classes=("tabular_full",),
    m_study_draws=10,
    num_steps=200,
    sampled_batch=16,
    scale_lengths=(8, 64, 512),
    scale_ns=(4, 64),
    scale_families=("memoryless",),  # Markov-1 (one more compilation per L) in the full config
    scale_max_iters=500,
)


def _task(config: Config, policy_class: str):
    """Reference policy, initial trained policy, reward, and the enumerated space."""
    key = jax.random.fold_in(jax.random.key(config.seed), 0)
    reward = sentiment_reward(config.vocab_size)
    if policy_class == "transformer":
        ref = init_transformer_policy(
            key,
            config.vocab_size,
            config.length,
            d_model=16,
            num_heads=2,
            num_layers=1,
            logit_scale=config.transformer_logit_scale,
        )
        init = ref
    else:
        ref = random_tabular_policy(
            key, config.vocab_size, config.length, order=0, temperature=config.reference_temperature
        )
        init = expand_tabular_policy(ref, None) if policy_class == "tabular_full" else ref
    seqs, lp = enumerate_sequences(ref)
    return ref, init, reward, seqs, lp, reward(seqs)


def _train(config: Config, policy_class: str, task: tuple, key: jax.Array, method: str, n: int, settings=None, **kw):
    """``train_toward_bon(key, method, ...)`` on a task of :func:`_task`, with the experiment's settings for the
    policy class (``settings`` overrides some of them; ``kw``: further arguments, e.g. ``beta``)."""
    ref, init, reward, seqs, lp, r = task
    return train_toward_bon(
        key,
        method,
        init,
        ref_policy=ref,
        reward=reward,
        sequences=seqs,
        ref_log_probs=lp,
        rewards=r,
        n=n,
        settings=_settings(config, policy_class, **(settings or {})),
        **kw,
    )


def _methods(config: Config, policy_class: str) -> tuple[str, ...]:
    return {"transformer": config.transformer_methods, "tabular_memoryless": config.memoryless_methods}.get(
        policy_class, config.methods
    )


def _settings(config: Config, policy_class: str, **kw) -> MethodSettings:
    lr = config.transformer_learning_rate if policy_class == "transformer" else config.learning_rate
    base = dict(
        num_steps=config.num_steps,
        learning_rate=lr,
        sampled_learning_rate=lr / 2,
        sampled_batch=config.sampled_batch,
        num_reference_samples=config.num_reference_samples,
        num_sft_samples=config.num_sft_samples,
    )
    return MethodSettings(**{**base, **kw})


def _floats(d) -> dict:
    return {k: float(v) for k, v in d._asdict().items()}


def _n_cell(config: Config, policy_class: str, n: int) -> dict:
    task = _task(config, policy_class)
    _, _, _, seqs, lp, r = task
    bon = vbon_target_log_probs(lp, r, n, "exact")
    out = {"bon": _floats(approximation_metrics(bon, lp, r, bon)), "tie": _floats(tie_effect(lp, r, n))}
    methods = _methods(config, policy_class)
    key = cell_key(jax.random.key(config.seed), policy_class, "n", n)
    for m in methods:
        pol, info = _train(config, policy_class, task, cell_key(key, m), m, n)
        out[m] = _floats(approximation_metrics(pol.log_prob(seqs), lp, r, bon))
        loss = np.asarray(info["loss"], dtype=float)
        out[m]["final_loss"] = float(loss[-1])
        if m in ("vbon_exact", "bond", "bon_sft"):  # for vbon_exact the loss is KL(π_θ‖π_n) itself
            out[m]["loss_curve"] = loss[:: max(len(loss) // 50, 1)].tolist()
    return out


def _beta_cell(config: Config, policy_class: str, beta: float) -> dict:
    task = _task(config, policy_class)
    _, _, _, seqs, lp, r = task
    key = cell_key(jax.random.key(config.seed), policy_class, "kl_rl", f"beta={float(beta)!r}")
    pol, _ = _train(config, policy_class, task, key, "kl_rl", 2, beta=beta)
    lq = pol.log_prob(seqs)
    q = jnp.exp(lq)
    tilt = tilted_pmf(jnp.exp(lp), r, beta)
    return {
        "kl_to_ref": float(reverse_kl(lq, lp)),
        "reward": float(jnp.sum(q * r)),
        "optimal_kl_to_ref": float(reverse_kl(jnp.log(tilt), lp)),
        "optimal_reward": float(jnp.sum(tilt * r)),
        # KL-RL's own approximation error to each BoN (for the error-vs-n figure, not its objective)
        "kl_to_bon": {str(n): float(reverse_kl(lq, vbon_target_log_probs(lp, r, n, "exact"))) for n in config.ns},
    }


def _m_cell(config: Config, policy_class: str, m: int) -> dict:
    task = _task(config, policy_class)
    ref, _, reward, seqs, lp, r = task
    n = config.m_study_n
    bon = vbon_target_log_probs(lp, r, n, "exact")
    key = cell_key(jax.random.key(config.seed), policy_class, "M", m)
    kt, ke = jax.random.split(key)
    pol, _ = _train(config, policy_class, task, kt, "vbon_sampled", n, settings={"num_reference_samples": m})
    trained = float(reverse_kl(pol.log_prob(seqs), bon))
    # estimation error alone: the exact optimum for a given F̂, p·F̂₋^{n−1}/Z, against π_n
    est = []
    for d in range(config.m_study_draws):
        ref_r = reward(ref.sample(jax.random.fold_in(ke, d), m))
        log_fm, _ = empirical_log_cdfs(r, ref_r)
        t = lp + (n - 1) * log_fm
        est.append(float(reverse_kl(t - jax.nn.logsumexp(t), bon)))
    return {
        "trained_kl_to_bon": trained,
        "optimum_kl_to_bon_mean": float(np.mean(est)),
        "optimum_kl_to_bon_se": float(np.std(est) / np.sqrt(len(est))),
    }


# ----------------------------------------------------------------------------------------------------
# Scale: exact vBoN on long sequences (lifted), trained to convergence


def _scale_problem(config: Config, length: int):
    """The memoryless reference over ``scale_vocab_size`` tokens and its additive reward ``R(y) = Σ_t y_t``."""
    from bontheory import TokenScoreReward

    vocab = config.scale_vocab_size
    ref = random_tabular_policy(
        jax.random.fold_in(jax.random.key(config.seed), 3),
        vocab,
        length,
        order=0,
        temperature=config.reference_temperature,
    )
    scores = jnp.broadcast_to(jnp.arange(vocab, dtype=jnp.result_type(float)), (length, vocab))
    return ref, TokenScoreReward(scores=scores)


@functools.partial(jax.jit, static_argnames=("objective", "order", "max_iters"))
def _lbfgs_to_tolerance(x0, data, tol, *, objective, order: int, max_iters: int):
    """L-BFGS (``optax.lbfgs``, backtracking line search) on the exact lifted vBoN loss of the logits ``x0``
    until the gradient norm is below ``tol`` or ``max_iters`` iterations: ``(logits, loss, grad_norm, iters)``.
    ``data`` (the reference and λ_n, :func:`bontheory.lifted_vbon_data`) is an argument, so one compilation
    per family and shape serves every n."""
    import optax

    from bontheory import tabular_policy_from_logits

    key = jax.random.key(0)  # the exact loss draws nothing

    def loss(x):
        return objective(tabular_policy_from_logits(x, order=order), data, key)[0]

    opt = optax.lbfgs(linesearch=optax.scale_by_backtracking_linesearch(max_backtracking_steps=20, store_grad=True))
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry):
        x, state = carry
        value, grad = value_and_grad(x, state=state)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(x, updates), state

    def going(carry):
        _, state = carry
        count = optax.tree_utils.tree_get(state, "count")
        grad = optax.tree_utils.tree_get(state, "grad")
        return (count == 0) | ((count < max_iters) & (optax.tree_utils.tree_norm(grad) >= tol))

    x, state = jax.lax.while_loop(going, step, (x0, opt.init(x0)))
    value, grad = jax.value_and_grad(loss)(x)
    return x, value, optax.tree_utils.tree_norm(grad), optax.tree_utils.tree_get(state, "count")


def _scale_cell(config: Config, family: str, length: int, n: int) -> dict:
    from bontheory import lifted_vbon_data, reward_distribution

    ref, reward = _scale_problem(config, length)
    order = 0 if family == "memoryless" else 1
    objective, data = lifted_vbon_data(ref, reward, n, order)
    x0 = ref.params["logits"] if family == "memoryless" else expand_tabular_policy(ref, 1).params["logits"]
    _, value, grad_norm, iters = _lbfgs_to_tolerance(
        x0, data, config.scale_grad_tol, objective=objective, order=order, max_iters=config.scale_max_iters
    )
    log_m = np.asarray(reward_distribution(ref, reward).log_probs, np.float64)
    lam = np.asarray(data["log_ratio"], np.float64)  # log(π_n/p) on each reward level
    q = np.exp(log_m + lam)
    return {
        "kl_to_bon": float(value),
        "kl_to_bon_per_token": float(value) / length,
        "bon_kl_to_ref": float(np.sum(np.where(q > 0, q * lam, 0.0))),  # KL(π_n‖p): the scale of the error
        "grad_norm": float(grad_norm),
        "iterations": int(iters),
        "converged": bool(float(grad_norm) < config.scale_grad_tol),
    }


def scale_verdict(lengths, errors) -> dict:
    """Whether an error series over increasing L vanishes: its last-to-first ratio and the log-log slope over
    the lengths (:func:`bontheory.power_law_rate`); ``decreasing`` if every step down the lengths lowers it."""
    from bontheory import power_law_rate

    errors = np.asarray(errors, float)
    fit = power_law_rate(lengths, errors) if len(lengths) >= 2 and np.all(errors > 0) else None
    return {
        "ratio_last_first": float(errors[-1] / errors[0]) if errors[0] > 0 else float("nan"),
        "slope": fit.slope if fit else None,
        "decreasing": bool(np.all(np.diff(errors) < 0)),
    }


def analyse_scale(config: Config, cells: dict) -> dict:
    """Per family and n: the error series over L (total and per token) and their verdicts."""
    out = {}
    for fam in config.scale_families:
        for n in config.scale_ns:
            rows = [cells[f"scale/{fam}/L={L}/n={n}"] for L in config.scale_lengths]
            total = [r["kl_to_bon"] for r in rows]
            per_token = [r["kl_to_bon_per_token"] for r in rows]
            out[f"{fam}/n={n}"] = {
                "total": scale_verdict(config.scale_lengths, total),
                "per_token": scale_verdict(config.scale_lengths, per_token),
                "all_converged": all(r["converged"] for r in rows),
            }
    return out


def run(config: Config, run) -> dict:
    jobs = []
    for _ci, pc in enumerate(config.policy_classes):
        for n in config.ns:
            jobs.append((f"{pc}/n={n}", lambda pc=pc, n=n: _n_cell(config, pc, n)))
        for b in config.betas:
            jobs.append((f"{pc}/kl_rl/beta={b:g}", lambda pc=pc, b=b: _beta_cell(config, pc, b)))
        if pc in config.m_study_classes:
            for m in config.ms:
                jobs.append((f"{pc}/M={m}", lambda pc=pc, m=m: _m_cell(config, pc, m)))
    for fam in config.scale_families:
        for L in config.scale_lengths:
            for n in config.scale_ns:
                jobs.append((f"scale/{fam}/L={L}/n={n}", lambda fam=fam, L=L, n=n: _scale_cell(config, fam, L, n)))
    results = {}
    for name, fn in progress(jobs, desc=NAME):
        results[name] = run.cell(name, fn)
    out = {
        "ns": list(config.ns),
        "betas": list(config.betas),
        "ms": list(config.ms),
        "num_steps": config.num_steps,
        "policy_classes": list(config.policy_classes),
        "cells": results,
        "scale": {
            "lengths": list(config.scale_lengths),
            "ns": list(config.scale_ns),
            "families": list(config.scale_families),
            "grad_tol": config.scale_grad_tol,
            "vocab_size": config.scale_vocab_size,
        },
    }
    out["analysis"] = analyse(config, results)
    out["scale_analysis"] = analyse_scale(config, results)
    return out


def _points(config: Config, cells: dict, pc: str) -> list[tuple[str, float, float]]:
    pts = []
    methods = ["bon"] + list(_methods(config, pc))
    for n in config.ns:
        c = cells[f"{pc}/n={n}"]
        for m in methods:
            pts.append((m, c[m]["kl_to_ref"], c[m]["reward"]))
    for b in config.betas:
        c = cells[f"{pc}/kl_rl/beta={b:g}"]
        pts.append(("kl_rl", c["kl_to_ref"], c["reward"]))
    return pts


def analyse(config: Config, cells: dict) -> dict:
    """Pareto-frontier fractions and closeness to BoN per policy class, and the claims' verdicts
    (:mod:`bontheory.studies.vbon_claims`)."""
    out = {}
    for pc in config.policy_classes:
        labels, kl, reward = zip(*_points(config, cells, pc))
        frac = frontier_fractions(labels, kl, reward)
        methods = _methods(config, pc)
        closeness = {m: float(np.mean([cells[f"{pc}/n={n}"][m]["kl_to_bon"] for n in config.ns])) for m in methods}
        # KL-RL at its best β for each n
        closeness["kl_rl"] = float(
            np.mean(
                [min(cells[f"{pc}/kl_rl/beta={b:g}"]["kl_to_bon"][str(n)] for b in config.betas) for n in config.ns]
            )
        )
        claims = vbon_claims(frac, closeness)
        out[pc] = {
            "frontier_fraction": frac,
            "mean_kl_to_bon": closeness,
            "claim_bon_best": claims.bon_best,
            "claim_vbon_closest": claims.vbon_closest,
            "closest_method": claims.closest_method,
            "claim_vbon_frontier_more_than_kl_rl": claims.vbon_frontier_more_than_kl_rl,
        }
    return out


def plot(metrics: dict, out_dir) -> list:
    cells = metrics["cells"]
    ns = metrics["ns"]
    pcs = metrics["policy_classes"]
    paths = []
    # 1. reward vs KL
    fig, axes = new_figure(1, len(pcs), squeeze=False)
    for ax, pc in zip(axes[0], pcs):
        methods = [k for k in cells[f"{pc}/n={ns[0]}"] if k not in ("tie",)]
        for m in methods:
            kl = [cells[f"{pc}/n={n}"][m]["kl_to_ref"] for n in ns]
            rw = [cells[f"{pc}/n={n}"][m]["reward"] for n in ns]
            style = (
                dict(marker="*", ms=10, color="k", lw=1.5)
                if m == "bon"
                else dict(marker="o", ms=4, lw=0.8, color=COLORS.get(m))
            )
            ax.plot(kl, rw, label=LABELS.get(m, m), **style)
        betas = metrics["betas"]
        kl = [cells[f"{pc}/kl_rl/beta={b:g}"]["kl_to_ref"] for b in betas]
        rw = [cells[f"{pc}/kl_rl/beta={b:g}"]["reward"] for b in betas]
        ax.plot(kl, rw, "s--", ms=4, lw=0.8, color=COLORS["kl_rl"], label=LABELS["kl_rl"])
        okl = [cells[f"{pc}/kl_rl/beta={b:g}"]["optimal_kl_to_ref"] for b in betas]
        orw = [cells[f"{pc}/kl_rl/beta={b:g}"]["optimal_reward"] for b in betas]
        ax.plot(okl, orw, ":", color="grey", lw=1, label="tilted optimum p e^{r/β}")
        ax.set_xlabel("KL(π ‖ p)")
        ax.set_ylabel("E_π[r]")
        ax.set_title(pc.replace("_", " "))
        ax.legend(fontsize=6)
    paths += save_figure(fig, out_dir, "vbon_reward_vs_kl")
    # 2. approximation error vs n
    fig, axes = new_figure(1, len(pcs), squeeze=False)
    for ax, pc in zip(axes[0], pcs):
        methods = [k for k in cells[f"{pc}/n={ns[0]}"] if k not in ("tie", "bon")]
        for m in methods:
            ax.plot(
                ns,
                [max(cells[f"{pc}/n={n}"][m]["kl_to_bon"], 1e-6) for n in ns],
                "o-",
                ms=3,
                color=COLORS.get(m),
                label=LABELS.get(m, m),
            )
        ax.plot(
            ns,
            [max(cells[f"{pc}/n={n}"]["tie"]["kl_cont_to_bon"], 1e-6) for n in ns],
            "k:",
            label="tie effect KL(pF^{n-1}/Z ‖ π_n)",
        )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n")
        ax.set_ylabel("KL(π_θ ‖ π_n)")
        ax.set_title(pc.replace("_", " "))
        ax.legend(fontsize=6)
    paths += save_figure(fig, out_dir, "vbon_error_vs_n")
    # 3. error vs training steps (vBoN exact target: the loss is KL(π_θ‖π_n))
    fig, ax = new_figure(1, 1)
    for pc, ls in zip(pcs, ("-", "--", ":")):
        for n in ns:
            c = cells[f"{pc}/n={n}"].get("vbon_exact", {})
            if "loss_curve" in c:
                curve = np.maximum(np.asarray(c["loss_curve"]), 1e-7)
                steps = np.linspace(0, metrics.get("num_steps", len(curve)), len(curve), endpoint=False)
                ax.plot(steps, curve, ls, label=f"{pc}, n={n}")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("KL(π_θ ‖ π_n)  (vBoN, exact target)")
    ax.legend(fontsize=6, ncol=2)
    paths += save_figure(fig, out_dir, "vbon_error_vs_steps")
    # 4. error vs M
    tab = [pc for pc in pcs if f"{pc}/M={metrics['ms'][0]}" in cells]
    if tab:
        fig, ax = new_figure(1, 1)
        ms = metrics["ms"]
        for pc in tab:
            (line,) = ax.plot(
                ms, [cells[f"{pc}/M={m}"]["trained_kl_to_bon"] for m in ms], "o-", label=f"{pc}: trained (sampled vBoN)"
            )
            ax.errorbar(
                ms,
                [cells[f"{pc}/M={m}"]["optimum_kl_to_bon_mean"] for m in ms],
                yerr=[cells[f"{pc}/M={m}"]["optimum_kl_to_bon_se"] for m in ms],
                fmt="s--",
                color=line.get_color(),
                label=f"{pc}: exact optimum for F̂ (estimation only)",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("M (reference samples for F̂)")
        ax.set_ylabel("KL(π_θ ‖ π_n)")
        ax.legend(fontsize=6)
        paths += save_figure(fig, out_dir, "vbon_error_vs_m")
    if metrics.get("scale", {}).get("families"):
        paths += _plot_scale(metrics, out_dir)
    return paths


def _scale_series(metrics: dict, fam: str, n: int, key: str) -> list[float]:
    return [metrics["cells"][f"scale/{fam}/L={L}/n={n}"][key] for L in metrics["scale"]["lengths"]]


def _plot_scale(metrics: dict, out_dir) -> list:
    sc = metrics["scale"]
    lengths = sc["lengths"]
    fig, (a1, a2) = new_figure(1, 2)
    for i, n in enumerate(sc["ns"]):
        color = _TAB10[i % 10]
        for fam, ls in zip(sc["families"], ("-", "--")):
            label = f"{fam}, n = {n}"
            a1.plot(
                lengths, _scale_series(metrics, fam, n, "kl_to_bon"), ls, marker="o", ms=3, color=color, label=label
            )
            a2.plot(
                lengths,
                _scale_series(metrics, fam, n, "kl_to_bon_per_token"),
                ls,
                marker="o",
                ms=3,
                color=color,
                label=label,
            )
        a1.plot(
            lengths,
            _scale_series(metrics, sc["families"][0], n, "bon_kl_to_ref"),
            ":",
            color=color,
            lw=1,
            label=f"KL(π_n ‖ p), n = {n}",
        )
    for ax in (a1, a2):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length L")
        ax.legend(fontsize=6)
    a1.set_ylabel("KL(π_θ* ‖ π_n) (exact, L-BFGS to convergence)")
    a1.set_title("total error of the best policy in the family", fontsize=9)
    a2.set_ylabel("KL(π_θ* ‖ π_n) / L")
    a2.set_title("per token", fontsize=9)
    return save_figure(fig, out_dir, "vbon_error_vs_length")


def summary(metrics: dict) -> list[dict]:
    rows = []
    for pc, a in metrics["analysis"].items():
        fr = a["frontier_fraction"]
        rows.append(
            {
                "policy": pc,
                "BoN on frontier": round(fr["bon"], 2),
                "best vBoN on frontier": round(max(v for k, v in fr.items() if k.startswith("vbon")), 2),
                "KL-RL on frontier": round(fr["kl_rl"], 2),
                "closest to BoN": a["closest_method"],
                "mean KL(vBoN exact‖π_n)": float(f"{a['mean_kl_to_bon'].get('vbon_exact', float('nan')):.3g}"),
                "claims: BoN best / vBoN closest / vBoN>KL-RL": f"{a['claim_bon_best']} / {a['claim_vbon_closest']} / "
                f"{a['claim_vbon_frontier_more_than_kl_rl']}",
            }
        )
    rows += scale_rows(metrics)
    return rows


def scale_rows(metrics: dict) -> list[dict]:
    """The scale part's answer, one row per family and n: the exact error of the family's best policy at the
    shortest and the longest L, total and per token, and whether each vanishes (keeps falling) with L."""
    sc = metrics.get("scale", {})
    rows = []
    for key, a in metrics.get("scale_analysis", {}).items():
        fam, n = key.split("/n=")
        total = _scale_series(metrics, fam, int(n), "kl_to_bon")
        per_token = _scale_series(metrics, fam, int(n), "kl_to_bon_per_token")
        bon = _scale_series(metrics, fam, int(n), "bon_kl_to_ref")
        L0, L1 = sc["lengths"][0], sc["lengths"][-1]
        rows.append(
            {
                "policy": f"scale: {fam}, n={n}",
                f"KL(π*‖π_n) L={L0}": float(f"{total[0]:.4g}"),
                f"KL(π*‖π_n) L={L1}": float(f"{total[-1]:.4g}"),
                f"share of KL(π_n‖p) L={L1}": round(total[-1] / bon[-1], 3),
                f"per token L={L1}": float(f"{per_token[-1]:.3g}"),
                "total falls with L": a["total"]["decreasing"],
                "per token falls with L": a["per_token"]["decreasing"],
                "family approaches BoN": (
                    "yes" if a["total"]["decreasing"] else "per token only" if a["per_token"]["decreasing"] else "no"
                ),
                "converged": a["all_converged"],
            }
        )
    return rows


def paper_numbers(metrics: dict) -> dict:
    """The numbers the paper quotes: ``{macro: (value, decimals)}``; a method name is a string."""
    full = metrics["analysis"]["tabular_full"]
    mem = metrics["analysis"]["tabular_memoryless"]
    return {
        "vbFullExact": (full["mean_kl_to_bon"]["vbon_exact"], 4),
        "vbFullCont": (full["mean_kl_to_bon"]["vbon_continuous"], 4),
        "vbFullSampled": (full["mean_kl_to_bon"]["vbon_sampled"], 4),
        "vbFullKlrl": (full["mean_kl_to_bon"]["kl_rl"], 4),
        "vbFullClosest": (full["closest_method"], 0),
        "vbMemExact": (mem["mean_kl_to_bon"]["vbon_exact"], 3),
        "vbMemClosest": (mem["closest_method"], 0),
        **_scale_numbers(metrics),
    }


def _scale_numbers(metrics: dict) -> dict:
    """The memoryless family at the largest n: exact error at the shortest and longest L, and its share of
    BoN's own KL there."""
    sc = metrics.get("scale", {})
    if "memoryless" not in sc.get("families", ()):
        return {}
    n = sc["ns"][-1]
    total = _scale_series(metrics, "memoryless", n, "kl_to_bon")
    bon = _scale_series(metrics, "memoryless", n, "bon_kl_to_ref")
    return {
        "vbScaleN": (n, 0),
        "vbScaleShortL": (sc["lengths"][0], 0),
        "vbScaleLongL": (sc["lengths"][-1], 0),
        "vbScaleMemShort": (total[0], 3),
        "vbScaleMemLong": (total[-1], 3),
        "vbScaleMemShare": (total[-1] / bon[-1], 2),
        "vbScaleMemPerToken": (total[-1] / sc["lengths"][-1], 5),
    }
