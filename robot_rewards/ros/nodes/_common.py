"""What every node shell shares: QoS profiles, message types, stamps and the main loop."""

from __future__ import annotations

import signal
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from robot_rewards.rewards.registry import RewardSpecError
from robot_rewards.ros.convert_common import rclpy_types
from robot_rewards.ros.params import ParameterError

# Sensor topics (images, camera_info, joint states): best effort on the subscription side
# matches both best-effort and reliable publishers and never stalls on a lost frame.
SENSOR_QOS = qos_profile_sensor_data
# Our own topics (clouds, requests, candidate sets, status): every message matters.
RELIABLE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Goals and static transforms: late joiners get the last message.
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
TF_STATIC_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)


def message_types():
    """The generated ROS message classes (sensor_msgs.msg.Image, ...) as MessageTypes."""
    return rclpy_types()


def now_stamp(node) -> tuple[int, int]:
    """(sec, nanosec) of the node clock now."""
    return divmod(node.get_clock().now().nanoseconds, 1_000_000_000)


def now_ns(node) -> int:
    return node.get_clock().now().nanoseconds


def run(node_factory, args=None) -> int:
    """rclpy.init, build the node, spin until Ctrl-C / shutdown; 1 if the node could not start."""
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = node_factory()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ParameterError, RewardSpecError, ValueError, FileNotFoundError, KeyError) as exc:
        # Configuration errors (bad parameters, missing checkpoints): say what, no traceback.
        print(f"[FATAL] {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    except RuntimeError:
        # Ctrl-C under `ros2 launch`: rclpy's signal handler shuts the context down while a
        # callback may still be publishing, which then raises RCLError ("publisher's context is
        # invalid"). That is a normal shutdown, not a crash; anything else is re-raised.
        if rclpy.ok():
            raise
    finally:
        # `ros2 launch` without a terminal forwards a second SIGINT while nodes clean up, which
        # interrupted destroy_node / the simulator's disconnect with a traceback: finish first.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            shutdown([node] if node is not None else [])
        finally:
            signal.signal(signal.SIGINT, previous)
    return code


def shutdown(nodes) -> None:
    """Close (their `close()`, where they have one) and destroy `nodes`, then shut rclpy down."""
    for node in nodes:
        close = getattr(node, "close", None)
        if close is not None:
            close()
        node.destroy_node()
    if rclpy.ok():
        rclpy.shutdown()
