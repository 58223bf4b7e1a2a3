"""Checks a FollowJointTrajectory goal the way a careful controller does, before anything moves.

Error codes are control_msgs/action/FollowJointTrajectory Result codes, so a client sees the
same codes from the sim bridge as from ros2_control's joint_trajectory_controller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from robot_rewards.ros.convert_motion import JointTrajectoryData

# control_msgs/action/FollowJointTrajectory Result.error_code values.
SUCCESSFUL = 0
INVALID_GOAL = -1
INVALID_JOINTS = -2
OLD_HEADER_TIMESTAMP = -3
PATH_TOLERANCE_VIOLATED = -4
GOAL_TOLERANCE_VIOLATED = -5

ERROR_NAMES = {
    SUCCESSFUL: "SUCCESSFUL",
    INVALID_GOAL: "INVALID_GOAL",
    INVALID_JOINTS: "INVALID_JOINTS",
    OLD_HEADER_TIMESTAMP: "OLD_HEADER_TIMESTAMP",
    PATH_TOLERANCE_VIOLATED: "PATH_TOLERANCE_VIOLATED",
    GOAL_TOLERANCE_VIOLATED: "GOAL_TOLERANCE_VIOLATED",
}


class TrajectoryRejected(ValueError):
    """A goal that must not be executed; `code` is the FollowJointTrajectory error code."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


@dataclass(eq=False)
class CheckedTrajectory:
    """A validated trajectory in the arm's joint order, starting at the current position (t=0)."""

    times: np.ndarray  # (T,) seconds from the start, strictly increasing, times[0] == 0
    positions: np.ndarray  # (T, J)

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    def sample(self, t: float) -> np.ndarray:
        """Joint positions at time t (linear interpolation; held at the ends)."""
        return np.array([np.interp(t, self.times, self.positions[:, j]) for j in range(self.positions.shape[1])])


def check_trajectory(traj: JointTrajectoryData, joint_names: Sequence[str], q_now, lower, upper,
                     start_tolerance: float) -> CheckedTrajectory:
    """Validate and reorder a trajectory for an arm with `joint_names` at `q_now`.

    Rejected (TrajectoryRejected): unknown/missing joint names (INVALID_JOINTS); no points,
    no positions, non-finite values, positions outside the joint limits, times not strictly
    increasing, or a first point at t=0 further than `start_tolerance` from the arm
    (INVALID_GOAL). A first point after t=0 is reached from the current position.
    """
    names = list(traj.names)
    expected = list(joint_names)
    if sorted(names) != sorted(expected):
        missing = sorted(set(expected) - set(names))
        extra = sorted(set(names) - set(expected))
        raise TrajectoryRejected(INVALID_JOINTS, f"joint names {names} do not match the arm's {expected} "
                                 f"(missing {missing}, unknown {extra})")
    if traj.positions is None or len(traj.time_from_start) == 0:
        raise TrajectoryRejected(INVALID_GOAL, "trajectory has no points with positions")
    order = [names.index(n) for n in expected]
    positions = np.asarray(traj.positions, dtype=np.float64)[:, order]
    times = np.asarray(traj.time_from_start, dtype=np.float64)
    if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(times))):
        raise TrajectoryRejected(INVALID_GOAL, "trajectory has NaN/inf positions or times")
    if np.any(times < 0) or (len(times) > 1 and not np.all(np.diff(times) > 0)):
        raise TrajectoryRejected(INVALID_GOAL, f"time_from_start must be >= 0 and strictly increasing, got "
                                 f"{np.round(times[:6], 4).tolist()}...")
    lower, upper = np.asarray(lower), np.asarray(upper)
    outside = np.argwhere((positions < lower - 1e-6) | (positions > upper + 1e-6))
    if len(outside):
        k, j = outside[0]
        raise TrajectoryRejected(INVALID_GOAL, f"point {k}: {expected[j]} = {positions[k, j]:.4f} rad is outside "
                                 f"its limits [{lower[j]:.4f}, {upper[j]:.4f}]")
    q_now = np.asarray(q_now, dtype=np.float64)
    if times[0] == 0.0:
        jump = float(np.max(np.abs(positions[0] - q_now)))
        if jump > start_tolerance:
            raise TrajectoryRejected(INVALID_GOAL, f"first point (t=0) is {jump:.3f} rad from the current "
                                     f"position (start tolerance {start_tolerance} rad)")
        positions = positions.copy()
        positions[0] = q_now
    else:
        times = np.concatenate([[0.0], times])
        positions = np.vstack([q_now, positions])
    return CheckedTrajectory(times, positions)
