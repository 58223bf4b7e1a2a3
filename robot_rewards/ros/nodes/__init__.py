"""rclpy shells of the nodes: parameters, publishers, subscriptions, timers, services and
actions around the plain "core" classes of `robot_rewards.ros` (where all logic lives).

Each module has a `main()` (a console script, so `ros2 run robot_rewards <name>` works).
These modules import rclpy; nothing else in robot_rewards does.
"""
