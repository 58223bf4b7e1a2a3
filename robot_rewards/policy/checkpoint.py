"""Policy checkpoints (no pickles, see `robot_rewards.nn.artifacts`): `<name>.safetensors` + `<name>.json`.

The safetensors file holds the EMA weights (what inference uses). The JSON holds what is needed
to use them: the PolicyConfig (which rebuilds the network), task, primitive name and parameter
layout, the action normaliser, the goal vocabulary, the perception config the clouds were made
with, the workspace, the training step/seed, library versions, and the SHA-256 of the weights.

The resumable training state (`train_state.safetensors` + `train_state.json`) is stored the same
way: weights, EMA, AdamW moments and the training RNG state as tensors, scalars as JSON.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import torch

from robot_rewards.core.primitives import PRIMITIVE_SPECS
from robot_rewards.nn.artifacts import (
    ArtifactError,
    ArtifactMismatchError,
    artifact_paths,
    check_primitive,
    checked_text,
    checked_vocab,
    dataclass_from,
    load_artifact,
    save_artifact,
    workspace_dict,
    workspace_from,
)
from robot_rewards.nn.normalizer import ActionNormalizer, NormalizerError
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.policy.config import PolicyConfig
from robot_rewards.policy.model import DiffusionPolicy

FORMAT = "robot_rewards.policy"
VERSION = 1
# What the errors are called where policies are used (they are the generic artifact errors).
CheckpointError = ArtifactError
CheckpointMismatchError = ArtifactMismatchError


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(json, safetensors) paths of a checkpoint given as `<name>`, `<name>.json`,
    `<name>.safetensors`, or a folder holding `policy.json` (a train-policy output_dir or its
    `checkpoints/` folder)."""
    return artifact_paths(path, ("policy", "checkpoints/policy"))


@dataclass(eq=False)
class PolicyCheckpoint:
    """A loaded checkpoint: the policy (EMA weights, eval mode) and its metadata."""

    policy: DiffusionPolicy
    task: str
    perception: PerceptionConfig
    meta: dict
    path: Path

    def identity(self) -> dict:
        """{"path", "sha256"}: what a preference session records of the policy whose candidates
        it labels (the weights' hash tells retrained checkpoints of the same name apart)."""
        return {"path": str(self.path), "sha256": str(self.meta.get("weights_sha256", ""))}


def save_policy(path: str | os.PathLike, policy: DiffusionPolicy, ema_state: Mapping[str, torch.Tensor] | None,
                task: str, perception: PerceptionConfig, training: dict | None = None) -> Path:
    """Write `<path>.safetensors` and `<path>.json`; returns the JSON path.

    ema_state: the EMA weights (a state_dict of `policy`), the ones inference uses; None stores
    the policy's own weights. Only these are written: the raw training weights live in the
    train state (`save_train_state`), so a shipped checkpoint is half the size.
    """
    p = Path(path)
    p = p / "policy" if p.is_dir() else p.with_suffix("") if p.suffix in (".json", ".safetensors") else p
    json_path, st_path = p.parent / (p.name + ".json"), p.parent / (p.name + ".safetensors")
    state = dict(ema_state) if ema_state is not None else policy.state_dict()
    meta = {
        "task": task,
        "primitive": policy.primitive,
        "param_names": list(PRIMITIVE_SPECS[policy.primitive].param_names),
        "policy": asdict(policy.config),
        "normalizer": policy.normalizer.to_dict(),
        "vocab": policy.vocab,
        "perception": asdict(perception),
        "workspace": workspace_dict(policy.workspace),
        "training": dict(training or {}),
    }
    return save_artifact(json_path, st_path, {f"ema/{k}": v for k, v in state.items()}, meta, FORMAT, VERSION)


def load_policy(path: str | os.PathLike, task: str | None = None, primitive: str | None = None,
                device: str | torch.device = "cpu") -> PolicyCheckpoint:
    """Load a checkpoint for inference (its EMA weights).

    task / primitive: what the caller will use it for; a checkpoint for anything else raises
    CheckpointMismatchError. Missing files raise FileNotFoundError; damaged files CheckpointError.
    """
    json_path, st_path = checkpoint_paths(path)
    meta, tensors = load_artifact(json_path, st_path, FORMAT, VERSION, "policy checkpoint",
                                  ("task", "primitive", "param_names", "policy", "normalizer", "perception"))
    held = checked_text(meta, "task", json_path)
    if task is not None and held != task:
        raise CheckpointMismatchError(f"checkpoint {json_path} was trained for task '{held}', not '{task}'")
    prim = check_primitive(meta, json_path, primitive)
    # Every setting is checked here, naming the field, rather than failing later inside torch
    # (a string where a size belongs) or at the first observation (a negative n_points).
    config = dataclass_from(PolicyConfig, meta["policy"], "policy", json_path)
    perception = dataclass_from(PerceptionConfig, meta["perception"], "perception", json_path)
    try:
        normalizer = ActionNormalizer.from_dict(meta["normalizer"])
    except NormalizerError as exc:
        raise CheckpointError(f"{json_path}: {exc}") from exc
    vocab, workspace = checked_vocab(meta, json_path), workspace_from(meta, json_path)
    try:
        policy = DiffusionPolicy(config, prim, normalizer, vocab, workspace)
    except (TypeError, ValueError, RuntimeError) as exc:  # settings that pass one by one but not together
        raise CheckpointError(f"{json_path}: its 'policy' settings do not make a network: {exc}") from exc
    state = {k[len("ema/"):]: v for k, v in tensors.items() if k.startswith("ema/")}
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{st_path} does not fit the network its config describes: {exc}") from exc
    policy.to(device).eval()
    return PolicyCheckpoint(policy, str(meta["task"]), perception, meta, json_path)


# -- resumable training state ------------------------------------------------------------------

TRAIN_STATE = "train_state"


def save_train_state(folder: str | os.PathLike, model_state: Mapping[str, torch.Tensor],
                     ema_state: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                     rng_states: Mapping[str, torch.Tensor], info: dict) -> Path:
    """Everything needed to continue training bit-for-bit (weights, EMA, AdamW, RNG, step)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model/{k}": v for k, v in model_state.items()}
    tensors.update({f"ema/{k}": v for k, v in ema_state.items()})
    opt = optimizer.state_dict()
    scalars: dict[str, dict] = {}
    for idx, st in opt["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim/{idx}/{k}"] = v
            else:
                scalars.setdefault(str(idx), {})[k] = v
    tensors.update({f"rng/{k}": v for k, v in rng_states.items()})
    meta = {"kind": "train_state", **info, "optimizer_param_groups": opt["param_groups"],
            "optimizer_scalars": scalars}
    return save_artifact(folder / f"{TRAIN_STATE}.json", folder / f"{TRAIN_STATE}.safetensors", tensors, meta,
                         FORMAT, VERSION)


def find_train_state(path: str | os.PathLike) -> Path | None:
    """The train_state.json in a folder (or the file itself), or None."""
    p = Path(path)
    if p.is_dir():
        p = p / f"{TRAIN_STATE}.json"
    elif p.suffix == ".safetensors":
        p = p.with_suffix(".json")
    return p if p.is_file() else None


def load_train_state(path: str | os.PathLike) -> tuple[dict, dict[str, dict[str, torch.Tensor]], dict]:
    """(info, {"model": state, "ema": state, "rng": {name: generator state}}, optimizer state_dict)."""
    json_path = find_train_state(path)
    if json_path is None:
        raise FileNotFoundError(f"no {TRAIN_STATE}.json at {path}")
    meta, tensors = load_artifact(json_path, json_path.with_suffix(".safetensors"), FORMAT, VERSION,
                                  "training state", ("optimizer_param_groups",))
    groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "ema": {}, "rng": {}}
    optim_state: dict[int, dict] = {}
    for key, v in tensors.items():
        head, rest = key.split("/", 1)
        if head == "optim":
            idx, name = rest.split("/", 1)
            optim_state.setdefault(int(idx), {})[name] = v
        else:
            groups[head][rest] = v
    for idx, sc in meta.get("optimizer_scalars", {}).items():
        optim_state.setdefault(int(idx), {}).update(sc)
    opt = {"state": optim_state, "param_groups": meta["optimizer_param_groups"]}
    return meta, groups, opt
