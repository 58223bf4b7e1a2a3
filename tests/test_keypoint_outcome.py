"""Outcome models whose measures a learned keypoint model reads (place_block, push_block): the
frame, the symmetry, the block's face angle, reading real sim clouds, and the file's link to its
keypoint model."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from robot_rewards.core.paths import resolve
from robot_rewards.data.transitions import Transitions, TransitionsError, load_transitions, save_transitions
from robot_rewards.rewards.outcome.config import OutcomeModelConfig, TrainOutcomeConfig
from robot_rewards.rewards.outcome.keypoint_outcome import UNIT, KeypointCloudOutcome, face_angle, keypoint_outcome, sharpen
from robot_rewards.rewards.outcome.model import load_outcome_model, save_outcome_model, task_outcome, train_outcome_model
from robot_rewards.sim.tasks import TASKS
from robot_rewards.sim.tasks.base import KeypointReading

TASK = next(n for n, c in TASKS.items() if c.outcome_from_keypoints and c.primitive == "pick_place")
KEYPOINTS = f"checkpoints/keypoints_{TASK}.json"


class _Fixed(KeypointCloudOutcome):
    """Keypoints given, not read (the geometry alone)."""

    def __init__(self, obj, tgt):
        self.obj, self.tgt = np.asarray(obj, float), np.asarray(tgt, float)
        self.reading = KeypointReading()

    def keypoints(self, points, colors, goal):
        return self.obj, self.tgt


def _mirror_xy(v, axis_angle):
    """Reflect xy across the vertical plane through the base at `axis_angle`."""
    c, s = np.cos(2 * axis_angle), np.sin(2 * axis_angle)
    out = np.array(v, float, copy=True)
    out[..., :2] = out[..., :2] @ np.array([[c, s], [s, -c]]).T
    return out


def test_measures_are_offsets_towards_the_base_and_across_in_units():
    tgt = np.array([0.5, 0.0, 0.03])
    # 2 cm towards the base (at the origin); across = that axis turned a quarter anticlockwise
    o = _Fixed(tgt + [-0.02, -0.01, 0.0], tgt)
    m = o.measures(np.zeros((5, 3)))
    assert np.allclose(m, np.array([0.02, 0.01, np.hypot(0.02, 0.01), 0.0]) / UNIT)
    assert o.score(m[None])[0] == pytest.approx(-np.hypot(0.02, 0.01) / UNIT)


@pytest.mark.parametrize("primitive", ["pick_place", "push"])
def test_the_symmetry_is_the_scene_mirrored_across_the_line_through_the_base_and_the_target(primitive):
    rng = np.random.default_rng(0)
    angle = 0.4
    tgt = np.array([0.55 * np.cos(angle), 0.55 * np.sin(angle), 0.03])
    obj = tgt + [0.1, -0.07, 0.0]
    cloud = np.column_stack([obj[:2] + rng.uniform(-0.02, 0.02, (200, 2)), np.full(200, 0.04)])
    params = np.column_stack([obj + rng.normal(0, 0.01, (6, 3)), tgt + rng.normal(0, 0.02, (6, 3)), rng.uniform(-1, 1, 6)])
    mirrored = _Fixed(_mirror_xy(obj, angle), _mirror_xy(tgt, angle))
    mp = params.copy()
    mp[:, 0:3], mp[:, 3:6] = _mirror_xy(params[:, 0:3], angle), _mirror_xy(params[:, 3:6], angle)
    mp[:, 6] = 2 * angle - params[:, 6]  # a yaw mirrored across that line
    if primitive == "push":  # no yaw: the push's heading is read from start -> end
        params, mp = params[:, :6], mp[:, :6]
    x = _Fixed(obj, tgt).inputs(cloud, params)
    xm = mirrored.inputs(_mirror_xy(cloud, angle), mp)
    (sym,) = _Fixed(obj, tgt).symmetries(x)
    assert np.allclose(sym, xm, atol=1e-5)


def test_the_cloud_sharpens_the_keypoints_onto_the_blocks_top_face_and_the_bowls_rim():
    rng = np.random.default_rng(2)
    block, bowl = np.array([0.47, 0.05, 0.024]), np.array([0.45, 0.02, 0.024])
    top = np.column_stack([block[:2] + rng.uniform(-0.02, 0.02, (150, 2)), np.full(150, 0.044)])
    side = np.column_stack([block[:2] + [0.02, 0.0] + rng.normal(0, 0.001, (60, 2)), rng.uniform(0.005, 0.04, 60)])
    a = rng.uniform(0, 2 * np.pi, 300)
    rim = np.column_stack([bowl[:2] + 0.058 * np.column_stack([np.cos(a), np.sin(a)]), rng.uniform(0.022, 0.027, 300)])
    floor = np.column_stack([bowl[:2] + rng.uniform(-0.04, 0.04, (200, 2)), np.full(200, 0.004)])
    cloud = np.concatenate([top, side, rim, floor])
    reading = KeypointReading(object_top=0.028, target_ring=(0.045, 0.08, 0.020, 0.030))
    off = np.array([0.004, -0.003, 0.0])
    obj, tgt = sharpen(cloud, block + off, bowl - off, reading)
    assert np.linalg.norm(obj[:2] - block[:2]) < 0.002 and np.linalg.norm(tgt[:2] - bowl[:2]) < 0.001
    assert obj[2] == block[2] + off[2]  # heights as predicted
    same = sharpen(cloud[:5], block + off, bowl - off, reading)  # too few points: as predicted
    assert np.allclose(same[0], block + off) and np.allclose(same[1], bowl - off)
    assert np.allclose(sharpen(cloud, block + off, bowl, KeypointReading())[0], block + off)


@pytest.mark.parametrize("theta", [0.0, 0.3, -0.6, 1.2])
def test_the_face_angle_turns_with_the_block(theta):
    rng = np.random.default_rng(1)
    uv = rng.uniform(-0.02, 0.02, (400, 2))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    top = np.column_stack([uv @ rot.T + [0.5, 0.1], np.full(400, 0.04)])
    got = face_angle(top, np.array([0.5, 0.1, 0.02]))
    ref = face_angle(np.column_stack([uv + [0.5, 0.1], np.full(400, 0.04)]), np.array([0.5, 0.1, 0.02]))
    diff = (got - ref - theta + np.pi / 4) % (np.pi / 2) - np.pi / 4  # equal modulo a quarter turn
    assert abs(diff) < 0.05


def test_tasks_measured_by_keypoints_get_their_shipped_keypoint_model():
    outcome = task_outcome(TASK)
    assert isinstance(outcome, KeypointCloudOutcome) and outcome.task == TASK
    other = next(n for n, c in TASKS.items() if n != TASK and c.keypoint_names and len(c.keypoint_names) == 1)
    with pytest.raises(Exception, match=f"not '{TASK}'"):
        task_outcome(TASK, f"checkpoints/keypoints_{other}.json")
    with pytest.raises(ValueError, match="reads point colours"):
        outcome.measures(np.zeros((100, 3), np.float32), None, "put the red block in the blue bowl")


@pytest.fixture(scope="module")
def sim_transitions():
    """Two real episodes of the shipped policy, 4 candidates executed per state, with colours."""
    from robot_rewards.eval.transitions import collect_transitions
    from robot_rewards.policy.checkpoint import load_policy
    from robot_rewards.sim.config import SimConfig

    ckpt = load_policy(resolve(f"checkpoints/policy_{TASK}.json"), task=TASK)
    return collect_transitions(TASK, SimConfig(), ckpt.perception, ckpt.policy.eval(), [400_000, 400_001], 8, 4,
                               max_decisions=1, workers=1, primitive=ckpt.policy.primitive, progress=False)


def test_real_clouds_are_measured_and_a_model_trains_and_links_to_its_keypoint_model(sim_transitions, tmp_path):
    data = sim_transitions
    assert data.colors is not None and data.next_colors.shape == data.next_points.shape
    outcome = task_outcome(TASK)
    measured = np.stack([outcome.measures(data.next_points[t], data.next_colors[t], data.goals[data.state[t]])
                         for t in range(len(data))])
    assert measured.shape == (8, 4) and np.all(np.isfinite(measured))
    assert np.allclose(measured[:, 2], np.hypot(measured[:, 0], measured[:, 1]), atol=1e-6)
    # round trip with colours; a coloured and a colourless set do not join
    back = load_transitions(save_transitions(tmp_path / "tr", data))
    assert np.array_equal(back.next_colors, data.next_colors)
    with pytest.raises(TransitionsError, match="colours"):
        Transitions.concat([data, replace(data, colors=None, next_colors=None)])
    model, fit = train_outcome_model(data, TrainOutcomeConfig(model=OutcomeModelConfig(hidden=16, ensemble_size=2),
                                                              steps=20, val_fraction=0.0), progress=False)
    assert fit["usable"] == 8
    # the file names the keypoint model that read its measures, and refuses when that changes
    kp = tmp_path / "kp"
    kp.mkdir()
    for suffix in (".json", ".safetensors"):
        (kp / f"keypoints{suffix}").write_bytes(resolve(KEYPOINTS).with_suffix(suffix).read_bytes())
    path = save_outcome_model(tmp_path / "outcome", model, TASK, data.primitive, keypoint_model=str(kp / "keypoints.json"))
    meta = json.loads(path.read_text())
    assert meta["measured_by"]["keypoint_model"] == str(kp / "keypoints.json") and len(meta["measured_by"]["sha256"]) == 64
    assert isinstance(load_outcome_model(path).outcome, KeypointCloudOutcome)
    assert model.input_dim == KeypointCloudOutcome.input_dim
    meta["input_dim"] = 15  # inputs of an earlier version
    path.write_text(json.dumps(meta))
    with pytest.raises(Exception, match="15 inputs per candidate.*retrain it"):
        load_outcome_model(path)
    meta["input_dim"] = model.input_dim
    meta["measured_by"]["reading"] = None  # read without sharpening: not what the task reads now
    path.write_text(json.dumps(meta))
    with pytest.raises(Exception, match="read as None.*retrain it"):
        load_outcome_model(path)
    meta["measured_by"]["sha256"] = "0" * 64
    path.write_text(json.dumps(meta))
    keypoint_outcome.cache_clear()
    with pytest.raises(Exception, match="other weights: retrain it"):
        load_outcome_model(path)


def test_the_measured_distance_is_the_tasks_quality_on_sim_clouds():
    """The keypoint model reads the block's distance from its bowl's centre as the sim's own
    quality measure gives it (privileged here only to check), after the expert's step too."""
    from robot_rewards.policy.checkpoint import load_policy
    from robot_rewards.sim.config import SimConfig
    from robot_rewards.sim.env import TabletopEnv

    perception = load_policy(resolve(f"checkpoints/policy_{TASK}.json"), task=TASK).perception
    env = TabletopEnv(TASK, SimConfig(), perception=perception)
    outcome = task_outcome(TASK)
    errors = []
    for seed in (100_000, 100_001, 100_002):
        env.reset(seed)
        for _ in range(2):
            obs = env.observe()
            errors.append(abs(outcome.measures(obs.points, obs.colors, obs.goal)[2] * UNIT - env.quality()))
            env.step(env.expert_action())
    assert np.median(errors) < 0.003 and max(errors) < 0.015
