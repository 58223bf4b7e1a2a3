"""One registry of reward families: every reward model is loaded through here.

A family (`preference`, `implicit`, `keypoints`, `outcome`, `clip`, or one of yours: see
docs/adding-a-reward-model.md) registers a `RewardFamily` under its name, with

- `formats`: the `format` values of the checkpoint JSONs it writes, and `default_names`: the
  file stems looked for when a checkpoint is named by its folder (`scorer` -> `scorer.json`);
- `scorer`: `(path, primitive=None, device="cpu") -> ActionScorer` for its checkpoints;
- `state_reward`: `(device=..., **options) -> StateReward` for its specs (options arrive as
  strings; the factory converts them, e.g. with `robot_rewards.core.coerce.coerce_config`).

Loaders are callables or "package.module:function" names imported on first use, so importing
the registry loads no model code and a family's heavy dependencies load only when it is used.

A model is named in one of two ways:

- by checkpoint path (`load_action_scorer`): the JSON's `format` picks the family. This is
  how `HostConfig.scorers` (RewardHost, the ROS `reward_server`'s `scorers`), the console's
  `scorer=`, `bag replay`'s `scorers` and the experiment's `scorer_checkpoint=` name scorers;
- by spec (`build_state_reward`, `build`): `name?key=value&...` for a registered family's
  state reward (`clip?model=ViT-B-32&alpha=0.5`), or `package.module:factory?key=value&...`
  for a factory that is not registered (a ROS console chooser, a test double). This is how the
  ROS `reward_server`'s `state_reward` and `bag replay`'s `state_rewards` name them.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from robot_rewards.nn.artifacts import ArtifactError, ArtifactMismatchError, artifact_paths
from robot_rewards.rewards.base import ActionScorer, StateReward

Loader = Callable[..., Any]


class RewardSpecError(ValueError):
    """A spec that names no registered family or callable, or whose factory failed."""


@dataclass(frozen=True)
class RewardFamily:
    """A reward family as the registry knows it (see the module docstring)."""

    name: str  # what specs and docs call it: letters, digits, '_' or '-' (no ':' or '?')
    formats: tuple[str, ...] = ()  # checkpoint JSON `format` values this family loads
    default_names: tuple[str, ...] = ()  # checkpoint file stems looked for in a folder
    scorer: Loader | str | None = None  # (path, primitive=None, device="cpu") -> ActionScorer
    state_reward: Loader | str | None = None  # (device=..., **options) -> StateReward
    summary: str = ""  # one line for listings

    def scorer_loader(self) -> Loader:
        """The checkpoint loader (imported now if it was given by name)."""
        if self.scorer is None:
            raise ArtifactError(f"the '{self.name}' reward family has no action-scorer checkpoints")
        return _callable(self.scorer)

    def state_reward_factory(self) -> Loader:
        """The state-reward factory (imported now if it was given by name)."""
        if self.state_reward is None:
            raise RewardSpecError(f"the '{self.name}' reward family has no state reward "
                                  "(its checkpoints are action scorers: name them by path)")
        return _callable(self.state_reward)


_FAMILIES: dict[str, RewardFamily] = {}


def register(family: RewardFamily, replace: bool = False) -> RewardFamily:
    """Add `family` (a name or checkpoint format already taken is an error unless `replace`)."""
    if not family.name or any(c in family.name for c in ":?&=/ "):
        raise ValueError(f"reward family name {family.name!r} must be non-empty without ':?&=/ '")
    if not replace:
        if family.name in _FAMILIES:
            raise ValueError(f"reward family '{family.name}' is already registered")
        taken = {fmt: f.name for f in _FAMILIES.values() for fmt in f.formats}
        clash = [fmt for fmt in family.formats if fmt in taken]
        if clash:
            raise ValueError(f"checkpoint format(s) {clash} of '{family.name}' are already "
                             f"loaded by '{taken[clash[0]]}'")
    _FAMILIES[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family (tests that register a throw-away family clean up with this)."""
    _FAMILIES.pop(name, None)


def families() -> list[RewardFamily]:
    """Every registered family, in registration order."""
    return list(_FAMILIES.values())


def family(name: str) -> RewardFamily:
    """The family registered as `name` (KeyError naming the known ones otherwise)."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise KeyError(f"no reward family '{name}'; registered: {sorted(_FAMILIES)}") from None


def family_for_format(fmt: str) -> RewardFamily | None:
    """The family whose checkpoints have JSON `format` == `fmt` (None if none)."""
    return next((f for f in _FAMILIES.values() if fmt in f.formats), None)


# -- checkpoints ----------------------------------------------------------------------------


def checkpoint_json(path: str | os.PathLike) -> Path:
    """The JSON of a checkpoint given as `<name>`, `<name>.json`, `<name>.safetensors` or a
    folder holding one of the families' default files (tried in registration order)."""
    stems = [stem for f in _FAMILIES.values() for stem in f.default_names]
    try:
        json_path, _ = artifact_paths(path, stems)
    except FileNotFoundError:  # a folder without any family's default file
        raise FileNotFoundError(f"no reward-model checkpoint at {path}") from None
    if not json_path.is_file():
        raise FileNotFoundError(f"no reward-model checkpoint at {path}")
    return json_path


def checkpoint_meta(path: str | os.PathLike) -> dict:
    """The JSON of a checkpoint (see `checkpoint_json`) as a dict."""
    json_path = checkpoint_json(path)
    try:
        meta = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{json_path} is not a readable checkpoint: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArtifactError(f"{json_path} is not a readable checkpoint: not a JSON object")
    return meta


def checkpoint_format(path: str | os.PathLike) -> str:
    """The `format` entry of a checkpoint's JSON."""
    return str(checkpoint_meta(path).get("format", ""))


def checkpoint_training(path: str | os.PathLike) -> dict:
    """The training record saved with a checkpoint (labels, seed, ...); {} if none."""
    return dict(checkpoint_meta(path).get("training") or {})


def load_action_scorer(path: str | os.PathLike, primitive: str | None = None, device: Any = "cpu",
                       family: str | None = None) -> ActionScorer:
    """The ActionScorer stored at `path`, loaded by the family its JSON's `format` names.

    primitive: what the caller will score (a checkpoint for another one is refused by its
    loader); family: accept only that family's checkpoints (for callers that need its own
    methods, e.g. the preference ensemble's pair probabilities).
    """
    fmt = checkpoint_format(path)
    fam = family_for_format(fmt)
    if fam is None or fam.scorer is None:
        known = [fmt for f in _FAMILIES.values() if f.scorer is not None for fmt in f.formats]
        what = f"a '{fam.name}' checkpoint, which has no action scorer" if fam is not None else f"a '{fmt}' file"
        raise ArtifactError(f"{path} is {what}, not a scorer checkpoint ({' or '.join(known)})")
    if family is not None and fam.name != family:
        raise ArtifactMismatchError(f"{path} is a '{fam.name}' checkpoint; a '{family}' scorer is needed here")
    return fam.scorer_loader()(path, primitive=primitive, device=device)


# -- specs ----------------------------------------------------------------------------------


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """(target, {key: value}) of a spec with optional '?key=value&...' options."""
    target, _, query = spec.partition("?")
    options = {}
    for part in filter(None, query.split("&")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise RewardSpecError(f"option '{part}' of '{spec}' is not key=value")
        options[key.strip()] = value.strip()
    return target.strip(), options


def load_factory(spec: str) -> Loader:
    """The callable named by 'package.module:attr[.attr]'."""
    if ":" not in spec:
        raise RewardSpecError(f"'{spec}' is not a 'package.module:factory' name")
    module_name, attr = spec.split(":", 1)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise RewardSpecError(f"cannot import '{module_name}' for '{spec}': {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RewardSpecError(f"'{module_name}' has no '{attr}' (from '{spec}')")
        obj = getattr(obj, part)
    if not callable(obj):
        raise RewardSpecError(f"'{spec}' is not callable")
    return obj


def _callable(loader: Loader | str) -> Loader:
    return load_factory(loader) if isinstance(loader, str) else loader


def build(spec: str, **kwargs) -> Any:
    """Call the factory of `spec` (a family's state reward or 'package.module:factory') with the
    spec's options and those of `kwargs` its signature accepts."""
    target, options = parse_spec(spec)
    if ":" in target:
        factory = load_factory(target)
    elif target in _FAMILIES:
        factory = _FAMILIES[target].state_reward_factory()
    else:
        raise RewardSpecError(f"'{spec}' is not a 'package.module:factory' name nor a registered reward "
                              f"family ({', '.join(_FAMILIES)})")
    try:
        params = inspect.signature(factory).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            kwargs = {k: v for k, v in kwargs.items() if k in params}
    except (TypeError, ValueError):  # builtins without a signature
        pass
    try:
        return factory(**{**kwargs, **options})
    except Exception as exc:
        raise RewardSpecError(f"'{spec}' failed to build: {type(exc).__name__}: {exc}") from exc


def build_state_reward(spec: str, device: str = "cpu") -> StateReward | None:
    """A StateReward from its spec (None for ''); checked for `score_states`."""
    if not spec:
        return None
    model = build(spec, device=device)
    if not callable(getattr(model, "score_states", None)):
        raise RewardSpecError(f"'{spec}' built a {type(model).__name__}, which has no score_states(...)")
    return model


# -- the families shipped with the package ----------------------------------------------------
# Loaders by name: each family's model code (and torch, open_clip) is imported when first used.

register(RewardFamily(
    "preference", formats=("robot_rewards.preference_scorer",), default_names=("scorer",),
    scorer="robot_rewards.rewards.preference.io:load_scorer",
    summary="Bradley-Terry ensemble trained on preference labels (train-scorer)"))
register(RewardFamily(
    "implicit", formats=("robot_rewards.implicit_reward",), default_names=("implicit",),
    scorer="robot_rewards.rewards.implicit.reward:load_implicit_scorer",
    summary="DeformPAM's implicit reward: a DPO-tuned policy against the frozen one (train-implicit)"))
register(RewardFamily(
    "keypoints", formats=("robot_rewards.keypoint_model",), default_names=("keypoints",),
    scorer="robot_rewards.rewards.keypoints.io:load_keypoint_scorer",
    state_reward="robot_rewards.rewards.keypoints.io:keypoint_state_reward",
    summary="analytic scores at keypoints from a learned keypoint model (train-keypoints)"))
register(RewardFamily(
    "outcome", formats=("robot_rewards.outcome_model",), default_names=("outcome",),
    scorer="robot_rewards.rewards.outcome.reward:load_outcome_scorer",
    summary="the task's measures predicted on the cloud after each candidate, learned from executed transitions (train-outcome)"))
register(RewardFamily(
    "clip", formats=("robot_rewards.clip",), default_names=("clip",),
    state_reward="robot_rewards.rewards.clip.reward:clip_reward",
    summary="VLM-RM goal reward of an open_clip model or a train-clip checkpoint"))
register(RewardFamily(
    "vlm", state_reward="robot_rewards.rewards.vlm.success:vlm_success_reward",
    summary="a vision-language model over an OpenAI-compatible endpoint: success yes/no (vlm-label for pairs)"))
