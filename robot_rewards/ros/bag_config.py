"""Structured configs of `robot-rewards bag export` and `robot-rewards bag replay`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict

from omegaconf import MISSING

from robot_rewards.ros import config as topics
from robot_rewards.sim.config import SimConfig
from robot_rewards.sim.expert_config import ExpertConfig

_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"


@dataclass
class BagExportConfig(ExpertConfig):
    """`robot-rewards bag export [episodes=FILE episode=0] [task=... seed=...] [out=DIR]`.

    With `episodes`, exports one episode of a collect-demos HDF5 file; without it, runs the
    scripted expert on `task` from `seed` and exports that episode.
    """

    episodes: str = ""  # collect-demos HDF5 file ('' = record a fresh expert episode)
    episode: int = 0  # index of the episode in that file
    task: str = "place_block"
    seed: int = 0
    camera: str = ""  # camera to export ('' = the first)
    out: str = ""  # bag folder; default <output_dir>/episode_bag
    storage: str = "mcap"  # mcap | sqlite3
    start_time: float = 1_700_000_000.0  # s: ROS time of the episode start
    frame_period: float = 2.0  # s between frames of an HDF5 episode (it stores no times)
    depth_encoding: str = "16UC1"
    with_camera_points: bool = True  # also the camera-frame cloud (like a RealSense driver)
    with_perception: bool = True  # also the base-frame cloud the perception node would publish
    base_frame: str = topics.BASE_FRAME
    ee_frame: str = topics.EE_FRAME
    # Candidate sets on /policy/candidates (robot_rewards_interfaces/CandidateSet), one per step,
    # so `bag replay` with scorers has decisions to score: candidate 0 is the executed primitive,
    # the others the policy checkpoint's samples in that step's perceived cloud (needs
    # with_perception). 'auto' = checkpoints/policy_<task>.json where it exists; '' = none.
    policy_checkpoint: str = "auto"
    n_candidates: int = 8  # per set, the executed primitive included
    inference_steps: int = 0  # policy denoising steps (0 = the checkpoint's)
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("bag-export")


@dataclass
class BagReplayConfig:
    """`robot-rewards bag replay bag=BAG [+state_rewards.clip=clip?model=...] [+scorers.pref=CKPT]`.

    Reward models are named entries (the `+` adds a key to the empty mapping): each state
    reward gives a per-frame column in rewards.csv; scorers re-score recorded candidate sets.
    Both are resolved by the reward registry (robot_rewards.rewards.registry). Bags from other
    sensors: `cloud_topic=/lidar/points` perceives a PointCloud2 instead of colour + depth, and
    `+perception.<field>=...` sets PerceptionConfig fields (e.g. table=ransac, table_up).
    """

    bag: str = MISSING  # rosbag2 folder (sqlite3 or MCAP), from a real robot or from sim
    color_topic: str = topics.COLOR_TOPIC
    depth_topic: str = topics.DEPTH_TOPIC
    camera_info_topic: str = topics.COLOR_INFO_TOPIC
    # PointCloud2 topic to perceive instead of colour + depth (a lidar, a depth camera's driver
    # cloud); its frame_id (or camera_frame) is placed in base_frame by the bag's TF or
    # extrinsics_file. '' = colour + depth.
    cloud_topic: str = ""
    goal_topic: str = topics.GOAL_TOPIC
    candidates_topic: str = topics.CANDIDATES_TOPIC
    goal: str = ""  # goal sentence; '' = the latest on goal_topic in the bag
    base_frame: str = topics.BASE_FRAME
    camera_frame: str = ""  # '' = the images' frame_id
    extrinsics_file: str = ""  # base-to-camera YAML instead of the bag's TF
    perception_from_checkpoint: str = ""  # policy checkpoint whose perception settings to use
    # PerceptionConfig fields set over those (e.g. +perception.table=ransac '+perception.table_up=[0,1,0]')
    perception: Dict[str, Any] = field(default_factory=dict)
    n_points: int = 2048
    voxel_size: float = 0.005
    sync_slop: float = 0.05
    tf_tolerance: float = 0.2
    state_rewards: Dict[str, str] = field(default_factory=dict)  # column -> family?key=value or module:factory
    scorers: Dict[str, str] = field(default_factory=dict)  # name -> scorer checkpoint (any family)
    device: str = "cpu"
    plot: bool = True
    # log each candidate set (its cloud and images, the candidates coloured by the first scorer's
    # score, else by the recorded utilities; the recorded choice and rejections) to Rerun: an
    # .rrd file, or 'live' for a viewer ('' = off)
    rerun: str = ""
    seed: int = 0
    output_dir: str = _OUT.format("bag-replay")


RESERVED_COLUMNS = ("frame", "stamp_ns", "time_s", "n_points", "padded")
