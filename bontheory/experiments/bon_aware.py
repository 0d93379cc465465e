"""BoN-aware training: which policy should Best-of-n sample from? Exact, on enumerated sequences.

A random memoryless reference p over V^L token sequences and the toy sentiment reward with negation (ties).
Every method is compared by what it *serves* — the distribution BoN_n(π) of the policy π it samples from — at
equal served KL(BoN_n(π)‖p): BoN on the reference (BoN_N(p) over N), BoN_n on the KL-RL policy (the exact
tilted p e^{r/β}, the KL-RL optimum in the full-history class), BoN_n on a BoN-aware policy trained exactly
(:func:`bontheory.train_bon_aware`, full-history tabular, from p) with either KL (``kl="bon"``: the served
KL; ``kl="policy"``: KL(π‖p)), and the tilted optimum served directly. Curves over β; at the served KL of
plain BoN_{n_plain}(p) each method's β is matched by bisection, giving the compute trade (BoN-aware with n
against plain BoN with n_plain). Exploration: the sampling policy's entropy and its mass on the top reward
level, against KL-RL's at equal served KL. docs/theory.md §6.7.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bontheory import (
    bon_aware_objective,
    cell_key,
    enumerate_sequences,
    expand_tabular_policy,
    random_tabular_policy,
    reverse_kl,
    reward_kl_frontier,
    sentiment_reward,
    tilted_pmf,
    train_bon_aware,
)
from bontheory.experiments import checks
from bontheory.plotting import new_figure, save_figure
from bontheory.runner import progress

NAME = "bon_aware"
SUMMARY = ("BoN-aware training: at equal KL(BoN_n(π)‖p), BoN on p, on KL-RL, on a BoN-aware policy, and the tilted "
           "optimum; n=4 BoN-aware vs n=16 plain; does the BoN-aware policy explore?")

#: methods, each a (sampling policy, BoN size) pair; the served distribution is BoN_n(π).
METHODS = ("kl_rl", "aware_bon", "aware_policy", "tilted")
LABELS = {
    "bon_ref": "BoN_N(p), N = 1, 2, 4, …",
    "kl_rl": "BoN_n(KL-RL policy)",
    "aware_bon": "BoN_n(BoN-aware, served KL)",
    "aware_policy": "BoN_n(BoN-aware, KL(π‖p))",
    "tilted": "tilted optimum (served directly)",
}


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings.

    Attributes:
      vocab_size: V (token 0 is "not"; the others carry sentiment ±1, ±2, 0).
      length: L (V^L sequences are enumerated).
      reference_temperature: temperature of the random memoryless reference's Gaussian logits.
      n: BoN size applied to the KL-RL and BoN-aware policies.
      n_plain: the plain BoN_{n_plain}(p) traded against; its served KL is the matched KL.
      ref_ns: the N of the BoN_N(p) curve.
      betas: KL coefficients of the KL-RL / BoN-aware / tilted curves (sorted; must bracket the matched KL).
      num_steps: Adam steps of BoN-aware training.
      learning_rate: Adam learning rate.
      match_iterations: bisection steps in log β to match the served KL of BoN_{n_plain}(p).
      frontier_points: points of the tilted reward–KL frontier (log-spaced β), for the gap to it.
      seed: random seed.
      x64: compute in float64.
    """

    vocab_size: int = 4
    length: int = 4
    reference_temperature: float = 1.0
    n: int = 4
    n_plain: int = 16
    ref_ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)
    betas: tuple[float, ...] = (0.2, 0.3, 0.45, 0.7, 1.0, 1.5, 2.2, 3.3, 5.0, 8.0)
    num_steps: int = 600
    learning_rate: float = 0.1
    match_iterations: int = 12
    frontier_points: int = 1000
    seed: int = 0
    x64: bool = True

    def __post_init__(self):
        checks.integer(self, "vocab_size", min=3)  # "not" and at least two sentiment words
        checks.integer(self, "length", min=1)
        checks.number(self, "reference_temperature", min=0.0, min_open=True)
        checks.integer(self, "n", min=1)
        checks.integer(self, "n_plain", min=1)
        checks.integers(self, "ref_ns", min=1, increasing=True)
        checks.numbers(self, "betas", min=0.0, min_open=True, increasing=True)
        if len(self.betas) < 2:
            raise ValueError(f"betas must hold at least two values (a bracket), got {self.betas!r}")
        checks.integer(self, "num_steps", min=1)
        checks.number(self, "learning_rate", min=0.0, min_open=True)
        checks.integer(self, "match_iterations", min=0)
        checks.integer(self, "frontier_points", min=2)
        checks.integer(self, "seed")
        checks.boolean(self, "x64")


QUICK = Config(vocab_size=3, length=4, ref_ns=(1, 2, 4, 8, 16, 32, 64), betas=(0.2, 0.35, 0.6, 1.0, 1.7, 3.0, 5.0),
               num_steps=400, match_iterations=8)


def _problem(config: Config):
    key = jax.random.key(config.seed)
    ref = random_tabular_policy(jax.random.fold_in(key, 0), config.vocab_size, config.length, order=0,
                                temperature=config.reference_temperature)
    seqs, lp = enumerate_sequences(ref)
    rewards = sentiment_reward(config.vocab_size)(seqs).astype(lp.dtype)
    return ref, seqs, lp, rewards


def _measure(log_pi: jax.Array, lp: jax.Array, rewards: jax.Array, n: int) -> dict:
    """What BoN_n(π) serves (reward, KL to p) and how spread π is (entropy, mass on the top reward level)."""
    served = bon_aware_objective(log_pi, lp, rewards, n, 0.0, kl="bon")
    pi = jnp.exp(log_pi)
    top_mass = jnp.sum(jnp.where(rewards == jnp.max(rewards), pi, 0.0))
    return {
        "served_reward": float(served.served_reward),
        "served_kl": float(served.kl),
        "policy_kl": float(reverse_kl(log_pi, lp)),
        "policy_entropy": float(-jnp.sum(jnp.where(pi > 0, pi * log_pi, 0.0))),
        "policy_top_mass": float(top_mass),
        "served_top_mass": float(-jnp.expm1(n * jnp.log1p(-top_mass))),  # 1 − (1 − π(top))^n
    }


def _policy(config: Config, method: str, beta: float, space) -> tuple[jax.Array, int]:
    """log π of ``method`` at ``beta`` over the enumerated sequences, and the BoN size it is served with."""
    ref, seqs, lp, rewards = space
    if method in ("kl_rl", "tilted"):
        log_pi = jnp.log(tilted_pmf(jnp.exp(lp), rewards, beta))
        return log_pi, (config.n if method == "kl_rl" else 1)
    kl = "bon" if method == "aware_bon" else "policy"
    policy, _ = train_bon_aware(
        cell_key(jax.random.key(config.seed), method, f"{beta:.17g}"), expand_tabular_policy(ref, None),
        sequences=seqs, ref_log_probs=lp, rewards=rewards, n=config.n, beta=beta, kl=kl,
        num_steps=config.num_steps, learning_rate=config.learning_rate,
    )
    return policy.log_prob(seqs), config.n


def _sweep_cell(config: Config, method: str, beta: float, space) -> dict:
    log_pi, n = _policy(config, method, beta, space)
    return dict(_measure(log_pi, space[2], space[3], n), beta=beta)


def _matched_cell(config: Config, method: str, target_kl: float, sweep: list[dict], space) -> dict:
    """Bisection in log β (served KL falls as β grows) between the sweep's two betas that bracket ``target_kl``.

    If the sweep does not bracket it, the sweep's closest cell is returned with ``bracketed = False``.
    """
    kls = np.asarray([c["served_kl"] for c in sweep])
    betas = np.asarray([c["beta"] for c in sweep])
    above = np.nonzero(kls >= target_kl)[0]
    below = np.nonzero(kls < target_kl)[0]
    if not above.size or not below.size:
        return dict(sweep[int(np.argmin(np.abs(kls - target_kl)))], bracketed=False)
    lo, hi = np.log(betas[above.max()]), np.log(betas[below.min()])
    best = sweep[int(above.max())]
    for _ in range(config.match_iterations):
        mid = 0.5 * (lo + hi)
        cell = _sweep_cell(config, method, float(np.exp(mid)), space)
        if abs(cell["served_kl"] - target_kl) <= abs(best["served_kl"] - target_kl):
            best = cell
        if cell["served_kl"] >= target_kl:
            lo = mid
        else:
            hi = mid
    return dict(best, bracketed=True)


def _crossings(x_a, y_a, x_b, y_b) -> list[float]:
    """Where the curve a − b changes sign, on the common x range (linear interpolation, x sorted)."""
    lo, hi = max(min(x_a), min(x_b)), min(max(x_a), max(x_b))
    if not lo < hi:
        return []
    grid = np.linspace(lo, hi, 400)
    ia, ib = np.argsort(x_a), np.argsort(x_b)
    y_on_a = np.interp(grid, np.asarray(x_a)[ia], np.asarray(y_a)[ia])
    d = y_on_a - np.interp(grid, np.asarray(x_b)[ib], np.asarray(y_b)[ib])
    s = np.sign(d)
    idx = np.nonzero(s[:-1] * s[1:] < 0)[0]
    return [float(grid[i] - d[i] * (grid[i + 1] - grid[i]) / (d[i + 1] - d[i])) for i in idx]


def frontier_gap(frontier: dict, cell: dict) -> float:
    """Served reward minus the tilted frontier's reward at the same served KL (≤ 0 up to interpolation)."""
    kl, rw = np.asarray(frontier["kl"]), np.asarray(frontier["reward"])
    order = np.argsort(kl)
    return float(cell["served_reward"] - np.interp(cell["served_kl"], kl[order], rw[order]))


def analyse(config: Config, sweeps: dict, matched: dict, frontier: dict) -> dict:
    """The compute trade and the exploration answer, from the sweeps and the matched cells."""
    out = {
        "matched_kl": matched["bon_plain"]["served_kl"],
        "frontier_gap": {m: frontier_gap(frontier, c) for m, c in matched.items()},
    }
    for m in ("aware_bon", "aware_policy"):
        xa = [c["served_kl"] for c in sweeps[m]]
        xk = [c["served_kl"] for c in sweeps["kl_rl"]]
        out[m] = {
            "entropy_crossings": _crossings(
                xa, [c["policy_entropy"] for c in sweeps[m]], xk, [c["policy_entropy"] for c in sweeps["kl_rl"]]
            ),
            "top_mass_crossings": _crossings(
                xa, [c["policy_top_mass"] for c in sweeps[m]], xk, [c["policy_top_mass"] for c in sweeps["kl_rl"]]
            ),
            "entropy_crossings_vs_reference": _crossings(
                xa, [c["policy_entropy"] for c in sweeps[m]], xa, [matched["bon_plain"]["policy_entropy"]] * len(xa)
            ),
            "entropy_minus_kl_rl": matched[m]["policy_entropy"] - matched["kl_rl"]["policy_entropy"],
            "top_mass_minus_kl_rl": matched[m]["policy_top_mass"] - matched["kl_rl"]["policy_top_mass"],
            "reward_minus_plain": matched[m]["served_reward"] - matched["bon_plain"]["served_reward"],
            "reward_minus_tilted": matched[m]["served_reward"] - matched["tilted"]["served_reward"],
        }
    a, k, t = matched["aware_bon"], matched["kl_rl"], matched["tilted"]
    out["answer"] = (
        f"at served KL {out['matched_kl']:.3f}: BoN-aware (served KL) π has entropy {a['policy_entropy']:.3f} vs "
        f"KL-RL {k['policy_entropy']:.3f}, p {matched['bon_plain']['policy_entropy']:.3f}, tilted "
        f"{t['policy_entropy']:.3f} nats; "
        f"top-level mass {a['policy_top_mass']:.4f} vs KL-RL {k['policy_top_mass']:.4f}, "
        f"tilted {t['policy_top_mass']:.4f}: it "
        + (
            "spreads more than the KL-RL policy"
            if a["policy_entropy"] > k["policy_entropy"]
            else "does not spread more"
        )
        + " and puts "
        + ("more" if a["policy_top_mass"] > k["policy_top_mass"] else "less")
        + " mass on the top level than KL-RL, less than the tilted optimum it serves"
        + ("" if a["policy_top_mass"] < t["policy_top_mass"] else " (no: more)")
    )
    return out


def run(config: Config, run) -> dict:
    space = _problem(config)
    _, _, lp, rewards = space
    jobs = [(f"bon_ref/N={n}", lambda n=n: dict(_measure(lp, lp, rewards, n), n=n)) for n in config.ref_ns]
    jobs += [
        (f"{m}/beta={b:g}", lambda m=m, b=b: _sweep_cell(config, m, b, space)) for m in METHODS for b in config.betas
    ]
    cells = {name: run.cell(name, fn) for name, fn in progress(jobs, desc=NAME)}
    sweeps = {m: [cells[f"{m}/beta={b:g}"] for b in config.betas] for m in METHODS}
    plain = run.cell(
        f"bon_plain/N={config.n_plain}", lambda: dict(_measure(lp, lp, rewards, config.n_plain), n=config.n_plain)
    )
    target = plain["served_kl"]
    matched = {"bon_plain": plain}
    for m in METHODS:
        matched[m] = run.cell(
            f"matched/{m}/N={config.n_plain}", lambda m=m: _matched_cell(config, m, target, sweeps[m], space)
        )
    lo, hi = min(config.betas), max(config.betas)
    frontier = reward_kl_frontier(
        jnp.exp(lp), rewards, jnp.geomspace(lo / 4, hi * 4, config.frontier_points, dtype=lp.dtype)
    )
    return {
        "frontier": {"kl": np.asarray(frontier.kl).tolist(), "reward": np.asarray(frontier.value).tolist()},
        "n": config.n,
        "n_plain": config.n_plain,
        "ref_ns": list(config.ref_ns),
        "betas": list(config.betas),
        "num_sequences": int(lp.shape[0]),
        "num_levels": int(np.unique(np.asarray(rewards)).size),
        "ref_curve": [cells[f"bon_ref/N={n}"] for n in config.ref_ns],
        "sweeps": sweeps,
        "matched": matched,
        "analysis": analyse(
            config,
            sweeps,
            matched,
            {"kl": np.asarray(frontier.kl).tolist(), "reward": np.asarray(frontier.value).tolist()},
        ),
    }


def plot(metrics: dict, out_dir) -> list:
    n = metrics["n"]
    fig, axes = new_figure(2, 2, squeeze=False)
    (ax_r, ax_g), (ax_h, ax_t) = axes
    ref = metrics["ref_curve"]
    front = metrics["frontier"]

    def gap(c):
        return frontier_gap(front, c)

    panels = (
        (ax_r, lambda c: c["served_reward"], "served reward E_{BoN(π)}[r]"),
        (ax_g, gap, "served reward − tilted frontier at equal KL"),
        (ax_h, lambda c: c["policy_entropy"], "entropy of the sampling policy π [nats]"),
        (ax_t, lambda c: c["policy_top_mass"], "π(top reward level)"),
    )
    for ax, value, ylabel in panels:
        ax.plot([c["served_kl"] for c in ref], [value(c) for c in ref], "k*-", ms=7, lw=1, label=LABELS["bon_ref"])
        for m in METHODS:
            sw = metrics["sweeps"][m]
            style = ":" if m == "tilted" else "o-"
            ax.plot(
                [c["served_kl"] for c in sw],
                [value(c) for c in sw],
                style,
                ms=3,
                lw=1,
                label=LABELS[m].replace("BoN_n", f"BoN_{n}"),
            )
        ax.axvline(metrics["matched"]["bon_plain"]["served_kl"], color="grey", lw=0.6, ls="--")
        ax.set_xlabel("served KL(BoN(π) ‖ p) [nats]")
        ax.set_ylabel(ylabel)
    ax_r.plot(front["kl"], front["reward"], color="grey", lw=0.6, label="tilted frontier")
    ax_r.set_xlim(0, max(c["served_kl"] for sw in metrics["sweeps"].values() for c in sw) * 1.05)
    ax_r.set_title(f"dashed: served KL of BoN_{metrics['n_plain']}(p)")
    ax_r.legend(loc="lower right", fontsize=7)
    return save_figure(fig, out_dir, "bon_aware")


def summary(metrics: dict) -> list[dict]:
    rows = []
    m = metrics["matched"]
    a = metrics["analysis"]
    for name in ("bon_plain", *METHODS):
        c = m[name]
        rows.append(
            {
                "method": name,
                "beta": round(c["beta"], 4) if "beta" in c else None,
                "served_kl": round(c["served_kl"], 4),
                "served_reward": round(c["served_reward"], 4),
                "policy_entropy": round(c["policy_entropy"], 4),
                "policy_top_mass": round(c["policy_top_mass"], 4),
                "served_top_mass": round(c["served_top_mass"], 4),
                "gap_to_frontier": round(a["frontier_gap"][name], 4),
            }
        )
    for k in ("aware_bon", "aware_policy"):
        rows.append(
            {
                "method": f"{k} vs kl_rl",
                "entropy_crossings_at_served_kl": [round(x, 3) for x in a[k]["entropy_crossings"]],
                "entropy_vs_p_crossings": [round(x, 3) for x in a[k]["entropy_crossings_vs_reference"]],
                "top_mass_crossings_at_served_kl": [round(x, 3) for x in a[k]["top_mass_crossings"]],
                "entropy_minus_kl_rl": round(a[k]["entropy_minus_kl_rl"], 4),
                "top_mass_minus_kl_rl": round(a[k]["top_mass_minus_kl_rl"], 4),
            }
        )
    rows.append({"method": "answer", "exploration": a["answer"]})
    return rows


def paper_numbers(metrics: dict) -> dict:
    """The numbers the paper quotes: ``{macro: (value, decimals)}`` (all at the served KL of BoN_{n_plain}(p))."""
    m = metrics["matched"]
    return {
        "baN": (metrics["n"], 0),
        "baNplain": (metrics["n_plain"], 0),
        "baKL": (m["bon_plain"]["served_kl"], 3),
        "baPlain": (m["bon_plain"]["served_reward"], 3),
        "baKlrl": (m["kl_rl"]["served_reward"], 3),
        "baAware": (m["aware_bon"]["served_reward"], 3),
        "baAwarePolicy": (m["aware_policy"]["served_reward"], 3),
        "baTilted": (m["tilted"]["served_reward"], 3),
        "baAwareEntropy": (m["aware_bon"]["policy_entropy"], 3),
        "baKlrlEntropy": (m["kl_rl"]["policy_entropy"], 3),
        "baAwareTop": (m["aware_bon"]["policy_top_mass"], 3),
        "baKlrlTop": (m["kl_rl"]["policy_top_mass"], 3),
    }
