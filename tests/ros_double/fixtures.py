"""pytest fixtures of the rclpy double shared by the node tests (import them into a test module)."""

from __future__ import annotations

import pytest

import ros_double


@pytest.fixture(scope="module")
def rclpy():
    """The double installed as `rclpy` and the ROS message packages for the module's tests."""
    with ros_double.installed() as fake:
        yield fake


@pytest.fixture
def ctx(rclpy):
    """An initialised default context; its nodes are closed and destroyed afterwards."""
    rclpy.init()
    context = rclpy.get_default_context()
    yield context
    from robot_rewards.ros.nodes._common import shutdown  # imports rclpy: the double, installed above

    shutdown(list(context.nodes))
