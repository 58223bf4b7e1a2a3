"""Checks a FollowJointTrajectory goal the way a careful controller does, before anything moves.

Error codes are control_msgs/action/FollowJointTrajectory Result codes, so a client sees the
same codes from the sim bridge as from ros2_control's joint_trajectory_controller. Tolerances
follow that controller too: one path and one goal position tolerance per joint (<= 0: not
checked), which a goal's `path_tolerance` / `goal_tolerance` entries override by joint name
(position > 0 replaces, 0 keeps the default, < 0 turns the check off).
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


@dataclass(frozen=True, eq=False)
class Tolerances:
    """Position tolerances (rad) per arm joint, in the arm's joint order; <= 0: not checked."""

    path: np.ndarray  # (J,) tracking error allowed while the trajectory runs
    goal: np.ndarray  # (J,) final error allowed at the end (within the goal time)

    def override(self, joint_names: Sequence[str], path_entries, goal_entries) -> Tolerances:
        """These tolerances with a goal's entries applied: entries are (joint name, position) pairs
        (control_msgs/JointTolerance); position > 0 replaces the default, 0 keeps it, < 0 turns
        the check off. An entry naming another joint is INVALID_JOINTS."""
        names = list(joint_names)
        out = []
        for values, entries, what in ((self.path, path_entries, "path"), (self.goal, goal_entries, "goal")):
            values = values.copy()
            for name, position in entries:
                if name not in names:
                    raise TrajectoryRejected(INVALID_JOINTS, f"{what}_tolerance names joint '{name}', which is "
                                             f"not one of {names}")
                if not np.isfinite(position):
                    raise TrajectoryRejected(INVALID_GOAL, f"{what}_tolerance of {name} is {position}")
                if position != 0:
                    values[names.index(name)] = max(float(position), 0.0)
            out.append(values)
        return Tolerances(*out)


def default_tolerances(joint_names: Sequence[str], path: float, paths: Sequence[float], goal: float,
                       goals: Sequence[float]) -> Tolerances:
    """The controller's tolerances: `paths` / `goals` per joint (in `joint_names` order) where
    given, else the scalar `path` / `goal` for every joint. ValueError for a wrong length."""
    n = len(joint_names)
    arrays = []
    for scalar, per_joint, name in ((path, paths, "path_tolerances"), (goal, goals, "goal_tolerances")):
        if len(per_joint) not in (0, n):
            raise ValueError(f"{name} needs one value per joint ({n}: {list(joint_names)}), got {len(per_joint)}")
        values = np.asarray(per_joint if len(per_joint) else [scalar] * n, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} must be finite, got {values.tolist()}")
        arrays.append(values)
    return Tolerances(*arrays)


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
                     start_tolerance: float, q_command=None) -> CheckedTrajectory:
    """Validate and reorder a trajectory for an arm with `joint_names` at `q_now`.

    Rejected (TrajectoryRejected): unknown/missing joint names (INVALID_JOINTS); no points,
    no positions, non-finite values, positions outside the joint limits, times not strictly
    increasing, or a first point at t=0 further than `start_tolerance` from both the arm and
    `q_command` (INVALID_GOAL). `q_command`: the position the controller commands now (the last
    point of a trajectory that succeeded), which the arm may not reach when it presses on an
    object. The trajectory starts from it when its first point is that close to it, as
    joint_trajectory_controller does with interpolate_from_desired_state (no jump in the
    command), else from `q_now`; a first point after t=0 is reached from there.
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
    start = q_now
    if q_command is not None:
        q_command = np.asarray(q_command, dtype=np.float64)
        if times[0] > 0.0 or float(np.max(np.abs(positions[0] - q_command))) <= start_tolerance:
            start = q_command
    if times[0] == 0.0:
        jump = float(np.max(np.abs(positions[0] - start)))
        if jump > start_tolerance:
            also = "" if q_command is None else \
                f" and {float(np.max(np.abs(positions[0] - q_command))):.3f} rad from the commanded one"
            raise TrajectoryRejected(INVALID_GOAL, f"first point (t=0) is {jump:.3f} rad from the current "
                                     f"position{also} (start tolerance {start_tolerance} rad)")
        positions = positions.copy()
        positions[0] = start
    else:
        times = np.concatenate([[0.0], times])
        positions = np.vstack([start, positions])
    return CheckedTrajectory(times, positions)
