"""`robot-rewards bench selection`: FK steering vs best-of-K at equal denoiser evaluations.

Every method spends `steps * K` denoiser evaluations on one decision: best-of-K samples K
candidates and keeps the one the scorer likes best; FK steering (`selection.fk_steering`)
denoises K particles together, resamples them during denoising by a potential of the scorer's
reward on their clean-sample predictions, and keeps the best final particle. Both start from the
same candidate seeds (the seeds `run_episodes` uses at the first decision of a scene), so the
comparison is paired scene by scene.

What counts is the true outcome of the candidate each method chose: it is executed once from the
scene's saved state (`sim.outcomes.simulate_candidates`, a what-if rollout, undone afterwards),
giving success and final error. A chosen candidate identical to one already executed in the same
scene reuses that outcome (rollouts are replayed from the same snapshot).

Per method the table shows: nfe (denoiser evaluations per decision), reward calls per decision,
mean scorer reward of the chosen candidate, true success rate (95% Wilson interval), mean final
error and its paired difference to the first method of the same K, wall ms per decision (the
sampler and its reward calls, observation encoding included; the rollout excluded), and the
mean effective sample size at FK's resamplings.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm import tqdm

from robot_rewards.core.device import resolve_device
from robot_rewards.core.reporting import format_table, mean_ci, wilson_interval, write_metrics
from robot_rewards.nn.timing import sync
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.policy.config import policy_perception
from robot_rewards.rewards.aggregate import aggregate
from robot_rewards.rewards.preference.io import load_scorer
from robot_rewards.selection.bench_config import BenchSelectionConfig
from robot_rewards.selection.config import FKSteeringConfig
from robot_rewards.selection.fk_steering import fk_steer
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.outcomes import simulate_candidates

RewardFor = Callable  # obs -> (Candidates -> (K,) rewards)


@dataclass(frozen=True)
class Method:
    """One selection method at one K: a name and the sampler settings (best-of-K = no resampling)."""

    name: str
    k: int
    config: FKSteeringConfig

    @property
    def steered(self) -> bool:
        return self.config.resample_every > 0


def methods_of(cfg: BenchSelectionConfig) -> list[Method]:
    """Every (K, method) the config asks for: best-of-K per eta first, then the FK variants."""
    out = []
    for k in sorted(set(int(k) for k in cfg.particles)):
        for eta in cfg.best_of_k_eta:
            out.append(Method(f"best-of-K eta={eta:g}", k, cfg.best_of_k_config(eta, k)))
        for s in cfg.fk:
            out.append(Method(f"FK every={s.resample_every} lam={s.lam:g} {s.potential}", k, cfg.fk_config(s, k)))
    return out


@dataclass
class MethodRecord:
    """Per-scene results of one method."""

    method: Method
    nfe: list = field(default_factory=list)
    reward_calls: list = field(default_factory=list)
    reward: list = field(default_factory=list)  # the scorer's reward of the chosen candidate
    success: list = field(default_factory=list)
    error: list = field(default_factory=list)  # metres (the task's quality, lower is better)
    executed: list = field(default_factory=list)
    clipped: list = field(default_factory=list)
    ms: list = field(default_factory=list)
    ess: list = field(default_factory=list)  # mean ESS at the resamplings of each decision

    def summary(self, baseline: MethodRecord | None) -> dict:
        n = len(self.success)
        lo, hi = wilson_interval(int(np.sum(self.success)), n)
        err, err_lo, err_hi = mean_ci(self.error)
        out = {
            "method": self.method.name,
            "k": self.method.k,
            "fk": asdict(self.method.config),
            "scenes": n,
            "nfe": float(np.mean(self.nfe)),
            "reward_calls": float(np.mean(self.reward_calls)),
            "scorer_reward_mean": float(np.mean(self.reward)),
            "success_rate": float(np.mean(self.success)),
            "success_ci95": [lo, hi],
            "error_mean_m": err,
            "error_ci95_m": [err_lo, err_hi],
            "not_executed": int(n - np.sum(self.executed)),
            "clipped": int(np.sum(self.clipped)),
            "ms_per_decision_mean": float(np.mean(self.ms)),
            "ms_per_decision_median": float(np.median(self.ms)),
            "ess_mean": float(np.mean(self.ess)) if self.ess else None,
            "per_scene": {"success": self.success, "error_m": self.error, "reward": self.reward, "ms": self.ms},
        }
        if baseline is not None and baseline is not self:  # paired, scene by scene
            diff = np.asarray(self.error) - np.asarray(baseline.error)
            d, d_lo, d_hi = mean_ci(diff)
            ok, base_ok = np.asarray(self.success, bool), np.asarray(baseline.success, bool)
            out["error_vs_baseline_m"] = {"baseline": baseline.method.name, "mean": d, "ci95": [d_lo, d_hi],
                                          "better": int(np.sum(diff < -1e-9)), "worse": int(np.sum(diff > 1e-9))}
            out["success_vs_baseline"] = {"gained": int(np.sum(ok & ~base_ok)), "lost": int(np.sum(~ok & base_ok))}
        return out


def compare_on_scene(policy, obs, reward_fn, methods: list[Method], records: list[MethodRecord],
                     outcome: Callable, seed: int, device=None) -> int:
    """Run every method on one observation with the same candidate seed, execute each chosen
    candidate (once per distinct candidate) and append to `records`; returns rollouts run.

    outcome(Candidates of one) -> CandidateOutcomes (what-if rollout from the scene).
    """

    seen: dict[bytes, tuple[bool, float, bool]] = {}
    rollouts = 0
    for m, rec in zip(methods, records):
        t0 = time.perf_counter()
        res = fk_steer(policy, obs, reward_fn, m.config, seed=seed)
        if device is not None:
            sync(device)
        ms = 1000 * (time.perf_counter() - t0)
        best = res.best()
        chosen = res.candidates.subset([best])
        key = np.asarray(chosen.params, dtype=np.float64).tobytes()
        if key not in seen:
            o = outcome(chosen)
            seen[key] = (bool(o.success[0]), float(o.quality[0]), bool(o.executed[0]))
            rollouts += 1
        ok, err, executed = seen[key]
        rec.nfe.append(res.nfe)
        rec.reward_calls.append(res.reward_calls)
        rec.reward.append(float(res.rewards[best]))
        rec.success.append(ok)
        rec.error.append(err)
        rec.executed.append(executed)
        rec.clipped.append(bool(np.asarray(chosen.clipped)[0]))
        rec.ms.append(ms)
        if res.ess:
            rec.ess.append(float(np.mean(res.ess)))
    return rollouts


def scorer_reward(scorer, aggregator: str = "mean", uwo_lambda: float = 1.0) -> RewardFor:
    """obs -> reward_fn: the scorer ensemble's aggregated utility of each candidate."""
    def reward_for(obs):
        return lambda cands: aggregate(scorer.score(obs, cands), aggregator, uwo_lambda)

    return reward_for


def bench_selection(cfg: BenchSelectionConfig, policy=None, perception=None,
                    reward_for: Optional[RewardFor] = None) -> dict:
    """Best-of-K vs FK steering on held-out scenes; table, metrics.json and a bar plot in
    `cfg.output_dir`. policy / perception / reward_for replace the checkpoints (tests, notebooks)."""


    if cfg.torch_threads:
        torch.set_num_threads(int(cfg.torch_threads))
    device = torch.device(resolve_device(cfg.device))
    task, policy_source = "place_block", "given"
    if policy is None:
        ck = load_policy(cfg.policy, device=device)
        policy, perception, task, policy_source = ck.policy, ck.perception, ck.task, str(ck.path)
    elif perception is None:
        perception = policy_perception()
    scorer_source = "given"
    if reward_for is None:
        try:
            scorer = load_scorer(cfg.scorer, primitive=policy.primitive, device=device)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"no scorer checkpoint at scorer={cfg.scorer} ({exc}); train one "
                                    "(`robot-rewards train-scorer` / `experiment`) or pass scorer=PATH") from exc
        reward_for = scorer_reward(scorer, cfg.aggregator, cfg.uwo_lambda)
        scorer_source = cfg.scorer
    methods = methods_of(cfg)
    records = [MethodRecord(m) for m in methods]
    steps = cfg.steps or policy.config.inference_steps
    print(f"task {task}, policy {policy_source}, scorer {scorer_source} ({cfg.aggregator}), {cfg.scenes} scenes "
          f"from seed {cfg.seed}, {steps} DDIM steps, K in {sorted(set(cfg.particles))}, device {device}, "
          f"{torch.get_num_threads()} torch threads")

    rollouts, t_start = 0, time.perf_counter()
    with TabletopEnv(task, cfg.sim, perception=perception) as env:
        for i in tqdm(range(cfg.scenes), desc="bench selection", unit="scene", disable=not cfg.progress):
            scene = cfg.seed + i
            env.reset(scene)
            obs = env.observe()
            reward_fn = reward_for(obs)
            if i == 0:  # untimed warm-up of every code path (lazy init, allocator)

                for m in {m.config.resample_every > 0: m for m in methods}.values():
                    fk_steer(policy, obs, reward_fn, m.config, seed=scene * 100)
            rollouts += compare_on_scene(policy, obs, reward_fn, methods, records,
                                         lambda c: simulate_candidates(env, c), seed=scene * 100, device=device)
    total_s = time.perf_counter() - t_start

    summaries, rows = [], []
    for m, rec in zip(methods, records):
        baseline = next(r for r in records if r.method.k == m.k)
        s = rec.summary(baseline)
        summaries.append(s)
        d = s.get("error_vs_baseline_m")
        rows.append([m.k, m.name, int(s["nfe"]), s["reward_calls"], s["scorer_reward_mean"],
                     f"{100 * s['success_rate']:.0f}%",
                     f"[{100 * s['success_ci95'][0]:.0f}, {100 * s['success_ci95'][1]:.0f}]",
                     1000 * s["error_mean_m"],
                     "-" if d is None else f"{1000 * d['mean']:+.1f} [{1000 * d['ci95'][0]:+.1f}, "
                                           f"{1000 * d['ci95'][1]:+.1f}]",
                     s["ms_per_decision_mean"], "-" if s["ess_mean"] is None else s["ess_mean"]])
    print(format_table(["K", "method", "nfe", "reward calls", "scorer reward", "success", "95% CI",
                        "error (mm)", "d error vs row 1 of K (mm)", "ms/decision", "ESS"], rows))
    print(f"{rollouts} what-if rollouts over {cfg.scenes} scenes; {total_s:.0f} s in all")

    out = Path(cfg.output_dir)
    metrics = {
        "command": "bench selection",
        "config": asdict(cfg),
        "task": task,
        "policy_source": policy_source,
        "scorer_source": scorer_source,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "inference_steps": steps,
        "scene_seeds": [cfg.seed, cfg.seed + cfg.scenes - 1],
        "rollouts": rollouts,
        "total_s": total_s,
        "methods": summaries,
    }
    print(f"metrics: {write_metrics(out, metrics)}")
    plot = _plot(out / "selection.png", summaries, cfg.scenes)
    if plot:
        print(f"plot: {plot}")
    return metrics


def _plot(path: Path, summaries: list[dict], scenes: int) -> Path | None:
    try:
        matplotlib.use("Agg")
    except ImportError:  # plotting is a convenience; the numbers are in metrics.json
        return None
    x = np.arange(len(summaries))
    labels = [f"K={s['k']} {s['method']}" for s in summaries]
    colors = ["tab:gray" if s["fk"]["resample_every"] == 0 else "tab:blue" for s in summaries]
    succ = np.array([s["success_rate"] for s in summaries])
    ci = np.array([s["success_ci95"] for s in summaries])
    err = np.array([1000 * s["error_mean_m"] for s in summaries])
    err_ci = np.array([[1000 * v for v in s["error_ci95_m"]] for s in summaries])
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 0.9 * len(x) + 3), 4.5))
    axes[0].bar(x, 100 * succ, color=colors,
                yerr=100 * np.abs(np.stack([succ - ci[:, 0], ci[:, 1] - succ])), capsize=3)
    axes[0].set_ylabel("true success of the chosen candidate (%)")
    axes[0].set_ylim(0, 105)
    axes[1].bar(x, err, color=colors, yerr=np.abs(np.stack([err - err_ci[:, 0], err_ci[:, 1] - err])), capsize=3)
    axes[1].set_ylabel("final error of the chosen candidate (mm)")
    for ax in axes:
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"best-of-K (grey) vs FK steering (blue) at equal nfe, {scenes} scenes")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
