"""Decisions logged to Rerun: a recording written and read back (what was logged, where), the
`view` command on the shipped checkpoints, `rerun=` on `console` and `bag replay`, and the
bad-input messages."""

import csv
import io
import json
import sys

import numpy as np
import pytest

from robot_rewards.cli import main
from robot_rewards.core.camera import CameraIntrinsics, CameraModel
from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import CameraFrame, Observation, Proprio
from robot_rewards.core.optional import MissingDependencyError
from robot_rewards.rewards.base import ScoreSet
from robot_rewards.selection.decider import Decider
from robot_rewards.viz import rerun_log
from robot_rewards.viz.figure import decision_figure

pytest.importorskip("rerun")


def _scene(seed: int):
    rng = np.random.default_rng(seed)
    cam = CameraModel("front", CameraIntrinsics(64, 48, 60.0, 60.0, 31.5, 23.5), np.eye(4))
    frame = CameraFrame(cam, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
                        rng.uniform(0.5, 1.5, (48, 64)).astype(np.float32))
    obs = Observation({"front": frame}, Proprio(np.zeros(7), 0.04), "put the red block in the blue bowl",
                      points=rng.uniform(-0.2, 0.2, (300, 3)).astype(np.float32),
                      colors=rng.integers(0, 255, (300, 3), dtype=np.uint8))
    params = rng.uniform(0.0, 0.3, (5, 7))
    cands = Candidates("pick_place", params, np.arange(5), np.zeros(5, bool))
    return obs, cands


class _RejectOdd:
    """A feasibility checker refusing odd candidates (the Decider walks past them)."""

    def check(self, primitive, q_start=None):
        return "unreachable (test)" if round(primitive.params[6] * 1e6) % 2 else None


def test_recording_holds_the_cloud_candidates_choice_and_rejections(tmp_path):
    path = tmp_path / "run" / "d.rrd"
    decider = Decider(None, n_candidates=5, weights={"preference": 1.0})
    decisions = []
    with rerun_log.DecisionLog(path) as log:
        for k in range(3):
            obs, cands = _scene(k)
            u = np.arange(5.0) * (k + 1)
            scores = {"preference": ScoreSet(mean=u, members=u[None], std=np.zeros(5))}
            d = decider.choose(cands, scores, episode_seed=7, decision=k)
            if k == 2:  # one decision with rejections
                checked = Decider(None, checker=_RejectOdd(), weights={"preference": 1.0})
                d = checked.choose(cands, scores, episode_seed=7, decision=k)
            decisions.append((obs, cands, d))
            log.log_decision(obs, d, episode=0)
            log.log_outcome(0.01 * k, k == 2)
    rec = rerun_log.read_recording(path)
    arrows = rec["/world/candidates"]
    assert [r["decision"] for r in arrows] == [0, 1, 2]
    for row, (_, cands, _) in zip(arrows, decisions):
        origins = np.asarray(row["Arrows3D:origins"])
        vectors = np.asarray(row["Arrows3D:vectors"])
        np.testing.assert_allclose(origins, cands.params[:, 0:3], atol=1e-6)  # pick
        np.testing.assert_allclose(origins + vectors, cands.params[:, 3:6], atol=1e-6)  # place
        assert row["Arrows3D:labels"][4].startswith("4: ")
        colours = np.asarray(row["Arrows3D:colors"], dtype=np.uint32)
        assert len(set(colours.tolist())) == 5  # five scores, five colours
    chosen = rec["/world/chosen"]
    assert [r["Arrows3D:labels"][0].split(":")[0] for r in chosen] == [str(d.chosen) for _, _, d in decisions]
    rejected = [r for r in rec["/world/rejected"] if "Arrows3D:labels" in r]
    expected = [f"{i}: unreachable (test)" for i, _ in decisions[2][2].rejected]
    assert len(expected) > 0 and rejected[0]["Arrows3D:labels"] == expected
    texts = [t for r in rec["/log/decisions"] for t in r["TextLog:text"]]
    assert sum(t.startswith("rejected") for t in texts) == len(expected)
    cloud = rec["/world/cloud"][0]
    np.testing.assert_allclose(np.asarray(cloud["Points3D:positions"]), decisions[0][0].points, atol=1e-6)
    assert len(rec["/world/cameras/front/rgb"]) == 3 and len(rec["/world/cameras/front/depth"]) == 3
    quality = [r["Scalars:scalars"][0] for r in rec["/metrics/quality"]]
    np.testing.assert_allclose(quality, [0.0, 0.01, 0.02])
    # the same decision as a figure (docs, headless machines)
    png = decision_figure(*decisions[2][0:1], decisions[2][2], tmp_path / "d.png")
    assert png.stat().st_size > 10_000


def test_bad_rrd_paths_and_missing_rerun_get_one_line_messages(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(rerun_log.RecordingPathError, match="cannot write the Rerun recording .*file/x.rrd"):
        rerun_log.DecisionLog(blocker / "x.rrd")
    with pytest.raises(rerun_log.RecordingPathError, match="must end in .rrd"):
        rerun_log.DecisionLog(tmp_path / "x.txt")
    monkeypatch.setitem(sys.modules, "rerun", None)  # what `import rerun` sees where it is not installed
    with pytest.raises(MissingDependencyError, match=r"needs rerun-sdk, which is not installed: "
                                                     r"pip install 'robot_rewards\[rerun\]'"):
        rerun_log.DecisionLog(tmp_path / "ok.rrd")
    assert not (tmp_path / "ok.rrd").exists()


@pytest.mark.slow
def test_view_command_logs_every_decision_of_the_shipped_policy(tmp_path, capsys):
    out = tmp_path / "view"
    main(["view", "episodes=1", "seed=100000", f"output_dir={out}"])
    rec = rerun_log.read_recording(out / "decisions.rrd")
    m = json.loads((out / "metrics.json").read_text())
    assert m["decisions"] == len(rec["/world/candidates"]) >= 1
    assert all(len(r["Arrows3D:labels"]) == 8 for r in rec["/world/candidates"])
    assert (out / "decision.png").is_file()
    with pytest.raises(SystemExit):
        main(["view", f"rrd={out / 'decision.png' / 'x.rrd'}", f"output_dir={tmp_path / 'v2'}"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("robot-rewards view: RecordingPathError: cannot write the Rerun recording")


# -- `rerun=` on the console and on bag replay ---------------------------------------------------

def test_console_logs_each_query_and_answer(tmp_path):
    from robot_rewards.commands.console import run_console
    from robot_rewards.console.config import ConsoleConfig
    from robot_rewards.preferences.store import PreferenceStore

    rrd = tmp_path / "console.rrd"
    cfg = ConsoleConfig(mode="rank", queries=3, seed=4, window="off", prefetch=False, labeller="tester",
                        scorer="checkpoints/scorer_place_block.json", store=str(tmp_path / "store"),
                        output_dir=str(tmp_path / "out"), rerun=str(rrd))
    # query 1: ranked 3 > 1, the rest equal; query 2: skipped; query 3: quit before answering
    metrics = run_console(cfg, io.StringIO("3 1 =\ns\nq\n"), io.StringIO())
    assert metrics["answers"] == 1 and metrics["queries_shown"] == 3 and metrics["rerun"] == str(rrd)
    rec = rerun_log.read_recording(rrd)
    with PreferenceStore(tmp_path / "store", create=False) as store:
        stored = [store.load_query(q.id)[1] for q in store.queries()]
    arrows = rec["/world/candidates"]
    assert [r["decision"] for r in arrows] == [0, 1, 2]
    for row, arrays in zip(arrows, stored):  # what was logged is what the operator was shown and stored
        np.testing.assert_allclose(np.asarray(row["Arrows3D:origins"]), arrays.params[:, 0:3], atol=1e-6)
        np.testing.assert_allclose(np.asarray(row["Arrows3D:origins"]) + np.asarray(row["Arrows3D:vectors"]),
                                   arrays.params[:, 3:6], atol=1e-6)
        mean = arrays.scores.mean(axis=0)
        assert [float(lab.split(": ")[1]) for lab in row["Arrows3D:labels"]] == pytest.approx(mean, abs=6e-4)
    chosen = [int(r["Arrows3D:labels"][0].split(":")[0]) for r in rec["/world/chosen"]]
    assert chosen == [int(np.argmax(a.scores.mean(axis=0))) for a in stored]  # the scorer's top
    np.testing.assert_allclose(np.asarray(rec["/world/cloud"][0]["Points3D:positions"]), stored[0].points, atol=1e-6)
    preferred = [r for r in rec["/world/preferred"] if "Arrows3D:labels" in r]
    assert len(preferred) == 1 and preferred[0]["decision"] == 0
    assert preferred[0]["Arrows3D:labels"] == ["#1: 2", "#2: 0"]  # candidates 3 and 1 of the console
    np.testing.assert_allclose(np.asarray(preferred[0]["Arrows3D:origins"]), stored[0].params[[2, 0], 0:3], atol=1e-6)
    answers = [t for r in rec["/log/answers"] for t in r["TextLog:text"]]
    assert answers == ["query 1: ranking 3 > 1 -> preferred [2, 0]", "query 2: skipped"]
    texts = [t for r in rec["/log/decisions"] for t in r["TextLog:text"]]
    assert texts[0].startswith("query 1 episode 4 decision 1: 8 candidates, scorer's top")
    assert len(rec["/world/cameras/front/rgb"]) == 3


def test_console_refuses_a_bad_recording_path_or_missing_rerun_before_loading_anything(tmp_path, monkeypatch):
    from robot_rewards.commands.console import run_console
    from robot_rewards.console.config import ConsoleConfig

    cfg = ConsoleConfig(window="off", store=str(tmp_path / "store"), output_dir=str(tmp_path / "out"),
                        rerun=str(tmp_path / "queries.txt"))
    with pytest.raises(rerun_log.RecordingPathError, match="must end in .rrd, got '.*queries.txt'"):
        run_console(cfg)
    monkeypatch.setitem(sys.modules, "rerun", None)  # what `import rerun` sees where it is not installed
    cfg.rerun = "live"
    with pytest.raises(MissingDependencyError, match=r"pip install 'robot_rewards\[rerun\]'"):
        run_console(cfg)
    assert not (tmp_path / "store").exists() and not (tmp_path / "out").exists()


def _bag_with_a_decision(path):
    """One colour/depth frame pair and a candidate set sampled in it, with the recorded scores,
    utilities, ranking, a rejection and the choice (as the policy node publishes them)."""
    from ros_double.scenes import SEC, synthetic_frame

    from robot_rewards.rewards.synthetic import random_candidates
    from robot_rewards.ros import config as topics
    from robot_rewards.ros import convert as rc
    from robot_rewards.ros.bag_io import BagWriter
    from robot_rewards.ros.convert_interfaces import candidate_set_to_msg
    from robot_rewards.ros.payloads import CandidateSet

    t0, types = 1_700_000_000, rc.ROSBAGS_TYPES
    color, depth, info, base_T_cam = synthetic_frame(t0 * SEC)
    members = np.random.default_rng(3).normal(size=(3, 6))
    utilities = members.mean(axis=0)
    order = [int(i) for i in np.argsort(-utilities)]
    cset = CandidateSet(7, (t0, 0), "put the block on the red mark", random_candidates(6, seed=2),
                        scores={"preference": members}, utilities=utilities, chosen=order[1], order=order,
                        rejected={order[0]: "unreachable: no IK solution"}, selector="best_of_n")
    with BagWriter(path) as bag:
        bag.write("/tf_static", rc.transforms_to_tf_msg([rc.StampedTransform.from_matrix(
            base_T_cam, "panda_link0", "cam", (t0, 0))], types), t0 * SEC)
        for topic, msg in ((topics.COLOR_INFO_TOPIC, info), (topics.COLOR_TOPIC, color), (topics.DEPTH_TOPIC, depth)):
            bag.write(topic, msg, t0 * SEC)
        bag.write(topics.CANDIDATES_TOPIC, candidate_set_to_msg(cset, types), t0 * SEC + 1)
    return cset


def test_bag_replay_logs_each_recorded_candidate_set_as_a_decision(tmp_path):
    from ros_double.scenes import tiny_scorer

    from robot_rewards.commands.bag import bag_replay
    from robot_rewards.rewards.preference.io import save_scorer
    from robot_rewards.ros.bag_config import BagReplayConfig

    cset = _bag_with_a_decision(tmp_path / "bag")
    common = dict(bag=str(tmp_path / "bag"), n_points=128, plot=False)
    # without a scorer: the candidates are coloured by the recorded utilities
    m = bag_replay(BagReplayConfig(**common, rerun=str(tmp_path / "recorded.rrd"), output_dir=str(tmp_path / "a")))
    assert m["rerun_decisions"] == 1 and m["decisions"] == 0 and m["files"]["rerun"] == str(tmp_path / "recorded.rrd")
    rec = rerun_log.read_recording(tmp_path / "recorded.rrd")
    (row,) = rec["/world/candidates"]
    np.testing.assert_allclose(np.asarray(row["Arrows3D:origins"]), cset.candidates.params[:, 0:3], atol=1e-6)
    assert [float(lab.split(": ")[1]) for lab in row["Arrows3D:labels"]] == pytest.approx(cset.utilities, abs=6e-4)
    assert row["stamp"] is not None  # the set's recorded time is a timeline
    assert {r["decision"] for r in rec["/world/cameras/camera/rgb"]} == {0}
    assert rec["/world/chosen"][0]["Arrows3D:labels"][0].startswith(f"{cset.chosen}: ")
    (rejected,) = [r for r in rec["/world/rejected"] if "Arrows3D:labels" in r]
    assert rejected["Arrows3D:labels"] == [f"{cset.order[0]}: unreachable: no IK solution"]
    texts = [t for r in rec["/log/decisions"] for t in r["TextLog:text"]]
    assert texts == [f"decision 7: 6 candidates, recorded choice {cset.chosen} (best_of_n), 1 rejected",
                     f"rejected {cset.order[0]}: unreachable: no IK solution"]
    assert len(rec["/world/cloud"][0]["Points3D:positions"]) == 128 and len(rec["/world/cameras/camera/rgb"]) == 1
    # with a scorer: coloured by the replay's scores, which match decisions.csv
    scorer_path = save_scorer(tmp_path / "scorer", tiny_scorer())
    m = bag_replay(BagReplayConfig(**common, scorers={"pref": str(scorer_path)}, rerun=str(tmp_path / "scored.rrd"),
                                   output_dir=str(tmp_path / "b")))
    assert m["rerun_decisions"] == 1 and m["decisions"] == 1
    (decision,) = list(csv.DictReader(open(tmp_path / "b" / "decisions.csv")))
    rec = rerun_log.read_recording(tmp_path / "scored.rrd")
    labels = rec["/world/candidates"][0]["Arrows3D:labels"]
    scores = np.array([float(lab.split(": ")[1]) for lab in labels])
    assert int(np.argmax(scores)) == int(decision["best"])
    assert scores[cset.chosen] == pytest.approx(float(decision["chosen_score"]), abs=6e-4)
    (text, _) = [t for r in rec["/log/decisions"] for t in r["TextLog:text"]]
    assert f"pref: best {decision['best']}" in text and f"ranks {decision['chosen_rank']} of 6" in text


# -- `rerun=` on experiment's evaluation loop ----------------------------------------------------

def test_the_evaluation_loop_logs_every_decision_per_worker_file(tmp_path):
    """LoopSpec(rerun=...): each worker process writes <stem>.<condition>.<pid>.rrd with one
    logged decision per decision of its episodes, chosen candidate included."""
    import os

    from robot_rewards.core.paths import resolve
    from robot_rewards.eval.loop import LoopRunner, LoopSpec
    from robot_rewards.policy.checkpoint import load_policy

    ck = load_policy(resolve("checkpoints/policy_place_block.json"), task="place_block")
    runner = LoopRunner(LoopSpec("place_block", ck.policy.eval(), "first", 4, perception=ck.perception,
                                 check_feasibility=False, rerun=str(tmp_path / "exp.rrd")))
    try:
        result = runner(100000)
    finally:
        runner.close()
    rec = rerun_log.read_recording(tmp_path / f"exp.first.{os.getpid()}.rrd")
    assert len(rec["/world/candidates"]) == result.steps >= 1
    assert all(len(r["Arrows3D:labels"]) == 4 for r in rec["/world/candidates"])
    assert len(rec["/world/chosen"]) == result.steps
