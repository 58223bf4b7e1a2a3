"""ROS 2 integration: message <-> numpy conversion (here) and rclpy nodes (submodules).

This package is the only place allowed to import rclpy, and only lazily, inside the node
modules that need it: importing `robot_rewards.ros` or `robot_rewards.ros.convert` works
without ROS 2 installed (conversion is tested with the pure-Python `rosbags` types).
"""

from robot_rewards.ros.convert import *  # noqa: F401,F403 - the conversion API is the package API
from robot_rewards.ros.convert import __all__  # noqa: F401
