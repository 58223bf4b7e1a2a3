"""Label collection in simulation: the policy proposes, a scripted teacher compares.

Every query goes through the same `PreferenceStore` a person's answers go through, so the
scorer is trained from the store (`store.pairs()`) whether the labels came from the console
or from a teacher. Values are true returns of what-if rollouts of each candidate
(`sim.outcomes.simulate_candidates`), which only a simulator can provide.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from tqdm import tqdm

from robot_rewards.preferences.query_selection import select_pairs
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.preferences.teachers import ScriptedTeacher, TeacherConfig, true_return
from robot_rewards.sim.env import TabletopEnv
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


def collect_teacher_labels(env: TabletopEnv, policy, store: PreferenceStore, teacher: TeacherConfig,
                           n_labels: int, n_candidates: int = 8, pairs_per_query: int = 4, seed: int = 0,
                           quality_scale: float = 0.02, labeller: str = "teacher", progress: bool = True,
                           episode_seeds: Sequence[int] | None = None, max_decisions: int = 0) -> CollectStats:
    """Run the policy on episodes seed, seed+1, ... (or `episode_seeds`, until they run out);
    at each decision (the first `max_decisions` of an episode; 0 = all) sample N candidates,
    roll each one out (then undo it), let the teacher label `pairs_per_query` uniformly chosen
    pairs, store query + labels, and advance the episode with the policy's first sample.
    Stops once `n_labels` labels are stored (the last query may contribute fewer pairs)."""
    if n_labels < 1 or pairs_per_query < 1 or n_candidates < 2:
        raise ValueError(f"need n_labels >= 1, pairs_per_query >= 1 and n_candidates >= 2, "
                         f"got {n_labels}, {pairs_per_query}, {n_candidates}")
    if max_decisions < 0:
        raise ValueError(f"max_decisions must be >= 0 (0 = every decision), got {max_decisions}")
    task = env.task.name
    rater = ScriptedTeacher(teacher)
    rng = np.random.default_rng([seed, 4409])
    session = store.start_session(labeller, task, mode="pairwise",
                                  meta={"teacher": {k: (v if v is None or np.isfinite(v) else str(v))
                                                    for k, v in teacher.__dict__.items()},
                                        "first_episode_seed": seed})
    stats = CollectStats()
    bar = tqdm(total=n_labels, desc=f"labels {task}", unit="label", disable=not progress)
    seeds = iter(episode_seeds) if episode_seeds is not None else itertools.count(seed)
    for ep_seed in seeds:
        if stats.labels >= n_labels:
            break
        env.reset(ep_seed)
        stats.episodes += 1
        decision = 0
        while not env.done and stats.labels < n_labels and not (max_decisions and decision >= max_decisions):
            obs = env.observe()
            cands = policy.sample(obs, n_candidates, seed=ep_seed * 100 + decision)
            out = simulate_candidates(env, cands)
            stats.simulated += len(cands)
            values = np.atleast_1d(true_return(out.success, out.quality, quality_scale))
            pairs = select_pairs(n_candidates, min(pairs_per_query, n_labels - stats.labels), "uniform", rng=rng)
            labels = rater.label(values, pairs)
            qid = store.add_query(session, task, obs.goal, cands, obs.points, obs.colors,
                                  image=next(iter(obs.frames.values())).rgb,
                                  meta={"episode_seed": ep_seed, "decision": decision,
                                        "values": [float(v) for v in values]})
            for (a, b), y in zip(pairs, labels):
                store.add_pair(qid, int(a), int(b), answer_name(y), labeller)
            stats.queries += 1
            stats.labels += len(pairs)
            bar.update(len(pairs))
            env.step(cands.primitive(0))
            decision += 1
    bar.close()
    store.end_session(session)
    stats.teacher = rater.stats()
    return stats
