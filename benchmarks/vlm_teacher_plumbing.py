"""Does the VLM labelling path lose anything? A scorer trained on labels from a model at an
OpenAI-compatible endpoint that is wrong with probability eps, against one trained on the
scripted `mistake` teacher at the same eps, on the same decisions and the same pairs.

    .venv/bin/python benchmarks/vlm_teacher_plumbing.py [labels] [heldout_labels] [eps] [seed]

The "model" is the STAND-IN server (`robot_rewards.rewards.vlm.standin`): it answers from the
candidates' true values (what-if rollouts), flipping each decided answer with probability eps,
like the `mistake` teacher does. Everything else is the real path a user's vLLM model takes:
the pair drawn on the camera image with the console's overlay as A/B (random order), a
chat-completions request with the PNG as a data URL, strict parsing, `VLMTeacher` storing the
answers in a `PreferenceStore` as `vlm:<model>`, `store.pairs()`, `train_scorer`.

place_block, the shipped policy, N = 8, 4 pairs per decision, the first 2 decisions of each
episode; training scenes from 200000, held-out scenes (clean oracle labels) from 300000. Three
scorers with the same training recipe (the experiment's: encoders from the policy, frozen):
mistake teacher (flip seed 0), mistake teacher (flip seed 1: how much the flips alone move the
accuracy) and the stand-in VLM (seed 0). Prints their held-out pair accuracy and differences.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from robot_rewards.commands.vlm import vlm_teacher
from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import format_table
from robot_rewards.eval.collect import LabelEpisodes, store_decisions
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.preferences.config import loop_scorer
from robot_rewards.preferences.query_selection import select_pairs
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.preferences.teachers import TeacherConfig
from robot_rewards.preferences.vlm_teacher import agreement
from robot_rewards.rewards.preference.scorer import evaluate_pairs, train_scorer
from robot_rewards.rewards.vlm.client import VLMClient
from robot_rewards.rewards.vlm.config import VLMConfig
from robot_rewards.rewards.vlm.standin import StandInVLM
from robot_rewards.sim.env import TabletopEnv

TASK, N, PAIRS, DECISIONS = "place_block", 8, 4, 2
TRAIN_SEED, HELDOUT_SEED = 200_000, 300_000


def play(env, policy, n_decisions: int, first_seed: int) -> list:
    """LabelDecisions of episodes first_seed, first_seed + 1, ... until `n_decisions`."""
    episodes = LabelEpisodes(env, policy, N, 0.02, DECISIONS)
    out, seed = [], first_seed
    while len(out) < n_decisions:
        out += episodes(seed)
        seed += 1
    return out[:n_decisions]


def store_vlm_decisions(store, decisions, camera, teacher, server, seed: int) -> dict:
    """As `store_decisions` stores a scripted teacher's labels (one session, PAIRS uniformly chosen
    pairs per decision from the same seeded generator, so the same pairs), with the VLM teacher;
    the stand-in is told each pair's truth for both A/B orders before the question."""
    rng = np.random.default_rng([seed, 4409])
    session = store.start_session(teacher.labeller, TASK, mode="pairwise")
    totals = {"decided": 0, "agree": 0, "disagree": 0}
    for d in decisions:
        pairs = select_pairs(len(d.candidates), PAIRS, "uniform", rng=rng)
        for a, b in pairs:
            for x, y in ((a, b), (b, a)):
                server.register_pair(teacher.judge.image(d.image, camera, d.candidates, x, y), d.values[x], d.values[y])
        qid = store.add_query(session, TASK, d.goal, d.candidates, d.points, d.colors, image=d.image,
                              meta={"episode_seed": d.episode_seed, "decision": d.decision,
                                    "values": [float(v) for v in d.values]})
        for k, v in agreement(teacher.label_query(store, qid, d.image, camera, d.candidates, d.goal, pairs),
                              pairs, d.values).items():
            totals[k] += v
    store.end_session(session)
    return totals


def against_truth(store, decisions) -> float:
    """Fraction of a store's decided labels that prefer the lower true value."""
    values = {(q.meta["episode_seed"], q.meta["decision"]): q.id for q in store.queries()}
    by_qid = {values[(d.episode_seed, d.decision)]: d.values for d in decisions}
    wrong = n = 0
    with store.snapshot() as conn:
        for r in conn.execute("SELECT query_id, a, b, answer FROM labels WHERE answer IN ('a', 'b')"):
            v = by_qid[r["query_id"]]
            if v[r["a"]] != v[r["b"]]:
                n += 1
                wrong += int((r["answer"] == "a") != (v[r["a"]] > v[r["b"]]))
    return wrong / n


def main(labels: int = 150, heldout_labels: int = 100, eps: float = 0.1, seed: int = 0) -> dict:
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    ck = load_policy(resolve(f"checkpoints/policy_{TASK}.json"), task=TASK)
    policy = ck.policy.eval()
    with TabletopEnv(TASK, perception=ck.perception) as env:
        env.reset(TRAIN_SEED)
        camera = next(iter(env.observe().frames.values())).camera
        train = play(env, policy, -(-labels // PAIRS), TRAIN_SEED)
        heldout = play(env, policy, -(-heldout_labels // PAIRS), HELDOUT_SEED)
    t_play = time.perf_counter() - t0
    recipe = replace(loop_scorer(val_fraction=0.0), init_from_policy=str(ck.path), seed=seed)
    rows, metrics = [], {"labels": labels, "heldout_labels": heldout_labels, "eps": eps, "seed": seed}
    with tempfile.TemporaryDirectory() as tmp, StandInVLM(error_rate=eps, seed=seed) as server:
        root = Path(tmp)
        with PreferenceStore(root / "heldout") as st:
            store_decisions(st, TASK, heldout, TeacherConfig(), PAIRS, seed=seed + 1, labeller="teacher:oracle")
            val = st.pairs(task=TASK)
        stores = {}
        for name, flip_seed in (("mistake", seed), ("mistake (other flips)", seed + 1)):
            st = stores[name] = PreferenceStore(root / f"mistake{flip_seed}")
            store_decisions(st, TASK, train, TeacherConfig(eps=eps, seed=flip_seed), PAIRS, seed=seed,
                            labeller="teacher:mistake")
        client = VLMClient(VLMConfig(base_url=server.url, model=server.model, api_key_env="", backoff_s=0.0,
                                     max_requests=0))
        teacher = vlm_teacher(client, order="random", seed=seed)
        st = stores["stand-in VLM"] = PreferenceStore(root / "vlm")
        vlm_agree = store_vlm_decisions(st, train, camera, teacher, server, seed)
        assert vlm_agree["disagree"] == server.wrong, "stored labels differ from what the stand-in answered"
        for name, st in stores.items():
            pairs = st.pairs(task=TASK)
            scorer, _ = train_scorer(pairs, recipe)
            acc = evaluate_pairs(scorer, val)["accuracy"]
            wrong = against_truth(st, train)
            metrics[name] = {"labels": len(pairs), "against_truth": wrong, "heldout_accuracy": acc}
            rows.append([name, len(pairs), f"{wrong:.1%}", f"{acc:.1%}"])
            st.close()
        stats = teacher.stats()
    base = metrics["mistake"]["heldout_accuracy"]
    metrics["vlm_minus_mistake"] = metrics["stand-in VLM"]["heldout_accuracy"] - base
    metrics["flips_only_difference"] = metrics["mistake (other flips)"]["heldout_accuracy"] - base
    metrics["vlm"] = {k: stats[k] for k in ("requests", "answered", "malformed", "error", "prompt_tokens",
                                            "completion_tokens")}
    print(f"VLM labels vs scripted mistake teacher, {TASK}, eps {eps}, {labels} training labels, "
          f"{len(val)} clean held-out pairs, seed {seed} (sim {t_play:.0f} s, total {time.perf_counter() - t0:.0f} s)")
    print(format_table(["labels from", "labels", "against truth", "held-out pair accuracy"], rows))
    print(f"held-out accuracy, stand-in VLM - mistake: {metrics['vlm_minus_mistake']:+.1%}   "
          f"(mistake with other flips - mistake: {metrics['flips_only_difference']:+.1%})")
    print(f"VLM requests {stats['requests']}, malformed {stats['malformed']}, failed {stats['error']}, "
          f"tokens per request {(stats['prompt_tokens'] + stats['completion_tokens']) / stats['requests']:.0f} "
          "(stand-in's estimate)")
    print(json.dumps(metrics))
    return metrics


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*(f(a) for f, a in zip((int, int, float, int), args)))
