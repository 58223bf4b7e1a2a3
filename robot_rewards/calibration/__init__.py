"""Camera intrinsics and hand-eye calibration, and the file formats ROS users have."""
