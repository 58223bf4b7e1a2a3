"""Structured (hydra-style) configs of the implicit-reward family: `TrainImplicitConfig` is
`train_dpo`'s settings, `TrainImplicitCommandConfig` the `train-implicit` command's. Plain
dataclasses, no Unions."""

from __future__ import annotations

from dataclasses import dataclass, field

_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"


@dataclass
class TrainImplicitConfig:
    """`train_dpo(reference, pairs, config)`: Diffusion-DPO fine-tuning of a copy of a policy
    against the frozen policy; the pair defines DeformPAM's implicit reward (rewards/implicit/reward.py)."""

    beta: float = 1.0  # DPO's beta per diffusion step (the reward is scaled by beta * T)
    steps: int = 200  # optimiser steps (place_block, 500 labels: 55-60% held-out at 100-400 steps, within noise)
    batch_size: int = 32  # preference pairs per step
    noise_draws: int = 4  # (t, eps) draws per pair per step, shared by its preferred and rejected action
    lr: float = 1e-5  # 1e-4 fits the training scenes (81%), held-out at chance (51%)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    # Train only the denoiser: the observation features are then computed once (cheap on CPU) and
    # the tuned policy keeps the reference's view of the scene.
    freeze_encoder: bool = True
    score_draws: int = 32  # M fixed noise draws of the implicit reward at scoring time
    score_members: int = 1  # ScoreSet members = groups of the M draws (Monte-Carlo spread)
    score_seed: int = 0  # seed of the scoring draws
    score_t_fraction: float = 1.0  # draws from the lowest-noise share of timesteps (DeformPAM: 0.1)
    val_fraction: float = 0.2  # held-out pairs for accuracy (0 = none; ignored with a held-out store)
    eval_every: int = 0  # validation accuracy every this many steps (0 = only at the end)
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | cuda:N | auto


@dataclass
class TrainImplicitCommandConfig:
    """`robot-rewards train-implicit store=DIR task=place_block`: DeformPAM's implicit reward
    from a preference store's labels (ties and can't-tell excluded)."""

    store: str = "outputs/preferences"  # a PreferenceStore folder
    task: str = "place_block"
    policy: str = ""  # the reference policy checkpoint (default: checkpoints/policy_<task>.json)
    heldout_store: str = ""  # another store to validate on (default: a val_fraction split)
    compare_scorer: str = ""  # a Bradley-Terry scorer checkpoint to evaluate on the same held-out pairs
    train: TrainImplicitConfig = field(default_factory=TrainImplicitConfig)
    torch_threads: int = 1
    output_dir: str = _OUT.format("train-implicit")
