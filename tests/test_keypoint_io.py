"""Learned keypoint-model files (round trip, refusals) and the train-keypoints command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robot_rewards.core.observation import Observation
from robot_rewards.nn.artifacts import ArtifactError, ArtifactMismatchError
from robot_rewards.policy.config import policy_perception
from robot_rewards.rewards.keypoints.config import KeypointModelConfig, TrainKeypointConfig
from robot_rewards.rewards.keypoints.io import (
    KeypointCheckpoint,
    keypoint_model_paths,
    load_keypoint_model,
    save_keypoint_model,
)
from robot_rewards.rewards.keypoints.net import predict_keypoints, train_keypoint_model
from robot_rewards.rewards.keypoints.reward import KeypointReward
from robot_rewards.rewards.synthetic import planted_keypoint_dataset

TINY = KeypointModelConfig(point_channels=[8, 16], attention_heads=2, obs_dim=16, goal_dim=8, token_dim=4)


@pytest.fixture(scope="module")
def trained():
    import torch

    torch.set_num_threads(1)
    data = planted_keypoint_dataset(16, seed=0)
    model, _ = train_keypoint_model(data, TrainKeypointConfig(model=TINY, steps=5, batch_size=8, seed=0))
    return model, data


@pytest.fixture
def saved(trained, tmp_path):
    model, _ = trained
    return save_keypoint_model(tmp_path / "kp", model, "place_block", ["block"], policy_perception(),
                               training={"steps": 5})


def test_round_trip_gives_the_same_predictions(trained, saved, tmp_path):
    model, data = trained
    assert saved == tmp_path / "kp.json" and (tmp_path / "kp.safetensors").is_file()
    for path in (tmp_path / "kp", saved, tmp_path / "kp.safetensors"):
        ckpt = load_keypoint_model(path, task="place_block")
        assert isinstance(ckpt, KeypointCheckpoint)
        assert ckpt.task == "place_block" and ckpt.names == ["block"] and ckpt.perception == policy_perception()
        assert ckpt.meta["training"] == {"steps": 5} and ckpt.meta["vocab"] == model.goal_encoder.vocab
        a = predict_keypoints(model, data.points, data.colors, data.goals)
        b = predict_keypoints(ckpt.model, data.points, data.colors, data.goals)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    obs = Observation({}, None, data.goals[0], points=data.points[0], colors=data.colors[0])
    kp = ckpt.source().keypoints(obs)
    assert kp.names == ["block"] and kp.objects.shape == (1, 3)
    assert np.isfinite(KeypointReward(ckpt.source()).score_states([obs])).all()
    # a folder is written as / read from keypoints.{json,safetensors}
    folder = tmp_path / "run"
    folder.mkdir()
    assert save_keypoint_model(folder, model, "place_block", ["block"]) == folder / "keypoints.json"
    assert load_keypoint_model(folder).perception is None
    assert keypoint_model_paths(folder)[1] == folder / "keypoints.safetensors"


def test_refuses_wrong_names_on_save(trained, tmp_path):
    with pytest.raises(ValueError, match="names"):
        save_keypoint_model(tmp_path / "kp", trained[0], "place_block", ["a", "b"])


def _edit(path, **changes):
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        node, *rest = key.split("__")
        if rest:
            meta[node][rest[0]] = value
        else:
            meta[node] = value
    path.write_text(json.dumps(meta))


def test_missing_and_damaged_files(saved, tmp_path):
    weights = tmp_path / "kp.safetensors"
    with pytest.raises(FileNotFoundError, match="keypoint-model file missing"):
        load_keypoint_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no keypoints.json"):
        load_keypoint_model(tmp_path / "empty")
    with pytest.raises(ArtifactMismatchError, match="trained for task 'place_block', not 'align_rope'"):
        load_keypoint_model(saved, task="align_rope")
    blob = weights.read_bytes()
    weights.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ArtifactError, match="corrupted or truncated"):
        load_keypoint_model(saved)
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="weights missing"):
        load_keypoint_model(saved)
    text = saved.read_text()
    saved.write_text(text[: len(text) // 2])
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_keypoint_model(saved)
    saved.write_text(json.dumps({"format": "robot_rewards.policy", "version": 1}))
    with pytest.raises(ArtifactError, match="not a robot_rewards keypoint-model file"):
        load_keypoint_model(saved)


@pytest.mark.parametrize("changes, message", [
    ({"names": ["a", "b"]}, "'names' must list 1"),
    ({"model__obs_dim": 32}, "does not fit the network"),
    ({"model__n_keypoints": 2, "names": ["a", "b"]}, "does not fit the network"),
    ({"model__wings": 2}, "keys this code does not know"),
    ({"vocab": ["cat"]}, "cannot build the network"),
    ({"perception__lens": 1}, "keys this code does not know"),
    ({"version": 99}, "newer than this code"),
])
def test_mismatched_json_is_refused(saved, changes, message):
    _edit(saved, **changes)
    with pytest.raises(ArtifactError, match=message):
        load_keypoint_model(saved)


def test_json_missing_an_entry(saved):
    meta = json.loads(saved.read_text())
    del meta["vocab"]
    saved.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="lacks 'vocab'"):
        load_keypoint_model(saved)


# -- the command's pieces ------------------------------------------------------------------------

def test_canonical_order_and_errors():
    from robot_rewards.commands.keypoints import canonical_order, keypoint_errors, summarise
    from robot_rewards.rewards.keypoints.net import KeypointDataset

    obj = np.array([[0.5, 0.2, 0.01], [0.6, -0.2, 0.01]])
    tgt = np.array([[0.4, 0.25, 0.0], [0.7, -0.25, 0.0]])
    o, t = canonical_order(obj, tgt)
    np.testing.assert_array_equal(t[:, 1], [-0.25, 0.25])
    np.testing.assert_array_equal(o[0], obj[1])  # pairs move together
    data = KeypointDataset(np.zeros((1, 4, 3)), None, ["g"], o[None], t[None], [0], ["r", "l"])
    swapped = keypoint_errors(o[None, ::-1], t[None, ::-1], data)  # the right pairs, other order
    assert swapped["set"][0] == pytest.approx(0) and swapped["distance"][0] == pytest.approx(0)
    assert swapped["object"][0] > 100 and swapped["mean"][0] > 100
    shifted = keypoint_errors(o[None] + [0.003, 0.004, 0], t[None], data)
    r = summarise(shifted)
    assert r["object_error_mm"] == pytest.approx(5) and r["target_error_mm"] == 0
    assert r["mean_error_mm"] == pytest.approx(2.5)
    assert r["n"] == 1 and summarise(shifted, [False]) == {"n": 0}


def test_augmented_copies_move_cloud_and_keypoints_together():
    from robot_rewards.commands.keypoints import augment
    from robot_rewards.rewards.synthetic import BLUE, RED

    data = planted_keypoint_dataset(4, seed=2)
    aug = augment(data, 2, 0.8, 0.05, seed=0)
    assert len(aug) == 12 and aug.goals == data.goals * 3 and aug.colors.shape[0] == 12
    np.testing.assert_array_equal(aug.points[:4], data.points)
    assert not np.allclose(aug.points[4:8], data.points)
    for i in range(12):  # the keypoints still sit on their (moved) clusters
        for colour, kp in ((BLUE, aug.objects[i, 0]), (RED, aug.targets[i, 0])):
            cluster = aug.points[i][(aug.colors[i] == colour).all(-1)]
            assert np.linalg.norm(cluster[:, :2].mean(0) - kp[:2]) < 0.01
    np.testing.assert_allclose(aug.points[4:, :, 2], np.tile(data.points[:, :, 2], (2, 1)), atol=1e-6)
    assert augment(data, 0, 0.8, 0.05, seed=0) is data


def test_command_refuses_bad_settings():
    from robot_rewards.commands.keypoints import train_keypoints_command
    from robot_rewards.rewards.keypoints.config import TrainKeypointsCommandConfig

    with pytest.raises(ValueError, match="overlap"):
        train_keypoints_command(TrainKeypointsCommandConfig(scenes=10, heldout_seed=5))
    with pytest.raises(ValueError, match="no ground-truth keypoints for task 'stack_block' "):
        train_keypoints_command(TrainKeypointsCommandConfig(task="stack_block"))
    with pytest.raises(ValueError, match="scenes >= 1"):
        train_keypoints_command(TrainKeypointsCommandConfig(scenes=0))


def test_moved_rope_is_straighter_and_intact():
    from robot_rewards.sim.env import TabletopEnv

    with TabletopEnv("align_rope") as env:
        env.reset(3)
        before = env.quality()
        rng = np.random.default_rng(0)
        moves = [env.task.perturb(env.world, rng) for _ in range(2)]
        assert all(m in ("rope_partial", "rope_straight") for m in moves)
        gaps = env.task.rope.gaps()
        assert np.all(np.abs(gaps - env.task.spec.pitch) < 0.003)  # the joints held
        assert env.quality() < before


def test_train_keypoints_end_to_end(tmp_path):
    """One training and one held-out place_block scene (reset + a moved block), a few steps."""
    from robot_rewards.commands.keypoints import train_keypoints_command
    from robot_rewards.rewards.keypoints.config import TrainKeypointsCommandConfig

    cfg = TrainKeypointsCommandConfig(task="place_block", scenes=1, heldout_scenes=1, seed=0, augment_copies=1,
                                      train=TrainKeypointConfig(model=TINY, steps=2, batch_size=2),
                                      cache=str(tmp_path / "cache"), output_dir=str(tmp_path / "out"))
    m = train_keypoints_command(cfg)
    assert m["train_samples"] == 2 and m["heldout_samples"] == 2 and m["augmented_samples"] == 2
    held = m["errors"]["heldout"]
    assert held["model"]["all"]["n"] == 2 and held["model"]["moved"]["n"] == 1
    assert held["mean_baseline"]["all"]["mean_error_mm"] > 0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["command"] == "train-keypoints"
    ckpt = load_keypoint_model(tmp_path / "out", task="place_block")
    assert ckpt.names == ["block"] and ckpt.meta["training"]["samples"] == 2
    assert len(list((tmp_path / "cache").glob("place_block_*.npz"))) == 2
    # the cached datasets are reused (nothing collected the second time)
    again = train_keypoints_command(cfg)
    assert again["collect_train_s"] == 0 and again["collect_heldout_s"] == 0
    assert again["errors"]["heldout"]["model"]["all"] == held["model"]["all"]
