"""The deformable rope and the align_rope task: physics, success test, expert."""

import numpy as np
import pybullet as p
import pytest

from robot_rewards.core.primitives import Primitive, Workspace
from robot_rewards.perception.chain import segment_distances
from robot_rewards.sim.env import TabletopEnv
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.rollout import run_expert_episode
from robot_rewards.sim.rope import Rope, RopeSpec, chain_from_headings
from robot_rewards.sim.tasks.align_rope import (
    MARK_SPAN,
    REGION_HIGH,
    REGION_LOW,
    SUCCESS_MEAN_DIST,
    grasp_yaw,
    sample_marks,
    sample_rope_shape,
)

SPEC = RopeSpec()


def lay_straight(env, a, b, offset=(0.0, 0.0)):
    """Teleport the rope links onto the straight segment centred between marks a and b."""
    u = (b - a) / np.linalg.norm(b - a)
    centre = (a + b) / 2 + np.asarray(offset)
    s = (np.arange(SPEC.n_links) - (SPEC.n_links - 1) / 2) * SPEC.pitch
    yaw = np.arctan2(u[1], u[0])
    # capsules lie along their local z axis: turn z onto the rope direction
    quat = p.getQuaternionFromEuler([0.0, np.pi / 2, yaw])
    rope = env.task.rope
    for body, si in zip(rope.bodies, s):
        xy = centre + si * u
        p.resetBasePositionAndOrientation(body, [xy[0], xy[1], SPEC.radius + 5e-4], quat,
                                          physicsClientId=env.world.client)
        p.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0], physicsClientId=env.world.client)
    env.world.settle()


def test_sampled_shapes_are_curved_fit_the_region_and_do_not_touch():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pts = sample_rope_shape(rng)
        assert pts.shape == (SPEC.n_links, 2)
        assert np.all(pts >= REGION_LOW - 1e-9) and np.all(pts <= REGION_HIGH + 1e-9)
        np.testing.assert_allclose(np.linalg.norm(np.diff(pts, axis=0), axis=1), SPEC.pitch, rtol=1e-9)
        assert np.linalg.norm(pts[-1] - pts[0]) <= 0.85 * SPEC.length  # clearly not straight
        a, b = sample_marks(rng)
        assert np.linalg.norm(b - a) == pytest.approx(MARK_SPAN)


def test_rope_is_built_intact_and_rejects_bad_points(world):
    world.reset()
    pts = chain_from_headings((0.4, -0.2), np.linspace(0, 1.0, SPEC.n_links - 1), SPEC.pitch)
    rope = Rope(world, pts)
    world.settle()
    assert len(rope) == SPEC.n_links
    np.testing.assert_allclose(rope.gaps(), SPEC.pitch, atol=0.002)
    assert np.all(rope.speeds() < 0.01)  # at rest on the table
    with pytest.raises(ValueError, match="20 links"):
        Rope(world, pts[:5], prefix="short")
    with pytest.raises(ValueError, match="apart"):
        Rope(world, pts * 2, prefix="stretched")


def test_reset_is_deterministic():
    with TabletopEnv("align_rope") as env:
        goal_a = env.reset(4)
        pos_a, img_a = env.task.positions(env.world), env.observe().frames["front"]
        env.reset(5)
        pos_b = env.task.positions(env.world)
        goal_c = env.reset(4)
        pos_c, img_c = env.task.positions(env.world), env.observe().frames["front"]
    assert goal_a == goal_c and "rope" in goal_a
    np.testing.assert_array_equal(pos_a, pos_c)
    np.testing.assert_array_equal(img_a.rgb, img_c.rgb)
    np.testing.assert_array_equal(img_a.depth, img_c.depth)
    assert not np.allclose(pos_a, pos_b)
    with TabletopEnv("align_rope") as env:  # the grasp targets (evaluation diagnostics) are the ends
        env.reset(4)
        np.testing.assert_array_equal(env.task.grasp_targets(env.world), pos_a[[0, -1]])


def test_success_test_on_hand_built_scenes():
    with TabletopEnv("align_rope") as env:
        env.reset(3)
        a, b = env.task.marks
        assert not env.success() and env.quality() > SUCCESS_MEAN_DIST  # starts curved
        lay_straight(env, a, b)
        assert env.success() and env.quality() < 0.005
        assert max(env.task.end_errors(env.world)) < 0.025  # the straight rope overhangs 22.5 mm
        u = (b - a) / np.linalg.norm(b - a)
        lay_straight(env, a, b, offset=0.04 * np.array([-u[1], u[0]]))
        assert not env.success()  # straight and parallel, but 4 cm off the line
        assert env.quality() == pytest.approx(0.04, abs=0.004)
        lay_straight(env, a, b, offset=0.05 * u)
        assert env.quality() < SUCCESS_MEAN_DIST  # on the line ...
        assert not env.success()  # ... but one end 5 cm past its mark


def test_pick_place_drags_the_rope_by_an_end_without_breaking_it(world):
    world.reset()
    pts = chain_from_headings((0.40, -0.20), np.full(SPEC.n_links - 1, np.pi / 2), SPEC.pitch)
    rope = Rope(world, pts)
    world.settle()
    end = rope.positions()[0]
    target = np.array([0.52, -0.25])
    heading = float(np.arctan2(pts[1, 1] - pts[0, 1], pts[1, 0] - pts[0, 0]))
    r = world.execute(Primitive.pick_place([*end[:2], 0.011], [*target, 0.011], grasp_yaw(heading)),
                      Workspace())
    assert r.ok, r.reason
    after = rope.positions()
    assert np.linalg.norm(after[0, :2] - target) < 0.03  # the end came along with the fingers
    assert np.linalg.norm(after[-1, :2] - pts[-1]) > 0.01  # and pulled the rest
    assert rope.gaps().max() < SPEC.pitch + 0.003  # no joint stretched or tore (links may fold)
    assert np.all(after[:, 2] < 0.02)  # lying on the table again
    assert segment_distances(after, after[0], after[-1]).max() < 0.25


@pytest.mark.slow
def test_clean_expert_straightens_a_seeded_rope():
    with TabletopEnv("align_rope") as env:
        outcome = run_expert_episode(env, 21, ExpertConfig(noise=0.0))
    assert outcome.success, (outcome.quality, outcome.reasons)
    assert outcome.steps <= env.task.max_steps
