"""Structured configs of the preference loop's commands (`experiment`, `train-scorer`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

from robot_rewards.core.parallel import ParallelConfig
from robot_rewards.rewards.clip.config import ClipRewardConfig
from robot_rewards.rewards.implicit.config import TrainImplicitConfig
from robot_rewards.rewards.preference.config import ScorerConfig, TrainScorerConfig
from robot_rewards.sim.config import SimConfig

_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"

CONDITIONS = ("first", "random", "scorer", "scorer_wco", "scorer_uwo", "keypoint", "learned_keypoint", "outcome", "clip",
              "oracle", "implicit")
# `experiment`'s default: all but the implicit reward, which fine-tunes a copy of the policy first
DEFAULT_CONDITIONS = tuple(c for c in CONDITIONS if c != "implicit")


def loop_scorer(val_fraction: float = 0.2) -> TrainScorerConfig:
    """The scorer recipe for labels of the policy's own candidates: local patches around each
    candidate's points, no whole-scene feature (with a few dozen labelled scenes it memorises
    scenes: 58% vs 64% held-out pair accuracy on place_block, 72% vs 81% on pairs whose
    success differs), encoders initialised from the policy where one is given."""
    return TrainScorerConfig(scorer=ScorerConfig(use_global=False, local_k=32), val_fraction=val_fraction)


def _headline_scorer() -> TrainScorerConfig:
    # every collected label trains (the accuracy is measured on separate, clean held-out pairs)
    return loop_scorer(val_fraction=0.0)


@dataclass
class ExperimentConfig(ParallelConfig):
    """`robot-rewards experiment`: the headline comparison of selection rules (docs/experiments.md).

    Per task: collect `labels` pairwise labels from a scripted teacher on training seeds
    (through the preference store), train the scorer ensemble, then run every condition on
    `episodes` evaluation seeds from `eval_seed` with N = `n_candidates`.
    """

    tasks: List[str] = field(default_factory=lambda: ["place_block", "align_rope"])
    # task -> policy checkpoint (relative to the data folder, or absolute); missing = shipped one
    policies: Dict[str, str] = field(default_factory=dict)
    conditions: List[str] = field(default_factory=lambda: list(DEFAULT_CONDITIONS))
    n_candidates: int = 8
    episodes: int = 100
    eval_seed: int = 100_000  # held-out scenes, as for the shipped policies' figures
    train_seed: int = 200_000  # scenes the labels are collected on (disjoint from eval)
    labels: int = 500
    # stores to use (default: <output_dir>/preferences and <output_dir>/heldout); labels already
    # in them count, so a stopped run or an earlier run's labels are reused, only the rest collected
    store: str = ""
    heldout_store: str = ""
    pairs_per_query: int = 4
    # label only the first this many decisions of each episode (0 = all): more scenes for the same
    # labels (align_rope episodes have 6 decisions; labels from 3 scenes do not generalise)
    label_decisions: int = 0
    teacher: str = "mistake"  # a B-Pref preset (teachers.teacher_preset): mistake = eps 0.1
    # which pairs of a decision the teacher labels: uniform, or by a scorer retrained on the labels
    # so far every `query_retrain_every` labels (disagreement: variance of the ensemble's P(A > B);
    # entropy: how unsure its mean is), as the console does for a person
    query_selection: str = "uniform"
    query_retrain_every: int = 25
    # a teacher's own intent that the task metric ignores (robot_rewards/sim/intents.py; place_block
    # near_half, align_rope red_end_first): the teacher's values (training and held-out labels) add
    # intent_weight (1.0 = one success) where a candidate satisfies it, and every condition reports,
    # per decision, whether its choice and whether any of the N candidates does ("" = none)
    intent: str = ""
    intent_weight: float = 1.0
    quality_scale: float = 0.02  # metres of error worth one success in the true return
    # an existing scorer (e.g. checkpoints/scorer_align_rope.json) instead of labelling and training
    # one: no training labels are collected and there is no learning curve
    scorer_checkpoint: str = ""
    heldout_labels: int = 200  # clean (oracle) pairs on other seeds to measure scorer accuracy (0 = none)
    heldout_seed: int = 300_000
    curve: List[int] = field(default_factory=lambda: [50, 100, 200, 500])
    curve_episodes: int = 100  # success of best-of-N per curve point (0 = accuracy only)
    uwo_lambda: float = 1.0
    # (e) CLIP: the goal reward of each candidate's what-if outcome, rendered (default: the shipped model)
    clip: ClipRewardConfig = field(default_factory=lambda: ClipRewardConfig(model="checkpoints/clip_tabletop.json"))
    # the scorer's architecture (preferences/recipes.py): auto = a linear head over the features of
    # the task's shipped keypoint model where one ships (keypoints), else local patches (patches);
    # custom = `scorer` exactly as given
    scorer_recipe: str = "auto"
    scorer: TrainScorerConfig = field(default_factory=_headline_scorer)
    # initialise (and freeze) the scorer's encoders from the task's policy unless
    # scorer.init_from_policy names another checkpoint; False = train the scorer from scratch
    scorer_from_policy: bool = True
    # with scorer_recipe=patches: the patch scorer also reads each candidate's offsets to the
    # keypoints the task's shipped keypoint model predicts (rewards/preference/keypoint_features.py)
    scorer_keypoints: bool = False
    # (g) implicit: DeformPAM's implicit reward, a copy of the policy DPO-tuned on the same training
    # labels and scored against the policy. Draws over the whole schedule: on place_block's 500
    # labels 32 of them order 59.5% of held-out pairs, DeformPAM's 100 from the lowest-noise 10%
    # (implicit.score_draws=100 implicit.score_t_fraction=0.1) 57.5% (docs/experiments.md)
    implicit: TrainImplicitConfig = field(default_factory=lambda: TrainImplicitConfig(val_fraction=0.0))
    check_feasibility: bool = True
    # log every evaluation decision to Rerun: "live" (a viewer; use workers=1) or an .rrd path,
    # written per condition and worker process as <stem>.<condition>.<pid>.rrd; "" = off
    rerun: str = ""
    torch_threads: int = 1  # per process
    # with executor=ray: one actor (on a GPU if the cluster has one) runs the policy and the scorer
    # for every simulator worker, batching scorer requests across them
    shared_inference: bool = False
    seed: int = 0
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("experiment")


@dataclass
class ExperimentMergeConfig:
    """`robot-rewards experiment-merge runs=[DIR, ...]`: one report from experiment runs split
    over conditions or seed ranges (same policy, scorer and settings; seeds joined)."""

    runs: List[str] = field(default_factory=list)
    output_dir: str = _OUT.format("experiment-merge")


@dataclass
class TrainScorerCommandConfig:
    """`robot-rewards train-scorer store=outputs/preferences task=place_block`: train the scorer
    ensemble on every label in a preference store (console sessions, teachers, imports)."""

    store: str = "outputs/preferences"  # a PreferenceStore folder
    task: str = "place_block"
    heldout_store: str = ""  # another store to validate on (default: a val_fraction split)
    recipe: str = "auto"  # the scorer's architecture (preferences/recipes.py); custom = `train` as given
    # the policy checkpoint whose candidates the labels judge: only its sessions' labels are used,
    # and the scorer records it (experiment refuses it for another policy). "" = the one policy
    # the store's labels record; labels of several policies need this to choose.
    policy: str = ""
    train: TrainScorerConfig = field(default_factory=loop_scorer)
    curve: List[int] = field(default_factory=lambda: [50, 100, 200, 500])  # accuracy vs labels plot
    torch_threads: int = 1
    output_dir: str = _OUT.format("train-scorer")
