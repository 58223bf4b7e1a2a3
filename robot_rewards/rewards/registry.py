"""Load any action-scorer checkpoint by what its JSON says it is.

Where scorers are named by path in a config (`HostConfig.scorers`), a Bradley-Terry ensemble
(`train-scorer`) and DeformPAM's implicit reward (`train-implicit`) are interchangeable: the
JSON's `format` picks the loader.
"""

from __future__ import annotations

import json
import os

import torch

from robot_rewards.nn.artifacts import ArtifactError
from robot_rewards.rewards.base import ActionScorer


def checkpoint_format(path: str | os.PathLike) -> str:
    """The `format` entry of a scorer checkpoint's JSON (`<name>`, `<name>.json` or a folder
    holding scorer.json / implicit.json)."""
    from robot_rewards.rewards.implicit.reward import implicit_paths
    from robot_rewards.rewards.preference.io import scorer_paths

    candidates = []
    for paths in (scorer_paths, implicit_paths):
        try:
            candidates.append(paths(path)[0])
        except FileNotFoundError:  # a folder without that kind's default file
            continue
    for json_path in candidates:
        if json_path.is_file():
            try:
                return str(json.loads(json_path.read_text()).get("format", ""))
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
                raise ArtifactError(f"{json_path} is not a readable scorer checkpoint: {exc}") from exc
    raise FileNotFoundError(f"no scorer checkpoint at {path}")


def load_action_scorer(path: str | os.PathLike, primitive: str | None = None,
                       device: str | torch.device = "cpu") -> ActionScorer:
    """A preference-scorer ensemble or an implicit-reward scorer, by the checkpoint's format."""
    from robot_rewards.rewards.implicit import reward as implicit
    from robot_rewards.rewards.preference import io as preference_io

    fmt = checkpoint_format(path)
    if fmt == implicit.FORMAT:
        return implicit.load_implicit_scorer(path, primitive=primitive, device=device)
    if fmt == preference_io.FORMAT:
        return preference_io.load_scorer(path, primitive=primitive, device=device)
    raise ArtifactError(f"{path} is a '{fmt}' file, not a scorer checkpoint "
                        f"({preference_io.FORMAT} or {implicit.FORMAT})")
