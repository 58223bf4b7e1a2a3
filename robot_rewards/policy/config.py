"""Structured (hydra) configs of the diffusion policy and of its commands.

`PolicyConfig` is the model's architecture and diffusion settings; it travels inside every
checkpoint, so a checkpoint rebuilds exactly the network that wrote it. The command configs
(`train-policy`, `eval-policy`, `bench-policy`) follow the conventions of `conf/commands.py`:
plain dataclasses, no Union types, an `output_dir` defaulting to a timestamped folder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import List, Optional

from robot_rewards.core.parallel import ParallelConfig
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.sim.config import SimConfig
from robot_rewards.sim.tasks import TASKS

_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"
log = logging.getLogger(__name__)


def policy_perception() -> PerceptionConfig:
    """The perception settings a policy is trained with (and evaluated with: it is saved).

    1024 points keep the encoder cheap on CPU; a 4 cm block still gets ~60 points on its
    top face after 5 mm voxels and farthest-point sampling.
    """
    return PerceptionConfig(device="numpy", n_points=1024, voxel_size=0.005, colors=True)


# Tasks whose targets are flat visual marks 1 mm high (`Task.flat_target`: the rope's end marks,
# the push zone). Table removal at the default 4 mm deletes them from the cloud, and a policy or
# keypoint model that cannot see its target cannot learn it (align_rope: 0% success before this).
FLAT_MARK_TOP = 0.001
FLAT_TABLE_THRESHOLD = 0.0008  # below the marks' top, above the sim depth's table noise


def keep_flat_targets(perception: PerceptionConfig, task: str) -> PerceptionConfig:
    """`perception` with table removal low enough to keep `task`'s flat target marks.

    Unchanged for other tasks (and unknown names), for a fitted (RANSAC) table whose tolerance is
    a user's choice of noise budget, and when the threshold is already below the marks.
    """
    flat = task in TASKS and TASKS[task].flat_target
    if not flat or perception.table != "known" or perception.table_threshold < FLAT_MARK_TOP:
        return perception
    log.info("%s: its targets are %.0f mm flat marks; perception.table_threshold %g -> %g so that they stay "
             "in the cloud", task, 1000 * FLAT_MARK_TOP, perception.table_threshold, FLAT_TABLE_THRESHOLD)
    return replace(perception, table_threshold=FLAT_TABLE_THRESHOLD)


@dataclass
class PolicyConfig:
    """Architecture and diffusion settings (saved in the checkpoint)."""

    # point-cloud encoder (PointNet: shared per-point MLP, goal FiLM, max + goal-attention pooling)
    use_rgb: bool = True
    # Per-point widths: the per-point MLP dominates the training cost on CPU ([64, 128, 256] is
    # ~3x slower per step than this, for no gain on the tabletop tasks' few objects).
    point_channels: List[int] = field(default_factory=lambda: [32, 64, 128])
    attention_heads: int = 4  # goal-conditioned attention pools: they locate the named object
    obs_dim: int = 256
    min_points: int = 32  # clouds with fewer distinct points are refused
    # Per-point neighbourhood features (0 = off): the offset of each point to the centroid of the
    # cloud within this radius (m), which marks rope ends and object edges
    # (`encoders.neighbourhood_features`).
    neighbourhood_radius: float = 0.0
    # goal conditioning
    goal_encoder: str = "vocab"  # vocab (learned word embeddings, position-aware) | clip (frozen)
    goal_dim: int = 128
    token_dim: int = 32
    max_goal_tokens: int = 16
    word_attention: bool = True  # vocab goals: each word attends over the points (grounding)
    clip_model: str = "ViT-B-32"  # open_clip model name (goal_encoder=clip)
    clip_pretrained: str = ""  # open_clip tag or local weights path (goal_encoder=clip)
    # Local patches at the candidate (0 = off): at every denoising step each candidate's pick and
    # place points look at the cloud within local_radius around them (k nearest points). A pooled
    # scene feature cannot say precisely where a rope END is; the patch under the noisy pick can
    # (the rope ends there, or runs on), so the denoiser can steer the pick onto it.
    local_k: int = 0
    local_radius: float = 0.05  # m
    local_channels: List[int] = field(default_factory=lambda: [32, 64])
    # Picks on the cloud (`policy/pick.py`): a per-point head scores every cloud point, each
    # candidate draws its pick point from that distribution, and the denoiser fills in the rest
    # of the primitive around it (inpainting). For thin objects whose pick must land ON them.
    pick_on_cloud: bool = False
    pick_sigma: float = 0.01  # m: width of the training target around the demonstrated pick
    pick_loss_weight: float = 0.1  # the pick cross-entropy's weight beside the diffusion loss
    pick_temperature: float = 1.0  # softmax temperature when drawing picks (lower: fewer modes)
    # The place a choice among the cloud's points too, scored given the drawn pick (DeformPAM snaps
    # both points to the cloud): for targets that are visible objects or marks. Needs pick_on_cloud.
    place_on_cloud: bool = False
    # denoiser (residual MLP, FiLM-conditioned on [obs, goal, timestep])
    width: int = 256
    blocks: int = 3
    time_dim: int = 64
    # diffusion (Chi et al.): DDPM training, DDIM inference
    train_steps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    clip_sample: bool = True
    inference_steps: int = 10
    sampler: str = "ddim"  # ddim | ddpm (ddpm always uses all train_steps)


@dataclass
class TrainPolicyConfig:
    """`robot-rewards train-policy task=place_block data=demos_place_block.h5`."""

    task: str = "place_block"
    data: str = ""  # episode HDF5 (from collect-demos); required
    cache: str = ""  # point-cloud cache; default: next to `data`
    successful_only: bool = True  # train on executed steps of successful episodes only
    max_episodes: Optional[int] = None  # use only the first episodes (tests, ablations)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    perception: PerceptionConfig = field(default_factory=policy_perception)
    steps: int = 3000  # optimiser steps
    batch_size: int = 64  # observations per step (per process under torchrun)
    noise_draws: int = 4  # diffusion noise draws per observation: the encoder runs once for all
    train_points: Optional[int] = 512  # random subset of each cloud per step (augmentation, 2.5x
    # faster on CPU than all 1024); None = the whole cloud. Inference always uses the whole cloud.
    lr: float = 1e-3
    weight_decay: float = 1e-6
    # Planar augmentation: each sample's scene and action turned about the vertical through the
    # workspace centre by up to this many radians and shifted by up to augment_shift metres
    # (0 and 0 disable it). Without it the network memorises training scenes (see policy/augment.py).
    augment_rotation: float = 3.141592653589793
    augment_shift: float = 0.05
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_power: float = 0.75  # EMA warm-up: decay = 1 - (1 + step)^-power, capped at ema_max
    ema_max: float = 0.999
    log_every: int = 50
    eval_every: int = 1000  # sim evaluation every this many steps (0 = only at the end)
    eval_episodes: int = 10
    eval_seed: int = 100_000  # evaluation seeds are disjoint from the demo seeds
    eval_candidates: int = 8  # N per decision in the periodic evaluation (selection=first)
    checkpoint_every: int = 500
    resume: str = ""  # "" = fresh, "auto" = resume from output_dir if it holds a train state, or a path
    stop_at: Optional[int] = None  # stop after this step with a checkpoint (split a run into jobs)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N (torchrun: cuda:LOCAL_RANK)
    torch_threads: Optional[int] = None
    sim: SimConfig = field(default_factory=SimConfig)  # the periodic evaluation's simulator
    output_dir: str = _OUT.format("train-policy")


@dataclass
class EvalPolicyConfig(ParallelConfig):
    """`robot-rewards eval-policy checkpoint=checkpoints/place_block episodes=100`."""

    checkpoint: str = ""  # <name>.safetensors / <name>.json / <name> / a train-policy output_dir
    task: str = ""  # default: the checkpoint's task (another task is refused); required without one
    episodes: int = 100
    seed: int = 100_000  # episodes use seeds seed, seed+1, ...
    n_candidates: int = 8  # N samples per decision
    selection: str = "first"  # first | random (random of N) | random_primitive (baseline, no policy needed)
    inference_steps: Optional[int] = None  # DDIM steps; default: the checkpoint's
    diversity: bool = True  # candidate spread statistics at the first decision of each episode
    video: bool = False  # one video of the first episode
    device: str = "auto"
    torch_threads: Optional[int] = None  # per process (default 1: the same results for any number of workers)
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("eval-policy")


@dataclass
class BenchPolicyConfig:
    """`robot-rewards bench policy`: decision latency vs N, batched vs sequential."""

    checkpoint: str = ""  # default: a randomly initialised model of the default PolicyConfig
    n: List[int] = field(default_factory=lambda: [1, 8, 32, 64])
    inference_steps: int = 10
    repeats: int = 5
    warmup: int = 2
    device: str = "auto"
    torch_threads: Optional[int] = None
    # Optional: a checkout of real-stanford/diffusion_policy (with einops importable) to time its
    # ConditionalUnet1D live at the published pusht low-dim config on this machine.
    reference_src: str = ""
    seed: int = 0
    output_dir: str = _OUT.format("bench-policy")
