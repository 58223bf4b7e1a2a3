"""The LeRobotDataset v3.0 folder layout and our feature names in it (format facts, no I/O).

A v3.0 dataset (LeRobot's own reader: `lerobot.datasets.lerobot_dataset.LeRobotDataset`)::

    meta/info.json                                  codebase_version "v3.0", fps, features, paths, totals
    meta/stats.json                                 per-feature min/max/mean/std/count/q01..q99
    meta/tasks.parquet                              task text (the pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet        one row per episode: length, tasks, frame range,
                                                    data/video file indices, video time range, stats/*
    data/chunk-000/file-000.parquet                 one row per frame: the non-video features +
                                                    timestamp, frame_index, episode_index, index, task_index
    videos/<video key>/chunk-000/file-000.mp4       the frames of one camera

    meta/robot_rewards.json                         our side-car (LeRobot ignores unknown meta files)

Our features (one LeRobot frame per observation: an episode of T steps has T+1 frames):

    observation.images.<camera>        video (H, W, 3)   colour
    observation.depth.<camera>         float32 (H, W)    metres, 0 = no return (exact, not a video)
    observation.segmentation.<camera>  int32 (H, W)      body ids, -1 = background (optional)
    observation.state                  float32 (dof+1,)  joint positions, then the gripper width
    action                             float32 (D,)      the primitive executed from this frame
                                                         (the last frame repeats the step before it)
    executed                           bool              whether that primitive ran (last frame: False)
    next.success / next.quality        bool / float32    task success / quality after the step
    next.done                          bool              True on the last frame of an episode
"""

from __future__ import annotations

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
SIDECAR_PATH = "meta/robot_rewards.json"
SIDECAR_FORMAT = "robot_rewards.lerobot_sidecar"
SIDECAR_VERSION = 1
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
CHUNKS_SIZE = 1000  # files per chunk folder (LeRobot's default)
DATA_FILE_MB = 100  # a data parquet file is closed once it holds this much (LeRobot's default)
VIDEO_FILE_MB = 200  # recorded in info.json; we write one video file per episode and camera
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)  # the q01..q99 entries of LeRobot's stats

# Columns every v3 data file has besides the features (LeRobot's DEFAULT_FEATURES).
INDEX_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}

IMAGE_PREFIX = "observation.images."
DEPTH_PREFIX = "observation.depth."
SEGMENTATION_PREFIX = "observation.segmentation."
STATE = "observation.state"
ACTION = "action"
EXECUTED = "executed"
SUCCESS = "next.success"
QUALITY = "next.quality"
DONE = "next.done"


class LeRobotFormatError(ValueError):
    """A folder that is not a LeRobot v3.0 dataset, or one without what an import needs."""


def chunk_file(index: int) -> tuple[int, int]:
    """(chunk_index, file_index) of the `index`-th file of a kind (CHUNKS_SIZE files per chunk)."""
    return index // CHUNKS_SIZE, index % CHUNKS_SIZE


def image_key(camera: str) -> str:
    return IMAGE_PREFIX + camera


def depth_key(camera: str) -> str:
    return DEPTH_PREFIX + camera


def segmentation_key(camera: str) -> str:
    return SEGMENTATION_PREFIX + camera
