"""Waypoints -> timed joint trajectories, planned completely before anything moves.

Planning first means an unreachable target is reported with the arm still at rest, and the
same plan can be executed by the simulator or sent to a real controller as trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rewards.primitives.config import MotionConfig
from robot_rewards.primitives.waypoints import Waypoint, waypoints
from robot_rewards.robots.kinematics import ArmKinematics, down_quat, wrap_gripper_yaw

SAMPLE_DT = 0.02  # s between trajectory points (50 Hz, a usual controller input rate)
MIN_JERK_PEAK = 1.875  # peak / mean velocity of a minimum-jerk profile
MAX_JOINT_JUMP = 0.5  # rad between neighbouring samples: the IK switched branches (a flip)


class UnreachableError(RuntimeError):
    """A waypoint has no IK solution within joint limits, or the path through it jumps."""


@dataclass(eq=False)
class ArmSegment:
    """Joint positions (T, dof) at `times` (T,) seconds from the segment start."""

    times: np.ndarray
    positions: np.ndarray
    label: str = ""

    @property
    def duration(self) -> float:
        return float(self.times[-1])


@dataclass(frozen=True)
class GripperSegment:
    """Command the gripper opening `width` (m) and wait `duration` seconds."""

    width: float
    duration: float
    label: str = ""


Segment = ArmSegment | GripperSegment


def min_jerk(n: int) -> np.ndarray:
    """Progress in [0, 1] at n evenly spaced times of a minimum-jerk (smooth start/stop) move."""
    tau = np.linspace(0.0, 1.0, n)
    return 10 * tau**3 - 15 * tau**4 + 6 * tau**5


def _times(duration: float) -> np.ndarray:
    n = max(2, int(np.ceil(duration / SAMPLE_DT)) + 1)
    return np.linspace(0.0, duration, n)


def joint_move(q0, q1, cfg: MotionConfig, cart_dist: float = 0.0, label: str = "") -> ArmSegment:
    """Smooth joint-space move whose peak joint and gripper speeds stay under the limits."""
    q0, q1 = np.asarray(q0, dtype=np.float64), np.asarray(q1, dtype=np.float64)
    duration = MIN_JERK_PEAK * max(
        np.max(np.abs(q1 - q0)) / cfg.max_joint_speed, cart_dist / cfg.free_speed
    )
    times = _times(max(duration, 0.2))
    s = min_jerk(len(times))[:, None]
    return ArmSegment(times, q0 + s * (q1 - q0), label)


def linear_move(kin: ArmKinematics, q0, p0, p1, quat, cfg: MotionConfig, label: str = "") -> ArmSegment:
    """Straight-line gripper motion from p0 to p1 with fixed orientation, IK at every sample.

    Timed for the Cartesian speed limit first, then slowed down uniformly wherever the
    joints would have to move faster than `cfg.max_joint_speed` (near singular poses).
    """
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    dist = float(np.linalg.norm(p1 - p0))
    times = _times(max(MIN_JERK_PEAK * dist / cfg.linear_speed, 0.2))
    q = np.asarray(q0, dtype=np.float64)
    out = [q]
    for s in min_jerk(len(times))[1:]:
        target = p0 + s * (p1 - p0)
        q_next = kin.ik(target, quat, seed=q)
        if q_next is None:
            raise UnreachableError(f"{label}: no IK solution at {np.round(target, 3).tolist()}")
        if np.max(np.abs(q_next - q)) > MAX_JOINT_JUMP:
            raise UnreachableError(f"{label}: IK jumps near {np.round(target, 3).tolist()}")
        q = q_next
        out.append(q)
    positions = np.stack(out)
    speed = np.max(np.abs(np.diff(positions, axis=0)) / np.diff(times)[:, None])
    if speed > cfg.max_joint_speed:
        times = times * (speed / cfg.max_joint_speed)
    return ArmSegment(times, positions, label)


def plan(
    kin: ArmKinematics, waypoints: list[Waypoint], q_start, cfg: MotionConfig, home=None,
    wrap: bool = True,
) -> list[Segment]:
    """Timed segments that visit every waypoint from `q_start` and return to `home` (default:
    the arm's home).

    With `wrap`, gripper yaws are first mapped to [-pi/2, pi/2) (same grasp, centred wrist).
    """
    home = kin.home if home is None else home
    closing_below = kin.arm.gripper.closing_below
    segments: list[Segment] = []
    q = np.asarray(q_start, dtype=np.float64)
    pos = kin.fk(q)[:3, 3]
    for wp in waypoints:
        quat = down_quat(wrap_gripper_yaw(wp.yaw) if wrap else wp.yaw)
        if wp.linear:
            seg = linear_move(kin, q, pos, wp.position, quat, cfg, wp.label)
        else:
            q_goal = kin.ik(wp.position, quat, seed=q)
            if q_goal is None:
                raise UnreachableError(
                    f"{wp.label}: no IK solution at {np.round(wp.position, 3).tolist()}"
                )
            dist = float(np.linalg.norm(np.asarray(wp.position) - pos))
            seg = joint_move(q, q_goal, cfg, dist, wp.label)
        segments.append(seg)
        q, pos = seg.positions[-1], np.asarray(wp.position, dtype=np.float64)
        if wp.gripper is not None:
            closing = wp.gripper < closing_below
            duration = cfg.gripper_close_s if closing else cfg.gripper_open_s
            segments.append(GripperSegment(wp.gripper, duration, wp.label))
    segments.append(joint_move(q, home, cfg, float(np.linalg.norm(kin.fk(home)[:3, 3] - pos)), "home"))
    return segments


def plan_primitive(kin: ArmKinematics, primitive, q_start, cfg: MotionConfig, home=None) -> list[Segment]:
    """Plan a primitive; if the wrist cannot reach a grasp yaw, try the same grasp turned by
    a half turn (the parallel gripper is symmetric), which often stays inside the joint limits."""
    wps = waypoints(primitive, cfg.approach_height, kin.arm.gripper)
    try:
        return plan(kin, wps, q_start, cfg, home)
    except UnreachableError as first:
        flipped = [Waypoint(w.position, wrap_gripper_yaw(w.yaw) + np.pi, w.linear, w.gripper, w.label)
                   for w in wps]
        try:
            return plan(kin, flipped, q_start, cfg, home, wrap=False)
        except UnreachableError:
            raise first from None
