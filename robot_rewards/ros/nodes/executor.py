"""`executor` node: primitives -> IK joint trajectories -> a FollowJointTrajectory server.

The server is the sim bridge or a real controller (ros2_control's joint_trajectory_controller,
...); gripper segments go to a GripperCommand server. Failures are published on the status
topic with the controller's error code.
"""

from __future__ import annotations

from control_msgs.action import FollowJointTrajectory, GripperCommand
from rclpy.action import ActionClient
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from robot_rewards.robots.kinematics import ArmKinematics
from robot_rewards.robots.registry import get_arm
from robot_rewards.ros.config import ExecutorConfig
from robot_rewards.ros.executor_core import ExecutorCore
from robot_rewards.ros.nodes._common import RELIABLE_QOS, SENSOR_QOS, message_types, now_ns, run
from robot_rewards.ros.params import declare_config

WAIT_POLL_S = 0.1


class ExecutorNode(Node):
    """Thin rclpy shell of ExecutorCore: owns the action clients and sends one goal at a time."""

    def __init__(self, **node_kwargs):
        super().__init__("executor", **node_kwargs)
        self.cfg = cfg = declare_config(self, ExecutorConfig)
        self.kin = ArmKinematics(get_arm(cfg.arm))
        self.core = ExecutorCore(cfg, self.kin, message_types(), self.get_logger(), lambda: now_ns(self))
        self._action_clients = {"arm": ActionClient(self, FollowJointTrajectory, cfg.trajectory_action)}
        if cfg.gripper_action:
            self._action_clients["gripper"] = ActionClient(self, GripperCommand, cfg.gripper_action)
        self.status_pub = self.create_publisher(String, cfg.status_topic, RELIABLE_QOS)
        self.create_subscription(String, cfg.primitive_topic, self._primitive, RELIABLE_QOS)
        self.create_subscription(JointState, cfg.joint_states_topic, self.core.on_joint_state, SENSOR_QOS)
        self.create_timer(WAIT_POLL_S, self._poll_server)
        self._waiting = None  # (step, since_ns) while a server is not up yet
        self.get_logger().info(f"executor: {cfg.primitive_topic} -> {cfg.trajectory_action}"
                               f"{' + ' + cfg.gripper_action if cfg.gripper_action else ''}")

    def close(self) -> None:
        self.kin.close()

    def _handle(self, result) -> None:
        statuses, step = result
        for text in statuses:
            self.status_pub.publish(String(data=text))
        if step is not None:
            self._send(step)

    def _primitive(self, msg) -> None:
        self._handle(self.core.on_primitive(msg.data))

    def _send(self, step) -> None:
        client = self._action_clients[step.kind]
        if not client.server_is_ready():
            self._waiting = (step, now_ns(self))
            return
        self._waiting = None
        future = client.send_goal_async(self.core.goal_message(step))
        future.add_done_callback(self._goal_response)

    def _poll_server(self) -> None:
        if self._waiting is None:
            return
        step, since = self._waiting
        if self._action_clients[step.kind].server_is_ready():
            self._send(step)
        elif (now_ns(self) - since) / 1e9 > self.cfg.server_timeout:
            self._waiting = None
            self._handle(self.core.on_server_unavailable(step.kind))

    def _goal_response(self, future) -> None:
        handle = future.result()
        self._handle(self.core.on_goal_response(bool(handle.accepted)))
        if handle.accepted:
            handle.get_result_async().add_done_callback(self._result)

    def _result(self, future) -> None:
        response = future.result()
        self._handle(self.core.on_result(int(response.status), response.result))


def main(args=None) -> int:
    return run(ExecutorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
