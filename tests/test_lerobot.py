"""LeRobotDataset v3.0 export/import of sim episodes: round trip, the v3 layout, bad input, and
(where a Python with the `lerobot` package is given) LeRobot's own reader on our export."""

import json
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("pyarrow")

from robot_rewards.cli import main
from robot_rewards.commands.expert import collect_demos
from robot_rewards.conf.commands import CollectDemosConfig
from robot_rewards.core.observation import CameraFrame
from robot_rewards.data.episodes import EpisodeReader
from robot_rewards.data.lerobot import layout as L
from robot_rewards.data.lerobot.export import ExportOptions, export_lerobot
from robot_rewards.data.lerobot.importer import import_lerobot
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.perception.pipeline import perceive_cloud


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """Three expert push_block episodes (several steps each) from the simulator."""
    out = tmp_path_factory.mktemp("demos")
    path = out / "demos.h5"
    collect_demos(CollectDemosConfig(task="push_block", n=3, seed=7, out=str(path), workers=1,
                                     output_dir=str(out / "run")))
    return path


@pytest.fixture(scope="module")
def exported(demos, tmp_path_factory):
    root = tmp_path_factory.mktemp("lr") / "ds"
    summary = export_lerobot(demos, root, ExportOptions(codec="libx264", crf=18))
    return root, summary


def test_export_writes_the_v3_layout(exported, demos):
    root, summary = exported
    info = json.loads((root / L.INFO_PATH).read_text())
    with EpisodeReader(demos) as r:
        steps = [int(r.episode(k).attrs["n_steps"]) for k in r.keys()]
        goals = [str(r.episode(k).attrs["goal"]) for k in r.keys()]
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == 3 and summary.episodes == 3
    assert info["total_frames"] == sum(steps) + 3  # one frame per observation: steps + 1 each
    assert info["features"]["action"]["names"] == ["start_x", "start_y", "start_z", "end_x", "end_y", "end_z"]
    assert info["features"]["observation.images.front"]["info"]["video.codec"] == "h264"
    for rel in (L.STATS_PATH, L.TASKS_PATH, L.SIDECAR_PATH, "meta/episodes/chunk-000/file-000.parquet",
                "data/chunk-000/file-000.parquet", "videos/observation.images.front/chunk-000/file-002.mp4"):
        assert (root / rel).is_file(), rel
    import pyarrow.parquet as pq

    eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["length"] for e in eps] == [s + 1 for s in steps]
    assert [e["dataset_from_index"] for e in eps] == list(np.cumsum([0] + [s + 1 for s in steps[:-1]]))
    assert [e["tasks"] for e in eps] == [[g] for g in goals]
    tasks = pq.read_table(root / L.TASKS_PATH).to_pylist()
    assert sorted(t["__index_level_0__"] for t in tasks) == sorted(set(goals))
    stats = json.loads((root / L.STATS_PATH).read_text())
    assert np.asarray(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    assert stats["action"]["count"] == [sum(steps) + 3]


def test_round_trip_keeps_what_the_policy_trains_on(exported, demos, tmp_path):
    root, _ = exported
    back = tmp_path / "back.h5"
    s = import_lerobot(root, back)
    assert s.episodes == 3
    with EpisodeReader(demos) as a, EpisodeReader(back) as b:
        assert (b.task, b.primitive, b.param_names) == (a.task, a.primitive, a.param_names)
        ca, cb = a.cameras()["front"], b.cameras()["front"]
        np.testing.assert_allclose(cb.intrinsics.K, ca.intrinsics.K)
        np.testing.assert_allclose(cb.base_T_camera, ca.base_T_camera)
        for ka, kb in zip(a.keys(), b.keys()):
            ga, gb = a.episode(ka), b.episode(kb)
            for attr in ("seed", "goal", "n_steps", "success"):
                assert gb.attrs[attr] == ga.attrs[attr], attr
            # depth and segmentation are exact; actions and state went through float32
            np.testing.assert_array_equal(gb["obs/front/depth"][:], ga["obs/front/depth"][:])
            np.testing.assert_array_equal(gb["obs/front/segmentation"][:], ga["obs/front/segmentation"][:])
            np.testing.assert_allclose(gb["actions"][:], ga["actions"][:], atol=1e-6)
            np.testing.assert_allclose(gb["obs/joint_positions"][:], ga["obs/joint_positions"][:], atol=1e-6)
            np.testing.assert_array_equal(gb["executed"][:], ga["executed"][:])
            np.testing.assert_array_equal(gb["success"][:], ga["success"][:])
            np.testing.assert_allclose(gb["quality"][:], ga["quality"][:], atol=1e-6)
            assert list(gb["reasons"].asstr()[:]) == list(ga["reasons"].asstr()[:])
            # colour went through H.264 (crf 18): close, not equal
            err = np.abs(gb["obs/front/rgb"][:].astype(int) - ga["obs/front/rgb"][:].astype(int))
            assert err.mean() < 3.0, err.mean()
            # the point cloud comes from depth + camera models, so it is the same cloud
            cfg = PerceptionConfig(n_points=512)
            labels = {int(k): v for k, v in json.loads(ga.attrs["seg_labels"]).items()}
            pa_ = perceive_cloud({"front": CameraFrame(ca, ga["obs/front/rgb"][0], ga["obs/front/depth"][0])},
                                 config=cfg, seg_labels=labels)
            pb_ = perceive_cloud({"front": CameraFrame(cb, gb["obs/front/rgb"][0], gb["obs/front/depth"][0])},
                                 config=cfg, seg_labels=labels)
            np.testing.assert_allclose(pb_.cloud.points, pa_.cloud.points, atol=1e-6)


def test_import_refuses_datasets_without_what_episodes_need(exported, tmp_path):
    root, _ = exported
    import shutil

    stripped = tmp_path / "no_depth"
    shutil.copytree(root, stripped)
    info = json.loads((stripped / L.INFO_PATH).read_text())
    del info["features"]["observation.depth.front"]
    (stripped / L.INFO_PATH).write_text(json.dumps(info))
    (stripped / L.SIDECAR_PATH).unlink()
    out = tmp_path / "never.h5"
    with pytest.raises(L.LeRobotFormatError) as exc:
        import_lerobot(stripped, out)
    msg = str(exc.value)
    assert "observation.depth.front (depth in metres)" in msg and "meta/robot_rewards.json" in msg
    assert "\n" not in msg and not out.exists()
    old = tmp_path / "v21"
    (old / "meta").mkdir(parents=True)
    (old / "meta/info.json").write_text(json.dumps({"codebase_version": "v2.1", "features": {}}))
    with pytest.raises(L.LeRobotFormatError, match="v2.1 dataset; this reads v3.0"):
        import_lerobot(old, out)
    with pytest.raises(L.LeRobotFormatError, match="no meta/info.json"):
        import_lerobot(tmp_path, out)


def test_export_never_touches_an_existing_folder(demos, exported):
    root, _ = exported
    before = sorted(p.name for p in root.rglob("*"))
    with pytest.raises(FileExistsError, match="already exists"):
        export_lerobot(demos, root)
    assert sorted(p.name for p in root.rglob("*")) == before
    with pytest.raises(ValueError, match=r"episodes \[5\] not in"):
        export_lerobot(demos, root.parent / "other", ExportOptions(episodes=[5]))
    assert not (root.parent / "other").exists()


def test_cli_export_and_import_print_one_line_errors(demos, tmp_path, capsys):
    out = tmp_path / "cli_ds"
    main(["export-lerobot", f"episodes={demos}", f"out={out}", "select=[1]", "codec=libx264",
          f"output_dir={tmp_path / 'run'}"])
    assert json.loads((out / L.INFO_PATH).read_text())["total_episodes"] == 1
    main(["import-lerobot", f"dataset={out}", f"out={tmp_path / 'b.h5'}", f"output_dir={tmp_path / 'run2'}"])
    with h5py.File(tmp_path / "b.h5") as f:
        assert len(f["episodes"]) == 1
    with pytest.raises(SystemExit):
        main(["import-lerobot", f"dataset={tmp_path / 'run'}", f"output_dir={tmp_path / 'run3'}"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("robot-rewards import-lerobot: LeRobotFormatError:") and "no meta/info.json" in err


LEROBOT_PYTHON = os.environ.get("ROBOT_REWARDS_LEROBOT_PYTHON", "")


@pytest.mark.skipif(not LEROBOT_PYTHON, reason="set ROBOT_REWARDS_LEROBOT_PYTHON to a Python with lerobot "
                                               "(lerobot 0.4.x pins torch<2.11: install it in its own venv)")
def test_lerobots_own_reader_reads_our_export(exported, demos):
    root, _ = exported
    script = Path(__file__).with_name("lerobot_reader_check.py")
    run = subprocess.run([LEROBOT_PYTHON, str(script), str(root)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    with EpisodeReader(demos) as r:
        expected = []
        for e, k in enumerate(r.keys()):
            g = r.episode(k)
            acts = g["actions"][:]
            for t in range(int(g.attrs["n_steps"]) + 1):
                expected.append((e, t, str(g.attrs["goal"]), acts[min(t, len(acts) - 1)],
                                 float(g["obs/front/depth"][t].astype(np.float64).sum()),
                                 g["obs/front/rgb"][t].reshape(-1, 3).mean(axis=0)))
    assert got["episodes"] == 3 and got["frames"] == len(expected) and got["fps"] == 1
    for item, (e, t, goal, action, depth_sum, rgb_mean) in zip(got["items"], expected):
        assert (item["episode_index"], item["frame_index"], item["task"]) == (e, t, goal)
        np.testing.assert_allclose(item["action"], action, atol=1e-6)
        assert item["depth_sum"] == pytest.approx(depth_sum, rel=1e-6)
        np.testing.assert_allclose(item["rgb_mean"], rgb_mean, atol=2.0)  # the decoded video frame
        assert item["rgb_shape"] == [3, 480, 640]
