"""Preference-scorer checkpoints (no pickles): `<name>.safetensors` + `<name>.json`.

The safetensors file holds member k's weights under `member{k}/...`. The JSON holds what is
needed to use them: the ScorerConfig, primitive and parameter layout, the candidate
normaliser, the workspace, the goal vocabulary, K, training metrics, library versions and the
SHA-256 of the weights file (a damaged file is refused instead of scoring silently wrong).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch

from robot_rewards.core.primitives import PRIMITIVE_SPECS
from robot_rewards.nn.artifacts import (
    ArtifactError,
    ArtifactMismatchError,
    artifact_paths,
    check_primitive,
    checked_int,
    checked_vocab,
    dataclass_from,
    load_artifact,
    save_artifact,
    workspace_dict,
    workspace_from,
)
from robot_rewards.nn.normalizer import ActionNormalizer, NormalizerError
from robot_rewards.rewards.preference.config import ScorerConfig
from robot_rewards.rewards.preference.scorer import PreferenceScorer

FORMAT = "robot_rewards.preference_scorer"
VERSION = 1
ScorerCheckpointError = ArtifactError
ScorerMismatchError = ArtifactMismatchError


# Without the whole-scene feature the point encoder is never run: its weights are not stored.
_UNUSED_WITHOUT_GLOBAL = "point_encoder."


def scorer_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(json, safetensors) of a checkpoint given as `<name>`, `<name>.json`, `<name>.safetensors`
    or a folder holding `scorer.json`."""
    return artifact_paths(path, ("scorer",))


def save_scorer(path: str | os.PathLike, scorer: PreferenceScorer, training: dict | None = None) -> Path:
    """Write the ensemble as `<path>.safetensors` + `<path>.json` (atomically); returns the JSON path."""
    json_path, st_path = scorer_paths(path)
    if Path(path).is_dir():  # a folder names where to put scorer.json, not an existing one
        json_path, st_path = Path(path) / "scorer.json", Path(path) / "scorer.safetensors"
    tensors = {f"member{k}/{name}": v for k, m in enumerate(scorer.members) for name, v in m.state_dict().items()
               if scorer.config.use_global or not name.startswith(_UNUSED_WITHOUT_GLOBAL)}
    meta = {
        "primitive": scorer.primitive,
        "param_names": list(PRIMITIVE_SPECS[scorer.primitive].param_names),
        "ensemble_size": scorer.k,
        "scorer": asdict(scorer.config),
        "normalizer": scorer.normalizer.to_dict(),
        "workspace": workspace_dict(scorer.workspace),
        "vocab": scorer.vocab,
        "training": dict(training or {}),
    }
    if scorer.featurizer is not None:  # the keypoint model it was trained with, by content
        meta["keypoint_model_sha256"] = scorer.featurizer.sha256
    if scorer.outcome is not None:  # likewise its outcome model
        meta["outcome_model_sha256"] = scorer.outcome.sha256
    return save_artifact(json_path, st_path, tensors, meta, FORMAT, VERSION)


def scorer_training(path: str | os.PathLike) -> dict:
    """The training record saved with a scorer (labels, seed, ensemble size, ...); {} if none."""
    json_path, _ = scorer_paths(path)
    try:
        return dict(json.loads(json_path.read_text()).get("training", {}))
    except (OSError, json.JSONDecodeError) as exc:
        raise ScorerCheckpointError(f"{json_path}: cannot read the scorer's metadata: {exc}") from exc


def load_scorer(path: str | os.PathLike, primitive: str | None = None,
                device: str | torch.device = "cpu") -> PreferenceScorer:
    """Load an ensemble for scoring (eval mode). `primitive`: what the caller will score; a
    checkpoint for another primitive or layout raises ScorerMismatchError; missing files
    FileNotFoundError; damaged files ScorerCheckpointError."""
    json_path, st_path = scorer_paths(path)
    meta, tensors = load_artifact(json_path, st_path, FORMAT, VERSION, "preference-scorer",
                                  ("primitive", "param_names", "ensemble_size", "scorer", "normalizer", "vocab"))
    prim = check_primitive(meta, json_path, primitive, verb="scores")
    config = dataclass_from(ScorerConfig, meta["scorer"], "scorer", json_path)
    try:
        normalizer = ActionNormalizer.from_dict(meta["normalizer"])
    except NormalizerError as exc:
        raise ScorerCheckpointError(f"{json_path}: {exc}") from exc
    # Checked here, naming the field, rather than failing inside torch.
    k, vocab = checked_int(meta, "ensemble_size", json_path, 1, 64), checked_vocab(meta, json_path)
    try:
        scorer = PreferenceScorer(config, prim, vocab, k, workspace_from(meta, json_path), normalizer)
    except (TypeError, ValueError, RuntimeError) as exc:  # settings that pass one by one but not together
        raise ScorerCheckpointError(f"{json_path}: its 'scorer' settings do not make a network: {exc}") from exc
    want = meta.get("keypoint_model_sha256")
    if want and scorer.featurizer is not None and scorer.featurizer.sha256 != want:
        raise ScorerCheckpointError(f"{json_path}: its keypoint model {config.keypoint_model} has other weights "
                                    "than the one it was trained with (weights SHA-256 differs)")
    want = meta.get("outcome_model_sha256")
    if want and scorer.outcome is not None and scorer.outcome.sha256 != want:
        raise ScorerCheckpointError(f"{json_path}: its outcome model {config.outcome_model} has other weights "
                                    "than the one it was trained with (weights SHA-256 differs)")
    for k, member in enumerate(scorer.members):
        prefix = f"member{k}/"
        state = {key[len(prefix):]: v for key, v in tensors.items() if key.startswith(prefix)}
        try:
            missing, unexpected = member.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise ScorerCheckpointError(f"{st_path}: member {k} does not fit its config: {exc}") from exc
        missing = [m for m in missing if config.use_global or not m.startswith(_UNUSED_WITHOUT_GLOBAL)]
        if missing or unexpected:
            raise ScorerCheckpointError(f"{st_path}: member {k} does not fit its config: missing "
                                        f"{missing[:5]}, unexpected {unexpected[:5]}")
    return scorer.to(device).eval()
