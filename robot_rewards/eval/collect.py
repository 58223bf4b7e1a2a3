"""Label collection in simulation: the policy proposes, a scripted teacher compares.

Every query goes through the same `PreferenceStore` a person's answers go through, so the
scorer is trained from the store (`store.pairs()`) whether the labels came from the console
or from a teacher. Values are true returns of what-if rollouts of each candidate
(`sim.outcomes.simulate_candidates`), which only a simulator can provide. With an intent
(`sim.intents`: a way of doing the task that the metric ignores) a candidate's value is its true
return plus `intent_weight` if its outcome satisfies the intent (1.0 = worth one success), and
the query's meta keeps which candidates do (`intent_satisfied`) beside their `values`.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.core.workers import JobPool, resolve_workers
from robot_rewards.preferences.query_selection import select_pairs
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.preferences.teachers import ScriptedTeacher, TeacherConfig, true_return
from robot_rewards.rewards.aggregate import aggregate
from robot_rewards.selection.decider import Decider
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.intents import make_intent, what_if_intent
from robot_rewards.sim.outcomes import simulate_candidates

log = logging.getLogger(__name__)


def answer_name(label: float) -> str:
    """A `PreferencePairs` label (1, 0, 0.5, NaN) as the store's answer name."""
    if np.isnan(label):
        return "cant_tell"
    return {1.0: "a", 0.0: "b", 0.5: "tie"}[float(label)]


@dataclass
class CollectStats:
    """What one collection run did."""

    queries: int = 0
    labels: int = 0
    episodes: int = 0
    simulated: int = 0  # what-if rollouts (N per query)
    teacher: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class LabelDecision:
    """One decision of a labelling episode: what the store keeps for the query, and the true
    value of every candidate (from what-if rollouts)."""

    episode_seed: int
    decision: int
    goal: str
    candidates: Candidates
    points: np.ndarray | None
    colors: np.ndarray | None
    image: np.ndarray
    values: np.ndarray
    intent: np.ndarray | None = None  # (N,) bool: whether each candidate satisfies the intent


class LabelEpisodes:
    """Plays labelling episodes in one simulator: at each decision (the first `max_decisions`;
    0 = all) N candidates, each rolled out and undone, then the first sample is executed (the
    policy alone, as the "first" condition: the labels are about the policy's own candidates).
    With `intent` (a name from the task's `intents`) each value also gets `intent_weight` where
    the candidate's outcome satisfies it."""

    def __init__(self, env: TabletopEnv, policy, n_candidates: int, quality_scale: float, max_decisions: int,
                 intent: str = "", intent_weight: float = 1.0):
        self.env, self.policy = env, policy
        self.n, self.scale, self.max_decisions = n_candidates, quality_scale, max_decisions
        self.decider = Decider(policy, method="first", n_candidates=n_candidates)
        self.intent = make_intent(env.task, intent) if intent else None
        self.intent_weight = float(intent_weight)

    @classmethod
    def build(cls, task: str, sim, perception, policy, n_candidates: int, quality_scale: float,
              max_decisions: int, torch_threads: int = 1, intent: str = "",
              intent_weight: float = 1.0) -> LabelEpisodes:
        """In a worker process: its own simulator."""
        torch.set_num_threads(max(1, int(torch_threads)))
        return cls(TabletopEnv(task, sim, perception=perception), policy, n_candidates, quality_scale, max_decisions,
                   intent, intent_weight)

    def __call__(self, ep_seed: int) -> list[LabelDecision]:
        env, out = self.env, []
        env.reset(ep_seed)
        while not env.done and not (self.max_decisions and len(out) >= self.max_decisions):
            obs = env.observe()
            d = self.decider.decide(obs, ep_seed, len(out))
            cands = d.candidates
            satisfied = None
            if self.intent is None:
                rolled = simulate_candidates(env, cands)
            else:  # one rollout per candidate gives both its outcome and the intent's verdict
                rolled = what_if_intent(env, cands, self.intent)
                satisfied = rolled.satisfied
            values = np.atleast_1d(true_return(rolled.success, rolled.quality, self.scale))
            if satisfied is not None:
                values = values + self.intent_weight * satisfied
            out.append(LabelDecision(int(ep_seed), len(out), obs.goal, cands, obs.points, obs.colors,
                                     next(iter(obs.frames.values())).rgb, values, satisfied))
            env.step(d.primitive())
        return out

    def close(self) -> None:
        pass  # the simulator belongs to whoever built it (closed with its process in a worker)


@dataclass
class ActiveQueries:
    """Pairs chosen by a scorer trained on the labels so far (`preferences.query_selection`):
    `method` disagreement or entropy; `train()` returns a scorer trained on everything stored
    for the task (None while there are too few labels: pairs are then uniform), called again
    every `every` labels."""

    method: str
    train: Callable[[], Any]
    every: int = 25

    def __post_init__(self):
        if self.method not in ("disagreement", "entropy"):
            raise ValueError(f"active query selection needs disagreement or entropy, got '{self.method}'")
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"retrain every must be an int >= 1, got {self.every!r}")


def collect_teacher_labels(env: TabletopEnv, policy, store: PreferenceStore, teacher: TeacherConfig,
                           n_labels: int, n_candidates: int = 8, pairs_per_query: int = 4, seed: int = 0,
                           quality_scale: float = 0.02, labeller: str = "teacher", progress: bool = True,
                           episode_seeds: Sequence[int] | None = None, max_decisions: int = 0,
                           workers: Any = 1, torch_threads: int = 1, executor: str = "local",
                           ray_address: str = "", intent: str = "", intent_weight: float = 1.0,
                           policy_identity: dict | None = None, active: ActiveQueries | None = None) -> CollectStats:
    """Run the policy on episodes seed, seed+1, ... (or `episode_seeds`, until they run out);
    at each decision (the first `max_decisions` of an episode; 0 = all) sample N candidates,
    roll each one out (then undo it), let the teacher label `pairs_per_query` uniformly chosen
    pairs, store query + labels, and advance the episode with the policy's first sample.
    Stops once `n_labels` labels are stored (the last query may contribute fewer pairs).

    With `workers` > 1 the episodes are played in worker processes, a batch at a time, and
    labelled and stored here in seed order: the store is the same as with one worker (each
    process, this one included, runs torch on `torch_threads` threads).

    `intent`: label by true return + `intent_weight` x (the outcome satisfies the task's intent
    of that name; see the module docstring); "" = the true return alone, as before.
    `policy_identity`: the policy checkpoint's {"path", "sha256"}, kept with the session.
    `active`: the pairs of each decision are chosen by a scorer retrained on the labels so far
    (`ActiveQueries`) instead of uniformly."""
    if n_labels < 1 or pairs_per_query < 1 or n_candidates < 2:
        raise ValueError(f"need n_labels >= 1, pairs_per_query >= 1 and n_candidates >= 2, "
                         f"got {n_labels}, {pairs_per_query}, {n_candidates}")
    if max_decisions < 0:
        raise ValueError(f"max_decisions must be >= 0 (0 = every decision), got {max_decisions}")
    if intent:
        make_intent(env.task, intent)  # an unknown name fails here, not in a worker
        check_intent_weight(intent_weight)
    n_workers = resolve_workers(workers)
    task = env.task.name
    rater = ScriptedTeacher(teacher)
    rng = np.random.default_rng([seed, 4409])
    if n_workers <= 1 and executor == "local":
        torch.set_num_threads(max(1, int(torch_threads)))  # as in a worker: same threads, same sums
        factory = partial(LabelEpisodes, env, policy, n_candidates, quality_scale, max_decisions,
                          intent, intent_weight)
    else:
        factory = partial(LabelEpisodes.build, task, env.world.cfg, env.perception, policy, n_candidates,
                          quality_scale, max_decisions, torch_threads, intent, intent_weight)
    meta = {"teacher": {k: (v if v is None or np.isfinite(v) else str(v)) for k, v in teacher.__dict__.items()},
            "first_episode_seed": seed}
    if intent:
        meta.update(intent=intent, intent_weight=float(intent_weight))
    if policy_identity:  # so labels are never reused for another policy's candidates
        meta["policy"] = dict(policy_identity)
    if active is not None:
        meta.update(query_selection=active.method, retrain_every=active.every)
    session = store.start_session(labeller, task, mode="pairwise", meta=meta)
    stats = CollectStats()
    bar = tqdm(total=n_labels, desc=f"labels {task}", unit="label", disable=not progress)
    seeds = iter(episode_seeds) if episode_seeds is not None else itertools.count(seed)
    per_episode = pairs_per_query * (max_decisions or env.task.max_steps)
    chooser = _PairChooser(active)
    with JobPool(factory, n_workers, executor, ray_address) as pool:
        while stats.labels < n_labels:
            # at most the episodes still needed if none ends early, in rounds of two per worker, so
            # labels reach the store as they come (one episode at a time in this process)
            need = -(-(n_labels - stats.labels) // per_episode)
            size = 1 if n_workers <= 1 else -(-min(need, 2 * n_workers) // n_workers) * n_workers
            batch = list(itertools.islice(seeds, size))
            if not batch:
                break
            for trace in pool.map(batch, progress=False):
                if stats.labels >= n_labels:
                    break
                stats.episodes += 1
                for d in trace:
                    if stats.labels >= n_labels:
                        break
                    _label(store, session, task, d, rater, rng, min(pairs_per_query, n_labels - stats.labels),
                           labeller, stats, intent, chooser(stats.labels))
                    bar.update(stats.labels - bar.n)
    bar.close()
    store.end_session(session)
    stats.teacher = rater.stats()
    return stats


def check_intent_weight(weight: float) -> float:
    """`weight` if it is a finite number > 0 (value units: 1 = one success), else ValueError."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not np.isfinite(weight) or weight <= 0:
        raise ValueError(f"intent_weight must be a finite number > 0 (1 = worth one success), got {weight!r}")
    return float(weight)


def store_decisions(store: PreferenceStore, task: str, decisions: Sequence[LabelDecision], teacher: TeacherConfig,
                    pairs_per_query: int, seed: int = 0, labeller: str = "teacher", intent: str = "") -> CollectStats:
    """Label and store already played decisions (e.g. the same decisions under two teachers or
    two value definitions) as `collect_teacher_labels` stores each of its own: one session,
    `pairs_per_query` uniformly chosen pairs per query, labels by `teacher` from `d.values`."""
    rater = ScriptedTeacher(teacher)
    rng = np.random.default_rng([seed, 4409])
    session = store.start_session(labeller, task, mode="pairwise", meta={"intent": intent} if intent else {})
    stats = CollectStats()
    for d in decisions:
        _label(store, session, task, d, rater, rng, pairs_per_query, labeller, stats, intent)
    store.end_session(session)
    stats.teacher = rater.stats()
    return stats


class _PairChooser:
    """(method, scorer) for the next decision: uniform without `active`, else the active
    method with a scorer retrained once `active.every` more labels are stored."""

    def __init__(self, active: ActiveQueries | None):
        self.active, self.scorer, self.due = active, None, 0

    def __call__(self, labels: int) -> tuple[str, Any]:
        if self.active is None:
            return "uniform", None
        if labels >= self.due:
            self.scorer, self.due = self.active.train(), labels + self.active.every
        return self.active.method, self.scorer


def _label(store, session, task, d: LabelDecision, rater, rng, n_pairs: int, labeller: str,
           stats: CollectStats, intent: str = "", choice: tuple[str, Any] = ("uniform", None)) -> None:
    """Teacher labels for `n_pairs` pairs of one decision, stored with its query: uniformly
    chosen, or by `choice` = (query selection method, scorer) where the scorer exists."""
    method, scorer = choice
    scores = None
    if scorer is not None:
        obs = Observation(frames={}, proprio=None, goal=d.goal, points=d.points, colors=d.colors)
        scores = scorer.score(obs, d.candidates)
    pairs = select_pairs(len(d.candidates), n_pairs, method if scores is not None else "uniform", scores=scores, rng=rng)
    labels = rater.label(d.values, pairs)
    meta = {"episode_seed": d.episode_seed, "decision": d.decision, "values": [float(v) for v in d.values]}
    if intent and d.intent is not None:
        meta.update(intent=intent, intent_satisfied=[bool(s) for s in d.intent])
    qid = store.add_query(session, task, d.goal, d.candidates, d.points, d.colors, image=d.image, meta=meta)
    for (a, b), y in zip(pairs, labels):
        store.add_pair(qid, int(a), int(b), answer_name(y), labeller)
    stats.queries += 1
    stats.labels += len(pairs)
    stats.simulated += len(d.candidates)


def heldout_intent(scorer, store: PreferenceStore, task: str, aggregator: str = "mean") -> dict | None:
    """How often `scorer`'s top choice satisfies the intent, offline, on the stored queries of
    `task` that carry `intent_satisfied` (intent-teacher queries) and where some candidate does:
    {"intent", "queries" (such decisions), "top1_rate", "first_rate" (the first sample, what the
    policy alone executes), "random_rate" (a uniformly random candidate)}. None: no such query."""
    top, first, rand, name = [], [], [], ""
    for rec in store.queries(task=task):
        sat = rec.meta.get("intent_satisfied")
        if sat is None or not any(sat):
            continue
        name = rec.meta.get("intent", name)
        sat = np.asarray(sat, bool)
        _, arrays = store.load_query(rec.id)
        cands = arrays.candidates(rec.primitive)
        if len(sat) != len(cands):
            raise ValueError(f"query {rec.id}: {len(sat)} intent flags for {len(cands)} candidates")
        obs = Observation(frames={}, proprio=None, goal=rec.goal, points=arrays.points, colors=arrays.colors)
        top.append(bool(sat[int(np.argmax(aggregate(scorer.score(obs, cands), aggregator)))]))
        first.append(bool(sat[0]))
        rand.append(float(sat.mean()))
    if not top:
        return None
    return {"intent": name, "queries": len(top), "top1_rate": float(np.mean(top)),
            "first_rate": float(np.mean(first)), "random_rate": float(np.mean(rand))}
