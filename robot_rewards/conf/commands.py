"""One structured config per CLI command (`robot-rewards <command> key=value ...`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from robot_rewards.core.parallel import ParallelConfig
from robot_rewards.sim.config import SimConfig
from robot_rewards.sim.expert_config import ExpertConfig

# Every command writes into its own timestamped folder unless output_dir=... is given.
_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"


@dataclass
class EvalExpertConfig(ExpertConfig, ParallelConfig):
    """`robot-rewards eval-expert task=place_block episodes=100 noise=0 seed=0`.

    The expert knobs (noise, pos_std, yaw_std, poor_rate, multimodal) are top-level keys.
    """

    task: str = "all"  # a task name or "all"
    episodes: int = 100
    seed: int = 0  # episodes use seeds seed, seed+1, ...
    video: bool = True  # one video of the first episode per task
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("eval-expert")


@dataclass
class CollectDemosConfig(ExpertConfig):
    """`robot-rewards collect-demos task=place_block n=100 seed=0` -> an HDF5 episode file."""

    task: str = "place_block"
    n: int = 100
    seed: int = 0
    out: str = ""  # dataset path; default <output_dir>/demos_<task>.h5 (appends if it exists)
    # processes, each with its own simulator ("auto": every available core); the file is the same for any number
    workers: Any = "auto"
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("collect-demos")


@dataclass
class BenchSimConfig:
    """`robot-rewards bench sim`: primitives per second with rendering on, per task and profile."""

    tasks: list[str] = field(default_factory=lambda: ["place_block", "push_block", "stack_blocks", "align_rope"])
    profiles: list[str] = field(default_factory=lambda: ["fast", "reference"])  # speed-ups are against the last
    primitives: int = 20  # per task
    seed: int = 0
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("bench-sim")


@dataclass
class BenchRolloutsConfig:
    """`robot-rewards bench rollouts`: episodes per minute of the learned loop on 1..K workers and Ray."""

    task: str = "place_block"
    condition: str = "scorer"  # a selection rule of `experiment` (first, scorer, oracle, ...)
    episodes: int = 12  # per setting; the same seeds for each
    seed: int = 100_000
    workers: list[int] = field(default_factory=lambda: [1, 2])
    ray: bool = True  # also Ray on a local cluster with max(workers) actors (skipped if Ray is missing)
    n_candidates: int = 8
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("bench-rollouts")


@dataclass
class BenchGpuConfig:
    """`robot-rewards bench gpu device=cuda`: policy (fp32/bf16, compiled), scorer, CLIP towers vs
    the FLOP bound, batched perception, in one metrics.json (benchmarks/gpu.sh; < 8 min on an H100)."""

    device: str = "cuda"
    policy: str = "checkpoints/policy_place_block.json"
    scorer: str = "checkpoints/scorer_place_block.json"
    n: list[int] = field(default_factory=lambda: [1, 8, 16, 32, 64, 128, 256])
    compile_n: list[int] = field(default_factory=lambda: [8, 64])  # compiled rows and scorer-alone rows
    decision_n: int = 64  # the whole decision (sample + score) is timed at this N
    inference_steps: int = 10
    dtypes: list[str] = field(default_factory=lambda: ["fp32", "bf16"])
    compile: list[str] = field(default_factory=lambda: ["none", "default", "reduce-overhead"])
    clip_models: list[str] = field(default_factory=lambda: ["ViT-B-32", "ViT-L-14"])
    clip_batch: int = 256
    clip_dtype: str = "bf16"
    peak_tflops: float = 0.0  # dense bf16 peak of the device; 0 = from the device name
    perception: bool = True
    perception_frames: int = 16
    repeats: int = 10
    warmup: int = 3
    torch_threads: int | None = None
    seed: int = 0
    output_dir: str = _OUT.format("bench-gpu")


@dataclass
class BenchRosConvertConfig:
    """`robot-rewards bench ros-convert`: numpy <-> ROS message conversion vs a per-element loop."""

    n_points: int = 300_000
    repeats: int = 20
    naive_points: int = 20_000  # the naive loop runs on this many points, scaled linearly
    naive_repeats: int = 3
    seed: int = 0
    output_dir: str = _OUT.format("bench-ros-convert")


@dataclass
class BenchPerceptionConfig:
    """`robot-rewards bench perception`: 640x480 depth -> fixed-size base-frame point cloud."""

    n_frames: int = 8
    batch: int = 8
    device: str = "cpu"  # torch device of the torch rows ("cpu", "cuda")
    n_points: int = 2048
    voxel_size: float = 0.005
    repeats: int = 3
    seed: int = 0
    torch_threads: int | None = None
    output_dir: str = _OUT.format("bench-perception")


@dataclass
class CalibrateIntrinsicsConfig:
    """`robot-rewards calibrate intrinsics images=DIR board=charuco_9x6_35mm`."""

    images: str = MISSING  # folder of board images (png/jpg)
    board: str = "charuco_9x6_35mm"  # a shipped board name or a board YAML path
    camera_name: str = "camera"
    min_views: int = 8
    max_view_error: float = 1.0  # px: views whose RMS error exceeds this are rejected
    radial_coeffs: int = 2  # 2: k3 = 0 as ROS camera_calibration; 3: all 5 plumb_bob coefficients (OpenCV, others)
    tangential: bool = True
    strict: bool = False  # fail (instead of skipping) when the board is missing from an image
    corner_refinement: str = "cornersubpix"  # chessboards: cornersubpix | sb (findChessboardCornersSB's own)
    output_dir: str = _OUT.format("calibrate-intrinsics")


@dataclass
class CalibrateHandeyeConfig:
    """`robot-rewards calibrate handeye images=DIR poses=robot_poses.yaml intrinsics=cam.yaml`."""

    images: str = MISSING
    poses: str = MISSING  # YAML: base_frame, ee_frame, list of {image, translation, rotation}
    intrinsics: str = MISSING  # camera_info YAML of the camera
    board: str = "charuco_9x6_35mm"
    setup: str = "eye_to_hand"  # or eye_in_hand
    method: str = "park"  # tsai, park, horaud, andreff, daniilidis
    camera_frame: str | None = None
    compare_methods: bool = True
    min_poses: int = 3
    output_dir: str = _OUT.format("calibrate-handeye")


@dataclass
class CalibrateSimConfig:
    """`robot-rewards calibrate sim`: both calibrations against the simulated cameras."""

    seed: int = 0
    n_poses: int = 20
    method: str = "park"
    eye_in_hand: bool = True  # also calibrate a simulated wrist camera
    supersample: int = 2
    board: str | None = None  # default: the shipped ChArUco board
    radial_coeffs: int = 2
    tangential: bool = True
    save_images: bool = True
    output_dir: str = _OUT.format("calibrate-sim")


@dataclass
class DemoConfig:
    """`robot-rewards demo` (what `make demo` runs): experts, then (a) vs (c) on every core."""

    episodes: int = 5  # expert episodes per task
    seed: int = 1000
    noise: float = 1.0
    # (a) policy alone vs (c) best-of-N by the preference scorer, with the shipped
    # checkpoints <checkpoints>/policy_<task>.json and scorer_<task>.json; [] skips this part
    tasks: list[str] = field(default_factory=lambda: ["place_block", "push_block", "stack_blocks", "align_rope"])
    checkpoints: str = "checkpoints"  # relative to the data folder, or absolute
    n_candidates: int = 8
    # scenes per task, the same for (a) and (c): policy_episodes=K gives every task K; 0 takes
    # task_episodes, sized so the whole demo stays within ~5 minutes on 2 cores: CPU seconds per
    # episode measured (metrics.json cpu_s_per_episode) place 0.34, push 0.36, stack 0.6, rope 2.7;
    # "other": a task without its own entry
    policy_episodes: int = 0
    task_episodes: dict[str, int] = field(default_factory=lambda: {
        "place_block": 80, "push_block": 80, "stack_blocks": 60, "align_rope": 30, "other": 20})
    policy_seed: int = 100_000  # disjoint from the seeds of the demonstrations and labels
    workers: Any = "auto"  # processes, each with its own simulator ("auto": every available core)
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("demo")
