"""The VLM family on simulated scenes: success detection (a task status, and the registry's
`vlm` state reward), KAGI keypoint picks lifted to 3D by depth, and the `vlm-label` command.

The endpoint is the STAND-IN server (`rewards.vlm.standin`), run inside the test: it answers
from the simulator's ground truth registered per image (success, the mark nearest the true
keypoint), not from looking at the image.
"""

from __future__ import annotations

import json
import math
import socket

import numpy as np
import pytest

from robot_rewards.core.keypoints import KeypointError
from robot_rewards.rewards.keypoints.reward import click_to_point, task_keypoints
from robot_rewards.rewards.registry import build_state_reward
from robot_rewards.rewards.vlm.client import VLMClient
from robot_rewards.rewards.vlm.config import VLMConfig
from robot_rewards.rewards.vlm.keypoints import VLMKeypointSource
from robot_rewards.rewards.vlm.standin import StandInVLM
from robot_rewards.rewards.vlm.success import SuccessDetector
from robot_rewards.sim.env import TabletopEnv


def client(server: StandInVLM, **kw) -> VLMClient:
    return VLMClient(VLMConfig(**{"base_url": server.url, "model": server.model, "api_key_env": "",
                                  "timeout_s": 5.0, "backoff_s": 0.0, **kw}))


@pytest.fixture(scope="module")
def episode():
    """(observation at reset, observation after the expert's first primitive, success after it)."""
    with TabletopEnv("place_block") as env:
        env.reset(5)
        before = env.observe()
        assert not env.success()
        env.step(env.expert_action())
        after = env.observe()
        yield before, after, env.success(), task_keypoints(env.task, env.world), None


@pytest.fixture(scope="module")
def scene():
    """(observation, ground-truth keypoints) of a place_block scene at reset."""
    from robot_rewards.policy.config import policy_perception

    with TabletopEnv("place_block", perception=policy_perception()) as env:  # the cloud the marks come from
        env.reset(3)
        yield env.observe(), task_keypoints(env.task, env.world)


def test_success_detection_is_the_task_status(episode):
    before, after, done, *_ = episode
    assert done  # the expert places the block in one primitive
    with StandInVLM() as server:
        for obs, ok in ((before, False), (after, True)):
            server.register_success(next(iter(obs.frames.values())).rgb, ok)
        det = SuccessDetector(client(server))
        assert det.success(before) is False and det.success(after) is True
        assert det.probability(after) == 1.0
        body = server.requests[0]
        assert before.goal in body["messages"][0]["content"][0]["text"]
    with StandInVLM(error_rate=1.0) as server:  # always wrong: the answer, not a shortcut, decides
        for obs, ok in ((before, False), (after, True)):
            server.register_success(next(iter(obs.frames.values())).rgb, ok)
        det = SuccessDetector(client(server))
        assert det.success(before) is True and det.success(after) is False


def test_vlm_state_reward_from_the_registry_with_cant_tell_as_nan(episode):
    before, after, *_ = episode
    with StandInVLM(prose_rate=0.0) as server:
        for obs, ok in ((before, False), (after, True)):
            server.register_success(next(iter(obs.frames.values())).rgb, ok)
        reward = build_state_reward(f"vlm?model={server.model}&base_url={server.url}&api_key_env=&retries=0")
        assert isinstance(reward, SuccessDetector)
        np.testing.assert_array_equal(reward.score_states([before, after], before.goal), [0.0, 1.0])
    with StandInVLM(prose_rate=1.0) as server:
        server.register_success(next(iter(before.frames.values())).rgb, False)
        reward = build_state_reward(f"vlm?model={server.model}&base_url={server.url}&api_key_env=")
        r = reward.score_states([before], before.goal)
        assert r.shape == (1,) and math.isnan(r[0]) and reward.stats()["malformed"] == 1


def test_keypoint_picks_are_lifted_to_3d_by_depth(scene):
    obs, truth = scene
    with StandInVLM() as server:
        source = VLMKeypointSource(client(server), n_marks=20)
        marks = source.marks(obs)
        frame = obs.frames[marks.camera]
        lifted = np.array([click_to_point(frame, u, v) for u, v in marks.pixels])
        oi = int(np.argmin(np.linalg.norm(lifted - truth.objects[0], axis=1)))
        ti = int(np.argmin(np.linalg.norm(lifted - truth.targets[0], axis=1)))
        assert oi != ti and 10 <= len(marks.pixels) <= 20
        server.register_marks(source.marked_image(obs, marks), oi, ti, len(marks.pixels))
        kp = source.keypoints(obs)
        asked = [m["messages"][0]["content"][0]["text"] for m in server.requests]
        assert server.answers == [str(oi + 1), str(ti + 1)] and "from 1 to" in asked[0]
    np.testing.assert_allclose(kp.objects[0], lifted[oi], atol=1e-9)
    np.testing.assert_allclose(kp.targets[0], lifted[ti], atol=1e-9)
    # the picked marks are the middle of the block's top and of the bowl's floor: about a block's
    # half-size (2 cm) from the true keypoints (the block's centre; its centre once in the bowl)
    assert np.linalg.norm(kp.objects[0] - truth.objects[0]) < 0.025
    assert np.linalg.norm(kp.targets[0] - truth.targets[0]) < 0.025
    # the lifted pixel projects back onto itself: depth + intrinsics, not a guess
    np.testing.assert_allclose(frame.camera.project(kp.objects[0]), marks.pixels[oi], atol=0.51)


def test_keypoint_answers_the_model_cannot_give_are_a_clear_error(scene):
    obs, _ = scene
    with StandInVLM(prose_rate=1.0) as server:
        source = VLMKeypointSource(client(server), n_marks=12)
        marks = source.marks(obs)
        server.register_marks(source.marked_image(obs, marks), 0, 1, len(marks.pixels))
        prop = source.propose(obs)
        assert prop.keypoints is None and [v.status for v in prop.verdicts] == ["malformed", "malformed"]
        with pytest.raises(KeypointError, match=r"^VLM keypoints: can't tell; object: malformed \('The object"):
            source.keypoints(obs)
        assert source.stats()["malformed"] == 4


def test_vlm_label_command_stores_the_models_answers(tmp_path, capsys):
    from robot_rewards.cli import main
    from robot_rewards.preferences.store import PreferenceStore

    with StandInVLM(fallback="B") as server:  # a fixed answer: the command's plumbing, not the truth
        main(["vlm-label", "task=place_block", "labels=5", "n_candidates=4", "pairs_per_query=3", "label_decisions=1",
              "order=as_is", f"vlm.base_url={server.url}", f"vlm.model={server.model}", "vlm.api_key_env=",
              f"output_dir={tmp_path}"])
        assert len(server.requests) == 5
    captured = capsys.readouterr()
    assert "vlm labels place_block" in captured.err  # the progress bar
    assert "pairs asked / stored" in captured.out and "5 / 5" in captured.out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["stored"] == 5 and metrics["answers"] == {"a": 0, "b": 5, "tie": 0, "cant_tell": 0}
    assert metrics["labeller"] == "vlm:stand-in-vlm" and metrics["queries"] == 2 and metrics["episodes"] == 2
    assert (tmp_path / "pair_example.png").stat().st_size > 1000
    assert (tmp_path / "vlm_cache.sqlite").is_file()
    with PreferenceStore(tmp_path / "preferences") as store:
        assert store.label_count(task="place_block") == 5
        np.testing.assert_array_equal(store.pairs().labels, np.zeros(5))  # "B": the second of each pair
        with store.snapshot() as conn:
            assert {r[0] for r in conn.execute("SELECT labeller FROM labels")} == {"vlm:stand-in-vlm"}
        assert all(len(q.meta["values"]) == 4 for q in store.queries())  # the sim's truth travels along


def test_vlm_label_bad_endpoints_are_one_line_errors(tmp_path, capsys, monkeypatch):
    from robot_rewards.cli import main

    monkeypatch.delenv("NO_SUCH_VLM_KEY", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["vlm-label", "vlm.model=m", "vlm.api_key_env=NO_SUCH_VLM_KEY", f"output_dir={tmp_path / 'a'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 1 and len(err) == 1
    assert err[0].startswith("robot-rewards vlm-label: VLMConfigError: the VLM API key variable NO_SUCH_VLM_KEY is not set")
    assert not (tmp_path / "a" / "preferences").exists()  # refused before anything was started

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SystemExit):
        main(["vlm-label", "labels=3", "n_candidates=3", "label_decisions=1", "vlm.model=m", "vlm.api_key_env=",
              f"vlm.base_url=http://127.0.0.1:{port}/v1", "vlm.retries=0", "vlm.max_consecutive_errors=2",
              f"output_dir={tmp_path / 'b'}"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("robot-rewards")]
    assert err == [f"robot-rewards vlm-label: VLMUnavailableError: http://127.0.0.1:{port}/v1/chat/completions "
                   "failed 2 request(s) in a row after 0 retries each: cannot connect ([Errno 111] Connection refused)"]
