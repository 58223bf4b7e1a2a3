"""`sim_bridge` node: the PyBullet scene as camera + arm driver (see SimBridgeCore).

Publishes images, depth, camera_info, a camera-frame PointCloud2, joint states, /tf (hand)
and /tf_static (camera), the task's goal sentence and its status (robot_rewards_interfaces/
TaskStatus: success, quality; at `task_status_rate` and after every motion); serves FollowJointTrajectory and
GripperCommand actions and a ~/reset service (std_srvs/Trigger) that builds the next scene.
"""

from __future__ import annotations

import math

from control_msgs.action import FollowJointTrajectory, GripperCommand
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from std_msgs.msg import String
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage

from robot_rewards.ros.config import SimBridgeConfig
from robot_rewards.ros.convert_interfaces import task_status_to_msg
from robot_rewards.ros.nodes._common import (
    LATCHED_QOS,
    RELIABLE_QOS,
    TF_QOS,
    TF_STATIC_QOS,
    message_types,
    now_ns,
    now_stamp,
    run,
)
from robot_rewards.ros.params import declare_config
from robot_rewards.ros.sim_bridge_core import SimBridgeCore
from robot_rewards.ros.trajectory_goal import TrajectoryRejected
from robot_rewards_interfaces.msg import TaskStatus as TaskStatusMsg

SENSOR_PUB_DEPTH = 5
# Longest physics advance of one control callback (s): a late callback catches up with the wall
# clock up to this, so a slow camera frame does not slow the simulated arm down.
MAX_CONTROL_STEP_S = 0.5


class SimBridgeNode(Node):
    """Thin rclpy shell of SimBridgeCore."""

    def __init__(self, **node_kwargs):
        super().__init__("sim_bridge", **node_kwargs)
        self.cfg = declare_config(self, SimBridgeConfig)
        for name in ("camera_rate", "joint_state_rate", "control_rate"):
            if getattr(self.cfg, name) <= 0:
                raise ValueError(f"parameter '{name}' must be positive, got {getattr(self.cfg, name)}")
        self.types = message_types()
        self.core = SimBridgeCore(self.cfg, self.types, self.get_logger())
        cfg = self.cfg
        self.pub = {
            "color": self.create_publisher(Image, cfg.color_topic, SENSOR_PUB_DEPTH),
            "color_info": self.create_publisher(CameraInfo, cfg.color_info_topic, SENSOR_PUB_DEPTH),
            "depth": self.create_publisher(Image, cfg.depth_topic, SENSOR_PUB_DEPTH),
            "depth_info": self.create_publisher(CameraInfo, cfg.depth_info_topic, SENSOR_PUB_DEPTH),
        }
        if cfg.points_topic:
            self.pub["points"] = self.create_publisher(PointCloud2, cfg.points_topic, SENSOR_PUB_DEPTH)
        self.joint_pub = self.create_publisher(JointState, cfg.joint_states_topic, RELIABLE_QOS)
        self.tf_pub = self.create_publisher(TFMessage, "/tf", TF_QOS)
        self.tf_static_pub = self.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
        self.goal_pub = self.create_publisher(String, cfg.goal_topic, LATCHED_QOS)
        self.task_pub = None
        if cfg.task_status_topic:
            if cfg.task_status_rate <= 0:
                raise ValueError(f"parameter 'task_status_rate' must be positive, got {cfg.task_status_rate}")
            self.task_pub = self.create_publisher(TaskStatusMsg, cfg.task_status_topic, LATCHED_QOS)
            self.create_timer(1.0 / cfg.task_status_rate, self._publish_task_status)
        self._last_control_ns = None
        self.create_timer(1.0 / cfg.control_rate, self._control)
        self.create_timer(1.0 / cfg.joint_state_rate, self._publish_state)
        self.create_timer(1.0 / cfg.camera_rate, self._publish_camera)
        self.create_service(Trigger, "~/reset", self._reset)
        self._arm_server = ActionServer(
            self, FollowJointTrajectory, cfg.trajectory_action, self._execute_trajectory,
            goal_callback=self._check_trajectory_goal, cancel_callback=self._cancel_trajectory)
        self._gripper_server = ActionServer(
            self, GripperCommand, cfg.gripper_action, self._execute_gripper,
            goal_callback=self._check_gripper_goal)
        self._publish_static()
        self.get_logger().info(f"sim_bridge: task {cfg.task} seed {cfg.seed}: '{self.core.goal}'; "
                               f"arm on {cfg.trajectory_action}, gripper on {cfg.gripper_action}")

    def close(self) -> None:
        self.core.close()

    # -- publishing --------------------------------------------------------------------------
    def _publish_static(self) -> None:
        self.tf_static_pub.publish(self.core.static_tf_message(now_stamp(self)))
        self.goal_pub.publish(String(data=self.core.goal))
        self._publish_task_status()

    def _publish_task_status(self) -> None:
        if self.task_pub is not None:
            self.task_pub.publish(task_status_to_msg(self.core.task_status(now_stamp(self)), self.types))

    def _publish_state(self) -> None:
        stamp = now_stamp(self)
        self.joint_pub.publish(self.core.joint_state_message(stamp))
        self.tf_pub.publish(self.core.tf_message(stamp))

    def _publish_camera(self) -> None:
        for key, msg in self.core.camera_messages(now_stamp(self)).items():
            self.pub[key].publish(msg)

    def _control(self) -> None:
        # Advance physics by the time since the last control callback, not by one period: timers
        # that fire late (a camera frame blocks the executor for ~0.2 s at 640x480) would
        # otherwise run the simulation, and every trajectory, slower than the wall clock.
        now = now_ns(self)
        period = 1.0 / self.cfg.control_rate
        if self._last_control_ns is None:
            dt = period
        else:
            dt = min(max((now - self._last_control_ns) / 1e9, 0.0), MAX_CONTROL_STEP_S)
        self._last_control_ns = now
        self.core.step(dt)

    # -- services ----------------------------------------------------------------------------
    def _reset(self, request, response):
        try:
            goal = self.core.reset(self.core.seed + 1)
        except RuntimeError as exc:
            response.success, response.message = False, str(exc)
            self.get_logger().error(f"reset refused: {exc}")
            return response
        self._publish_static()
        response.success, response.message = True, f"seed {self.core.seed}: {goal}"
        return response

    # -- FollowJointTrajectory ---------------------------------------------------------------
    def _goal_tolerances(self, goal_request):
        return self.core.goal_tolerances([(t.name, t.position) for t in goal_request.path_tolerance],
                                         [(t.name, t.position) for t in goal_request.goal_tolerance])

    def _check_trajectory_goal(self, goal_request):
        try:
            self.core.check_goal(goal_request.trajectory)
            self._goal_tolerances(goal_request)
        except TrajectoryRejected as exc:
            self.get_logger().error(f"trajectory goal rejected (code {exc.code}): {exc}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _cancel_trajectory(self, goal_handle):
        self.core.cancel_trajectory()
        return CancelResponse.ACCEPT

    async def _execute_trajectory(self, goal_handle):
        result = FollowJointTrajectory.Result()
        try:  # the arm may have moved since the goal was accepted: check again
            checked = self.core.check_goal(goal_handle.request.trajectory)
            tolerances = self._goal_tolerances(goal_handle.request)
        except TrajectoryRejected as exc:
            result.error_code, result.error_string = exc.code, str(exc)
            goal_handle.abort()
            return result
        done = Future()
        tolerance = goal_handle.request.goal_time_tolerance
        self.core.start_trajectory(checked, done.set_result, tolerance.sec + tolerance.nanosec * 1e-9, tolerances)
        outcome = await done
        self._publish_task_status()  # the scene after the motion, before the client hears of its end
        result.error_code, result.error_string = outcome.error_code, outcome.error_string
        # the final joint errors of every trajectory, for choosing tolerances (ros2 run ... --log-level debug)
        self.get_logger().debug(f"trajectory ended (code {outcome.error_code}): final error "
                                f"{max(outcome.final_error, default=0.0):.4f} rad, {outcome.late:.2f} s after its end")
        if outcome.canceled:
            goal_handle.canceled()
        elif outcome.ok:
            goal_handle.succeed()
        else:
            self.get_logger().error(f"trajectory aborted (code {outcome.error_code}): {outcome.error_string}")
            goal_handle.abort()
        return result

    # -- GripperCommand ----------------------------------------------------------------------
    def _check_gripper_goal(self, goal_request):
        position = goal_request.command.position
        if self.core.gripper_busy or not math.isfinite(position):
            why = "a gripper command is executing" if self.core.gripper_busy else f"position {position}"
            self.get_logger().error(f"gripper goal rejected: {why}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    async def _execute_gripper(self, goal_handle):
        command = goal_handle.request.command
        done = Future()
        result = GripperCommand.Result()
        try:
            self.core.start_gripper(command.position, command.max_effort, done.set_result)
        except (RuntimeError, ValueError) as exc:
            self.get_logger().error(f"gripper command failed: {exc}")
            goal_handle.abort()
            return result
        outcome = await done
        self._publish_task_status()
        g = outcome.gripper
        result.position, result.effort = float(g["position"]), float(g["effort"])
        result.stalled, result.reached_goal = bool(g["stalled"]), bool(g["reached_goal"])
        goal_handle.succeed()
        return result


def main(args=None) -> int:
    return run(SimBridgeNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
