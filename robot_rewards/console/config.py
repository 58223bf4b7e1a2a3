"""`robot-rewards console` settings (a hydra structured config)."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field

from robot_rewards.robots.registry import DEFAULT_ARM, get_arm
from robot_rewards.sim.config import SimConfig

MODES = ("rank", "pairwise")
WINDOW = ("auto", "on", "off")
BACKENDS = ("sim", "ros")
PAIR_SELECTION = ("uniform", "disagreement", "entropy")  # robot_rewards.preferences.query_selection
ROS_SOURCES = ("policy", "local")


@dataclass
class RosConsoleConfig:
    """`backend=ros`: where the console meets the live ROS 2 graph (`ros.<field>=...`).

    Topic defaults are the nodes' (robot_rewards.ros.config; spelled out here so the CLI does
    not import the ROS package to parse its arguments; a test checks they agree).
    source "policy": each query is a candidate set the policy node published (its cloud, its
    candidates, its scores); "local": the console samples its own candidates (`checkpoint`) in
    the latest cloud, for labelling without a policy node.
    execute_action: the executor's ExecutePrimitive action (robot_rewards_interfaces). In a graph
    launched with console:=true the policy only proposes, so the operator's choice is what
    runs; in an autonomous graph the executor refuses goals while it runs the policy's own.
    """

    node_name: str = "console_operator"
    source: str = "policy"
    candidates_topic: str = "/policy/candidates"
    execute_action: str = "/executor/execute"
    status_topic: str = "/executor/status"
    decision_cloud_topic: str = "/policy/cloud"  # the cloud each candidate set was sampled in (latched)
    cloud_topic: str = "/perception/points"  # source=local: the latest cloud
    color_topic: str = "/camera/color/image_raw"
    depth_topic: str = "/camera/depth/image_rect_raw"
    camera_info_topic: str = "/camera/color/camera_info"
    goal_topic: str = "/goal"
    base_frame: str = get_arm(DEFAULT_ARM).base_frame
    camera_frame: str = ""  # "" = the camera_info's frame_id
    extrinsics_file: str = ""  # base -> camera YAML used instead of TF ("" = TF)
    sync_slop: float = 0.05  # s: colour and depth stamps further apart are not paired
    tf_tolerance: float = 0.5  # s: a moving camera's pose further from the image stamp is stale
    candidates_timeout: float = 60.0  # s to wait for the next candidate set before giving up
    data_timeout: float = 10.0  # s to wait for a cloud / camera image
    execute_timeout: float = 120.0  # s to wait for the executor's final status of a primitive

    def __post_init__(self):
        if self.source not in ROS_SOURCES:
            raise ValueError(f"ros.source must be one of {', '.join(ROS_SOURCES)}, got '{self.source}'")
        for name in ("candidates_timeout", "data_timeout", "execute_timeout", "sync_slop", "tf_tolerance"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ros.{name} must be positive, got {getattr(self, name)}")
        if not self.execute_action or not self.candidates_topic:
            raise ValueError("ros.execute_action and ros.candidates_topic must be set")


@dataclass
class ConsoleConfig:
    """`robot-rewards console task=place_block mode=rank queries=20 window=off`.

    In the sim without `execute_after_label`, every query is a fresh scene (episode seeds
    seed, seed+1, ...); with it, the top-ranked candidate is executed after each answer so the
    scene evolves, and a new episode starts when the task is done or out of steps.
    With backend=ros each query is the live graph's next candidate set (see RosConsoleConfig).
    """

    task: str = "place_block"
    checkpoint: str = ""  # policy checkpoint; "" = the shipped checkpoints/policy_<task>.json
    scorer: str | None = None  # preference-scorer checkpoint whose scores are shown (optional)
    store: str = "outputs/preferences"  # preference store root (SQLite)
    labeller: str = ""  # "" = $USER
    mode: str = "rank"  # "rank" (best remaining, DeformPAM) or "pairwise" (A/B, tie, can't tell)
    n_candidates: int = 8  # backend=ros, ros.source=policy: the policy node's sets decide
    queries: int = 20  # stop after this many answered or skipped queries
    seed: int = 0
    window: str = "auto"  # OpenCV window: "auto" = only where a display exists; current.png always
    backend: str = "sim"  # "sim" (PyBullet) or "ros" (the live ROS 2 graph; settings in `ros`)
    pair_selection: str = "uniform"  # pairwise mode: "uniform", or "disagreement"/"entropy" (needs scorer)
    execute_after_label: bool = False
    prefetch: bool = True  # prepare the next query in the background while the operator answers
    display_width: int = 960  # the overlay is upscaled to this width for readability
    camera: str = ""  # camera shown and used for clicks; "" = the first one
    rerun: str = ""  # log each query and answer to Rerun: an .rrd file, or 'live' for a viewer ('' = off)
    jog_max_cm: float = 10.0  # largest jog per command, per axis
    demo_grasp_depth: float = 0.02  # m below the clicked surface a demonstrated pick grasps
    demo_place_height: float = 0.03  # m above the clicked surface a demonstration releases
    device: str = "cpu"
    torch_threads: int = 1  # the sim and the operator share small CPUs; one thread is enough
    sim: SimConfig = field(default_factory=SimConfig)
    ros: RosConsoleConfig = field(default_factory=RosConsoleConfig)
    output_dir: str = "outputs/console/${now:%Y-%m-%d_%H-%M-%S}"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got '{self.mode}'")
        if self.window not in WINDOW:
            raise ValueError(f"window must be one of {', '.join(WINDOW)}, got '{self.window}'")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got '{self.backend}'")
        if self.pair_selection not in PAIR_SELECTION:
            raise ValueError(f"pair_selection must be one of {', '.join(PAIR_SELECTION)}, "
                             f"got '{self.pair_selection}'")
        if self.n_candidates < 2:
            raise ValueError(f"n_candidates must be >= 2 to compare candidates, got {self.n_candidates}")
        if self.queries < 1:
            raise ValueError(f"queries must be >= 1, got {self.queries}")

    def checkpoint_path(self) -> str:
        """The policy checkpoint to load (the shipped one for the task unless given)."""
        return self.checkpoint or f"checkpoints/policy_{self.task}.json"

    def labeller_name(self) -> str:
        """Who is labelling: `labeller`, else $USER, else the login name."""
        if self.labeller:
            return self.labeller
        try:
            return os.environ.get("USER") or getpass.getuser()
        except Exception:  # no user database entry (some containers)
            return "operator"
