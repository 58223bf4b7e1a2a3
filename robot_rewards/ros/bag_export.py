"""A recorded sim episode -> rosbag2 with the topics the nodes use (no ROS needed).

Per frame k (stamp = start_time + time of frame k): colour and depth images with their
camera_info, the camera-frame cloud (optional), joint states, the hand's /tf, and the
base-frame cloud exactly as the perception node computes it from those messages (optional).
Once: /tf_static (base -> camera optical frame) and /goal. Per step k, as robot_rewards_interfaces
messages: a candidate set on /policy/candidates stamped with frame k's cloud (candidate 0 the
executed primitive, chosen; the others sampled by the policy checkpoint in that cloud), and
the executor's status on /executor/status just before frame k+1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_rewards.core.camera import CameraModel
from robot_rewards.core.candidates import Candidates
from robot_rewards.core.paths import resolve
from robot_rewards.core.primitives import InvalidPrimitiveError, Primitive
from robot_rewards.data.episodes import EpisodeReader, reading
from robot_rewards.perception.pointcloud import InvalidDepthError, backproject
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.robots.kinematics import ArmKinematics
from robot_rewards.robots.registry import get_arm
from robot_rewards.ros import config as topics
from robot_rewards.ros.bag_config import BagExportConfig
from robot_rewards.ros.bag_io import BagWriter
from robot_rewards.ros.config import PerceptionNodeConfig
from robot_rewards.ros.convert_cloud import points_to_msg
from robot_rewards.ros.convert_common import ROSBAGS_TYPES as TYPES
from robot_rewards.ros.convert_image import camera_info_to_msg, depth_to_msg, image_to_msg
from robot_rewards.ros.convert_interfaces import candidate_set_to_msg, executor_status_to_msg
from robot_rewards.ros.convert_motion import StampedTransform, joint_state_to_msg, transforms_to_tf_msg
from robot_rewards.ros.payloads import CandidateSet, ExecutorStatus
from robot_rewards.ros.perception_core import PerceptionCore
from robot_rewards.selection.decider import decision_seed
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.expert_config import expert_config
from robot_rewards.sim.rollout import run_expert_episode

_MS = 1_000_000
SELECTOR = "bag_export: candidate 0 is the executed primitive, the others policy samples"


@dataclass(eq=False)
class EpisodeFrames:
    """One episode, whatever its source: frames k = 0..T and steps k = 0..T-1."""

    camera: CameraModel
    goal: str
    primitive: str
    times: list[float]  # s from the episode start, per frame
    rgb: list[np.ndarray]
    depth: list[np.ndarray]
    joint_positions: list[np.ndarray]
    gripper_width: list[float]
    actions: list[np.ndarray] = field(default_factory=list)
    executed: list[bool] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def episode_from_file(path: str, index: int, camera: str, frame_period: float) -> EpisodeFrames:
    """Episode `index` of a collect-demos HDF5 file (frames `frame_period` seconds apart)."""
    with EpisodeReader(path) as reader:
        if not 0 <= index < len(reader):
            raise ValueError(f"{path} holds {len(reader)} episodes; episode={index} does not exist")
        cameras = reader.cameras()
        name = camera or next(iter(cameras))
        if name not in cameras:
            raise ValueError(f"{path} has no camera '{name}' (has {sorted(cameras)})")
        with reading(path, f"episode {index}"):  # a damaged chunk names the file
            g = reader.episode(index)
            rgb = list(np.asarray(g[f"obs/{name}/rgb"]))
            n = len(rgb)
            return EpisodeFrames(
                cameras[name], str(g.attrs["goal"]), reader.primitive, [k * frame_period for k in range(n)], rgb,
                list(np.asarray(g[f"obs/{name}/depth"])), list(np.asarray(g["obs/joint_positions"])),
                [float(w) for w in np.asarray(g["obs/gripper_width"])], list(np.asarray(g["actions"])),
                [bool(e) for e in np.asarray(g["executed"])],
                [r.decode() if isinstance(r, bytes) else str(r) for r in np.asarray(g["reasons"])])


def record_episode(cfg: BagExportConfig) -> EpisodeFrames:
    """Run the scripted expert on cfg.task from cfg.seed and keep its frames and steps."""

    observations, steps = [], []
    with TabletopEnv(cfg.task, cfg.sim) as env:
        name = cfg.camera or env.world.camera.name
        if name not in env.world.cameras:
            raise ValueError(f"unknown sim camera '{name}'; configured: {sorted(env.world.cameras)}")
        outcome = run_expert_episode(env, cfg.seed, expert_config(cfg), observations.append, steps.append)
        camera = env.world.cameras[name]
        primitive = env.task.primitive
    t0 = observations[0].timestamp
    return EpisodeFrames(
        camera, outcome.goal, primitive, [o.timestamp - t0 for o in observations],
        [o.frames[name].rgb for o in observations], [o.frames[name].depth for o in observations],
        [o.proprio.joint_positions for o in observations], [o.proprio.gripper_width for o in observations],
        [s.primitive.params if s.primitive is not None else np.full(0, np.nan) for s in steps],
        [s.executed for s in steps], [s.reason for s in steps])


def export_episode(episode: EpisodeFrames, out: str | Path, cfg: BagExportConfig) -> dict:
    """Write the episode as a rosbag2; returns {topic: message count}."""
    if cfg.depth_encoding not in ("16UC1", "32FC1"):
        raise ValueError(f"depth_encoding must be 16UC1 or 32FC1, got '{cfg.depth_encoding}'")
    camera = episode.camera
    frame = camera.frame_id
    start_ns = int(round(cfg.start_time * 1e9))
    stamps = [start_ns + int(round(t * 1e9)) for t in episode.times]
    policy = candidate_policy(cfg, episode)
    perception = None
    if cfg.with_perception:
        # the policy's perception settings, so its samples see the cloud it was trained on
        perception = PerceptionCore(PerceptionNodeConfig(
            base_frame=cfg.base_frame, max_rate=0.0,
            perception_from_checkpoint=str(policy_path(cfg)) if policy is not None else ""), TYPES)
    kin = ArmKinematics(get_arm(cfg.sim.arm))  # the arm the episode was recorded with
    try:
        with BagWriter(out, cfg.storage) as bag:
            tf_static = transforms_to_tf_msg(
                [StampedTransform.from_matrix(camera.base_T_camera, cfg.base_frame, frame,
                                              divmod(stamps[0], 1_000_000_000))], TYPES)
            bag.write("/tf_static", tf_static, stamps[0])
            bag.write(topics.GOAL_TOPIC, TYPES.new("std_msgs/msg/String", data=episode.goal), stamps[0])
            if perception is not None:
                perception.on_tf(tf_static, static=True)
            for k, stamp in enumerate(stamps):
                obs = _write_frame(bag, episode, k, stamp, cfg, kin, perception)
                if k < len(episode.actions):
                    _write_step(bag, episode, k, stamp, stamps[k + 1] if k + 1 < len(stamps) else stamp + 1000 * _MS,
                                (policy, obs, cfg))
            counts = dict(bag.counts)
    finally:
        kin.close()
    return counts


def _write_frame(bag: BagWriter, ep: EpisodeFrames, k: int, stamp: int, cfg: BagExportConfig, kin, perception):
    """Write frame k's sensor messages; returns the perceived observation (None without one)."""
    camera = ep.camera
    header = (camera.frame_id, divmod(stamp, 1_000_000_000))
    color = image_to_msg(ep.rgb[k], "rgb8", header, TYPES)
    depth = depth_to_msg(ep.depth[k], header, TYPES, encoding=cfg.depth_encoding)
    info = camera_info_to_msg(camera.intrinsics, header, TYPES)
    q = np.asarray(ep.joint_positions[k], dtype=np.float64)
    w = float(ep.gripper_width[k])
    names = [*kin.arm.joint_names, *kin.arm.gripper.finger_joints]
    joints = joint_state_to_msg(names, [*q, w / 2, w / 2], ("", header[1]), TYPES)
    hand = transforms_to_tf_msg([StampedTransform.from_matrix(kin.fk(q, kin.hand_link), cfg.base_frame, cfg.ee_frame,
                                                              header[1])], TYPES)
    bag.write(topics.COLOR_TOPIC, color, stamp)
    bag.write(topics.COLOR_INFO_TOPIC, info, stamp)
    bag.write(topics.DEPTH_TOPIC, depth, stamp)
    bag.write(topics.DEPTH_INFO_TOPIC, camera_info_to_msg(camera.intrinsics, header, TYPES), stamp)
    bag.write(topics.JOINT_STATES_TOPIC, joints, stamp)
    bag.write("/tf", hand, stamp)
    if cfg.with_camera_points:
        try:
            cloud = backproject(ep.depth[k], camera.intrinsics, rgb=ep.rgb[k], camera_name=camera.name)
            bag.write(topics.CAMERA_POINTS_TOPIC, points_to_msg(cloud.points, header, TYPES, rgb=cloud.colors), stamp)
        except InvalidDepthError:
            pass  # nothing to publish for a frame without depth, as a driver would
    if perception is not None:
        perception.on_tf(hand)
        perception.on_camera_info(info)
        perception.on_color(color)
        perceived = perception.on_depth(depth)
        if perceived is not None:
            bag.write(topics.CLOUD_TOPIC, perceived.msg, stamp)
            perceived.observation.goal = ep.goal
            return perceived.observation
    return None


def policy_path(cfg: BagExportConfig) -> Path | None:
    """The checkpoint that samples the candidate sets (None: no candidate sets)."""
    if cfg.policy_checkpoint == "auto":
        path = resolve(f"checkpoints/policy_{cfg.task}.json")
        return path if path.exists() else None
    return resolve(cfg.policy_checkpoint) if cfg.policy_checkpoint else None


def candidate_policy(cfg: BagExportConfig, episode: EpisodeFrames):
    """The policy sampling the candidate sets, or None (no checkpoint, or no perceived cloud to
    sample in); a checkpoint for another primitive is a ValueError."""
    path = policy_path(cfg)
    if path is None:
        return None
    if not cfg.with_perception:
        raise ValueError("candidate sets are sampled in the perceived cloud: policy_checkpoint needs "
                         "with_perception=true (or set policy_checkpoint='')")
    if cfg.n_candidates < 1:
        raise ValueError(f"n_candidates must be >= 1, got {cfg.n_candidates}")
    policy = load_policy(path, primitive=episode.primitive).policy
    if cfg.inference_steps:
        policy.config.inference_steps = cfg.inference_steps
    return policy


def step_candidates(policy, obs, action: np.ndarray, name: str, n: int, seed: int) -> Candidates:
    """Candidate 0 = the executed action; candidates 1..n-1 the policy's samples in `obs`."""
    params, seeds, clipped = [np.asarray(action, np.float64)[None]], [-1], [False]
    if n > 1:
        sampled = policy.sample(obs, n - 1, seed=seed)
        params.append(sampled.params)
        seeds.extend(int(s) for s in sampled.seeds)
        clipped.extend(bool(c) for c in sampled.clipped)
    return Candidates(name, np.concatenate(params), np.asarray(seeds, np.int64), np.asarray(clipped, bool))


def _write_step(bag: BagWriter, ep: EpisodeFrames, k: int, stamp: int, next_stamp: int, sampling) -> None:
    try:
        primitive = Primitive(ep.primitive, ep.actions[k])
    except InvalidPrimitiveError:
        return  # a malformed action vector was never sent to the executor
    policy, obs, cfg = sampling
    sent = stamp + _MS
    if policy is not None and obs is not None:
        cands = step_candidates(policy, obs, primitive.params, ep.primitive, cfg.n_candidates,
                                decision_seed(cfg.seed, k))
        cset = CandidateSet(k, divmod(stamp, 1_000_000_000), ep.goal, cands, chosen=0, selector=SELECTOR)
        bag.write(topics.CANDIDATES_TOPIC, candidate_set_to_msg(cset, TYPES, cfg.base_frame), sent)
    done = max(sent + 1, next_stamp - _MS)
    executed = ep.executed[k] if k < len(ep.executed) else True
    status = ExecutorStatus(k, "succeeded" if executed else "failed", 0 if executed else -1,
                            "" if executed else ep.reasons[k], stamp=divmod(done, 1_000_000_000))
    bag.write(topics.EXECUTOR_STATUS_TOPIC, executor_status_to_msg(status, TYPES), done)
