"""Structured (hydra-style) configs of the preference family.

`ScorerConfig` is the preference scorer's architecture; it travels inside every scorer
checkpoint. `TrainScorerConfig` is `train_scorer`'s settings. Plain dataclasses, no Unions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class ScorerConfig:
    """Architecture of one preference-scorer member r(obs, goal, candidate) -> scalar."""

    use_rgb: bool = True
    point_channels: List[int] = field(default_factory=lambda: [32, 64, 128])
    attention_heads: int = 4  # goal-conditioned attention pools (locate the named object)
    obs_dim: int = 128
    goal_dim: int = 64
    token_dim: int = 16
    max_goal_tokens: int = 16
    hidden: int = 128  # width of the MLP over [obs feature, goal feature, candidate]
    # the candidate's normalised parameters in the head's input; off where the head should weigh
    # only what other models say of the candidate (the `outcome` recipe: with them, 500 rope labels
    # gave the parameters weights as large as the predicted outcome's and diluted its ranking)
    use_actions: bool = True
    layers: int = 2
    min_points: int = 8  # clouds with fewer points are refused
    word_attention: bool = False  # per-word grounding queries in the point encoder (as the policy's)
    neighbourhood_radius: float = 0.0  # per-point neighbourhood features (as the policy's; 0 = off)
    # The whole-scene feature; with few labelled scenes it lets the head memorise scenes rather
    # than judge candidates, so the local patches can carry the judgement alone.
    use_global: bool = True
    # Local patches: the cloud around each of a candidate's points (pick, place; push start, end),
    # k nearest points within `local_radius`, encoded by a small PointNet. This is what tells a
    # grasp on the block from one beside it, in any scene. 0 = off; the preference loop's recipe
    # (`preferences.config.loop_scorer`) uses 32.
    local_k: int = 0
    local_radius: float = 0.04
    local_channels: List[int] = field(default_factory=lambda: [32, 64])
    # Keypoint features (`keypoint_features.py`): a keypoint-model file (e.g.
    # checkpoints/keypoints_align_rope.json) whose predicted keypoints turn each candidate into
    # offsets and distances to the objects and targets. "" = off.
    keypoint_model: str = ""
    # Outcome features (`outcome_features.py`): an outcome-model file (train-outcome, e.g.
    # checkpoints/outcome_align_rope.json) whose predicted measures after each candidate (mean and
    # spread over its members) the head also reads. "" = off.
    outcome_model: str = ""


@dataclass
class TrainScorerConfig:
    """`train_scorer(pairs, config)`: a bootstrapped Bradley-Terry ensemble."""

    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    ensemble_size: int = 5  # K members, each on its own bootstrap resample and init seed
    bootstrap: bool = True
    steps: int = 500  # optimiser steps per member
    batch_size: int = 64  # pairs per step
    lr: float = 1e-3
    weight_decay: float = 1e-4
    # Gaussian prior on the head's weights (MAP): the loss adds head_l2 / n_train * sum(W^2), so
    # it matters with few labels and fades with many. 0 = off (AdamW's decay only).
    head_l2: float = 0.0
    # After training, fit a temperature T and the labels' lapse rate e by maximum likelihood of
    # P(label A) = e + (1 - 2e) * mean_k sigmoid((r_k(A) - r_k(B)) / T), then divide every member's
    # scores by T. Rankings are unchanged; the ensemble's probabilities then estimate the
    # preference itself, not the noisy answer (a shrunk linear head is underconfident). The fit
    # uses out-of-fold probabilities of `calibration_folds` scorers each trained without one
    # fold (in-sample ones are overconfident with few labels); 0 or 1 = fit on the training pairs.
    calibrate: bool = False
    calibration_folds: int = 5
    grad_clip: float = 1.0
    train_points: Optional[int] = None  # random subset of each cloud per step (None = all)
    # Warm start (the "may share the policy's point encoder"): a policy checkpoint whose
    # goal + point encoders initialise every member (the scorer architecture follows the policy's);
    # with freeze_encoder only the heads train, on observation features computed once.
    init_from_policy: str = ""
    freeze_encoder: bool = True
    val_fraction: float = 0.2  # held-out pairs for accuracy / ECE (0 = no validation)
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | cuda:N | auto
