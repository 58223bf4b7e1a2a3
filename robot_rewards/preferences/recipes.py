"""Which scorer architecture a preference run trains: named recipes, resolved per task.

- `keypoints`: a linear Bradley-Terry head over each candidate's offsets and distances to the
  keypoints the task's shipped keypoint model predicts from the observed cloud, plus its
  normalised parameters (`rewards/preference/keypoint_features.py`). Few weights, a
  representation that already carries the task's structure: on place_block it reaches its
  500-label held-out accuracy from about 100 labels (docs/experiments.md, "A scorer that learns").
- `patches`: the earlier recipe (`config.loop_scorer`): a small PointNet over the cloud around each
  candidate's points, an MLP head. Needs no keypoint model, learns slowly.
- `patches_keypoints`: `patches`, the head also reading the keypoint features (stack_blocks).
- `outcome`: the `keypoints` recipe's linear head over what the task's shipped outcome model
  (checkpoints/outcome_<task>.json, learned from executed transitions) predicts the cloud after
  each candidate will measure (`rewards/preference/outcome_features.py`; align_rope).
- `auto`: the recipe the task names (`scorer_recipe`) where the model it needs ships, else
  `keypoints` where a keypoint model ships (checkpoints/keypoints_<task>.json), else `patches`.
- `custom`: the `TrainScorerConfig` given, unchanged.

A recipe sets the architecture (`scorer`) and the learning rate; ensemble size, steps, seed and
the rest of the given `TrainScorerConfig` are kept.
"""

from __future__ import annotations

from dataclasses import replace

from robot_rewards.core.paths import resolve
from robot_rewards.rewards.preference.config import ScorerConfig, TrainScorerConfig
from robot_rewards.sim.tasks import TASKS

SCORER_RECIPES = ("auto", "keypoints", "patches", "patches_keypoints", "outcome", "custom")


def _shipped(kind: str, task: str) -> str:
    path = f"checkpoints/{kind}_{task}.json"
    try:
        resolve(path)
    except FileNotFoundError:
        return ""
    return path


def shipped_keypoint_model(task: str) -> str:
    """checkpoints/keypoints_<task>.json if it ships with the package, else ""."""
    return _shipped("keypoints", task)


def shipped_outcome_model(task: str) -> str:
    """checkpoints/outcome_<task>.json if it ships with the package, else ""."""
    return _shipped("outcome", task)


def keypoint_scorer(keypoint_model: str, base: TrainScorerConfig | None = None) -> TrainScorerConfig:
    """The `keypoints` recipe on top of `base`: no scene feature, no patches, a linear head
    (layers=0) over keypoint features and candidate parameters; lr 1e-2 (a linear head of ~20
    weights takes 500 steps to converge at it; 1e-3 stops short); a Gaussian prior on the head
    (head_l2 = 1: 25-50 labels no longer overfit) and the noise-aware temperature (calibrate)."""
    base = base or TrainScorerConfig()
    arch = replace(base.scorer, use_global=False, local_k=0, layers=0, keypoint_model=keypoint_model, outcome_model="")
    return replace(base, scorer=arch, lr=1e-2, head_l2=1.0, calibrate=True)


def outcome_scorer(outcome_model: str, base: TrainScorerConfig | None = None) -> TrainScorerConfig:
    """The `outcome` recipe on top of `base`: the `keypoints` recipe's linear head, calibrated,
    over an outcome model's predicted measures (mean and spread) alone: not the keypoint features,
    not the candidate's parameters."""
    base = base or TrainScorerConfig()
    arch = replace(base.scorer, use_global=False, local_k=0, layers=0, keypoint_model="", outcome_model=outcome_model,
                   use_actions=False)
    return replace(base, scorer=arch, lr=1e-2, head_l2=1.0, calibrate=True)


def patch_scorer(base: TrainScorerConfig | None = None) -> TrainScorerConfig:
    """The `patches` recipe on top of `base`: local patches (k = 32) and the MLP head, no scene feature."""
    base = base or TrainScorerConfig()
    defaults = ScorerConfig()
    arch = replace(base.scorer, use_global=False, local_k=32, layers=defaults.layers, keypoint_model="",
                   outcome_model="")
    return replace(base, scorer=arch, lr=TrainScorerConfig().lr, head_l2=0.0, calibrate=False)


def scorer_recipe(name: str, task: str, base: TrainScorerConfig) -> TrainScorerConfig:
    """`base` under the recipe `name` (module docstring) for `task`; ValueError for an unknown
    name, or for a recipe whose model (keypoint, outcome) does not ship for the task."""
    if name not in SCORER_RECIPES:
        raise ValueError(f"unknown scorer recipe '{name}'; known: {list(SCORER_RECIPES)}")
    if name == "custom":
        return base
    model, outcome = shipped_keypoint_model(task), shipped_outcome_model(task)
    if name == "auto":  # the task says where another recipe measured better with the models it ships
        name = getattr(TASKS.get(task), "scorer_recipe", "") or "keypoints"
        if (name == "outcome" and not outcome) or (name != "outcome" and not model):
            name = "keypoints" if model else "patches"
    if name == "outcome":
        if not outcome:
            raise ValueError(f"scorer recipe 'outcome': no outcome model ships for task '{task}' "
                             f"(checkpoints/outcome_{task}.json); train one (collect-transitions, train-outcome)")
        return outcome_scorer(outcome, base)
    if name in ("keypoints", "patches_keypoints") and not model:
        raise ValueError(f"scorer recipe '{name}': no keypoint model ships for task '{task}' "
                         f"(checkpoints/keypoints_{task}.json); use recipe=patches or train one (train-keypoints)")
    if name == "patches":
        return patch_scorer(base)
    if name == "patches_keypoints":
        patches = patch_scorer(base)
        return replace(patches, scorer=replace(patches.scorer, keypoint_model=model))
    return keypoint_scorer(model, base)
