"""Structured (hydra) configs of the CLIP/VLM reward and its commands.

`ClipRewardConfig`: how `ClipReward` loads and runs a model. `TinyClipConfig`: the small
open_clip architecture `train-clip` trains from scratch (it travels inside the checkpoint as
open_clip's own model config). `ClipDataConfig`: the sim frames and captions. `TrainClipConfig`,
`EvalClipConfig`: the commands. Plain dataclasses, no Unions (hydra structured configs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from robot_rewards.rewards.config import BenchRewardsConfig

_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"
# The part of the front camera (relative x0, y0, x1, y1) where the tabletop tasks happen
# (workspace corners projected, plus a margin): objects keep ~2x more pixels than in the full frame.
FRONT_ROI = [0.06, 0.25, 0.86, 0.97]


@dataclass
class ClipRewardConfig:
    """`ClipReward`: a VLM-RM goal reward from an open_clip model or a train-clip checkpoint."""

    # An open_clip model name (ViT-B-32, ...), 'local-dir:/folder' (open_clip_config.json +
    # weights), or a robot_rewards CLIP checkpoint (<name>.json / .safetensors, see clip_train).
    model: str = "ViT-B-32"
    # open_clip pretrained tag (laion2b_s34b_b79k, openai, ...) or a local weights file for the
    # named model; "" = random init (benchmarks, tests). Ignored for checkpoints and local-dir.
    pretrained: str = ""
    cache_dir: str = ""  # where tag weights are looked for ("" = open_clip's / Hugging Face's defaults)
    allow_download: bool = False  # False: never touch the network; a missing file is an error
    alpha: float = 0.5  # VLM-RM projection strength (0 = shifted cosine similarity, 1 = along goal - baseline)
    baseline_prompts: List[str] = field(default_factory=list)  # [] = the goal's generic scene sentence
    state_prompts: bool = True  # turn instructions into state sentences (clip_prompts.goal_prompts)
    camera: str = ""  # which camera of an Observation ("" = its first)
    resize: str = ""  # crop | pad | squash; "" = the checkpoint's policy (crop for open_clip models)
    roi: Optional[List[float]] = None  # relative (x0, y0, x1, y1) cut before resizing; None = checkpoint's / whole image
    batch_size: int = 64  # images per forward pass
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (fp32 on CPU, bf16 autocast on CUDA) | fp32 | bf16 | fp16
    compile: bool = False  # torch.compile the image tower (pays off for long runs on GPU)


@dataclass
class TinyClipConfig:
    """A small CLIP (open_clip's CLIP class) for training from scratch on sim frames."""

    embed_dim: int = 128
    image_size: int = 64  # square input; frames are fitted by the resize policy
    patch_size: int = 8
    vision_width: int = 128
    vision_layers: int = 3
    vision_head_width: int = 32
    text_width: int = 96
    text_layers: int = 2
    text_heads: int = 4
    context_length: int = 20  # captions are short; open_clip's default tokenizer pads/truncates to this

    def open_clip_cfg(self) -> dict:
        """The model config dict open_clip's CLIP(**cfg) takes."""
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": {"image_size": self.image_size, "patch_size": self.patch_size,
                           "width": self.vision_width, "layers": self.vision_layers,
                           "head_width": self.vision_head_width},
            "text_cfg": {"context_length": self.context_length, "vocab_size": 49408,
                         "width": self.text_width, "heads": self.text_heads, "layers": self.text_layers},
        }


@dataclass
class ClipDataConfig:
    """Sim frames with captions from sim state (see clip_data). Scene k uses seed + k."""

    place_scenes: int = 300  # place_block resets
    place_frames: int = 4  # random block arrangements rendered per reset (plus the reset scene)
    rope_scenes: int = 150  # align_rope mark layouts
    rope_frames: int = 4  # rope shapes per layout (straight to curled, on and off the marks)
    place_episodes: int = 0  # real noisy-expert episodes (frame before each step and after the last)
    rope_episodes: int = 0
    render_scale: float = 0.4  # of the front camera's 640x480
    seed: int = 0
    workers: Any = "auto"  # processes, each its own PyBullet world ("auto": every available core)


def heldout_data() -> ClipDataConfig:
    """The held-out evaluation frames: seeds from 100000 (training uses 0..), arranged scenes
    plus real noisy-expert episodes."""
    return ClipDataConfig(place_scenes=40, place_frames=4, rope_scenes=30, rope_frames=4, place_episodes=20,
                          rope_episodes=3, seed=100_000)


@dataclass
class TrainClipConfig:
    """`robot-rewards train-clip`: contrastive domain adaptation of a CLIP on sim frames."""

    data: str = ""  # frames file (clip_data); generated from `generate` if missing
    generate: ClipDataConfig = field(default_factory=ClipDataConfig)
    eval_data: str = ""  # held-out frames file; generated from `eval_generate` if missing ("" = in output_dir)
    eval_generate: ClipDataConfig = field(default_factory=heldout_data)
    model: TinyClipConfig = field(default_factory=TinyClipConfig)
    # Fine-tune instead of training from scratch: an open_clip name + pretrained tag/file, or a
    # robot_rewards CLIP checkpoint ("" = the TinyClipConfig above, random init).
    init_model: str = ""
    init_pretrained: str = ""
    resize: str = "squash"  # crop | pad | squash (saved in the checkpoint, used by the reward)
    roi: Optional[List[float]] = field(default_factory=lambda: list(FRONT_ROI))
    steps: int = 800
    batch_size: int = 48
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    grad_clip: float = 1.0
    balance_tasks: bool = False  # sample each task's frames equally often (default: in proportion)
    hard_negatives: bool = True  # add one false caption of each frame to the batch's texts
    augment: bool = True  # small random shifts and colour jitter of the frames
    # RAPL-style alignment of the image encoder to preferences: pairs of frames of one scene,
    # ranked by a scripted teacher (sim quality; B-Pref "mistake" flips with teacher_error),
    # Bradley-Terry loss on the VLM-RM reward. 0 disables it: the default, because training from
    # scratch with it (weight 0.5, 8 pairs/step, scene pairs of both tasks) held-out align_rope
    # Spearman fell to 0.03 at step 400, against ~0.5 without it (pairs rank frames within a
    # scene; the metric pools scenes and goals). Fine-tuning a trained model with align_rope pairs
    # across scenes (preference_tasks=[align_rope] preference_scope=task) raised it instead: see
    # checkpoints/README.md.
    preference_weight: float = 0.0
    preference_pairs: int = 8  # pairs per step
    preference_tasks: List[str] = field(default_factory=list)  # tasks whose frames are paired ([] = all)
    # Which frames a pair may join: "scene" (two frames of one scene, one goal: RAPL's setting) or
    # "task" (any two frames of one task, each scored for its own goal: the held-out Spearman
    # pools scenes, so this also aligns the reward's scale across goals and mark layouts).
    preference_scope: str = "scene"
    preference_temperature: float = 0.05
    teacher_error: float = 0.0
    alpha: float = 0.5  # VLM-RM alpha of the evaluation and of the preference loss
    eval_every: int = 400  # held-out evaluation every this many steps (0 = only at the end)
    seed: int = 0
    device: str = "auto"
    torch_threads: Optional[int] = None
    output_dir: str = _OUT.format("train-clip")


@dataclass
class EvalClipConfig:
    """`robot-rewards eval-clip`: place_block ROC AUC and align_rope Spearman of a CLIP reward."""

    reward: ClipRewardConfig = field(default_factory=lambda: ClipRewardConfig(model="checkpoints/clip_tabletop.json"))
    data: str = ""  # held-out frames file; generated from `generate` if missing
    generate: ClipDataConfig = field(default_factory=heldout_data)
    alphas: List[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])
    torch_threads: Optional[int] = None
    output_dir: str = _OUT.format("eval-clip")


@dataclass
class BenchClipConfig:
    """The CLIP part of `bench rewards`: batched reward vs a naive one-image open_clip loop."""

    enabled: bool = True
    model: str = "ViT-B-32"
    pretrained: str = ""  # random weights: throughput does not depend on them
    images: int = 64
    batch_size: int = 32
    repeats: int = 3



@dataclass
class BenchRewardsWithClipConfig(BenchRewardsConfig):
    """`robot-rewards bench rewards`: preference scorer, reward host and the CLIP reward's throughput."""

    clip: BenchClipConfig = field(default_factory=BenchClipConfig)
