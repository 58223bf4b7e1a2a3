"""Load components named as 'package.module:factory[?key=value&...]' (goal rewards, choosers).

Reward models without a fixed constructor (a CLIP reward, a VLM keypoint reward) and console
choosers are plugged into the nodes and `bag replay` by name, so the nodes do not import
every model family. The factory is called with the keyword arguments the caller offers that
it accepts (e.g. `device`), plus the `key=value` options of the spec (as strings).

    robot_rewards.ros.plugins:clip_reward?model=ViT-B-32&pretrained=laion2b_s34b_b79k&alpha=0.5
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any


class PluginError(ValueError):
    """A 'module:factory' spec that does not name a callable, or whose factory failed."""


def load_factory(spec: str):
    """The callable named by 'package.module:attr[.attr]'."""
    if ":" not in spec:
        raise PluginError(f"'{spec}' is not a 'package.module:factory' name")
    module_name, attr = spec.split(":", 1)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import '{module_name}' for '{spec}': {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PluginError(f"'{module_name}' has no '{attr}' (from '{spec}')")
        obj = getattr(obj, part)
    if not callable(obj):
        raise PluginError(f"'{spec}' is not callable")
    return obj


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """('package.module:factory', {key: value}) of a spec with optional '?key=value&...' options."""
    target, _, query = spec.partition("?")
    options = {}
    for part in filter(None, query.split("&")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise PluginError(f"option '{part}' of '{spec}' is not key=value")
        options[key.strip()] = value.strip()
    return target, options


def build(spec: str, **kwargs):
    """Call the factory of `spec` with its options and those of `kwargs` its signature accepts."""
    target, options = parse_spec(spec)
    factory = load_factory(target)
    try:
        params = inspect.signature(factory).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            kwargs = {k: v for k, v in kwargs.items() if k in params}
    except (TypeError, ValueError):  # builtins without a signature
        pass
    try:
        return factory(**{**kwargs, **options})
    except Exception as exc:
        raise PluginError(f"'{spec}' failed to build: {type(exc).__name__}: {exc}") from exc


def build_state_reward(spec: str, device: str = "cpu"):
    """A StateReward from its factory spec (None for ''); checked for `score_states`."""
    if not spec:
        return None
    model = build(spec, device=device)
    if not callable(getattr(model, "score_states", None)):
        raise PluginError(f"'{spec}' built a {type(model).__name__}, which has no score_states(...)")
    return model


def clip_reward(device: str = "auto", **options):
    """The CLIP (VLM-RM) goal reward, options as ClipRewardConfig fields (strings are converted).

    Loads offline: open_clip weights must already be on disk (see ClipRewardConfig).
    """
    from robot_rewards.rewards.clip.config import ClipRewardConfig
    from robot_rewards.ros.params import coerce_config

    config = coerce_config(ClipRewardConfig, {"device": device, **options})  # before the heavy imports
    from robot_rewards.rewards.clip.reward import ClipReward

    return ClipReward.from_config(config)
