"""The whole decision graph on the PyBullet sim bridge.

    ros2 launch robot_rewards sim.launch.py task:=place_block seed:=0 gui:=true
    ros2 launch robot_rewards sim.launch.py scorers:=pref=/path/scorer.json console:=true

Nodes: sim_bridge, perception, reward_server, policy, executor (+ console). Parameters come
from config/sim.yaml (params_file:=... for another); arguments that are set override them.
The graph itself is defined in robot_rewards/ros/launch_graph.py.
"""

from robot_rewards.ros.launch_graph import launch_description


def generate_launch_description():
    return launch_description("sim")
