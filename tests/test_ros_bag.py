"""`bag export` / `bag replay`: rosbag2 (MCAP) without ROS, through the rosbags package."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from ros_double.scenes import INTR, SEC, synthetic_frame

from robot_rewards.commands.bag import bag_export, bag_replay
from robot_rewards.core.camera import CameraModel
from robot_rewards.data.episodes import Episode, EpisodeWriter
from robot_rewards.rewards.synthetic import random_candidates
from robot_rewards.ros import config as topics
from robot_rewards.ros import convert as rc
from robot_rewards.ros.bag_config import BagExportConfig, BagReplayConfig
from robot_rewards.ros.bag_io import BagError, BagWriter, bag_topics, read_messages
from robot_rewards.ros.convert_interfaces import candidate_set_from_msg, candidate_set_to_msg, executor_status_from_msg
from robot_rewards.ros.payloads import CandidateSet

TYPES = rc.ROSBAGS_TYPES
T0 = 1_700_000_000


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One scripted place_block episode recorded in the sim and exported (shared by the tests)."""
    out = tmp_path_factory.mktemp("export")
    cfg = BagExportConfig(task="place_block", seed=0, noise=0.0, output_dir=str(out))
    return bag_export(cfg), out


@pytest.mark.slow
def test_export_writes_the_node_topics(exported):
    metrics, out = exported
    bag = out / "episode_bag"
    assert list(bag.glob("*.mcap")) and json.loads((out / "metrics.json").read_text()) == metrics
    frames, steps = metrics["frames"], metrics["steps"]
    assert frames == steps + 1 >= 2
    info = bag_topics(bag)
    per_frame = [topics.COLOR_TOPIC, topics.COLOR_INFO_TOPIC, topics.DEPTH_TOPIC, topics.DEPTH_INFO_TOPIC,
                 topics.JOINT_STATES_TOPIC, "/tf", topics.CAMERA_POINTS_TOPIC, topics.CLOUD_TOPIC]
    for topic in per_frame:
        assert info[topic][1] == frames, topic
    assert info["/tf_static"] == ("tf2_msgs/msg/TFMessage", 1) and info[topics.GOAL_TOPIC][1] == 1
    assert info[topics.CANDIDATES_TOPIC] == ("robot_rewards_interfaces/msg/CandidateSet", steps)
    assert info[topics.EXECUTOR_STATUS_TOPIC] == ("robot_rewards_interfaces/msg/ExecutorStatus", steps)
    messages = list(read_messages(bag))
    assert [s for _, s, _ in messages] == sorted(s for _, s, _ in messages)  # time order
    goal = next(m.data for t, _, m in messages if t == topics.GOAL_TOPIC)
    assert goal == metrics["goal"] and goal.startswith("put the")
    cloud = next(m for t, _, m in messages if t == topics.CLOUD_TOPIC)
    # perceived with the policy checkpoint's settings (its n_points), as launch gives perception
    assert rc.msg_to_points(cloud).shape == (1024, 3) and cloud.header.frame_id == "panda_link0"
    cset = candidate_set_from_msg(next(m for t, _, m in messages if t == topics.CANDIDATES_TOPIC))
    # candidate 0 is what the expert executed; 7 policy samples in the same (first) perceived cloud
    assert cset.candidates.name == "pick_place" and cset.decision_id == 0 and len(cset.candidates) == 8
    assert rc.stamp_to_ns(cloud.header.stamp) == cset.stamp[0] * SEC + cset.stamp[1]
    assert cset.candidates.seeds[0] == -1 and len(set(cset.candidates.seeds[1:].tolist())) == 7
    assert np.ptp(cset.candidates.params[1:, :3], axis=0).max() > 0  # sampled, not copies
    status = executor_status_from_msg(next(m for t, _, m in messages if t == topics.EXECUTOR_STATUS_TOPIC))
    assert status.state == "succeeded" and status.decision_id == 0
    image = next(m for t, _, m in messages if t == topics.COLOR_TOPIC)
    rc.check_image_matches_camera_info(image, next(m for t, _, m in messages if t == topics.COLOR_INFO_TOPIC))


@pytest.mark.slow
def test_replay_of_an_exported_episode_matches_the_live_perception(exported, tmp_path):
    _, out = exported
    cfg = BagReplayConfig(bag=str(out / "episode_bag"), state_rewards={"height": "ros_double.plugins:MeanHeight"},
                          perception_from_checkpoint="checkpoints/policy_place_block.json", output_dir=str(tmp_path))
    metrics = bag_replay(cfg)
    rows = list(csv.DictReader(open(tmp_path / "rewards.csv")))
    recorded = [m for t, _, m in read_messages(out / "episode_bag", [topics.CLOUD_TOPIC])]
    assert len(rows) == len(recorded) == metrics["frames"]
    for row, cloud in zip(rows, recorded):  # the same clouds as the perception node made
        assert float(row["height"]) == pytest.approx(float(np.mean(rc.msg_to_points(cloud)[:, 2])), abs=1e-6)
        assert int(row["stamp_ns"]) == rc.stamp_to_ns(cloud.header.stamp) and row["n_points"] == "1024"
    assert metrics["rewards"]["height"]["frames"] == len(rows) and metrics["dropped"] == {}
    assert (tmp_path / "rewards.png").stat().st_size > 1000


@pytest.mark.slow
def test_replay_with_a_scorer_scores_the_exported_decisions(exported, tmp_path):
    metrics, out = exported  # candidate sets: the executed primitive + policy samples per step
    metrics = bag_replay(BagReplayConfig(bag=str(out / "episode_bag"), scorers={"shipped": "checkpoints/scorer_place_block.json"},
                                         plot=False, output_dir=str(tmp_path / "out")))
    decisions = list(csv.DictReader(open(tmp_path / "out" / "decisions.csv")))
    assert metrics["decisions"] == len(decisions) == metrics["messages"][topics.CANDIDATES_TOPIC] >= 1
    assert metrics["warnings"] == [] and metrics["dropped"] == {}
    for row in decisions:  # every set scored in its own cloud; the executed (expert) primitive ranked
        assert row["model"] == "shipped" and row["n"] == "8" and row["chosen"] == "0"
        assert 1 <= int(row["chosen_rank"]) <= 8 and float(row["best_score"]) >= float(row["chosen_score"])


@pytest.mark.slow
def test_replay_with_a_scorer_says_when_the_bag_has_no_candidate_sets(tmp_path, capsys):
    from ros_double.scenes import tiny_scorer

    from robot_rewards.rewards.preference.io import save_scorer

    bag_export(BagExportConfig(task="place_block", seed=1, noise=0.0, policy_checkpoint="", out=str(tmp_path / "bag"),
                               output_dir=str(tmp_path)))
    assert "0 candidate sets (no policy_checkpoint" in capsys.readouterr().out
    scorer_path = save_scorer(tmp_path / "scorer", tiny_scorer())
    metrics = bag_replay(BagReplayConfig(bag=str(tmp_path / "bag"), scorers={"pref": str(scorer_path)},
                                         plot=False, output_dir=str(tmp_path / "out")))
    assert metrics["decisions"] == 0 and metrics["frames"] > 0
    (warning,) = metrics["warnings"]
    assert "scorers ['pref'] scored nothing" in warning and topics.CANDIDATES_TOPIC in warning
    assert warning in capsys.readouterr().out


def _write_synthetic_bag(path, scorer_goal="put the block on the red mark"):
    """Four frame pairs (one good, three bad in different ways, then good) and one candidate set."""
    with BagWriter(path) as bag:
        color, depth, info, base_T_cam = synthetic_frame(T0 * SEC)
        bag.write("/tf_static", rc.transforms_to_tf_msg([rc.StampedTransform.from_matrix(
            base_T_cam, "panda_link0", "cam", (T0, 0))], TYPES), T0 * SEC)
        bag.write(topics.GOAL_TOPIC, TYPES.new("std_msgs/msg/String", data=scorer_goal), T0 * SEC)
        for k, problem in enumerate(["", "encoding", "size", ""]):
            stamp = (T0 + k) * SEC
            color, depth, info, _ = synthetic_frame(stamp)
            if problem == "encoding":
                color = rc.image_to_msg(np.zeros((48, 64, 2), np.uint8).view(np.uint16)[..., 0], "16UC1",
                                        color.header, TYPES)
            if problem == "size":
                info = rc.camera_info_to_msg(INTR.scaled(0.5), info.header, TYPES)
            bag.write(topics.COLOR_INFO_TOPIC, info, stamp)
            bag.write(topics.COLOR_TOPIC, color, stamp)
            bag.write(topics.DEPTH_TOPIC, depth, stamp)
        cset = CandidateSet(0, (T0 + 3, 0), scorer_goal, random_candidates(5, seed=1), chosen=4)
        bag.write(topics.CANDIDATES_TOPIC, candidate_set_to_msg(cset, TYPES), (T0 + 3) * SEC + 1)
        # the same set as std_msgs/String JSON on another topic, as bags recorded before the typed interfaces
        bag.write("/legacy/candidates", TYPES.new("std_msgs/msg/String", data=cset.to_json()), (T0 + 3) * SEC + 2)
    return cset


def test_replay_counts_bad_frames_and_rescores_candidate_sets(tmp_path):
    from ros_double.scenes import tiny_scorer

    from robot_rewards.rewards.preference.io import save_scorer

    bag = tmp_path / "bag"
    cset = _write_synthetic_bag(bag)
    scorer_path = save_scorer(tmp_path / "scorer", tiny_scorer())
    cfg = BagReplayConfig(bag=str(bag), n_points=128, scorers={"pref": str(scorer_path)},
                          state_rewards={"height": "ros_double.plugins:MeanHeight"}, plot=False,
                          output_dir=str(tmp_path / "out"))
    metrics = bag_replay(cfg)
    rows = list(csv.DictReader(open(tmp_path / "out" / "rewards.csv")))
    assert [int(r["stamp_ns"]) for r in rows] == [T0 * SEC, (T0 + 3) * SEC]  # the two good frames
    assert all(float(r["height"]) == pytest.approx(0.03, abs=2e-3) for r in rows)
    dropped = " ".join(metrics["dropped"])
    assert "not a colour encoding" in dropped and "does not match camera_info 32x24" in dropped
    (decision,) = list(csv.DictReader(open(tmp_path / "out" / "decisions.csv")))
    direct = tiny_scorer().score(_observation_of(rows, cfg, bag), cset.candidates).mean
    assert int(decision["best"]) == int(np.argmax(direct)) and decision["chosen"] == "4"
    assert float(decision["chosen_score"]) == pytest.approx(direct[4], rel=1e-5)
    assert metrics["goal"] == "put the block on the red mark" and not (tmp_path / "out" / "rewards.png").exists()
    legacy = bag_replay(BagReplayConfig(bag=str(bag), n_points=128, scorers={"pref": str(scorer_path)}, plot=False,
                                        candidates_topic="/legacy/candidates", output_dir=str(tmp_path / "legacy")))
    (old,) = list(csv.DictReader(open(tmp_path / "legacy" / "decisions.csv")))
    assert legacy["decisions"] == 1 and old == decision


def _observation_of(rows, cfg, bag):
    """The Observation replay built for the last good frame (recomputed the same way)."""
    from robot_rewards.ros.bag_replay import perception_node_config
    from robot_rewards.ros.perception_core import PerceptionCore

    core = PerceptionCore(perception_node_config(cfg), TYPES)
    frame = None
    for topic, _, msg in read_messages(bag):
        if topic == "/tf_static":
            core.on_tf(msg, True)
        elif topic == topics.COLOR_INFO_TOPIC:
            core.on_camera_info(msg)
        elif topic == topics.COLOR_TOPIC:
            frame = core.on_color(msg) or frame
        elif topic == topics.DEPTH_TOPIC:
            frame = core.on_depth(msg) or frame
    frame.observation.goal = "put the block on the red mark"
    return frame.observation


def episode_file(path):
    """A collect-demos file of one two-frame episode whose one step was not executed."""
    camera = CameraModel("front", INTR, synthetic_frame(0)[3], frame_id="cam")
    color, depth, _, _ = synthetic_frame(0)
    rgb, dep = rc.msg_to_rgb(color), rc.msg_to_depth(depth)
    ep = Episode(seed=0, goal="put the red block in the bowl", primitive="pick_place")
    ep.frames["front"] = {"rgb": [rgb, rgb], "depth": [dep, dep], "segmentation": [np.full(dep.shape, -1)] * 2}
    ep.joint_positions = [np.zeros(7), np.zeros(7)]
    ep.gripper_width = [0.08, 0.08]
    ep.actions, ep.executed, ep.reasons = [np.array([0.5, 0, 0.02, 0.6, 0.1, 0.02, 0.0])], [False], ["unreachable"]
    ep.success, ep.quality = [False], [0.1]
    with EpisodeWriter(path, "place_block", "pick_place", [camera]) as writer:
        writer.write(ep)
    return path


def test_export_of_an_episode_file(tmp_path):
    episode_file(tmp_path / "demos.h5")
    cfg = BagExportConfig(episodes=str(tmp_path / "demos.h5"), out=str(tmp_path / "bag"), storage="sqlite3",
                          frame_period=1.5, output_dir=str(tmp_path / "out"))
    metrics = bag_export(cfg)
    assert list((tmp_path / "bag").glob("*.db3")) and metrics["frames"] == 2
    stamps = [s for t, s, _ in read_messages(tmp_path / "bag", [topics.COLOR_TOPIC])]
    assert stamps == [int(1.7e18), int(1.7e18) + int(1.5e9)]
    (status,) = [executor_status_from_msg(m) for _, _, m in read_messages(tmp_path / "bag",
                                                                                  [topics.EXECUTOR_STATUS_TOPIC])]
    assert status.state == "failed" and status.error_string == "unreachable"
    with pytest.raises(BagError, match="already exists"):
        bag_export(cfg)
    with pytest.raises(ValueError, match="holds 1 episodes; episode=3 does not exist"):
        bag_export(BagExportConfig(episodes=str(tmp_path / "demos.h5"), episode=3, output_dir=str(tmp_path)))


def test_export_of_a_bit_flipped_episode_file_is_one_error_naming_it(tmp_path):
    """A damaged image chunk is found only when read: the error names the file and episode."""
    import h5py

    from robot_rewards.data.episodes import EpisodeFormatError

    path = episode_file(tmp_path / "demos.h5")
    with h5py.File(path, "r") as f:
        info = f["episodes/000000/obs/front/rgb"].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    for i in range(info.byte_offset + 10, info.byte_offset + info.size - 10, 7):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    cfg = BagExportConfig(episodes=str(path), out=str(tmp_path / "bag"), storage="sqlite3",
                          output_dir=str(tmp_path / "out"))
    with pytest.raises(EpisodeFormatError, match=rf"^{path}: episode 0 damaged, cannot be read \(") as info:
        bag_export(cfg)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "bag").exists()


def test_replay_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="bag not found"):
        bag_replay(BagReplayConfig(bag=str(tmp_path / "missing"), output_dir=str(tmp_path)))
    (tmp_path / "notabag").mkdir()
    with pytest.raises(BagError, match="not a readable rosbag2"):
        bag_replay(BagReplayConfig(bag=str(tmp_path / "notabag"), output_dir=str(tmp_path)))
    _write_synthetic_bag(tmp_path / "bag")
    with pytest.raises(ValueError, match=r"clash with the columns"):
        bag_replay(BagReplayConfig(bag=str(tmp_path / "bag"), state_rewards={"frame": "ros_double.plugins:MeanHeight"},
                                   output_dir=str(tmp_path)))


def _lidar_bag(path):
    """A bag from another robot: a goal and a lidar cloud, none of the replay's default topics."""
    with BagWriter(path) as bag:
        bag.write(topics.GOAL_TOPIC, TYPES.new("std_msgs/msg/String", data="tidy up"), T0 * SEC)
        cloud = rc.points_to_msg(np.zeros((4, 3), np.float32), rc.header_of("lidar", TYPES), TYPES)
        bag.write("/lidar/points", cloud, T0 * SEC + 1)


def test_reading_topics_the_bag_lacks_yields_nothing(tmp_path):
    _lidar_bag(tmp_path / "bag")
    assert len(list(read_messages(tmp_path / "bag"))) == 2
    assert list(read_messages(tmp_path / "bag", ["/nonexistent"])) == []
    assert list(read_messages(tmp_path / "bag", [])) == []
    assert [t for t, _, _ in read_messages(tmp_path / "bag", ["/lidar/points", "/nonexistent"])] == ["/lidar/points"]


def test_replay_of_a_bag_without_its_topics_names_them_and_lists_the_bags(tmp_path, monkeypatch, capsys):
    import sys

    from robot_rewards.cli import Command, run

    _lidar_bag(tmp_path / "bag")
    with pytest.raises(BagError) as err:
        bag_replay(BagReplayConfig(bag=str(tmp_path / "bag"), output_dir=str(tmp_path / "out")))
    text = str(err.value)
    assert "\n" not in text
    assert f"{topics.COLOR_TOPIC} (color_topic)" in text and f"{topics.DEPTH_TOPIC} (depth_topic)" in text
    assert "/tf or /tf_static (or give extrinsics_file)" in text
    assert "the bag's topics: /goal (std_msgs/msg/String, 1), /lidar/points (sensor_msgs/msg/PointCloud2, 1)" in text
    assert not (tmp_path / "out" / "rewards.csv").exists()
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    command = Command("bag-replay", BagReplayConfig, "robot_rewards.commands.bag:bag_replay", "replay a bag")
    with pytest.raises(SystemExit) as exit_:
        run(command, [f"bag={tmp_path / 'bag'}", f"output_dir={tmp_path / 'o'}"])
    assert exit_.value.code != 0 and "/lidar/points" in capsys.readouterr().err


def test_replay_of_a_point_cloud_bag_matches_the_colour_and_depth_replay(tmp_path):
    """A bag whose camera also published its own PointCloud2 (camera frame): replayed from the
    cloud topic with the TF to the base frame, the clouds are the ones colour + depth give."""
    from robot_rewards.perception import backproject

    bag = tmp_path / "bag"
    with BagWriter(bag) as writer:
        _, _, _, base_T_cam = synthetic_frame(T0 * SEC)
        writer.write("/tf_static", rc.transforms_to_tf_msg([rc.StampedTransform.from_matrix(
            base_T_cam, "panda_link0", "cam", (T0, 0))], TYPES), T0 * SEC)
        for k in range(3):
            stamp = (T0 + k) * SEC
            color, depth, info, _ = synthetic_frame(stamp)
            cloud = backproject(rc.msg_to_depth(depth), INTR, rgb=rc.msg_to_rgb(color))
            for topic, msg in ((topics.COLOR_INFO_TOPIC, info), (topics.COLOR_TOPIC, color), (topics.DEPTH_TOPIC, depth),
                               ("/camera/points", rc.points_to_msg(cloud.points, color.header, TYPES, rgb=cloud.colors))):
                writer.write(topic, msg, stamp)
    common = dict(bag=str(bag), n_points=128, plot=False, state_rewards={"height": "ros_double.plugins:MeanHeight"})
    images = bag_replay(BagReplayConfig(**common, output_dir=str(tmp_path / "images")))
    clouds = bag_replay(BagReplayConfig(**common, cloud_topic="/camera/points", output_dir=str(tmp_path / "clouds")))
    assert clouds["frames"] == images["frames"] == 3 and not clouds["dropped"]
    assert clouds["messages"]["/camera/points"] == 3 and topics.COLOR_TOPIC not in clouds["messages"]
    a, b = (list(csv.DictReader(open(tmp_path / d / "rewards.csv"))) for d in ("images", "clouds"))
    assert [(r["stamp_ns"], r["n_points"], r["height"]) for r in a] == [(r["stamp_ns"], r["n_points"], r["height"]) for r in b]
    # a cloud in a frame the TF does not know is dropped and counted, not a crash
    with pytest.raises(BagError, match="no messages on /lidar \\(cloud_topic\\)"):
        bag_replay(BagReplayConfig(**common, cloud_topic="/lidar", output_dir=str(tmp_path / "x")))
    odd = bag_replay(BagReplayConfig(**common, cloud_topic="/camera/points", camera_frame="lidar_link",
                                     output_dir=str(tmp_path / "odd")))
    assert odd["frames"] == 0 and any("no pose of 'lidar_link'" in k for k in odd["dropped"])


def test_replay_perception_settings_from_the_command_line(tmp_path, monkeypatch):
    """`+perception.table=ransac` reaches the pipeline: the synthetic scene is one plane (a
    platform), so RANSAC takes all of it and every frame is dropped, with the reason."""
    import sys

    from robot_rewards.cli import Command, run

    monkeypatch.setattr(sys, "argv", list(sys.argv))
    _write_synthetic_bag(tmp_path / "bag")
    command = Command("bag-replay", BagReplayConfig, "robot_rewards.commands.bag:bag_replay", "replay a bag")
    metrics = run(command, [f"bag={tmp_path / 'bag'}", "n_points=64", "plot=false", "+perception.table=ransac",
                            "+perception.table_up=[0,0,1]", f"output_dir={tmp_path / 'o'}"])
    assert metrics["frames"] == 0 and any("table removal" in k for k in metrics["dropped"])
    assert any(w.startswith("no frame was perceived") for w in metrics["warnings"])
    with pytest.raises(ValueError, match=r"perception: unknown setting\(s\) \['tabel'\]"):
        bag_replay(BagReplayConfig(bag=str(tmp_path / "bag"), perception={"tabel": "ransac"},
                                   output_dir=str(tmp_path / "x")))


def test_bag_commands_run_as_hydra_apps(tmp_path, monkeypatch):
    """The configs work as `robot-rewards bag replay` commands: overrides, dicts of plug-ins, metrics."""
    import sys

    from robot_rewards.cli import Command, run

    monkeypatch.setattr(sys, "argv", list(sys.argv))
    _write_synthetic_bag(tmp_path / "bag")
    command = Command("bag-replay", BagReplayConfig, "robot_rewards.commands.bag:bag_replay", "replay a bag")
    metrics = run(command, [f"bag={tmp_path / 'bag'}", "n_points=64", "plot=false",
                            "+state_rewards.height=ros_double.plugins:MeanHeight", f"output_dir={tmp_path / 'o'}"])
    assert metrics["frames"] == 2 and metrics["rewards"]["height"]["frames"] == 2
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["frames"] == 2
    export = Command("bag-export", BagExportConfig, "robot_rewards.commands.bag:bag_export", "export an episode")
    with pytest.raises(SystemExit):  # bad input: a clear message, no traceback
        run(export, ["episodes=/no/such/file.h5", f"output_dir={tmp_path / 'e'}"])
