"""The decision graph on a real arm and RGB-D camera.

    ros2 launch robot_rewards robot.launch.py \
        depth_topic:=/camera/aligned_depth_to_color/image_raw \
        trajectory_action:=/fr3_arm_controller/follow_joint_trajectory \
        joint_names:=fr3_joint1,fr3_joint2,fr3_joint3,fr3_joint4,fr3_joint5,fr3_joint6,fr3_joint7 \
        extrinsics:=/path/handeye/base_T_camera.yaml policy_checkpoint:=/path/policy.json

The camera driver, the robot driver/controllers and robot_state_publisher are started
separately (they are specific to the hardware). Nodes: perception, reward_server, policy,
executor (+ console) and, with extrinsics:=..., a static TF publisher of the hand-eye result.
Parameters come from config/robot.yaml; the graph is defined in robot_rewards/ros/launch_graph.py.
"""

from robot_rewards.ros.launch_graph import launch_description


def generate_launch_description():
    return launch_description("robot")
