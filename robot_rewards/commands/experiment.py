"""`robot-rewards experiment`: does reward-guided selection beat the policy alone?

Per task, with the shipped policy and N candidates per decision:
1. a scripted teacher (B-Pref "mistake", eps 0.1) labels at most `labels` candidate pairs on
   training scenes, through the preference store; clean oracle labels on other scenes are
   kept aside to measure scorer accuracy;
2. the scorer ensemble is trained from the store;
3. every condition runs on the same held-out scenes with the same candidates:
   (a) first sample, (b) random of N, (c) scorer mean, (d) scorer WCO / UWO,
   (e) keypoint reward and CLIP reward (of each candidate's simulated outcome), (f) oracle
   (true outcome of each candidate, by what-if rollouts);
4. a learning curve: scorer accuracy and best-of-N success vs number of labels.
With `intent` (issue 28: a teacher's own way of doing the task, `sim.intents`) the teachers value
candidates that satisfy it `intent_weight` higher, and every condition records per decision
whether its choice and whether any of the N candidates satisfies it (the report's intent table).
Writes table.md, metrics.json, plots and the store under `output_dir`; runs split over
conditions or seed ranges are joined by `experiment-merge` (commands/experiment_report.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from robot_rewards.commands.experiment_report import write_report
from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import write_metrics
from robot_rewards.core.workers import JobsFailed, check_executor, resolve_workers
from robot_rewards.eval.collect import ActiveQueries, check_intent_weight, collect_teacher_labels, heldout_intent
from robot_rewards.eval.loop import EpisodeStats, LoopSpec, run_condition
from robot_rewards.eval.shared_inference import start_server, stop_server
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.preferences.config import CONDITIONS, ExperimentConfig
from robot_rewards.preferences.errors import LabelError
from robot_rewards.preferences.heldout import has_true_values, heldout_calibration, heldout_selection
from robot_rewards.preferences.query_selection import METHODS as QUERY_METHODS
from robot_rewards.preferences.recipes import scorer_recipe, shipped_keypoint_model, shipped_outcome_model
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.preferences.teachers import teacher_preset
from robot_rewards.rewards.base import RewardInputError
from robot_rewards.rewards.implicit.dpo import train_dpo
from robot_rewards.rewards.implicit.reward import evaluate_implicit, save_implicit
from robot_rewards.rewards.preference.config import TrainScorerConfig
from robot_rewards.rewards.preference.io import save_scorer
from robot_rewards.rewards.preference.scorer import evaluate_pairs, train_scorer
from robot_rewards.rewards.registry import checkpoint_training, load_action_scorer
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.intents import make_intent
from robot_rewards.sim.tasks import make_task
from robot_rewards.viz.rerun_log import check_target

log = logging.getLogger(__name__)

def shipped_policy(task: str) -> str:
    return f"checkpoints/policy_{task}.json"


def experiment(cfg: ExperimentConfig) -> dict:
    """Run the headline experiment for every task in `cfg.tasks` (see the module docstring)."""
    bad = [c for c in cfg.conditions if c not in CONDITIONS]
    if bad:
        raise ValueError(f"unknown conditions {bad}; known: {list(CONDITIONS)}")
    if cfg.episodes < 1 or cfg.labels < 1 or cfg.n_candidates < 2 or cfg.heldout_labels < 0:
        raise ValueError("episodes and labels must be >= 1, heldout_labels >= 0 and n_candidates >= 2")
    if cfg.scorer_checkpoint and len(cfg.tasks) != 1:
        raise ValueError(f"scorer_checkpoint is one task's scorer; run one task at a time (tasks={list(cfg.tasks)})")
    if cfg.intent:  # every task must declare it; checked before any work
        check_intent_weight(cfg.intent_weight)
        for task in cfg.tasks:
            make_intent(make_task(task), cfg.intent)
    for task in cfg.tasks:  # an unknown recipe, or keypoints without a keypoint model, fails before any work
        scorer_recipe(cfg.scorer_recipe, task, cfg.scorer)
    if cfg.query_selection not in QUERY_METHODS:
        raise ValueError(f"unknown query_selection '{cfg.query_selection}'; use one of {list(QUERY_METHODS)}")
    if cfg.query_selection != "uniform":
        ActiveQueries(cfg.query_selection, lambda: None, cfg.query_retrain_every)  # checks the settings
    check_target(cfg.rerun)  # an unwritable recording or a missing rerun-sdk fails before any work
    resolve_workers(cfg.workers)  # bad worker counts and executors fail before any work
    if cfg.shared_inference and cfg.executor != "ray":
        raise ValueError("shared_inference=true serves the networks from a Ray actor: it needs executor=ray")
    check_executor(cfg.executor, cfg.ray_address)
    torch.set_num_threads(max(1, int(cfg.torch_threads)))
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for task in cfg.tasks:
        ck = load_policy(resolve(cfg.policies.get(task, shipped_policy(task))), task=task)
        results[task] = _run_task(cfg, task, ck, out, _scorer_config(cfg, ck))
        write_report(_header(cfg), results, out)
    metrics = {"command": "experiment", "n_candidates": cfg.n_candidates, "episodes": cfg.episodes,
               "labels": cfg.labels, "teacher": cfg.teacher, "tasks": results}
    if cfg.intent:
        metrics.update(intent=cfg.intent, intent_weight=cfg.intent_weight)
    print(f"\ntable: {out / 'table.md'}\nmetrics: {write_metrics(out, metrics)}")
    return metrics


def _scorer_config(cfg: ExperimentConfig, ck) -> TrainScorerConfig:
    sc = scorer_recipe(cfg.scorer_recipe, ck.task, replace(cfg.scorer, seed=cfg.seed))
    if cfg.scorer_from_policy and not sc.init_from_policy:
        sc = replace(sc, init_from_policy=str(ck.path))
    if cfg.scorer_keypoints and not sc.scorer.keypoint_model:
        if model := shipped_keypoint_model(ck.task):
            sc = replace(sc, scorer=replace(sc.scorer, keypoint_model=model))
        else:
            print(f"{ck.task}: no shipped keypoint model; the scorer trains without keypoint features")
    reads = [f"keypoint features ({sc.scorer.keypoint_model})"] if sc.scorer.keypoint_model else []
    reads += [f"predicted outcomes ({sc.scorer.outcome_model})"] if sc.scorer.outcome_model else []
    head = "linear head" if sc.scorer.layers == 0 else f"{sc.scorer.layers}-layer head"
    inputs = ([f"local patches (k={sc.scorer.local_k})"] if sc.scorer.local_k else []) + reads
    print(f"{ck.task}: scorer recipe '{cfg.scorer_recipe}' -> {head} over " + (", ".join(inputs) or "the parameters"))
    return sc


def _run_task(cfg: ExperimentConfig, task: str, ck, out: Path, scorer_cfg: TrainScorerConfig) -> dict:
    policy = ck.policy.eval()
    res: dict = {"policy": str(ck.path)}
    given = None  # (scorer, path): checked before anything is collected
    if cfg.scorer_checkpoint:
        path = resolve(cfg.scorer_checkpoint)
        # a preference ensemble: held-out accuracy and the learning curve use its pair probabilities
        given = load_action_scorer(path, primitive=policy.primitive, family="preference"), path
        check_scorer_policy(path, ck, [c for c in cfg.conditions if c.startswith("scorer")])
    # held-out labels live in their own store, so nothing from them can leak into training
    with TabletopEnv(task, cfg.sim, perception=ck.perception) as env, \
            PreferenceStore(cfg.store or out / "preferences") as store, \
            PreferenceStore(cfg.heldout_store or out / "heldout") as heldout_store:
        # 1. labels: noisy teacher on training scenes (unless the scorer is given), clean oracle on held-out scenes
        t0 = time.perf_counter()
        res["labelling"] = {}
        wanted = [("train", store, cfg.teacher, cfg.labels, cfg.train_seed)] if given is None else []
        wanted.append(("heldout", heldout_store, "oracle", cfg.heldout_labels, cfg.heldout_seed))
        for name, st, preset, n, seed in wanted:
            _check_store_intent(st, task, cfg.intent)
            check_store_policy(st, task, ck)
            have = st.label_count(task=task)
            if have < n:
                done = [q.meta.get("episode_seed", seed - 1) for q in st.queries(task=task)]
                start = max(done) + 1 if done else seed  # go on after the scenes already labelled
                stats = collect_teacher_labels(env, policy, st, teacher_preset(preset, cfg.seed + (name == "heldout")),
                                               n - have, cfg.n_candidates, cfg.pairs_per_query, start,
                                               cfg.quality_scale, labeller=f"teacher:{preset}",
                                               max_decisions=cfg.label_decisions,
                                               workers=cfg.workers, torch_threads=cfg.torch_threads,
                                               executor=cfg.executor, ray_address=cfg.ray_address,
                                               intent=cfg.intent, intent_weight=cfg.intent_weight,
                                               policy_identity=ck.identity(),
                                               active=_active_queries(cfg, st, task, scorer_cfg, env.workspace)
                                               if name == "train" else None)
                res["labelling"][name] = stats.__dict__
            res["labelling"][name + "_labels_reused"] = min(have, n)
        res["labelling"]["seconds"] = time.perf_counter() - t0
        val_pairs = heldout_store.pairs(task=task) if heldout_store.label_count(task=task) else None
        with_values = val_pairs is not None and has_true_values(heldout_store, task)

        def offline(sc):  # the held-out choice judged by the candidates' true values, where stored
            return heldout_selection(sc, heldout_store, task) if with_values else None

        # 2. the scorer from every training label, or the one given
        t0 = time.perf_counter()
        if given is not None:
            train_pairs = None
            scorer, ckpt = given
            fit = {k: v for k, v in checkpoint_training(ckpt).items() if not isinstance(v, (list, dict))}
        else:
            train_pairs = store.pairs(task=task)
            train_pairs = train_pairs.subset(np.arange(min(cfg.labels, len(train_pairs))))
            scorer, fit = train_scorer(train_pairs, scorer_cfg, workspace=env.workspace, progress=True)
            ckpt = save_scorer(out / f"scorer_{task}", scorer,
                               training={"labels": len(train_pairs), **fit, "policy": str(ck.path),
                                         "policy_sha256": ck.meta.get("weights_sha256", "")})
        res["scorer"] = {"checkpoint": str(ckpt), "train_seconds": time.perf_counter() - t0, **fit}
        if val_pairs is not None:
            ev = evaluate_pairs(scorer, val_pairs)
            res["scorer"].update(heldout_accuracy=ev["accuracy"], heldout_ece=ev["ece"], heldout_top1=offline(scorer))
            if with_values:  # every pair of the held-out scenes: 14x the labelled pairs, a usable ECE
                res["scorer"]["heldout_calibration"] = heldout_calibration(scorer, heldout_store, task)
            if cfg.intent:  # the scorer's top choice on held-out decisions where some candidate satisfies it
                res["scorer"]["heldout_intent"] = heldout_intent(scorer, heldout_store, task)
            print(f"{task}: scorer on {fit.get('n_train', '?')} labels, held-out accuracy {100 * ev['accuracy']:.1f}% "
                  f"(ECE {ev['ece']:.3f}, {len(val_pairs)} clean pairs)")

        # 3. the conditions, same scenes and candidates for each, on every worker
        def episodes(condition: str, sc, n: int, desc: str) -> dict:
            pol, server = policy, None
            if cfg.shared_inference:  # one Ray actor serves the networks to every simulator worker
                pol, sc, server = start_server(policy, sc if condition.startswith("scorer") or condition == "implicit"
                                               else None, cfg.torch_threads)
            spec = LoopSpec(task, pol, condition, cfg.n_candidates, sc, ck.perception, cfg.sim,
                            cfg.check_feasibility, cfg.seed, cfg.quality_scale, cfg.uwo_lambda, cfg.clip,
                            cfg.torch_threads, intent=cfg.intent, rerun=cfg.rerun)
            try:
                return run_condition(spec, n, cfg.eval_seed, cfg.workers, desc, executor=cfg.executor,
                                     ray_address=cfg.ray_address).summary()
            except JobsFailed as exc:  # keep the finished episodes beside the finished conditions
                done = EpisodeStats.of(r for r in exc.results if r is not None)
                errors = {str(cfg.eval_seed + i): why for i, why in exc.failed.items()}
                res.setdefault("incomplete", {})[desc] = {**(done.summary() if done.seeds else {}), "errors": errors}
                _save_partial(out, task, res)
                raise
            finally:
                if server is not None:
                    stop_server(server)

        res["conditions"] = {}
        for name in cfg.conditions:
            if name == "learned_keypoint" and not shipped_keypoint_model(task):
                print(f"{task}: no shipped keypoint model (checkpoints/keypoints_{task}.json): "
                      "condition learned_keypoint skipped")
                continue
            if name == "outcome" and not shipped_outcome_model(task):
                print(f"{task}: no shipped outcome model (checkpoints/outcome_{task}.json): condition outcome skipped")
                continue
            sc = scorer
            if name == "implicit":
                if train_pairs is None:
                    print(f"{task}: condition implicit skipped: it trains on the run's labels (no scorer_checkpoint)")
                    continue
                sc, res["implicit"] = _implicit_reward(cfg, ck, train_pairs, val_pairs, offline, out, task)
                _save_partial(out, task, res)
            res["conditions"][name] = episodes(name, sc, cfg.episodes, f"{task} {name}")
            _save_partial(out, task, res)

        # 4. learning curve (accuracy on the clean held-out pairs; best-of-N success)
        res["curve"] = []
        sizes = sorted(set(int(s) for s in cfg.curve))
        if sizes and (train_pairs is None or val_pairs is None):
            log.warning("%s: no learning curve: it needs training labels (no scorer_checkpoint) and held-out labels", task)
            sizes = []
        for n in sizes:
            if n > len(train_pairs):
                continue
            last = n == len(train_pairs)  # all the labels: the scorer trained above, not trained again
            sc = scorer if last else train_scorer(train_pairs.subset(np.arange(n)), scorer_cfg,
                                                  workspace=env.workspace, vocab=scorer.vocab)[0]
            row = {"labels": n, "accuracy": evaluate_pairs(sc, val_pairs)["accuracy"], "heldout_top1": offline(sc)}
            if with_values:
                row["heldout_calibration"] = heldout_calibration(sc, heldout_store, task)
            if cfg.intent:
                row["heldout_intent"] = heldout_intent(sc, heldout_store, task)
            if cfg.curve_episodes and last and cfg.curve_episodes == cfg.episodes and "scorer" in res["conditions"]:
                row.update(res["conditions"]["scorer"])  # (c) already ran these episodes with this scorer
            elif cfg.curve_episodes:
                row.update(episodes("scorer", sc, cfg.curve_episodes, f"{task} curve {n}"))
            res["curve"].append(row)
            _save_partial(out, task, res)
    return res


def _active_queries(cfg: ExperimentConfig, store: PreferenceStore, task: str, scorer_cfg: TrainScorerConfig,
                    workspace) -> ActiveQueries | None:
    """Label pairs chosen by the run's own scorer recipe, retrained on the store's labels so far
    (uncalibrated: only its ranking of pairs matters); None for uniform pairs."""
    if cfg.query_selection == "uniform":
        return None

    def train():
        fast = replace(scorer_cfg, calibrate=False, val_fraction=0.0)
        try:
            return train_scorer(store.pairs(task=task), fast, workspace=workspace)[0]
        except (LabelError, RewardInputError):  # too few labels yet (or none): uniform pairs until then
            return None

    return ActiveQueries(cfg.query_selection, train, cfg.query_retrain_every)


def _implicit_reward(cfg: ExperimentConfig, ck, train_pairs, val_pairs, offline, out: Path, task: str):
    """(g): a copy of the policy DPO-tuned on the training labels (`cfg.implicit`), saved beside
    the scorer; returns it and its held-out pair accuracy and offline top-1."""
    t0 = time.perf_counter()
    implicit, fit = train_dpo(ck.policy, train_pairs, cfg.implicit, progress=True)
    ev = evaluate_implicit(implicit, val_pairs) if val_pairs is not None else {}
    path = save_implicit(out / f"implicit_{task}", implicit, task, ck.perception, str(ck.path),
                         training={k: v for k, v in fit.items() if k != "history"})
    info = {"checkpoint": str(path), "train_seconds": time.perf_counter() - t0,
            **{k: v for k, v in fit.items() if not isinstance(v, (list, dict))},
            "heldout_accuracy": ev.get("accuracy"), "heldout_ece": ev.get("ece"), "heldout_top1": offline(implicit)}
    if ev:
        print(f"{task}: implicit reward (DPO) on {fit.get('n_train', '?')} pairs, held-out accuracy "
              f"{100 * ev['accuracy']:.1f}% ({len(val_pairs)} clean pairs)")
    return implicit, info


def _header(cfg: ExperimentConfig) -> str:
    intent = (f" with the intent '{cfg.intent}' (worth {cfg.intent_weight:g} success where satisfied)"
              if cfg.intent else "")
    return (f"N = {cfg.n_candidates} candidates per decision, {cfg.episodes} held-out episodes per task "
            f"(seeds from {cfg.eval_seed}); scorer trained on <= {cfg.labels} labels from the "
            f"'{cfg.teacher}' teacher{intent}.")


def _check_store_intent(store: PreferenceStore, task: str, intent: str) -> None:
    """Refuse a store whose scripted-teacher queries of `task` were valued under another intent
    (or none): its labels would be reused as if they were this run's."""
    other = {q.meta.get("intent", "") for q in store.queries(task=task) if "values" in q.meta} - {intent}
    if other:
        was = ", ".join(f"'{i}'" if i else "no intent" for i in sorted(other))
        now = f"'{intent}'" if intent else "no intent"
        raise ValueError(f"{store}: {task} labels valued with {was}, this run wants {now}; "
                         "use another store (store=..., heldout_store=...)")


def check_store_policy(store: PreferenceStore, task: str, ck) -> None:
    """Refuse a store whose `task` labels judged another policy's candidates (sessions record
    the policy since 2026-12-07; older labels are taken as they are): a scorer trained on them
    learns to rank a different candidate distribution, and held-out figures would describe it."""
    have = ck.identity()["sha256"]
    other = {sha: path for sha, path in store.label_policies(task).items() if sha and sha != have}
    if have and other:
        names = ", ".join(f"{path or '?'} ({sha[:12]})" for sha, path in sorted(other.items()))
        raise ValueError(f"{store}: {task} labels judge the candidates of another policy ({names}), not "
                         f"{ck.path} ({have[:12]}); use another store (store=..., heldout_store=...)")


def check_scorer_policy(scorer_path: Path, ck, conditions: list[str]) -> None:
    """Refuse a scorer labelled on another policy's candidates for the scorer conditions: it
    judged a different candidate distribution (scorers saved before 2026-12-07 do not record it)."""
    want = checkpoint_training(scorer_path).get("policy_sha256")
    have = ck.meta.get("weights_sha256")
    if conditions and want and have and want != have:
        raise ValueError(f"{scorer_path} was trained on the candidates of another policy "
                         f"({checkpoint_training(scorer_path).get('policy', '?')}), not {ck.path}: label and "
                         f"train a scorer for this policy, or run without {', '.join(conditions)}")


def _save_partial(out: Path, task: str, res: dict) -> None:
    """What is measured so far (a long run that is stopped keeps its finished conditions)."""
    write_metrics(out / f"partial_{task}", res)
