"""Keypoint rewards: monotone state reward, analytic candidate scores, sim truth, clicks, a learned model."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rewards.core.candidates import Candidates
from robot_rewards.rewards.base import ActionScorer, StateReward
from robot_rewards.rewards.keypoints.config import KeypointModelConfig, TrainKeypointConfig
from robot_rewards.rewards.keypoints.net import (
    LearnedKeypointSource,
    evaluate_keypoint_model,
    mean_baseline_error_mm,
    train_keypoint_model,
)
from robot_rewards.rewards.keypoints.reward import (
    Click,
    ClickKeypointSource,
    FixedKeypointSource,
    KeypointError,
    KeypointReward,
    Keypoints,
    KeypointScorer,
    KeypointSource,
    SimKeypointSource,
    click_to_point,
    keypoint_reward,
    predict_push,
    task_keypoints,
)
from robot_rewards.rewards.synthetic import planted_keypoint_dataset, random_params
from robot_rewards.sim.expert_config import ExpertConfig


def test_keypoint_reward_is_monotone_in_distance():
    target = np.array([[0.5, 0.0, 0.02]])
    dists = np.linspace(0.0, 0.4, 9)
    for kind in ("neg_distance", "exp"):
        r = [keypoint_reward(Keypoints(target + [d, 0, 0], target), kind) for d in dists]
        assert np.all(np.diff(r) < 0), kind
    assert keypoint_reward(Keypoints(target, target), "exp") == 1.0
    assert keypoint_reward(Keypoints(target + [0.03, 0.04, 0], target)) == pytest.approx(-0.05)
    with pytest.raises(ValueError, match="unknown keypoint reward"):
        keypoint_reward(Keypoints(target, target), "cosine")
    with pytest.raises(KeypointError, match="targets"):
        Keypoints(np.zeros((2, 3)), np.zeros((1, 3)))
    with pytest.raises(KeypointError, match="NaN"):
        Keypoints([[np.nan, 0, 0]], [[0, 0, 0]])


def test_analytic_scores_by_hand():
    kp = Keypoints([[0.5, 0.0, 0.02]], [[0.6, 0.1, 0.02]])
    scorer = KeypointScorer(FixedKeypointSource(kp))
    assert isinstance(scorer, ActionScorer) and isinstance(FixedKeypointSource(kp), KeypointSource)
    params = np.array([[0.5, 0.0, 0.02, 0.6, 0.1, 0.02, 0.0],    # perfect
                       [0.53, 0.04, 0.02, 0.6, 0.1, 0.02, 1.0],  # pick 5 cm off
                       [0.5, 0.0, 0.02, 0.6, 0.0, 0.02, 0.0]])   # place 10 cm off
    s = scorer.score(None, Candidates("pick_place", params, np.arange(3), np.zeros(3, bool)))
    assert s.k == 1
    np.testing.assert_allclose(s.mean, [0.0, -0.05, -0.1], atol=1e-12)
    # push: a push through the block carries it to the end point + contact offset
    push_kp = Keypoints([[0.5, 0.0, 0.02]], [[0.6, 0.0, 0.02]])
    pushes = np.array([[0.44, 0.0, 0.015, 0.56, 0.0, 0.015],   # through the block toward the target
                       [0.44, 0.1, 0.015, 0.56, 0.1, 0.015],   # misses it (10 cm to the side)
                       [0.56, 0.0, 0.015, 0.44, 0.0, 0.015]])  # pushes it away from the target
    pred = predict_push(push_kp, pushes, contact_offset=0.04)
    np.testing.assert_allclose(pred[:, 0, :2], [[0.6, 0.0], [0.5, 0.0], [0.4, 0.0]], atol=1e-12)
    s = KeypointScorer(FixedKeypointSource(push_kp)).score(None, Candidates("push", pushes, np.arange(3), np.zeros(3, bool)))
    np.testing.assert_allclose(s.mean, [0.0, -0.1, -0.2], atol=1e-12)


@pytest.fixture(scope="module")
def place_scene():
    from robot_rewards.sim.env import TabletopEnv

    env = TabletopEnv("place_block")
    env.reset(3)
    yield env
    env.close()


def test_expert_action_outranks_random_ones_on_a_real_scene(place_scene):
    env = place_scene
    source = SimKeypointSource(env)
    kp = source.keypoints(None)
    np.testing.assert_allclose(kp.objects[0], env.world.position(env.task.target_block))
    expert = env.expert_action(ExpertConfig(noise=0.0))
    rng = np.random.default_rng(0)
    params = np.vstack([expert.params, random_params(rng, 63)])
    cands = Candidates("pick_place", params, np.arange(64), np.zeros(64, bool))
    s = KeypointScorer(source).score(env.observe(), cands)
    assert int(np.argmax(s.mean)) == 0
    assert s.mean[0] > -0.03  # the expert picks the block and places it in the bowl (~1 cm above rest)
    # the dense reward: the current state is worse than the state the expert aims for
    reward = KeypointReward(source)
    assert isinstance(reward, StateReward)
    now = reward.score_states([env.observe()], env.goal)[0]
    assert now == pytest.approx(-kp.distances().mean())
    assert keypoint_reward(Keypoints(expert["place"], kp.targets)) > now


def test_click_lands_on_the_block(place_scene):
    env = place_scene
    obs = env.observe()
    frame = next(iter(obs.frames.values()))
    block = env.world.position(env.task.target_block)
    top = block + [0, 0, 0.02]  # the camera sees the top face
    u, v = frame.camera.project(top)
    p = click_to_point(frame, u, v)
    body = env.world.objects[env.task.target_block]
    assert frame.segmentation[int(round(v)), int(round(u))] == body
    assert np.all(np.abs(p[:2] - block[:2]) < 0.02 + 0.003), (p, block)  # inside the 4 cm cube's footprint
    assert abs(p[2] - 0.04) < 0.005  # on its top face
    bowl = env.world.position(env.task.target_bowl)
    bu, bv = frame.camera.project(bowl + [0, 0, 0.004])
    cam = next(iter(obs.frames))
    kp = ClickKeypointSource([(Click(cam, u, v), Click(cam, bu, bv))], ["block"]).keypoints(obs)
    assert np.linalg.norm(kp.targets[0, :2] - bowl[:2]) < 0.01
    with pytest.raises(KeypointError, match="outside"):
        click_to_point(frame, -5, 10)
    with pytest.raises(KeypointError, match="camera 'wrist'"):
        ClickKeypointSource([(Click("wrist", 1, 1), Click("wrist", 2, 2))]).keypoints(obs)
    hole = frame.depth.copy()
    hole[:] = 0.0
    from robot_rewards.core.observation import CameraFrame

    with pytest.raises(KeypointError, match="no valid depth"):
        click_to_point(CameraFrame(frame.camera, frame.rgb, hole), u, v)


def test_unknown_task_keypoints_error():
    class Fake:
        name = "stack_blocks"

    with pytest.raises(KeypointError, match="no ground-truth keypoints"):
        task_keypoints(Fake(), None)


def test_learned_keypoint_model_beats_the_mean_on_held_out_scenes():
    train = planted_keypoint_dataset(96, seed=0)
    test = planted_keypoint_dataset(32, seed=1)
    cfg = TrainKeypointConfig(model=KeypointModelConfig(point_channels=[16, 32], attention_heads=2, obs_dim=32,
                                                        goal_dim=16, token_dim=8),
                              steps=250, batch_size=32, lr=3e-3, seed=0)
    model, metrics = train_keypoint_model(train, cfg)
    held_out = evaluate_keypoint_model(model, test)
    baseline = mean_baseline_error_mm(train, test)
    assert held_out["mean_error_mm"] < 0.5 * baseline, (held_out, baseline)
    source = LearnedKeypointSource(model, train.names)
    from robot_rewards.core.observation import Observation

    kp = source.keypoints(Observation({}, None, test.goals[0], points=test.points[0], colors=test.colors[0]))
    assert kp.objects.shape == (1, 3) and kp.names == ["block"]


def test_align_rope_keypoints_are_the_rope_ends_and_marks():
    from robot_rewards.sim.env import TabletopEnv

    with TabletopEnv("align_rope") as env:
        env.reset(0)
        kp = SimKeypointSource(env).keypoints(None)
        links = env.task.positions(env.world)
        assert len(kp) == 2 and all(n.startswith("rope_end_") for n in kp.names)
        ends = {tuple(np.round(links[0], 6)), tuple(np.round(links[-1], 6))}
        assert {tuple(np.round(o, 6)) for o in kp.objects} == ends
        marks = {tuple(np.round(m, 6)) for m in env.task.marks}
        assert {tuple(np.round(t[:2], 6)) for t in kp.targets} == marks
        # the expert's pull scores better than random drags
        expert = env.expert_action(ExpertConfig(noise=0.0))
        rng = np.random.default_rng(1)
        params = np.vstack([expert.params, random_params(rng, 31)])
        s = KeypointScorer(SimKeypointSource(env)).score(None, Candidates("pick_place", params, np.arange(32),
                                                                           np.zeros(32, bool)))
        assert np.sum(s.mean > s.mean[0]) <= 1
