"""`robot-rewards vlm-label`: AI feedback from a vision-language model into the preference store.

The policy plays episodes in sim (`eval.collect.LabelEpisodes`: at each decision N candidates,
each rolled out and undone so the store keeps their true values, then the policy's first sample
is executed). For uniformly chosen pairs of each decision's candidates the two are drawn on the
camera image as A and B with the console's overlay, the model at `vlm.base_url` says which is
better for the goal, and its answer is stored under labeller `vlm:<model>` like a person's.
Train a scorer on them with `robot-rewards train-scorer store=<store>`.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from robot_rewards.console.overlay import draw_candidates
from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.eval.collect import LabelEpisodes
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.preferences.query_selection import select_pairs
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.preferences.vlm_teacher import VLMTeacher, agreement, answer_of
from robot_rewards.rewards.vlm.client import VLMBudgetError, VLMClient
from robot_rewards.rewards.vlm.config import PAIR_ORDERS, VLMLabelConfig
from robot_rewards.rewards.vlm.pairwise import PairJudge, pair_renderer
from robot_rewards.sim.env import TabletopEnv


def check_label_config(cfg: VLMLabelConfig) -> None:
    """ValueError naming the first setting of `cfg` that cannot work."""
    if cfg.labels < 1 or cfg.pairs_per_query < 1 or cfg.n_candidates < 2:
        raise ValueError(f"need labels >= 1, pairs_per_query >= 1 and n_candidates >= 2, "
                         f"got {cfg.labels}, {cfg.pairs_per_query}, {cfg.n_candidates}")
    if cfg.label_decisions < 0:
        raise ValueError(f"label_decisions must be >= 0 (0 = every decision), got {cfg.label_decisions}")
    if cfg.order not in PAIR_ORDERS:
        raise ValueError(f"order must be one of {list(PAIR_ORDERS)}, got {cfg.order!r}")
    if not cfg.render_scale >= 1.0:
        raise ValueError(f"render_scale must be >= 1, got {cfg.render_scale}")


def vlm_teacher(client: VLMClient, order: str = "random", seed: int = 0, render_scale: float = 1.0,
                labeller: str = "") -> VLMTeacher:
    """The VLM teacher that draws each pair with the console's overlay (what `vlm-label` uses)."""
    return VLMTeacher(PairJudge(client, pair_renderer(draw_candidates, render_scale), order, seed), labeller)


def vlm_label(cfg: VLMLabelConfig) -> dict:
    """Run the labelling (see the module docstring); prints a summary and writes metrics.json."""
    check_label_config(cfg)
    out = Path(cfg.output_dir)
    vcfg = cfg.vlm if cfg.vlm.cache else replace(cfg.vlm, cache=str(out / "vlm_cache.sqlite"))
    client = VLMClient(vcfg)  # a missing key or a bad setting fails here, before the simulator starts
    torch.set_num_threads(max(1, int(cfg.torch_threads)))
    ck = load_policy(resolve(cfg.policy or f"checkpoints/policy_{cfg.task}.json"), task=cfg.task)
    teacher = vlm_teacher(client, cfg.order, cfg.seed, cfg.render_scale, cfg.labeller)
    rng = np.random.default_rng([cfg.seed, 4409])  # pair choice as the scripted teachers' collection
    t0 = time.perf_counter()
    asked, queries, episodes, stopped = 0, 0, 0, ""
    agree = {"decided": 0, "agree": 0, "disagree": 0}
    answers = dict.fromkeys(("a", "b", "tie", "cant_tell"), 0)
    with client, TabletopEnv(cfg.task, cfg.sim, perception=ck.perception) as env, \
            PreferenceStore(cfg.store or out / "preferences") as store:
        env.reset(cfg.seed)
        camera = next(iter(env.observe().frames.values())).camera  # LabelEpisodes keeps this camera's image
        play = LabelEpisodes(env, ck.policy.eval(), cfg.n_candidates, cfg.quality_scale, cfg.label_decisions)
        meta = {"vlm": {"base_url": vcfg.base_url, "model": vcfg.model}, "order": cfg.order,
                "first_episode_seed": cfg.seed, "policy": ck.identity()}
        session = store.start_session(teacher.labeller, cfg.task, mode="pairwise", meta=meta)
        bar = tqdm(total=cfg.labels, desc=f"vlm labels {cfg.task}", unit="pair")
        try:
            for ep_seed in itertools.count(cfg.seed):
                if asked >= cfg.labels:
                    break
                episodes += 1
                for d in play(ep_seed):
                    if asked >= cfg.labels:
                        break
                    pairs = select_pairs(len(d.candidates), min(cfg.pairs_per_query, cfg.labels - asked),
                                         "uniform", rng=rng)
                    qid = store.add_query(session, cfg.task, d.goal, d.candidates, d.points, d.colors, image=d.image,
                                          meta={"episode_seed": d.episode_seed, "decision": d.decision,
                                                "values": [float(v) for v in d.values]})
                    if queries == 0:  # what the model sees, for a look
                        a, b = pairs[0]
                        out.mkdir(parents=True, exist_ok=True)
                        cv2.imwrite(str(out / "pair_example.png"),
                                    cv2.cvtColor(teacher.judge.image(d.image, camera, d.candidates, a, b),
                                                 cv2.COLOR_RGB2BGR))
                    queries += 1
                    verdicts = teacher.label_query(store, qid, d.image, camera, d.candidates, d.goal, pairs)
                    for k, v in agreement(verdicts, pairs, d.values).items():
                        agree[k] += v
                    for v in verdicts:
                        if v.storable:
                            answers[answer_of(v.label)] += 1
                    asked += len(pairs)
                    bar.update(len(pairs))
                    if agree["decided"]:
                        bar.set_postfix(agree=f"{agree['agree'] / agree['decided']:.0%}")
        except VLMBudgetError as exc:
            stopped = str(exc)  # everything answered so far is stored
        finally:
            bar.close()
            store.end_session(session)
    stats = teacher.stats()
    labels = stats["stored"]
    metrics = {
        "command": "vlm-label", "task": cfg.task, "model": vcfg.model, "base_url": vcfg.base_url,
        "labeller": teacher.labeller, "asked": asked, "stored": labels, "queries": queries, "episodes": episodes,
        "answers": answers, "verdicts": {k: stats[k] for k in ("answered", "unsure", "malformed", "error")},
        "agreement_with_sim": agree["agree"] / agree["decided"] if agree["decided"] else None, **agree,
        "client": {k: v for k, v in stats.items() if k not in ("answered", "unsure", "malformed", "error", "stored")},
        "tokens_per_question": ((stats["prompt_tokens"] + stats["completion_tokens"]) / max(1, stats["questions"])),
        "stopped": stopped, "seconds": time.perf_counter() - t0,
    }
    rows = [["pairs asked / stored", f"{asked} / {labels}"],
            ["answers a / b / tie / can't tell", " / ".join(str(answers[k]) for k in ("a", "b", "tie", "cant_tell"))],
            ["unsure / malformed / failed", f"{stats['unsure']} / {stats['malformed']} / {stats['error']}"],
            ["agreement with sim truth", "-" if metrics["agreement_with_sim"] is None
             else f"{metrics['agreement_with_sim']:.1%} of {agree['decided']}"],
            ["requests / retries / cache hits", f"{stats['requests']} / {stats['retries']} / {stats['cache_hits']}"],
            ["tokens per question (reported)", f"{metrics['tokens_per_question']:.0f}"]]
    print(format_table(["vlm-label", f"{cfg.task}, {teacher.labeller}"], rows))
    if stopped:
        print(f"stopped early: {stopped}")
    print(f"store: {cfg.store or out / 'preferences'}\nmetrics: {write_metrics(out, metrics)}")
    return metrics
