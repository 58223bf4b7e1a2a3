"""The VLM teacher: pairs of candidates drawn with the console's overlay, judged by a model at an
OpenAI-compatible endpoint, stored in the preference store under `vlm:<model>`.

The endpoint is the STAND-IN server (`rewards.vlm.standin`), run inside the test: it answers
from the candidates' true values registered per image, with a chosen error rate. Synthetic
scenes (a top-down camera, random candidates); no simulator.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_rewards.commands.vlm import vlm_teacher
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.candidates import Candidates
from robot_rewards.preferences.store import PreferenceStore
from robot_rewards.preferences.teachers import ScriptedTeacher, TeacherConfig, all_pairs
from robot_rewards.preferences.vlm_teacher import VLMTeacher, agreement
from robot_rewards.rewards.vlm.client import VLMClient
from robot_rewards.rewards.vlm.config import VLMConfig
from robot_rewards.rewards.vlm.standin import StandInVLM

GOAL = "put the red block in the green bowl"
N = 6


def camera() -> CameraModel:
    """A 160x120 camera 1 m above (0.5, 0, 0) looking straight down."""
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = [0.5, 0.0, 1.0]
    return CameraModel("top", CameraIntrinsics.from_fov(160, 120, 60.0), T)


def scene(seed: int):
    """(rgb, candidates, values) of a random scene: N pick_place candidates in view, distinct values."""
    rng = np.random.default_rng(seed)
    rgb = np.full((120, 160, 3), 120, np.uint8)
    rgb[40:60, 50:70] = (200, 40, 40)
    lo, hi = [0.25, -0.25, 0.02], [0.75, 0.25, 0.02]
    params = np.concatenate([rng.uniform(lo, hi, (N, 3)), rng.uniform(lo, hi, (N, 3)), rng.uniform(-1, 1, (N, 1))], 1)
    return rgb, Candidates("pick_place", params, np.arange(N), np.zeros(N, bool)), rng.normal(0, 1, N)


def client(server: StandInVLM, **kw) -> VLMClient:
    return VLMClient(VLMConfig(**{"base_url": server.url, "model": server.model, "api_key_env": "",
                                  "timeout_s": 5.0, "backoff_s": 0.0, **kw}))


def register(server: StandInVLM, teacher: VLMTeacher, rgb, cands, values, pairs) -> None:
    """Ground truth for the images the teacher can show: each pair in both orders."""
    for a, b in pairs:
        server.register_pair(teacher.judge.image(rgb, camera(), cands, a, b), values[a], values[b])
        server.register_pair(teacher.judge.image(rgb, camera(), cands, b, a), values[b], values[a])


def add_query(store: PreferenceStore, session: int, cands, seed: int) -> int:
    pts = np.random.default_rng(seed).uniform(0, 0.5, (64, 3))
    return store.add_query(session, "place_block", GOAL, cands, pts)


def test_error_free_answers_are_the_oracle_labels_stored_under_the_vlm_labeller(tmp_path):
    with StandInVLM() as server, PreferenceStore(tmp_path / "prefs") as store:
        teacher = vlm_teacher(client(server), order="random", seed=0)
        assert teacher.labeller == "vlm:stand-in-vlm"
        session = store.start_session(teacher.labeller, "place_block", mode="pairwise")
        expected, got = [], []
        for s in range(3):
            rgb, cands, values = scene(s)
            pairs = all_pairs(N)
            register(server, teacher, rgb, cands, values, pairs)
            verdicts = teacher.label_query(store, add_query(store, session, cands, s), rgb, camera(), cands, GOAL, pairs)
            got += [v.label for v in verdicts]
            expected += list(ScriptedTeacher(TeacherConfig()).label(values, pairs))
            assert agreement(verdicts, pairs, values) == {"decided": len(pairs), "agree": len(pairs), "disagree": 0}
        np.testing.assert_array_equal(got, expected)
        with store.snapshot() as conn:
            rows = conn.execute("SELECT labeller, answer FROM labels ORDER BY id").fetchall()
        assert {r["labeller"] for r in rows} == {"vlm:stand-in-vlm"}
        assert [{"a": 1.0, "b": 0.0}[r["answer"]] for r in rows] == expected
        np.testing.assert_array_equal(store.pairs(task="place_block").labels, expected)
        st = teacher.stats()
        assert (st["stored"], st["answered"], st["malformed"], st["error"], st["requests"]) == (45, 45, 0, 0, 45)


def test_shown_order_is_random_and_undone():
    """A model that always says "A": with order=as_is every label prefers the first index; with
    order=random the label follows which candidate was shown as A, about half each."""
    rgb, cands, _ = scene(7)
    pairs = all_pairs(N)
    with StandInVLM(fallback="A") as server:
        as_is = vlm_teacher(client(server), order="as_is").label(rgb, camera(), cands, GOAL, pairs)
        rand = vlm_teacher(client(server), order="random", seed=3).label(rgb, camera(), cands, GOAL, pairs)
    assert np.all(as_is == 1.0)
    assert set(np.unique(rand)) == {0.0, 1.0} and 3 <= int(np.sum(rand == 0.0)) <= 12


def test_mistakes_of_the_model_arrive_in_the_store_one_for_one(tmp_path):
    """With a 20% error rate, the stored labels disagree with the truth exactly where the
    stand-in answered wrong: the plumbing adds and loses nothing."""
    with StandInVLM(error_rate=0.2, seed=1) as server, PreferenceStore(tmp_path / "prefs") as store:
        teacher = vlm_teacher(client(server), seed=1)
        session = store.start_session(teacher.labeller, "place_block", mode="pairwise")
        totals = {"decided": 0, "agree": 0, "disagree": 0}
        for s in range(10):
            rgb, cands, values = scene(100 + s)
            pairs = all_pairs(N)
            register(server, teacher, rgb, cands, values, pairs)
            verdicts = teacher.label_query(store, add_query(store, session, cands, s), rgb, camera(), cands, GOAL, pairs)
            for k, v in agreement(verdicts, pairs, values).items():
                totals[k] += v
        assert totals["decided"] == 150 == store.label_count()
        assert totals["disagree"] == server.wrong
        assert 0.12 <= server.wrong / 150 <= 0.28  # binomial(150, 0.2): +-2.5 sd


def test_prose_is_stored_as_cant_tell_and_failed_requests_store_nothing(tmp_path):
    rgb, cands, values = scene(11)
    pairs = all_pairs(N)
    with StandInVLM(prose_rate=0.5, seed=2) as server, PreferenceStore(tmp_path / "prefs") as store:
        teacher = vlm_teacher(client(server), seed=2)
        register(server, teacher, rgb, cands, values, pairs)
        session = store.start_session(teacher.labeller, "place_block", mode="pairwise")
        verdicts = teacher.label_query(store, add_query(store, session, cands, 0), rgb, camera(), cands, GOAL, pairs)
        malformed = [v for v in verdicts if v.status == "malformed"]
        assert 3 <= len(malformed) <= 12 and all(math.isnan(v.label) for v in malformed)
        assert store.label_count() == 15  # prose is an answer: "can't tell"
        assert len(store.pairs(include_cant_tell=True).labels) == 15
        assert len(store.pairs().labels) == 15 - len(malformed)
        assert teacher.stats()["malformed"] == len(malformed)
    with StandInVLM(status=500) as server, PreferenceStore(tmp_path / "prefs2") as store:
        teacher = vlm_teacher(client(server, retries=0, max_consecutive_errors=0))
        session = store.start_session(teacher.labeller, "place_block", mode="pairwise")
        verdicts = teacher.label_query(store, add_query(store, session, cands, 0), rgb, camera(), cands, GOAL, pairs[:3])
        assert [v.status for v in verdicts] == ["error"] * 3
        assert store.label_count() == 0 and teacher.stats()["error"] == 3


def test_pairs_out_of_range_are_refused_before_asking():
    from robot_rewards.preferences.teachers import TeacherInputError

    rgb, cands, _ = scene(12)
    with StandInVLM(fallback="A") as server:
        teacher = vlm_teacher(client(server))
        with pytest.raises(TeacherInputError, match=r"pair indices must be in \[0, 6\)"):
            teacher.label(rgb, camera(), cands, GOAL, [[0, 6]])
        assert server.requests == []
