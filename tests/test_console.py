"""The teleop/labelling console: overlay drawing, the input state machine, pixel -> 3D
demonstrations in the sim, and whole sessions (in process, and through a pseudo-terminal)."""

from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import sys
import time

import numpy as np
import pytest

from robot_rewards.console import overlay
from robot_rewards.console.config import ConsoleConfig
from robot_rewards.console.ranking_session import (
    Demonstrate,
    Execute,
    Home,
    Jog,
    PairAnswer,
    Quit,
    RankAnswer,
    RankingSession,
    Skip,
    UndoStored,
)
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.candidates import Candidates

GREY = 128


# -- overlay ----------------------------------------------------------------------------------

def top_down_camera() -> CameraModel:
    """A 160x120 camera 1 m above (0.5, 0, 0) looking straight down."""
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = [0.5, 0.0, 1.0]
    return CameraModel("top", CameraIntrinsics.from_fov(160, 120, 60.0), T)


def two_candidates() -> Candidates:
    params = [[0.50, 0.00, 0.02, 0.60, 0.10, 0.02, 0.0],
              [0.45, -0.10, 0.02, 0.40, -0.15, 0.02, 1.0]]
    return Candidates("pick_place", params, [0, 1], [False, False])


def test_overlay_draws_candidates_at_their_projected_pixels():
    cam, cands = top_down_camera(), two_candidates()
    rgb = np.full((120, 160, 3), GREY, np.uint8)
    img = overlay.draw_candidates(rgb, cam, cands, scale=2.0, title="put the red block in the bowl", ticks=0)
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8
    assert np.all(rgb == GREY)  # a new image; the input is untouched
    colors = overlay.candidate_colors(2)
    assert colors[0] != colors[1]
    for i in range(2):
        prim = cands.primitive(i)
        pick, place = (np.round(overlay.to_display(cam.project(prim[p]), 2.0)).astype(int) for p in ("pick", "place"))
        # The place end is a filled dot in the candidate's colour; the arrow starts at the pick.
        assert tuple(img[place[1], place[0]]) == colors[i]
        assert np.abs(img[pick[1], pick[0]].astype(int) - colors[i]).max() < 60
    # The caption band at the bottom is drawn (darkened + text).
    assert img[-5:].mean() < GREY * 0.6


def test_overlay_shows_only_the_chosen_pair_and_checks_inputs():
    cam, cands = top_down_camera(), two_candidates()
    rgb = np.full((120, 160, 3), GREY, np.uint8)
    img = overlay.draw_candidates(rgb, cam, cands, labels=["A", "B"], show=[0], scale=1.0, ticks=0)
    hidden = np.round(cam.project(cands.primitive(1)["place"])).astype(int)
    assert np.all(img[hidden[1] - 1:hidden[1] + 2, hidden[0] - 1:hidden[0] + 2] == GREY)
    with pytest.raises(ValueError, match="image is 100x120"):
        overlay.draw_candidates(np.zeros((120, 100, 3), np.uint8), cam, cands)
    with pytest.raises(ValueError, match=r"candidates \[5\] do not exist"):
        overlay.draw_candidates(rgb, cam, cands, show=[5])
    # Clicks in the upscaled window map back to camera pixels.
    assert np.allclose(overlay.from_display(overlay.to_display([10.0, 20.0], 1.5), 1.5), [10.0, 20.0])


# -- the input state machine ------------------------------------------------------------------

def test_rank_mode_picks_best_remaining_until_the_rest_are_equal():
    s = RankingSession("rank")
    s.new_query(8)
    assert s.feed("3").events == [] and s.picks == [2]
    step = s.feed("1 5")
    assert step.events == [] and s.picks == [2, 0, 4] and s.chosen == 2
    assert "ranked: 3 > 1 > 5" in s.prompt()
    assert s.feed("u").message == "undid pick of 5" and s.picks == [2, 0]
    step = s.feed("")  # Enter: the rest are indistinguishable
    assert step.events == [RankAnswer((2, 0), True)] and s.done
    assert s.feed("1").error  # nothing on screen until the next query

    s.new_query(8)
    assert s.feed("42=").events == [RankAnswer((3, 1))]  # compact digits with <= 9 candidates
    s.new_query(3)
    assert s.feed("2 3").events == [RankAnswer((1, 2, 0))]  # n-1 picks fix the last one
    s.new_query(8)
    assert s.feed("=").events == [RankAnswer(())]  # all equally good
    s.new_query(8)
    assert s.feed("u").events == [UndoStored()]  # nothing picked: undo the stored answer
    assert s.feed("s").events == [Skip()]
    s.new_query(8)
    assert s.feed("q").events == [Quit()]


def test_rank_mode_rejects_bad_keys_with_clear_messages_and_changes_nothing():
    s = RankingSession("rank")
    s.new_query(8)
    step = s.feed("9")
    assert step.error and step.message == "candidate 9 does not exist (1-8)"
    s.feed("3")
    assert s.feed("3").message == "candidate 3 is already ranked #1"
    step = s.feed("1 z")  # a line applies whole or not at all
    assert step.error and "unknown key 'z'" in step.message and s.picks == [2]
    assert "nothing may follow" in s.feed("= 4").message and not s.done
    s.new_query(8)
    assert "pick the best candidate first" in s.feed("").message
    s.new_query(12)
    assert s.feed("12").events == [] and s.picks == [11]  # two-digit candidates as one number
    assert "1-12" in s.help()


def test_pairwise_mode_answers():
    s = RankingSession("pairwise")
    expected = {"a": "a", "b": "b", "t": "tie", "?": "cant_tell", "A": "a"}
    for key, answer in expected.items():
        s.new_query(8, pair=(4, 1))
        assert s.feed(key).events == [PairAnswer(4, 1, answer)]
    s.new_query(8, pair=(4, 1))
    assert "unknown key '3'" in s.feed("3").message
    assert "one key" in s.feed("a b").message
    assert s.feed("u").events == [UndoStored()]
    assert "A = candidate 5, B = candidate 2" in s.prompt()
    with pytest.raises(ValueError, match="two different candidates"):
        s.new_query(8, pair=(3, 3))


def test_teleop_commands_are_parsed_and_validated():
    s = RankingSession("rank", jog_max_cm=10)
    s.new_query(8, image_size=(640, 480))
    assert s.feed("x").events == [Execute(None, "top")]
    assert s.feed("x 4").events == [Execute(3, "given")]
    s.feed("6")
    assert s.feed("x").events == [Execute(5, "first pick")]
    assert "candidate 9 does not exist" in s.feed("x 9").message
    assert s.feed("h").events == [Home()]
    assert s.feed("j 0 -2.5 5").events == [Jog((0.0, -0.025, 0.05))]
    assert "exceeds the 10 cm limit" in s.feed("j 0 0 20").message
    assert "three numbers" in s.feed("j 1 2").message
    assert "must be a number" in s.feed("j a 0 0").message
    ev = s.feed("d 100 200 300.5 250 90").events[0]
    assert ev == Demonstrate((100.0, 200.0), (300.5, 250.0), pytest.approx(np.pi / 2))
    assert s.feed("d").events == [Demonstrate(None, None)]
    assert "outside the 640x480 image" in s.feed("d 100 200 700 10").message
    assert s.picks == [5] and not s.done  # teleop does not end the query


# -- pixel -> 3D in the sim -------------------------------------------------------------------

def test_clicked_pixels_give_3d_points_and_a_demonstration_that_works():
    from robot_rewards.console.app import demonstration_params
    from robot_rewards.robots.base import RobotError
    from robot_rewards.sim.robot import SimRobot
    from robot_rewards.sim.tasks.base import BLOCK_HALF
    from robot_rewards.sim.tasks.place_block import BOWL_FLOOR

    with SimRobot("place_block") as robot:
        robot.reset(3)
        obs = robot.observe()
        world, task = robot.env.world, robot.env.task
        cam = obs.frames["front"].camera
        top = world.position(task.target_block) + [0.0, 0.0, BLOCK_HALF]  # centre of the block's top face
        floor = world.position(task.target_bowl) + [0.0, 0.0, BOWL_FLOOR]
        (u1, v1), (u2, v2) = cam.project(np.stack([top, floor]))
        a = robot.pixel_to_base("front", u1, v1)
        b = robot.pixel_to_base("front", u2, v2)
        assert np.linalg.norm(a - top) < 0.004 and np.linalg.norm(b - floor) < 0.004
        with pytest.raises(RobotError, match="outside the 640x480 image"):
            robot.pixel_to_base("front", 650, 10)

        params = demonstration_params("pick_place", a, b, world.yaw(task.target_block), 0.02, 0.03)
        assert abs(params[2] - BLOCK_HALF) < 0.004  # grasp at the block's middle
        version = robot.scene_version
        from robot_rewards.core.primitives import Primitive

        result = robot.execute(Primitive("pick_place", params))
        assert result.ok and result.success, result.message
        assert robot.scene_version == version + 1
        # the arm's state now, not the observation's from before the primitive
        now = robot.state()
        assert now.joint_positions.shape == obs.proprio.joint_positions.shape
        assert not np.allclose(now.joint_positions, obs.proprio.joint_positions)
        assert now.gripper_width > 0.02  # released: the gripper opens after placing


def test_sim_backend_jogs_and_homes_the_arm():
    from robot_rewards.sim.robot import SimRobot

    with SimRobot("place_block") as robot:
        robot.reset(0)
        arm = robot.env.world.arm
        start = arm.ee_pose()[:3, 3]
        assert robot.jog([0.0, 0.0, -0.05]).ok
        assert robot.jog([0.05, 0.02, 0.0]).ok
        assert np.allclose(arm.ee_pose()[:3, 3] - start, [0.05, 0.02, -0.05], atol=0.002)
        refused = robot.jog([0.0, 0.0, -1.0])
        assert not refused.ok and "would hit the table" in refused.message
        assert robot.home().ok and np.linalg.norm(arm.ee_pose()[:3, 3] - start) < 0.005
        assert robot.scene_version == 1  # arm-only moves do not change the scene


def test_config_and_backend_errors_are_clear():
    from robot_rewards.commands.console import make_backend

    with pytest.raises(ValueError, match="mode must be one of rank, pairwise"):
        ConsoleConfig(mode="sort")
    with pytest.raises(ValueError, match="n_candidates must be >= 2"):
        ConsoleConfig(n_candidates=1)
    with pytest.raises(ValueError, match="unknown backend 'ur5'"):  # backend=ros: tests/test_console_ros.py
        make_backend("ur5", "place_block")
    assert ConsoleConfig(task="align_rope").checkpoint_path() == "checkpoints/policy_align_rope.json"
    assert ConsoleConfig(labeller="ann").labeller_name() == "ann" and ConsoleConfig().labeller_name()


# -- whole sessions ---------------------------------------------------------------------------

def scene_pixels(seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Pixels of the target block's top and the target bowl's floor in scene `seed`, and the block's yaw."""
    from robot_rewards.sim.env import TabletopEnv
    from robot_rewards.sim.tasks.base import BLOCK_HALF

    with TabletopEnv("place_block") as env:
        env.reset(seed)
        w, t = env.world, env.task
        pts = np.stack([w.position(t.target_block) + [0, 0, BLOCK_HALF], w.position(t.target_bowl) + [0, 0, 0.004]])
        uv = w.camera.project(pts)
        return uv[0], uv[1], float(np.degrees(w.yaw(t.target_block)))


@pytest.mark.slow
def test_pairwise_session_with_undo_demonstration_and_execution(tmp_path):
    from robot_rewards.commands.console import run_console
    from robot_rewards.preferences.store import PreferenceStore

    pick, place, yaw = scene_pixels(5)
    lines = ["z",  # invalid: a message, nothing stored
             "a",  # query 1 -> stored
             "u",  # undo it: query 1 is shown again
             "t",  # answer query 1 again: tie
             f"d {pick[0]:.1f} {pick[1]:.1f} {place[0]:.1f} {place[1]:.1f} {yaw:.1f}",  # query 2 (seed 5)
             "x",  # execute the demonstration: query 2 is replaced by the scene after it
             "?",  # can't tell (then query 3, a fresh scene, is shown)
             "q"]
    cfg = ConsoleConfig(mode="pairwise", queries=5, seed=4, window="off", store=str(tmp_path / "store"),
                        output_dir=str(tmp_path / "out"), labeller="tester")
    out = io.StringIO()
    metrics = run_console(cfg, io.StringIO("\n".join(lines) + "\n"), out)
    text = out.getvalue()
    assert "unknown key 'z'" in text and "undid pair label" in text and "showing that query again" in text
    assert "task achieved" in text, text[-3000:]
    assert metrics["answers"] == 2 and metrics["undone"] == 1 and metrics["demonstrations"] == 1
    assert metrics["executions"] == 1 and metrics["queries_shown"] == 4
    assert (tmp_path / "out" / "current.png").stat().st_size > 10_000
    with PreferenceStore(tmp_path / "store", create=False) as store:
        assert store.label_count("place_block") == 2
        queries = store.queries()
        assert len(queries) == 4 and all(q.meta["pair"] is not None for q in queries)
        assert [q.meta["episode_seed"] for q in queries] == [4, 5, 5, 6]  # query 3: the scene after 'x'
        demo = store.demonstrations()[0]
        assert demo["query_id"] == queries[1].id and demo["params"].shape == (7,)
        _, arrays = store.load_query(queries[0].id)
        assert arrays.image.shape == (480, 640, 3) and arrays.params.shape == (8, 7)


@pytest.fixture
def pty_console(tmp_path):
    """`python -m robot_rewards.cli console ...` on a pseudo-terminal; yields (send, expect, proc)."""
    procs = []

    def start(*overrides):
        master, slave = os.openpty()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen([sys.executable, "-m", "robot_rewards.cli", "console", *overrides],
                                stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=env, close_fds=True)
        os.close(slave)
        procs.append((proc, master))
        buf = bytearray()

        def expect(pattern: str, timeout: float = 180.0) -> str:
            deadline = time.monotonic() + timeout
            while True:
                m = re.search(pattern.encode(), buf)
                if m:
                    text = buf[:m.end()].decode(errors="replace")
                    del buf[:m.end()]
                    return text
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {pattern!r} on the terminal; last output:\n{buf[-3000:].decode()}")
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # the child closed the terminal
                        chunk = b""
                    if not chunk and proc.poll() is not None:
                        raise AssertionError(f"console exited ({proc.returncode}) before {pattern!r}:\n"
                                             f"{buf[-3000:].decode()}")
                    buf.extend(chunk)

        def send(line: str) -> None:
            os.write(master, line.encode() + b"\n")

        return send, expect, proc

    yield start
    for proc, master in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        os.close(master)


def tiny_scorer(path) -> str:
    """An untrained 3-member preference scorer checkpoint (its scores are shown, not judged)."""
    import torch

    from robot_rewards.rewards.preference.config import ScorerConfig
    from robot_rewards.rewards.preference.io import save_scorer
    from robot_rewards.rewards.preference.scorer import PreferenceScorer

    torch.manual_seed(0)
    cfg = ScorerConfig(point_channels=[16, 32], attention_heads=2, obs_dim=32, goal_dim=16, token_dim=8, hidden=64)
    scorer = PreferenceScorer(cfg, "pick_place", ["<pad>", "<unk>", "put", "the", "block", "in", "bowl"], k=3)
    return str(save_scorer(path, scorer))


@pytest.mark.slow
def test_headless_session_through_a_pseudo_terminal(tmp_path, pty_console):
    from robot_rewards.preferences.store import PreferenceStore

    scorer = tiny_scorer(tmp_path / "scorer")
    send, expect, proc = pty_console("task=place_block", "window=off", "queries=2", "seed=0", f"scorer={scorer}",
                                     f"store={tmp_path / 'store'}", f"output_dir={tmp_path / 'out'}",
                                     "labeller=tester")
    expect(r"query 1/2, 0 labels")
    table = expect(r"best remaining\? \[1-8\]")
    top = int(re.search(r"^\s+(\d)\s.*score [-+]\d\.\d+ \+- \d\.\d+\s+\(top\)", table, re.M).group(1))
    send("9")
    expect(r"candidate 9 does not exist \(1-8\)")
    send("3 1")
    expect(r"ranked: 3 > 1")
    send("=")
    expect(r"stored: ranking 3 > 1")
    expect(r"query 2/2, 28 labels")
    send("j 0 0 -3")
    expect(r"jog \(0\.0, 0\.0, -3\.0\) cm: gripper at")
    send("x")  # nothing picked: the top-scored candidate of this query
    expect(r"executing top-scored candidate \d")
    expect(r"query 2/2, 28 labels .* decision 2")  # the same scene after the motion, new candidates
    send("2")
    send("")
    expect(r"stored: ranking 2")
    out = expect(r"metrics: \S+metrics\.json")
    assert proc.wait(timeout=60) == 0, out

    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["answers"] == 2 and metrics["queries_done"] == 2 and metrics["executions"] == 1
    latency = metrics["next_query_latency_ms"]
    assert latency["n"] == 1 and latency["median"] > 0 and latency["p95"] >= latency["median"]
    assert (tmp_path / "out" / "current.png").stat().st_size > 10_000
    with PreferenceStore(tmp_path / "store", create=False) as store:
        assert store.label_count("place_block") == metrics["labels"] == 56  # 28 pairs per 8-candidate ranking
        assert [r["order"] for r in store.rankings()] == [[2, 0], [1]]
        assert all(s["ended_at"] is not None for s in store.sessions())
        queries = store.queries()
        assert len(queries) == 3  # query 2 was replaced after 'x'
        _, arrays = store.load_query(queries[0].id)
        assert arrays.scores.shape == (3, 8)
        assert int(np.argmax(arrays.scores.mean(axis=0))) == top - 1


def test_a_robot_without_a_joint_reader_reports_the_last_observed_state():
    from robot_rewards.core.observation import Observation, Proprio
    from robot_rewards.robots.base import Robot, RobotError

    robot = Robot()
    with pytest.raises(RobotError, match="observed nothing yet"):
        robot.state()
    robot.last_observation = Observation(frames={}, proprio=Proprio(np.arange(7.0), 0.04), goal="g")
    assert robot.state().gripper_width == 0.04 and robot.state().joint_positions[6] == 6.0
