"""Reward-guided episodes: the policy proposes N candidates, a selection rule picks one, the sim runs it.

Every decision goes through a `selection.Decider` built from the condition's `Rule`: "first"
executes the policy's first sample as it is; the other rules rank the candidates (a random
draw, a reward family's utilities, or a sim-only utility such as what-if rollouts) and walk
them from the best down until one passes the feasibility checks; if none passes, the episode
stops without moving the arm. Candidate seeds follow `selection.decision_seed`.

With an intent (`LoopSpec.intent`, a name from the task's `sim.intents`) every decision also
rolls out all N candidates (then undoes them) to record whether the chosen one and whether any
one satisfies the intent (`IntentRecorder`). Bullet's restored states are not bit-exact for
blocks, so later steps can drift from the episode run without an intent (1e-7 m after a step;
7.6 mm at the end of one three-step place_block failure): compare conditions within one intent
run, which all record it alike. With no intent nothing is rolled out (bit for bit as before).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import mean_ci, wilson_interval
from robot_rewards.core.workers import run_jobs
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.preferences.teachers import true_return
from robot_rewards.rewards.clip.config import ClipRewardConfig
from robot_rewards.rewards.clip.reward import ClipReward
from robot_rewards.rewards.clip.scorer import OutcomeScorer, sim_outcome_images
from robot_rewards.rewards.keypoints.io import load_keypoint_scorer
from robot_rewards.rewards.keypoints.reward import KeypointScorer, SimKeypointSource
from robot_rewards.rewards.outcome.reward import load_outcome_scorer
from robot_rewards.selection.decider import Decider
from robot_rewards.selection.feasibility import FeasibilityChecker
from robot_rewards.sim.config import SimConfig
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.intents import make_intent, what_if_intent
from robot_rewards.sim.outcomes import simulate_candidates
from robot_rewards.viz.rerun_log import LIVE, open_decision_log

SimUtility = Callable[[TabletopEnv, Observation, Candidates], np.ndarray]  # (env, obs, N cands) -> (N,)


@dataclass(frozen=True, eq=False)
class Rule:
    """A selection rule of the sim loop, as the `Decider` settings it stands for (called with
    (env, obs, cands) it gives the utilities it ranks by).

    method: first | random | best_of_n. For best_of_n either `scorer` (an ActionScorer, the
    reward family `family`, aggregated with aggregator / lam) or `utility`, a sim-only utility
    given the episode's simulator (a reference line, not a real-robot path). seed: the random
    rule's seed.
    """

    method: str
    scorer: Any = None
    family: str = "preference"
    aggregator: str = "mean"
    lam: float = 1.0
    utility: SimUtility | None = None
    seed: int = 0

    def decider(self, env: TabletopEnv, policy, n_candidates: int,
                checker: FeasibilityChecker | None) -> Decider:
        """The Decider of this rule in `env` (the checker is not used by "first": the policy alone
        executes its first sample as it is, and the simulator refuses what it cannot run)."""
        return Decider(policy, None if self.scorer is None else {self.family: self.scorer},
                       utility=None if self.utility is None else partial(self.utility, env),
                       aggregator=self.aggregator, lam=self.lam,
                       checker=None if self.method == "first" else checker, n_candidates=n_candidates,
                       method=self.method, random_seed=self.seed)

    def __call__(self, env: TabletopEnv, obs: Observation, cands: Candidates) -> np.ndarray | None:
        """The utilities this rule ranks `cands` by at `env`'s current decision: None for "first"
        (no ranking), a one-hot of the draw for "random"."""
        decider = self.decider(env, None, len(cands), None)
        if self.method == "random":
            u = np.zeros(len(cands))
            u[decider.order(len(cands), None, env.seed, env.steps)[0]] = 1.0
            return u
        return decider.evaluate(obs, cands)[1]


first_sample = Rule("first")  # (a) the policy alone: its first sample, executed as it is


def random_sample(seed: int) -> Rule:
    """(b) a uniformly random one of the N samples, seeded by (seed, episode seed, decision), so
    an episode draws the same whichever worker runs it and whatever ran before it."""
    return Rule("random", seed=seed)


def scorer_selector(scorer, aggregator: str = "mean", lam: float = 1.0, family: str = "preference") -> Rule:
    """Best-of-N by an ActionScorer's ensemble scores, aggregated (mean | wco | uwo)."""
    return Rule("best_of_n", scorer=scorer, family=family, aggregator=aggregator, lam=lam)


def _shipped_model(stem: str, task: str, condition: str, command: str) -> Path:
    try:
        return resolve(f"checkpoints/{stem}_{task}.json")
    except FileNotFoundError as exc:
        raise ValueError(f"condition '{condition}': no shipped {stem.rstrip('s')} model for task '{task}' "
                         f"(checkpoints/{stem}_{task}.json; train one with `robot-rewards {command}`)") from exc


def learned_keypoint_scorer(task: str) -> KeypointScorer:
    """Analytic keypoint scores at the keypoints the shipped model `checkpoints/keypoints_<task>`
    predicts from the cloud; a task without a shipped model is refused by name."""
    return load_keypoint_scorer(_shipped_model("keypoints", task, "learned_keypoint", "train-keypoints"))


def outcome_model_scorer(task: str):
    """The shipped outcome model `checkpoints/outcome_<task>` as an ActionScorer (no sim state:
    it reads the observed cloud); a task without one is refused by name."""
    return load_outcome_scorer(_shipped_model("outcome", task, "outcome", "train-outcome"))


def oracle_utilities(quality_scale: float, env: TabletopEnv, obs: Observation, cands: Candidates) -> np.ndarray:
    """The true return of each candidate's what-if rollout in `env` (then undone)."""
    out = simulate_candidates(env, cands)
    return np.atleast_1d(true_return(out.success, out.quality, quality_scale))


def oracle_selector(quality_scale: float) -> Rule:
    """(f) the true outcome of each candidate (what-if rollouts): the upper bound of best-of-N."""
    return Rule("best_of_n", utility=partial(oracle_utilities, quality_scale))


@dataclass(frozen=True)
class EpisodeResult:
    """One episode of `run_episode` (plain data: it travels back from worker processes)."""

    seed: int
    success: bool
    quality: float
    steps: int
    stopped: int = 0
    rejected: int = 0
    not_executed: int = 0
    select_s: tuple = ()
    intent: str = ""  # the intent recorded at each decision ("" = none)
    intent_chosen: tuple = ()  # per decision: the chosen candidate satisfies the intent
    intent_any: tuple = ()  # per decision: some candidate of the N does


class IntentRecorder:
    """An `on_decision` hook: at each decision, the what-if outcome of every candidate judged by
    `intent` (`sim.intents.what_if_intent`; the scene is restored), keeping whether the chosen
    candidate and whether any candidate satisfies it."""

    def __init__(self, intent):
        self.intent = intent
        self.chosen: list[bool] = []
        self.any: list[bool] = []

    def __call__(self, env: TabletopEnv, obs: Observation, cands: Candidates, chosen: int, utilities) -> None:
        satisfied = what_if_intent(env, cands, self.intent).satisfied
        self.chosen.append(bool(satisfied[chosen]))
        self.any.append(bool(satisfied.any()))


def intent_summary(name: str, chosen: list, any_: list) -> dict:
    """The intent figures of episodes from per-episode, per-decision flags: over the decisions
    where some candidate satisfies the intent, how often the chosen one does (`intent_rate`, with
    a Wilson 95% interval), and over all decisions (`intent_all_rate`); the flags are kept for
    merging runs."""
    c = np.array([x for ep in chosen for x in ep], bool)
    a = np.array([x for ep in any_ for x in ep], bool)
    hits, possible = int((c & a).sum()), int(a.sum())
    lo, hi = wilson_interval(hits, possible) if possible else (float("nan"), float("nan"))
    return {"intent": name, "intent_decisions": int(len(c)), "intent_possible": possible, "intent_hits": hits,
            "intent_rate": hits / possible if possible else float("nan"), "intent_rate_ci95": [lo, hi],
            "intent_all_rate": float(c.mean()) if len(c) else float("nan"),
            "intent_chosen": [[bool(x) for x in ep] for ep in chosen],
            "intent_any": [[bool(x) for x in ep] for ep in any_]}


@dataclass
class EpisodeStats:
    success: list = field(default_factory=list)
    quality: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    stopped: int = 0  # decisions where no candidate was feasible (the arm did not move)
    rejected: int = 0  # candidates refused by the feasibility walk
    not_executed: int = 0  # executed candidates the sim refused (unreachable, ...)
    select_s: list = field(default_factory=list)
    seeds: list = field(default_factory=list)
    intent: str = ""  # set by episodes that recorded an intent
    intent_chosen: list = field(default_factory=list)  # per episode, per decision
    intent_any: list = field(default_factory=list)

    def add(self, r: EpisodeResult) -> None:
        """Count one episode (results are added in seed order)."""
        if r.intent:
            self.intent = r.intent
            self.intent_chosen.append(list(r.intent_chosen))
            self.intent_any.append(list(r.intent_any))
        self.seeds.append(r.seed)
        self.success.append(r.success)
        self.quality.append(r.quality)
        self.steps.append(r.steps)
        self.stopped += r.stopped
        self.rejected += r.rejected
        self.not_executed += r.not_executed
        self.select_s.extend(r.select_s)

    @classmethod
    def of(cls, results) -> EpisodeStats:
        stats = cls()
        for r in results:
            stats.add(r)
        return stats

    def summary(self) -> dict:
        lo, hi = wilson_interval(int(np.sum(self.success)), len(self.success))
        q, q_lo, q_hi = mean_ci(self.quality)
        intent = intent_summary(self.intent, self.intent_chosen, self.intent_any) if self.intent else {}
        return {**intent, "episodes": len(self.success), "success_rate": float(np.mean(self.success)),
                "success_ci95": [lo, hi], "quality_mean": q, "quality_ci95": [q_lo, q_hi],
                "steps_mean": float(np.mean(self.steps)), "stopped": self.stopped,
                "rejected_candidates": self.rejected, "not_executed": self.not_executed,
                "select_ms": 1000 * float(np.mean(self.select_s)) if self.select_s else 0.0,
                "failed_seeds": [s for s, ok in zip(self.seeds, self.success) if not ok],
                # per episode, for paired comparisons of conditions on the same seeds and for
                # merging runs split over seed ranges (`experiment-merge`)
                "seeds": [int(s) for s in self.seeds], "quality": [float(q) for q in self.quality],
                "success": [bool(s) for s in self.success], "steps": [int(s) for s in self.steps]}


def run_episode(env: TabletopEnv, policy, selector: Rule, ep_seed: int, n_candidates: int = 8,
                checker: FeasibilityChecker | None = None, on_decision: Callable | None = None,
                on_decide: Callable | None = None) -> EpisodeResult:
    """One episode from seed `ep_seed`: every rule sees the same candidates at the same decision
    of the same seed (`decision_seed(ep_seed, decision)`).
    on_decision(env, obs, cands, chosen_index, utilities) is called before each execution;
    on_decide(obs, decision, ep_seed) after every decision, also one that chose nothing."""
    env.reset(ep_seed)
    decider = selector.decider(env, policy, n_candidates, checker)
    decision = stopped = rejected = not_executed = 0
    select_s = []
    while not env.done:
        obs = env.observe()
        d = decider.decide(obs, ep_seed, decision, env.world.arm.joint_positions())
        if on_decide is not None:
            on_decide(obs, d, ep_seed)
        rejected += len(d.rejected)
        select_s.append(d.select_s)
        if d.chosen is None:
            stopped += 1
            break
        if on_decision is not None:
            on_decision(env, obs, d.candidates, d.chosen, d.utilities)
        if not env.step(d.primitive()).executed:
            not_executed += 1
        decision += 1
    return EpisodeResult(int(ep_seed), bool(env.success()), float(env.quality()), int(env.steps), stopped,
                         rejected, not_executed, tuple(select_s))


def run_episodes(env: TabletopEnv, policy, selector: Rule, episodes: int, seed: int, n_candidates: int = 8,
                 checker: FeasibilityChecker | None = None, desc: str = "", progress: bool = True,
                 on_decision: Callable | None = None) -> EpisodeStats:
    """Episodes with seeds seed, seed+1, ... in this process (see `run_episode`; for every core,
    `robot_rewards.eval.episodes.run_condition`)."""
    return EpisodeStats.of(
        run_episode(env, policy, selector, seed + k, n_candidates, checker, on_decision)
        for k in tqdm(range(episodes), desc=desc, unit="ep", disable=not progress)
    )


# -- every core: one selection rule's episodes from worker processes -----------------------------


@dataclass(frozen=True)
class LoopSpec:
    """Everything a worker process needs to run episodes of one selection rule (it is pickled
    to each worker, which builds its own simulator from it)."""

    task: str
    policy: Any  # the policy module
    # first | random | scorer | scorer_wco | scorer_uwo | keypoint | learned_keypoint | outcome | clip | oracle | implicit
    condition: str
    n_candidates: int = 8
    scorer: Any = None  # for scorer, scorer_wco, scorer_uwo; the implicit-reward scorer for implicit
    perception: PerceptionConfig | None = None
    sim: SimConfig = field(default_factory=SimConfig)
    check_feasibility: bool = True
    seed: int = 0  # of the random rule
    quality_scale: float = 0.02  # of the oracle's true return
    uwo_lambda: float = 1.0
    clip: ClipRewardConfig | None = None  # for clip
    torch_threads: int = 1
    intent: str = ""  # record, per decision, whether the chosen / any candidate satisfies it
    # log every decision to Rerun (viz/rerun_log.py): "live", or an .rrd path that each worker
    # process turns into <stem>.<condition>.<pid>.rrd (one writer per file); "" = off
    rerun: str = ""


def make_selector(spec: LoopSpec, env: TabletopEnv) -> Rule:
    """The selection rule `spec.condition` in `env` (sim-based rules read that simulator)."""
    name = spec.condition
    if name in ("scorer", "scorer_wco", "scorer_uwo", "implicit") and spec.scorer is None:
        raise ValueError(f"condition '{name}' needs a scorer")
    rules = {
        "first": lambda: first_sample,
        "random": lambda: random_sample(spec.seed),
        "scorer": lambda: scorer_selector(spec.scorer, "mean"),
        "scorer_wco": lambda: scorer_selector(spec.scorer, "wco"),
        "scorer_uwo": lambda: scorer_selector(spec.scorer, "uwo", spec.uwo_lambda),
        "keypoint": lambda: scorer_selector(KeypointScorer(SimKeypointSource(env)), "mean", family="keypoint"),
        # the shipped keypoint model on the observed cloud: no sim state, what a real robot has
        "learned_keypoint": lambda: scorer_selector(learned_keypoint_scorer(spec.task), "mean", family="keypoint"),
        # the shipped outcome model: the task's measures predicted on the cloud after each candidate
        "outcome": lambda: scorer_selector(outcome_model_scorer(spec.task), "mean", family="outcome"),
        "oracle": lambda: oracle_selector(spec.quality_scale),
        # DeformPAM's implicit reward (rewards/implicit): spec.scorer is the DPO-tuned pair
        "implicit": lambda: scorer_selector(spec.scorer, "mean", family="implicit"),
        "clip": lambda: clip_selector(spec.clip or ClipRewardConfig(), env),
    }
    if name not in rules:
        raise ValueError(f"unknown condition '{name}'; known: {list(rules)}")
    return rules[name]()


def clip_selector(clip_cfg: ClipRewardConfig, env: TabletopEnv) -> Rule:
    """(e) best-of-N by the CLIP goal reward of each candidate's simulated outcome image."""
    # open_clip is heavy and optional for everything but this rule: imported only when asked for

    if clip_cfg.model.endswith(".json"):  # a checkpoint: found from anywhere, like the shipped policies
        clip_cfg = replace(clip_cfg, model=str(resolve(clip_cfg.model)))
    return scorer_selector(OutcomeScorer(ClipReward.from_config(clip_cfg), sim_outcome_images(env)), "mean",
                           family="clip")


class LoopRunner:
    """A worker's simulator, feasibility checker and selection rule; runs one episode per seed."""

    def __init__(self, spec: LoopSpec):
        torch.set_num_threads(max(1, int(spec.torch_threads)))
        self.spec = spec
        self.env = TabletopEnv(spec.task, spec.sim, perception=spec.perception)
        self.checker = (FeasibilityChecker(self.env.workspace, arm=self.env.world.arm.description)
                        if spec.check_feasibility else None)
        self.selector = make_selector(spec, self.env)
        self.intent = make_intent(self.env.task, spec.intent) if spec.intent else None
        self.log = open_decision_log(worker_recording(spec.rerun, spec.condition))

    def __call__(self, seed: int) -> EpisodeResult:
        recorder = IntentRecorder(self.intent) if self.intent is not None else None
        on_decide = None if self.log is None else (lambda obs, d, s: self.log.log_decision(obs, d, episode=s))
        result = run_episode(self.env, self.spec.policy, self.selector, int(seed), self.spec.n_candidates,
                             self.checker, recorder, on_decide)
        if recorder is None:
            return result
        return replace(result, intent=self.spec.intent, intent_chosen=tuple(recorder.chosen),
                       intent_any=tuple(recorder.any))

    def close(self) -> None:
        if self.checker is not None:
            self.checker.close()
        if self.log is not None:
            self.log.close()
        self.env.close()


def worker_recording(target: str, condition: str) -> str:
    """This process's Rerun target for `rerun=target`: '' and 'live' as given, an .rrd path as
    <stem>.<condition>.<pid>.rrd beside it (several worker processes cannot share one file)."""
    if not target or target == LIVE:
        return target
    p = Path(target)
    return str(p.with_name(f"{p.stem}.{condition}.{os.getpid()}.rrd"))


def run_condition(spec: LoopSpec, episodes: int, seed: int, workers: Any = "auto", desc: str = "",
                  progress: bool = True, executor: str = "local", ray_address: str = "") -> EpisodeStats:
    """Episodes seed .. seed+episodes-1 of one selection rule on `workers` processes (or Ray
    actors); the same per-episode results as one process (`run_episodes`) for the same seeds."""
    seeds = list(range(seed, seed + episodes))
    return EpisodeStats.of(run_jobs(partial(LoopRunner, spec), seeds, workers, desc, progress,
                                    executor, ray_address))
