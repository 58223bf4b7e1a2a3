"""Perception + reward models over a recorded rosbag2 (real robot or sim), frame by frame.

Messages go through PerceptionCore in bag order, exactly as they would through the live
perception node (same synchronisation, TF handling and error checks), so every frame the node
would have turned into a cloud gets a row, and every frame it would have dropped is counted
with the reason. Each row holds the goal rewards of the configured state rewards; candidate
sets recorded from the policy node (robot_rewards_interfaces/CandidateSet; std_msgs/String JSON
in older bags) or written by `bag export` are re-scored by the configured scorers in the cloud
they were sampled in.
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from robot_rewards.core.observation import Observation
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.perception.pipeline import perceive_points
from robot_rewards.perception.pointcloud import PerceptionError, transform_points
from robot_rewards.rewards.base import ScoreSet
from robot_rewards.ros.bag_config import RESERVED_COLUMNS, BagReplayConfig
from robot_rewards.ros.bag_io import BagError, bag_topics, read_messages
from robot_rewards.ros.config import PerceptionNodeConfig
from robot_rewards.ros.convert_cloud import msg_to_points
from robot_rewards.ros.convert_common import ROSBAGS_TYPES, MessageConversionError, stamp_to_ns
from robot_rewards.ros.convert_interfaces import candidate_set_from_msg
from robot_rewards.ros.payloads import CandidateSet, ns_of_stamp
from robot_rewards.ros.perception_core import PerceivedFrame, PerceptionCore
from robot_rewards.ros.tf_tree import TransformError
from robot_rewards.selection.decider import Decision

log = logging.getLogger(__name__)
OBS_CACHE = 64  # perceived frames kept for candidate sets recorded after them


@dataclass
class ReplayResult:
    """Per-frame rows, per-decision rows and why frames or messages were dropped."""

    rows: list[dict] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)
    dropped: dict = field(default_factory=dict)
    messages: Counter = field(default_factory=Counter)
    reward_columns: list[str] = field(default_factory=list)
    goal: str = ""


def perception_node_config(cfg: BagReplayConfig) -> PerceptionNodeConfig:
    """The perception node settings a replay runs with (every frame pair, no rate limit)."""
    return PerceptionNodeConfig(
        color_topic=cfg.color_topic, depth_topic=cfg.depth_topic, camera_info_topic=cfg.camera_info_topic,
        base_frame=cfg.base_frame, camera_frame=cfg.camera_frame, extrinsics_file=cfg.extrinsics_file,
        perception_from_checkpoint=cfg.perception_from_checkpoint, sync_slop=cfg.sync_slop,
        tf_tolerance=cfg.tf_tolerance, max_rate=0.0, n_points=cfg.n_points, voxel_size=cfg.voxel_size,
        seed=cfg.seed, device="auto")


def check_replay_topics(cfg: BagReplayConfig, bag_info: Mapping[str, tuple[str, int]]) -> None:
    """BagError unless the bag has messages on the topics a replay needs (colour, depth and
    camera_info, or cloud_topic; /tf or /tf_static unless extrinsics_file is given), naming the
    missing ones, the settings that choose them, and every topic the bag does have."""
    needed = ({"cloud_topic": cfg.cloud_topic} if cfg.cloud_topic else
              {"color_topic": cfg.color_topic, "depth_topic": cfg.depth_topic, "camera_info_topic": cfg.camera_info_topic})
    missing = [f"{topic} ({setting})" for setting, topic in needed.items() if bag_info.get(topic, ("", 0))[1] == 0]
    if not cfg.extrinsics_file and not any(bag_info.get(t, ("", 0))[1] for t in ("/tf", "/tf_static")):
        missing.append("/tf or /tf_static (or give extrinsics_file)")
    if missing:
        have = ", ".join(f"{t} ({kind}, {n})" for t, (kind, n) in sorted(bag_info.items())) or "none"
        raise BagError(f"{cfg.bag} has no messages on {', '.join(missing)}; the bag's topics: {have}")


def perception_overrides(base: PerceptionConfig, overrides: Mapping[str, object]) -> PerceptionConfig:
    """`base` with the named PerceptionConfig fields replaced; unknown names are a ValueError
    listing the known ones."""
    known = {f.name for f in fields(PerceptionConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"perception: unknown setting(s) {unknown}; known: {sorted(known)}")
    return replace(base, **dict(overrides))


def _score_state(model, obs: Observation, goal: str) -> float:
    value = np.asarray(model.score_states([obs], goal), dtype=np.float64).reshape(-1)
    if value.size != 1 or not np.isfinite(value[0]):
        raise ValueError(f"returned {value.tolist()} for one observation")
    return float(value[0])


def replay(cfg: BagReplayConfig, state_rewards: Mapping[str, object], scorers: Mapping[str, object],
           decision_log=None) -> ReplayResult:
    """Run perception and the given models over `cfg.bag` (models already loaded).

    decision_log: a viz.rerun_log.DecisionLog that each candidate set is logged to as a
    decision (`candidate_set_decision`), in the cloud it was sampled in (None: no recording)."""
    clash = sorted(set(state_rewards) & set(RESERVED_COLUMNS))
    if clash:
        raise ValueError(f"state reward names {clash} clash with the columns {list(RESERVED_COLUMNS)}")
    check_replay_topics(cfg, bag_topics(cfg.bag))
    core = PerceptionCore(perception_node_config(cfg), ROSBAGS_TYPES, log)
    core.perception = perception_overrides(core.perception, cfg.perception)
    result = ReplayResult(reward_columns=list(state_rewards), goal=cfg.goal)
    goal = cfg.goal
    recent: OrderedDict[int, Observation] = OrderedDict()
    errors: Counter = Counter()
    images = {cfg.cloud_topic} if cfg.cloud_topic else {cfg.color_topic, cfg.depth_topic, cfg.camera_info_topic}
    topics = images | {"/tf", "/tf_static", cfg.goal_topic, cfg.candidates_topic}
    t0 = None
    for topic, _, msg in read_messages(cfg.bag, topics, skipped=errors):
        result.messages[topic] += 1
        frame = None
        if topic == cfg.goal_topic and not cfg.goal:
            goal = str(msg.data)
            result.goal = goal
        elif topic == "/tf":
            core.on_tf(msg, False)
        elif topic == "/tf_static":
            core.on_tf(msg, True)
        elif topic == cfg.camera_info_topic and not cfg.cloud_topic:
            core.on_camera_info(msg)
        if cfg.cloud_topic:  # a point-cloud bag: colour and depth are not read
            if topic == cfg.cloud_topic:
                frame = perceive_cloud_msg(core, msg)
        elif topic == cfg.color_topic:
            frame = core.on_color(msg)
        elif topic == cfg.depth_topic:  # color and depth may share a topic name only by mistake
            frame = core.on_depth(msg)
        if topic == cfg.candidates_topic:
            _score_decision(msg, recent, scorers, result, errors, decision_log)
        if frame is None:
            continue
        obs = frame.observation
        obs.goal = goal
        recent[frame.stamp_ns] = obs
        while len(recent) > OBS_CACHE:
            recent.popitem(last=False)
        t0 = frame.stamp_ns if t0 is None else t0
        row = {"frame": len(result.rows), "stamp_ns": frame.stamp_ns, "time_s": (frame.stamp_ns - t0) / 1e9,
               "n_points": int(len(obs.points)), "padded": bool(obs.points_padded)}
        for name, model in state_rewards.items():
            try:
                row[name] = _score_state(model, obs, goal)
            except Exception as exc:  # one bad frame must not end the replay
                errors[f"reward '{name}': {type(exc).__name__}"] += 1
                log.error("frame %d: reward '%s' failed: %s", row["frame"], name, exc)
                row[name] = math.nan
        result.rows.append(row)
    report = core.report
    dropped = {f"perception: {report.examples[k]}": n for k, n in report.kinds.items() if not k.startswith("padded|")}
    dropped.update(errors)
    result.dropped = dropped
    return result


def perceive_cloud_msg(core: PerceptionCore, msg) -> PerceivedFrame | None:
    """A PointCloud2 -> PerceivedFrame through the perception stages after back-projection,
    placed in the base frame by the core's extrinsics or TF at the cloud's stamp; None after
    reporting (in core.report, like the image path) why not."""
    cfg = core.cfg
    stamp_ns = stamp_to_ns(msg.header.stamp)
    frame = cfg.camera_frame or msg.header.frame_id
    try:
        if not frame:
            raise MessageConversionError("pointcloud.header.frame_id is empty and no camera_frame is set")
        has_rgb = any(f.name in ("rgb", "rgba") for f in msg.fields)
        xyz, rgb = msg_to_points(msg, with_rgb=True, drop_nan=True) if has_rgb else (
            msg_to_points(msg, drop_nan=True), None)
    except MessageConversionError as exc:
        core.report.error("cloud", f"cloud rejected: {exc}")
        return None
    try:
        T = core.extrinsics if core.extrinsics is not None else core.tf.lookup(
            cfg.base_frame, frame, stamp_ns, cfg.tf_tolerance)
    except TransformError as exc:
        core.report.error("tf", f"no pose of '{frame}' for the cloud at {stamp_ns / 1e9:.3f} s: {exc}")
        return None
    try:
        result = perceive_points(transform_points(xyz, T), rgb, core.perception, viewpoint=T[:3, 3])
    except (PerceptionError, ValueError) as exc:
        core.report.error(type(exc).__name__, f"perception failed: {exc}")
        return None
    if result.info.padded:
        core.report.warning("padded", f"only {result.info.sampling.n_input} points after filtering; "
                            f"the cloud repeats points to reach {core.perception.n_points}")
    obs = Observation(frames={}, proprio=None, goal=core.goal, timestamp=stamp_ns / 1e9,
                      points=result.cloud.points, colors=result.cloud.colors, points_padded=result.info.padded)
    return PerceivedFrame(msg, obs, stamp_ns)


def candidate_set_decision(cset: CandidateSet, replay_scores: Mapping[str, ScoreSet]) -> Decision:
    """A recorded candidate set as a Decision: the recorded choice, ranking and rejections; the
    recorded scores per family plus the replay's (`replay_scores`, scorer name -> ScoreSet,
    under 'replay:<name>'); utilities: the first replay scorer's mean (what the replay is
    checking), else the recorded utilities (None when neither exists)."""
    n = len(cset.candidates)
    scores = {family: ScoreSet.from_members(m) for family, m in cset.scores.items()}
    scores.update({f"replay:{name}": s for name, s in replay_scores.items()})
    if replay_scores:
        utilities = np.asarray(next(iter(replay_scores.values())).mean, dtype=np.float64)
    else:
        utilities = None if cset.utilities is None else np.asarray(cset.utilities, dtype=np.float64)
    if cset.order:
        ranking = tuple(int(i) for i in cset.order)
    elif cset.utilities is not None:
        ranking = tuple(int(i) for i in np.argsort(-np.asarray(cset.utilities), kind="stable"))
    else:
        ranking = tuple(range(n))
    # rejections in the order they were tried (the recorded ranking), any others after
    tried = [i for i in ranking if i in cset.rejected] + sorted(set(cset.rejected) - set(ranking))
    return Decision(cset.candidates, scores or None, utilities, ranking,
                    tuple((int(i), str(cset.rejected[i])) for i in tried), cset.chosen, 0,
                    decision=int(cset.decision_id), method=cset.selector or "recorded")


def decision_text(cset: CandidateSet, replay_scores: Mapping[str, ScoreSet]) -> str:
    """The log line of a replayed decision: the recorded choice, and per replay scorer its best
    candidate and the rank it gives the recorded choice."""
    n = len(cset.candidates)
    head = (f"decision {cset.decision_id}: {n} candidates, recorded choice "
            + ("none" if cset.chosen is None else str(cset.chosen))
            + (f" ({cset.selector})" if cset.selector else "")
            + (f", {len(cset.rejected)} rejected" if cset.rejected else ""))
    parts = [head]
    for name, s in replay_scores.items():
        mean = np.asarray(s.mean, dtype=np.float64)
        best = int(np.argmax(mean))
        part = f"{name}: best {best} ({mean[best]:.4g})"
        if cset.chosen is not None:
            part += f", recorded choice ranks {int(np.sum(mean > mean[cset.chosen])) + 1} of {n}"
        parts.append(part)
    return "; ".join(parts)


def _score_decision(msg, recent, scorers, result: ReplayResult, errors: Counter, decision_log=None) -> None:
    try:
        if getattr(msg, "__msgtype__", "") == "std_msgs/msg/String":  # bags from before robot_rewards_interfaces
            cset = CandidateSet.from_json(msg.data)
        else:
            cset = candidate_set_from_msg(msg)
    except MessageConversionError as exc:
        errors[f"candidate set: {exc}"] += 1
        return
    if not scorers and decision_log is None:
        return
    ns = ns_of_stamp(cset.stamp)
    obs = recent.get(ns)
    if obs is None:
        earlier = [s for s in recent if s <= ns]
        if not earlier:
            errors["candidate set without its cloud in the bag"] += 1
            return
        obs = recent[max(earlier)]
    obs = Observation(frames=obs.frames, proprio=None, goal=cset.goal or obs.goal, timestamp=obs.timestamp,
                      points=obs.points, colors=obs.colors)
    replay_scores: dict[str, ScoreSet] = {}
    for name, scorer in scorers.items():
        try:
            replay_scores[name] = scored = scorer.score(obs, cset.candidates)
        except Exception as exc:
            errors[f"scorer '{name}': {type(exc).__name__}"] += 1
            log.error("decision %d: scorer '%s' failed: %s", cset.decision_id, name, exc)
            continue
        mean = scored.mean
        best = int(np.argmax(mean))
        result.decisions.append({
            "decision": cset.decision_id, "stamp_ns": ns, "model": name, "n": len(mean), "best": best,
            "best_score": float(mean[best]), "chosen": "" if cset.chosen is None else cset.chosen,
            "chosen_score": "" if cset.chosen is None else float(mean[cset.chosen]),
            "chosen_rank": "" if cset.chosen is None else int(np.sum(mean > mean[cset.chosen])) + 1,
        })
    if decision_log is not None:
        decision_log.log_decision(obs, candidate_set_decision(cset, replay_scores),
                                  summary=decision_text(cset, replay_scores), stamp_ns=ns)


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot_rewards(path: Path, result: ReplayResult) -> Path:
    """Rewards (or, without reward models, cloud sizes) over time."""
    matplotlib.use("Agg")

    columns = result.reward_columns or ["n_points"]
    fig, axes = plt.subplots(len(columns), 1, figsize=(8, 2.2 * len(columns) + 0.6), sharex=True, squeeze=False)
    t = [r["time_s"] for r in result.rows]
    for ax, name in zip(axes[:, 0], columns):
        ax.plot(t, [r[name] for r in result.rows], marker=".", linewidth=1)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time since the first frame (s)")
    axes[0, 0].set_title(f"per-frame rewards: {result.goal or '(no goal)'}"[:90])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def reward_summary(result: ReplayResult) -> dict:
    """min / mean / max / first / last of each reward column (NaNs excluded)."""
    out = {}
    for name in result.reward_columns:
        values = np.array([r[name] for r in result.rows], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[name] = {"frames": int(finite.size)} if finite.size == 0 else {
            "frames": int(finite.size), "min": float(finite.min()), "mean": float(finite.mean()),
            "max": float(finite.max()), "first": float(finite[0]), "last": float(finite[-1])}
    return out
