"""Structured configs of the keypoint family (plain dataclasses, hydra-overridable):
`KeypointModelConfig` (the learned keypoint network; it travels inside every keypoint-model
file), `TrainKeypointConfig` (`train_keypoint_model`) and `TrainKeypointsCommandConfig`
(`robot-rewards train-keypoints`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List

from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.policy.config import policy_perception
from robot_rewards.sim.config import SimConfig

_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"


@dataclass
class KeypointModelConfig:
    """A learned keypoint regressor: goal-FiLM PointNet -> K object + K target keypoints."""

    n_keypoints: int = 1
    use_rgb: bool = True
    point_channels: List[int] = field(default_factory=lambda: [32, 64, 128])
    attention_heads: int = 4
    obs_dim: int = 128
    goal_dim: int = 64
    token_dim: int = 16
    max_goal_tokens: int = 16


@dataclass
class TrainKeypointConfig:
    """`train_keypoint_model(dataset, config)`."""

    model: KeypointModelConfig = field(default_factory=KeypointModelConfig)
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0
    device: str = "cpu"


@dataclass
class TrainKeypointsCommandConfig:
    """`robot-rewards train-keypoints task=place_block scenes=200 seed=0`: a learned keypoint
    model from sim ground truth, with its error (mm) on held-out seeds.

    Training scenes are sim seeds train_seed .. train_seed + scenes - 1, held-out scenes
    heldout_seed .. heldout_seed + heldout_scenes - 1 (the two ranges must not overlap). Each scene
    gives its reset state plus `extra_states` states with the task's objects moved (block
    teleported into a bowl or onto the table; rope partly or fully straightened toward its
    marks) and settled by physics, so the model also sees the states a reward has to score
    after a step, not only reset poses.
    """

    task: str = "place_block"  # any task with keypoints (Task.keypoint_names): place_block, push_block, stack_blocks, align_rope
    scenes: int = 120
    train_seed: int = 0
    heldout_scenes: int = 40
    heldout_seed: int = 100_000
    extra_states: int = 1  # moved-object states per scene (0 = reset states only)
    # the training seed: network init, batches and the moved states (train.seed is replaced by it)
    seed: int = 0
    # Planar augmentation of the training set: this many turned + shifted copies of every
    # training sample (cloud and keypoints together, about the vertical line through x=0.5, y=0),
    # added once before training; 0 = none. Small turns: the camera does not turn with the scene,
    # so a large turn shows an object from a side the real camera never sees.
    augment_copies: int = 3
    augment_rotation: float = 0.785  # rad, U(-r, r)
    augment_shift: float = 0.05  # m, U(-s, s) in x and y
    # train.model.n_keypoints is set from the task (1 for the blocks, 2 for the rope)
    train: TrainKeypointConfig = field(default_factory=lambda: TrainKeypointConfig(steps=1500))
    # Saved with the model; scoring uses the same settings. For align_rope / push_block the
    # command lowers table_threshold below their flat marks (policy.config.keep_flat_targets).
    perception: PerceptionConfig = field(default_factory=policy_perception)
    # folder of collected datasets to reuse (`<task>_<key>.npz`, keyed by everything that shapes
    # them); "" = collect every time
    cache: str = ""
    torch_threads: int = 1
    # scene collection on this many processes ("auto": every available core); same data for any number
    workers: Any = "auto"
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("train-keypoints")
