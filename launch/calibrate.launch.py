"""Capture hand-eye calibration views: images + hand poses on ~/capture.

    ros2 launch robot_rewards calibrate.launch.py output_dir:=/tmp/handeye
    ros2 service call /calibration_capture/capture std_srvs/srv/Trigger     # once per pose
    robot-rewards calibrate handeye images=/tmp/handeye/images \
        poses=/tmp/handeye/robot_poses.yaml intrinsics=/tmp/handeye/camera_info.yaml

With sim:=true the sim bridge stands in for the camera and the arm (plumbing check).
Parameters come from config/calibrate.yaml.
"""

from robot_rewards.ros.launch_graph import launch_description


def generate_launch_description():
    return launch_description("calibrate")
