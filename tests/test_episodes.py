"""The HDF5 episode format: round trips, appending, and bad files."""

import h5py
import numpy as np
import pytest

from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.observation import CameraFrame, Observation, Proprio
from robot_rewards.core.primitives import Primitive
from robot_rewards.data.episodes import Episode, EpisodeFormatError, EpisodeReader, EpisodeWriter
from robot_rewards.sim.env import StepResult

CAM = CameraModel("front", CameraIntrinsics.from_fov(8, 6, 45.0))


def make_episode(seed: int) -> Episode:
    rng = np.random.default_rng(seed)
    ep = Episode(seed=seed, goal=f"goal {seed}", primitive="pick_place")
    for t in range(3):
        frame = CameraFrame(CAM, rng.integers(0, 255, (6, 8, 3), dtype=np.uint8),
                            rng.random((6, 8), dtype=np.float32), np.full((6, 8), t, np.int32))
        ep.add_observation(Observation({"front": frame}, Proprio(rng.normal(size=7), 0.08), ep.goal,
                                       seg_labels={3: "red_block"}))
        if t < 2:
            prim = Primitive.pick_place(rng.random(3), rng.random(3), 0.1)
            ep.add_step(StepResult(prim, t == 1, "" if t else "unreachable: x", t == 1, 0.1 / (t + 1), 0.2))
    return ep


def test_round_trip_and_append(tmp_path):
    path = tmp_path / "demos.h5"
    episodes = [make_episode(s) for s in (1, 2)]
    with EpisodeWriter(path, "place_block", "pick_place", [CAM]) as w:
        w.write(episodes[0])
    with EpisodeWriter(path, "place_block", "pick_place", [CAM]) as w:  # reopen: appends
        assert w.write(episodes[1]) == "000001"
    with EpisodeReader(path) as r:
        assert len(r) == 2 and r.task == "place_block"
        assert r.param_names[-1] == "yaw"
        cam = r.cameras()["front"]
        np.testing.assert_allclose(cam.intrinsics.K, CAM.intrinsics.K)
        for key, ep in zip(r.keys(), episodes):
            g = r.episode(key)
            assert g.attrs["goal"] == ep.goal and g.attrs["seed"] == ep.seed
            np.testing.assert_array_equal(g["obs/front/rgb"][()], np.stack(ep.frames["front"]["rgb"]))
            np.testing.assert_array_equal(g["obs/front/depth"][()], np.stack(ep.frames["front"]["depth"]))
            np.testing.assert_array_equal(g["actions"][()], np.stack(ep.actions))
            assert g["obs/joint_positions"].shape == (3, 7)
            assert list(g["executed"][()]) == [False, True]
            assert g["reasons"][0].decode() == "unreachable: x"
            assert bool(g.attrs["success"]) is True


def test_refuses_other_task_and_newer_versions(tmp_path):
    path = tmp_path / "demos.h5"
    with EpisodeWriter(path, "place_block", "pick_place", [CAM]) as w:
        w.write(make_episode(0))
    with pytest.raises(EpisodeFormatError, match="refusing to append push_block"):
        EpisodeWriter(path, "push_block", "push", [CAM])
    with h5py.File(path, "a") as f:
        f.attrs["version"] = 99
    with pytest.raises(EpisodeFormatError, match="newer than this code"):
        EpisodeReader(path)


def test_unreadable_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="episode file not found"):
        EpisodeReader(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(EpisodeFormatError, match="not a readable HDF5"):
        EpisodeReader(junk)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(EpisodeFormatError, match="not a robot_rewards episode file"):
        EpisodeReader(tmp_path / "other.h5")


def test_failed_write_leaves_no_partial_episode(tmp_path):
    path = tmp_path / "demos.h5"
    bad = make_episode(0)
    bad.actions[1] = np.zeros(3)  # wrong length: stacking fails mid-write
    with EpisodeWriter(path, "place_block", "pick_place", [CAM]) as w:
        w.write(make_episode(1))
        with pytest.raises(ValueError):
            w.write(bad)
        assert len(w) == 1
    with EpisodeReader(path) as r:
        assert len(r) == 1
