"""Run by tests/test_lerobot.py with a Python that has the `lerobot` package (its own venv:
lerobot 0.4.x pins torch<2.11): LeRobot's own LeRobotDataset reads an exported folder, and the
values it returns are printed as JSON for the test to compare with the episode file."""

import json
import sys

import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset

root = sys.argv[1]
ds = LeRobotDataset("local/robot_rewards_export", root=root, video_backend="pyav")
frames = []
for i in range(len(ds)):
    item = ds[i]
    frames.append({
        "episode_index": int(item["episode_index"]), "frame_index": int(item["frame_index"]),
        "task": item["task"], "action": item["action"].numpy().tolist(),
        "state": item["observation.state"].numpy().tolist(),
        "depth_sum": float(item["observation.depth.front"].double().sum()),
        "rgb_mean": (item["observation.images.front"].numpy().transpose(1, 2, 0) * 255.0).mean(axis=(0, 1)).tolist(),
        "rgb_shape": list(item["observation.images.front"].shape),
        "done": bool(item["next.done"]),
    })
print(json.dumps({"episodes": ds.num_episodes, "frames": ds.num_frames, "fps": ds.fps,
                  "stats_action_mean": np.asarray(ds.meta.stats["action"]["mean"]).tolist(), "items": frames}))
