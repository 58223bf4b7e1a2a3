"""Decisions logged to Rerun: a recording written and read back (what was logged, where), the
`view` command on the shipped checkpoints, and the bad-input messages."""

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
