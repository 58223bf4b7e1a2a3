"""`executor` node: the ExecutePrimitive action -> IK joint trajectories -> a FollowJointTrajectory server.

It serves `robot_rewards_interfaces/action/ExecutePrimitive` (one goal at a time: a goal that
comes while another runs is rejected). Each goal is checked and planned whole, then its
segments go one after another to the arm's FollowJointTrajectory server (the sim bridge or a
real controller: ros2_control's joint_trajectory_controller, ...) and gripper segments to a
GripperCommand server. Feedback names the segment now running; the result carries the
controller's error code (or one of the executor's: ExecutePrimitive.Result's constants). A
cancel cancels the running controller goal and ends the goal CANCELED. Every status also goes
out on `status_topic` (robot_rewards_interfaces/ExecutorStatus) for consoles and bags.
"""

from __future__ import annotations

from control_msgs.action import FollowJointTrajectory, GripperCommand
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState

from robot_rewards.robots.kinematics import ArmKinematics
from robot_rewards.robots.registry import get_arm
from robot_rewards.ros.config import ExecutorConfig
from robot_rewards.ros.convert_interfaces import (
    execute_feedback_to_msg,
    execute_result_to_msg,
    executor_status_to_msg,
)
from robot_rewards.ros.executor_core import ExecutorCore
from robot_rewards.ros.nodes._common import RELIABLE_QOS, SENSOR_QOS, message_types, now_ns, run
from robot_rewards.ros.params import declare_config
from robot_rewards_interfaces.action import ExecutePrimitive
from robot_rewards_interfaces.msg import ExecutorStatus as ExecutorStatusMsg

WAIT_POLL_S = 0.1


class ExecutorNode(Node):
    """Thin rclpy shell of ExecutorCore: the ExecutePrimitive server and the controllers' clients."""

    def __init__(self, **node_kwargs):
        super().__init__("executor", **node_kwargs)
        self.cfg = cfg = declare_config(self, ExecutorConfig)
        self.kin = ArmKinematics(get_arm(cfg.arm))
        self.types = message_types()
        self.core = ExecutorCore(cfg, self.kin, self.types, self.get_logger(), lambda: now_ns(self))
        self._action_clients = {"arm": ActionClient(self, FollowJointTrajectory, cfg.trajectory_action)}
        if cfg.gripper_action:
            self._action_clients["gripper"] = ActionClient(self, GripperCommand, cfg.gripper_action)
        self.status_pub = self.create_publisher(ExecutorStatusMsg, cfg.status_topic, RELIABLE_QOS)
        self.create_subscription(JointState, cfg.joint_states_topic, self.core.on_joint_state, SENSOR_QOS)
        self._running = None  # the ExecutePrimitive goal handle being executed
        self._step_goal = None  # the controller goal handle of the current step
        self._server = ActionServer(self, ExecutePrimitive, cfg.execute_action, self._execute,
                                    goal_callback=self._check_goal, cancel_callback=self._cancel)
        self.get_logger().info(f"executor: {cfg.execute_action} -> {cfg.trajectory_action}"
                               f"{' + ' + cfg.gripper_action if cfg.gripper_action else ''}")

    def close(self) -> None:
        self.kin.close()

    # -- ExecutePrimitive ------------------------------------------------------------------------
    def _check_goal(self, goal_request):
        if self._running is not None or self.core.busy:
            self.get_logger().error(f"ExecutePrimitive goal of decision {goal_request.decision_id} rejected: "
                                    f"still executing decision {self.core.decision_id}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT  # a malformed goal is accepted and ends BAD_INPUT with the reason

    def _cancel(self, goal_handle):
        step_goal = self._step_goal
        if step_goal is not None:  # stop the arm now, not after the segment
            step_goal.cancel_goal_async()
        return CancelResponse.ACCEPT

    async def _execute(self, goal_handle):
        self._running = goal_handle
        try:
            return await self._run(goal_handle)
        finally:
            self._running = None
            self._step_goal = None

    async def _run(self, goal_handle):
        statuses, step = self.core.on_primitive(goal_handle.request)
        final = self._report(goal_handle, statuses)
        while step is not None and final is None:
            if goal_handle.is_cancel_requested:
                statuses, step = self.core.cancel()
            else:
                statuses, step = await self._run_step(step)
            final = self._report(goal_handle, statuses)
        if final is None:  # cannot happen: the core ends every primitive with a final status
            final = self.core.cancel("the executor lost track of the primitive")[0][-1]
        result = execute_result_to_msg(final, self.types, into=ExecutePrimitive.Result())
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif final.state == "succeeded":
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return result

    def _report(self, goal_handle, statuses):
        """Publish the statuses, the 'executing' ones as feedback; the final one, if any."""
        final = None
        for status in statuses:
            self.status_pub.publish(executor_status_to_msg(status, self.types))
            if status.terminal:
                final = status
            else:
                goal_handle.publish_feedback(execute_feedback_to_msg(status, self.core.label, self.types,
                                                                     into=ExecutePrimitive.Feedback()))
        return final

    # -- one step on the controllers --------------------------------------------------------------
    async def _run_step(self, step):
        client = self._action_clients[step.kind]
        waited = 0.0
        while not client.server_is_ready():
            if waited >= self.cfg.server_timeout:
                return self.core.on_server_unavailable(step.kind)
            await self._sleep(WAIT_POLL_S)
            waited += WAIT_POLL_S
        handle = await client.send_goal_async(self.core.goal_message(step))
        statuses, nxt = self.core.on_goal_response(bool(handle.accepted))
        if not handle.accepted:
            return statuses, nxt
        self._step_goal = handle
        if self._running is not None and self._running.is_cancel_requested:
            handle.cancel_goal_async()  # the cancel came while the goal was on its way
        response = await handle.get_result_async()
        self._step_goal = None
        return self.core.on_result(int(response.status), response.result)

    async def _sleep(self, seconds: float) -> None:
        """Wait without blocking the executor (a one-shot timer completes a Future)."""
        done = Future()

        def fire():
            timer.cancel()
            done.set_result(None)

        timer = self.create_timer(seconds, fire)
        await done
        self.destroy_timer(timer)


def main(args=None) -> int:
    return run(ExecutorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
