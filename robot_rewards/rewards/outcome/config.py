"""Structured configs of the outcome family: `OutcomeModelConfig` (travels in every outcome-model
file), `TrainOutcomeConfig` (`train_outcome_model`), and the commands `collect-transitions` and
`train-outcome`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List

from robot_rewards.sim.config import SimConfig


@dataclass
class OutcomeModelConfig:
    """An ensemble of MLPs from a candidate's inputs (`CloudOutcome.inputs`) to the measures the
    cloud after it will show (`CloudOutcome.measures`)."""

    hidden: int = 256
    layers: int = 2
    ensemble_size: int = 3  # members differ in init and batches; their spread is the uncertainty


@dataclass
class TrainOutcomeConfig:
    """`train_outcome_model(transitions, config)`."""

    model: OutcomeModelConfig = field(default_factory=OutcomeModelConfig)
    steps: int = 3000  # optimiser steps per member
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    augment: bool = True  # add the task's symmetric copies (`CloudOutcome.symmetries`)
    val_fraction: float = 0.1  # of the start states (whole states, so no cloud is on both sides)
    seed: int = 0


_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"


@dataclass
class CollectTransitionsConfig:
    """`robot-rewards collect-transitions task=align_rope episodes=300`: the shipped policy's
    episodes on sim seeds seed .. seed + episodes - 1, logged as executed transitions (cloud,
    primitive, next cloud) in `<output_dir>/transitions.npz`."""

    task: str = "align_rope"
    policy: str = ""  # policy checkpoint; "" = checkpoints/policy_<task>.json
    episodes: int = 300
    seed: int = 400_000  # away from the training (0..), held-out (100000..) and label (200000..) seeds
    n_candidates: int = 8
    per_state: int = 8  # candidates executed from each state (restored between them); 1 = one robot's log
    max_decisions: int = 0  # per episode, 0 = until it ends
    workers: Any = "auto"
    torch_threads: int = 1
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("collect-transitions")


@dataclass
class TrainOutcomeCommandConfig:
    """`robot-rewards train-outcome 'data=[runs/tr/transitions.npz]'`: an outcome model from
    executed transitions, saved as `<output_dir>/outcome.{json,safetensors}` with its validation
    figures in `metrics.json`."""

    data: List[str] = field(default_factory=list)  # transitions files (collect-transitions), joined
    # tasks measured by a keypoint model (Task.outcome_from_keypoints): which; "" = the shipped one
    keypoint_model: str = ""
    train: TrainOutcomeConfig = field(default_factory=TrainOutcomeConfig)
    torch_threads: int = 2
    output_dir: str = _OUT.format("train-outcome")
