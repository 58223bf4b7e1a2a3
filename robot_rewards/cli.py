"""`robot-rewards <command> [key=value ...]`: every command is a hydra app with a structured config.

    robot-rewards eval-expert task=place_block episodes=100 noise=0 seed=0
    robot-rewards collect-demos task=align_rope n=50
    robot-rewards bench sim primitives=10
    robot-rewards demo
    robot-rewards eval-expert --cfg job      # print the full config (any hydra flag works)

Each run writes into `output_dir` (default `outputs/<command>/<timestamp>/`), including the
resolved config under `.hydra/` and a `metrics.json` for measuring commands.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from robot_rewards.conf import commands as conf
from robot_rewards.console.config import ConsoleConfig
from robot_rewards.core.workers import ExecutorError, JobsFailed
from robot_rewards.data.lerobot import config as lerobot_config
from robot_rewards.policy import config as policy_conf
from robot_rewards.preferences import config as pref_conf
from robot_rewards.preferences.errors import PreferenceStoreError
from robot_rewards.rewards.clip import config as clip_config
from robot_rewards.rewards.implicit import config as implicit_config
from robot_rewards.rewards.keypoints import config as keypoint_config
from robot_rewards.rewards.outcome import config as outcome_config
from robot_rewards.rewards.vlm import config as vlm_config
from robot_rewards.ros import bag_config
from robot_rewards.selection import bench_config as selection_bench_conf
from robot_rewards.viz.config import ViewConfig


@dataclass(frozen=True)
class Command:
    name: str
    config: type
    target: str  # "module:function" taking the config dataclass
    help: str

    def function(self) -> Callable[[Any], Any]:
        module, func = self.target.split(":")
        return getattr(importlib.import_module(module), func)


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        Command("demo", conf.DemoConfig, "robot_rewards.commands.demo:demo",
                "the main job in headless PyBullet (what `make demo` runs)"),
        Command("eval-expert", conf.EvalExpertConfig, "robot_rewards.commands.expert:eval_expert",
                "success rate of the scripted experts per task"),
        Command("collect-demos", conf.CollectDemosConfig, "robot_rewards.commands.expert:collect_demos",
                "record expert episodes into an HDF5 dataset"),
        Command("train-policy", policy_conf.TrainPolicyConfig, "robot_rewards.commands.policy:train_policy",
                "train the diffusion policy on demonstrations (torchrun-ready)"),
        Command("eval-policy", policy_conf.EvalPolicyConfig, "robot_rewards.commands.policy:eval_policy",
                "closed-loop success and candidate diversity of a policy checkpoint"),
        Command("train-keypoints", keypoint_config.TrainKeypointsCommandConfig,
                "robot_rewards.commands.keypoints:train_keypoints_command",
                "the learned keypoint model from sim ground truth; held-out error in mm"),
        Command("collect-transitions", outcome_config.CollectTransitionsConfig,
                "robot_rewards.commands.outcome:collect_transitions_command",
                "log the policy's executed transitions (cloud, primitive, next cloud) for an outcome model"),
        Command("train-outcome", outcome_config.TrainOutcomeCommandConfig,
                "robot_rewards.commands.outcome:train_outcome_command",
                "an outcome model from executed transitions: the task's measures after each candidate"),
        Command("train-clip", clip_config.TrainClipConfig, "robot_rewards.commands.clip:train_clip",
                "domain-adapt a CLIP model on sim frames with captions from sim state"),
        Command("eval-clip", clip_config.EvalClipConfig, "robot_rewards.commands.clip:eval_clip",
                "VLM-RM reward on held-out frames: place_block ROC AUC, align_rope Spearman"),
        Command("console", ConsoleConfig, "robot_rewards.commands.console:run_console",
                "teleop + labelling console: rank the policy's candidates, execute, demonstrate"),
        Command("train-scorer", pref_conf.TrainScorerCommandConfig, "robot_rewards.commands.scorer:train_scorer_command",
                "train the preference-scorer ensemble on a preference store's labels"),
        Command("train-implicit", implicit_config.TrainImplicitCommandConfig,
                "robot_rewards.commands.implicit:train_implicit_command",
                "DeformPAM's implicit reward: DPO-tune the policy on a store's labels, held-out accuracy"),
        Command("vlm-label", vlm_config.VLMLabelConfig, "robot_rewards.commands.vlm:vlm_label",
                "AI feedback: a VLM (OpenAI-compatible endpoint) labels candidate pairs into a store"),
        Command("experiment", pref_conf.ExperimentConfig, "robot_rewards.commands.experiment:experiment",
                "headline: reward-guided selection vs the policy alone, with a scripted teacher"),
        Command("experiment-merge", pref_conf.ExperimentMergeConfig,
                "robot_rewards.commands.experiment_report:experiment_merge",
                "one headline table and plots from experiment runs split over conditions or seeds"),
        Command("bench-sim", conf.BenchSimConfig, "robot_rewards.bench.sim:bench_sim",
                "simulator primitives per second with rendering, per task"),
        Command("bench-rollouts", conf.BenchRolloutsConfig, "robot_rewards.bench.rollouts:bench_rollouts",
                "episodes per minute of the learned loop on 1..K worker processes and on Ray"),
        Command("bench-gpu", conf.BenchGpuConfig, "robot_rewards.bench.gpu:bench_gpu",
                "GPU figures in one run: policy fp32/bf16/compiled, scorer, CLIP vs FLOP bound, perception"),
        Command("bench-policy", policy_conf.BenchPolicyConfig, "robot_rewards.bench.policy:bench_policy",
                "policy decision latency vs N candidates, batched vs single, vs the reference U-Net"),
        Command("bench-rewards", clip_config.BenchRewardsWithClipConfig, "robot_rewards.bench.rewards:bench_rewards",
                "preference-scorer latency vs N (ensemble of 5), reward host vs direct calls"),
        Command("bench-perception", conf.BenchPerceptionConfig, "robot_rewards.bench.perception:bench_perception",
                "depth frame -> sampled base-frame point cloud, ms per frame"),
        Command("calibrate-intrinsics", conf.CalibrateIntrinsicsConfig,
                "robot_rewards.commands.calibrate:intrinsics_command",
                "camera intrinsics from ChArUco or chessboard images -> camera_info YAML"),
        Command("calibrate-handeye", conf.CalibrateHandeyeConfig, "robot_rewards.commands.calibrate:handeye_command",
                "eye-to-hand / eye-in-hand calibration from robot poses + board images"),
        Command("calibrate-sim", conf.CalibrateSimConfig, "robot_rewards.commands.calibrate:sim_command",
                "both calibrations on the simulated cameras, compared with the truth"),
        Command("bag-export", bag_config.BagExportConfig, "robot_rewards.commands.bag:bag_export",
                "a sim episode (recorded now, or from an episode file) as a rosbag2 (MCAP) with the nodes' topics"),
        Command("bag-replay", bag_config.BagReplayConfig, "robot_rewards.commands.bag:bag_replay",
                "perception + reward models over a rosbag2 (real robot or sim) -> per-frame rewards CSV + plot"),
        Command("export-lerobot", lerobot_config.ExportLeRobotConfig,
                "robot_rewards.commands.lerobot:export_lerobot_command",
                "an episode file as a LeRobotDataset v3.0 folder (video, depth, state, primitive actions, goals)"),
        Command("import-lerobot", lerobot_config.ImportLeRobotConfig,
                "robot_rewards.commands.lerobot:import_lerobot_command",
                "a LeRobotDataset v3.0 folder (with depth and camera models) into an episode file"),
        Command("view", ViewConfig, "robot_rewards.commands.view:view",
                "policy + scorer decisions in the sim logged to Rerun (.rrd or live viewer) and a PNG"),
        Command("bench-selection", selection_bench_conf.BenchSelectionConfig,
                "robot_rewards.bench.selection:bench_selection",
                "best-of-K vs FK steering at equal denoiser evaluations: scorer reward, true success, ms"),
        Command("bench-ros-convert", conf.BenchRosConvertConfig, "robot_rewards.bench.ros_convert:bench_ros_convert",
                "numpy <-> ROS message conversion speed vs a per-element loop"),
    ]
}
# Two-word commands: `robot-rewards bench sim` runs `bench-sim`.
GROUPS = ("bench", "calibrate", "bag")
# Commands whose first bare argument is a config key: `bag replay BAG` == `bag replay bag=BAG`.
POSITIONAL = {"bag-replay": "bag"}


def usage() -> str:
    lines = ["usage: robot-rewards <command> [key=value ...] [hydra flags]", "", "commands:"]
    for c in COMMANDS.values():
        lines.append(f"  {c.name.replace('-', ' ', 1) if c.name.split('-')[0] in GROUPS else c.name:<16} {c.help}")
    lines.append("\n`robot-rewards <command> --cfg job` prints a command's config with its defaults.")
    return "\n".join(lines)


def resolve_command(argv: list[str]) -> tuple[Command, list[str]]:
    """Split argv into the command and its overrides; unknown commands raise SystemExit(2)."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        raise SystemExit(0 if argv else 2)
    name, rest = argv[0], argv[1:]
    if name in GROUPS:
        if not rest or "=" in rest[0] or rest[0].startswith("-"):
            subs = sorted(c.split("-", 1)[1] for c in COMMANDS if c.startswith(name + "-"))
            print(f"robot-rewards {name}: say which one: {', '.join(subs)}", file=sys.stderr)
            raise SystemExit(2)
        name, rest = f"{name}-{rest[0]}", rest[1:]
    if name not in COMMANDS:
        print(f"robot-rewards: unknown command '{argv[0]}'\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    key = POSITIONAL.get(name)
    if key and rest and "=" not in rest[0] and not rest[0].startswith("-"):
        rest = [f"{key}='{rest[0]}'", *rest[1:]]
    return COMMANDS[name], rest


def one_line_error(exc: BaseException) -> str:
    """`<Type>: <message>` on one line (a multi-line message, e.g. HDF5's error stack, is joined;
    a KeyError's quotes are kept as the key's repr)."""
    text = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run(command: Command, overrides: list[str]) -> Any:
    """Run one command as a hydra app (overrides, --cfg, --help and multirun all work)."""

    ConfigStore.instance().store(name=command.name, node=command.config)
    result: dict[str, Any] = {}

    # An explicit, folder-free search path: by default hydra would search the whole package,
    # taking subpackages such as `primitives/` for config groups.
    @hydra.main(version_base="1.3", config_path="pkg://robot_rewards.conf", config_name=command.name)
    def app(cfg) -> None:
        try:
            result["value"] = command.function()(OmegaConf.to_object(cfg))
        except (ValueError, OSError, KeyError, PreferenceStoreError, JobsFailed, ExecutorError) as exc:
            # Bad input (unknown task, missing or unreadable file, malformed data, a corrupt or
            # newer preference store), failed episodes (named, the finished ones kept) or no
            # executor: say what in one line, without a traceback; HYDRA_FULL_ERROR=1 shows the
            # traceback for debugging.
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"robot-rewards {command.name}: {one_line_error(exc)}", file=sys.stderr)
            raise SystemExit(1) from None

    # The run directory is the command's output_dir, and the process stays where it was started.
    # (Ours go first: hydra's parser wants a user's `--cfg job` after the overrides.)
    sys.argv = [f"robot-rewards {command.name}", "hydra.run.dir=${output_dir}",
                "hydra.job.chdir=false", f"hydra.job.name={command.name}", *overrides]
    app()
    return result.get("value")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command, overrides = resolve_command(argv)
    run(command, overrides)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
