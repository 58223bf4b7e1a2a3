"""ROS 2 integration: message <-> numpy conversion (here) and rclpy nodes (submodules).

This package is the only place allowed to import rclpy, and only in `nodes/`, the thin rclpy
shells: importing `robot_rewards.ros` or `robot_rewards.ros.convert` works without ROS 2
installed (conversion is tested with the pure-Python `rosbags` types).

Layout: `convert*` message conversion; `config` (node parameters), `params` (declaring them);
one plain "core" class per node with all of its logic (`sim_bridge_core`, `perception_core`,
`reward_server_core`, `policy_core`, `executor_core`, `console_core`,
`calibration_capture_core`) and their helpers (`payloads` JSON messages, `tf_tree`, `sync`,
`trajectory_goal`, `observation`, `plugins`, `report`); `nodes/` the
rclpy shells; `launch_graph` the launch files' graphs; `bag_*` rosbag2 export and replay.
"""

from robot_rewards.ros.convert import *  # noqa: F403 - the conversion API is the package API
from robot_rewards.ros.convert import __all__  # noqa: F401
