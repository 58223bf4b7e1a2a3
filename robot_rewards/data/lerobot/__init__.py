"""LeRobotDataset v3 export and import of robot_rewards episode files.

`export.export_lerobot` writes an episode HDF5 file (robot_rewards.data.episodes) as a
LeRobotDataset v3.0 folder; `importer.import_lerobot` reads one back into an episode file.
The layout is LeRobot's (see `layout`); what LeRobot has no feature for (camera models, the
primitive's name, per-step reasons, seeds) rides in the side-car `meta/robot_rewards.json`.
"""
