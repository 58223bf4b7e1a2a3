"""Learned keypoint-model files (no pickles): `<name>.safetensors` + `<name>.json`.

The safetensors file holds the `KeypointNet` weights under `model/...`. The JSON holds what is
needed to use them: the `KeypointModelConfig`, the goal vocabulary, the workspace, the task and
the keypoint names (one per predicted object/target pair, in the model's output order), the
perception settings the training clouds were made with, training metrics, library versions and
the SHA-256 of the weights file (`robot_rewards.nn.artifacts`: a damaged or foreign file is
refused with a specific error instead of predicting silently wrong keypoints).

    save_keypoint_model("checkpoints/keypoints_place_block", model, "place_block", ["block"], perception)
    ckpt = load_keypoint_model("checkpoints/keypoints_place_block.json", task="place_block")
    reward = KeypointReward(ckpt.source())

The registry's `keypoints` family loads these files as an action scorer (`load_keypoint_scorer`)
or, from a spec `keypoints?checkpoint=...&kind=exp`, as a state reward (`keypoint_state_reward`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch

from robot_rewards.core.device import resolve_device
from robot_rewards.core.paths import resolve
from robot_rewards.nn.artifacts import (
    ArtifactError,
    ArtifactMismatchError,
    artifact_paths,
    dataclass_from,
    load_artifact,
    save_artifact,
    workspace_dict,
    workspace_from,
)
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.rewards.keypoints.config import KeypointModelConfig
from robot_rewards.rewards.keypoints.net import KeypointNet, LearnedKeypointSource
from robot_rewards.rewards.keypoints.reward import KeypointReward, KeypointScorer

FORMAT = "robot_rewards.keypoint_model"
VERSION = 1
KeypointCheckpointError = ArtifactError
KeypointMismatchError = ArtifactMismatchError
_PREFIX = "model/"


def keypoint_model_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(json, safetensors) of a model given as `<name>`, `<name>.json`, `<name>.safetensors` or
    a folder holding `keypoints.json` (a train-keypoints output_dir)."""
    return artifact_paths(path, ("keypoints",))


@dataclass(eq=False)
class KeypointCheckpoint:
    """A loaded keypoint model (eval mode) and its metadata."""

    model: KeypointNet
    task: str
    names: list[str]
    perception: PerceptionConfig | None  # how the training clouds were made (None: not recorded)
    meta: dict
    path: Path

    def source(self) -> LearnedKeypointSource:
        """A `KeypointSource` for `KeypointReward` / `KeypointScorer`."""
        return LearnedKeypointSource(self.model, self.names)


def save_keypoint_model(path: str | os.PathLike, model: KeypointNet, task: str, names: Sequence[str],
                        perception: PerceptionConfig | None = None, training: dict | None = None) -> Path:
    """Write `<path>.safetensors` + `<path>.json` (atomically); returns the JSON path. A folder
    `path` gets `keypoints.{json,safetensors}` inside it."""
    names = [str(n) for n in names]
    if len(names) != model.config.n_keypoints:
        raise ValueError(f"{len(names)} keypoint names for a model of {model.config.n_keypoints} keypoints")
    if not task:
        raise ValueError("a keypoint model file needs the task it was trained for")
    p = Path(path)
    if p.is_dir():
        json_path, st_path = p / "keypoints.json", p / "keypoints.safetensors"
    else:
        json_path, st_path = keypoint_model_paths(p)
    meta = {
        "task": str(task),
        "names": names,
        "model": asdict(model.config),
        "vocab": list(model.goal_encoder.vocab),
        "workspace": workspace_dict(model.workspace),
        "perception": None if perception is None else asdict(perception),
        "training": dict(training or {}),
    }
    tensors = {_PREFIX + k: v for k, v in model.state_dict().items()}
    return save_artifact(json_path, st_path, tensors, meta, FORMAT, VERSION)


def load_keypoint_model(path: str | os.PathLike, task: str | None = None,
                        device: str | torch.device = "cpu") -> KeypointCheckpoint:
    """Load a keypoint model for inference.

    task: what the caller will use it on; a model trained for another task raises
    KeypointMismatchError. Missing files raise FileNotFoundError; damaged, incomplete or
    inconsistent files KeypointCheckpointError."""
    json_path, st_path = keypoint_model_paths(path)
    meta, tensors = load_artifact(json_path, st_path, FORMAT, VERSION, "keypoint-model",
                                  ("task", "names", "model", "vocab"))
    if task is not None and meta["task"] != task:
        raise KeypointMismatchError(f"{json_path} was trained for task '{meta['task']}', not '{task}'")
    config = dataclass_from(KeypointModelConfig, meta["model"], "model", json_path)
    names = meta["names"]
    if not isinstance(names, list) or len(names) != config.n_keypoints:
        raise KeypointCheckpointError(f"{json_path}: 'names' must list {config.n_keypoints} keypoint names, "
                                      f"got {names!r}")
    perception = None
    if meta.get("perception") is not None:
        perception = dataclass_from(PerceptionConfig, meta["perception"], "perception", json_path)
    try:
        model = KeypointNet(config, meta["vocab"], workspace_from(meta))
    except (ValueError, TypeError, KeyError) as exc:  # malformed vocab / workspace / config values
        raise KeypointCheckpointError(f"{json_path}: cannot build the network it describes: {exc}") from exc
    state = {k[len(_PREFIX):]: v for k, v in tensors.items() if k.startswith(_PREFIX)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise KeypointCheckpointError(f"{st_path} does not fit the network its config describes: {exc}") from exc
    model.to(device).eval()
    return KeypointCheckpoint(model, str(meta["task"]), [str(n) for n in names], perception, meta, json_path)


# The primitives `KeypointScorer` has analytic scores for.
SCORED_PRIMITIVES = ("pick_place", "push")


def load_keypoint_scorer(path: str | os.PathLike, primitive: str | None = None,
                         device: str | torch.device = "cpu") -> KeypointScorer:
    """An ActionScorer from a keypoint-model file: analytic candidate scores at the keypoints the
    model predicts (the registry's `keypoints` loader). A primitive without analytic scores
    raises KeypointMismatchError."""
    if primitive is not None and primitive not in SCORED_PRIMITIVES:
        raise KeypointMismatchError(f"keypoint scores exist for {', '.join(SCORED_PRIMITIVES)}, not '{primitive}'")
    return KeypointScorer(load_keypoint_model(path, device=device).source())


def keypoint_state_reward(checkpoint: str, device: str = "cpu", kind: str = "neg_distance",
                          scale: float | str = 0.05, task: str = "") -> KeypointReward:
    """A StateReward from a keypoint-model file (the registry's `keypoints` spec factory:
    `keypoints?checkpoint=checkpoints/keypoints_place_block.json&kind=exp&scale=0.05`).
    Relative paths are also looked for in the data folder, like the shipped checkpoints."""
    ckpt = load_keypoint_model(resolve(checkpoint), task=task or None, device=resolve_device(device))
    return KeypointReward(ckpt.source(), kind=kind, scale=float(scale))
