"""Episode datasets (HDF5) and, later, rosbag2 import/export."""
