"""Reward models and console choosers named by spec in ROS parameters and `bag replay`.

Specs are resolved by the one reward registry (`robot_rewards.rewards.registry`, re-exported
here for the nodes): `clip?model=ViT-B-32&pretrained=laion2b_s34b_b79k&alpha=0.5` names a
registered family's state reward, `package.module:factory?key=value&...` any other factory.
Nothing here is ROS-specific any more; this module keeps the spec name of earlier parameter
files working:

    robot_rewards.ros.plugins:clip_reward?model=ViT-B-32&pretrained=laion2b_s34b_b79k&alpha=0.5
"""

from __future__ import annotations

from robot_rewards.rewards.registry import RewardSpecError as PluginError
from robot_rewards.rewards.registry import build, build_state_reward, family, load_factory, parse_spec

__all__ = ["PluginError", "build", "build_state_reward", "clip_reward", "load_factory", "parse_spec"]


def clip_reward(device: str = "auto", **options):
    """The `clip` family's state reward (same as the spec `clip?...`), options as
    ClipRewardConfig fields (strings are converted)."""
    return family("clip").state_reward_factory()(device=device, **options)
