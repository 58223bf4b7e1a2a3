"""Outcome models: shapes read off clouds, the rope's cloud outcome and its symmetries, the
transitions files, learning from transitions (the ranking improves with training), and the
whole path from simulated episodes to a registry-loaded scorer."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.data.transitions import Transitions, TransitionsError, load_transitions, save_transitions
from robot_rewards.perception.chain import ordered_chain, resample_polyline, two_clusters
from robot_rewards.rewards.base import RewardInputError
from robot_rewards.rewards.outcome.config import OutcomeModelConfig, TrainOutcomeConfig
from robot_rewards.rewards.outcome.model import (
    load_outcome_model,
    same_state_pair_accuracy,
    save_outcome_model,
    task_outcome,
    train_outcome_model,
)
from robot_rewards.rewards.registry import load_action_scorer
from robot_rewards.sim.tasks import TASKS
from robot_rewards.sim.tasks.base import CloudOutcome

ROPE = next(name for name, cls in TASKS.items() if cls.cloud_outcome is not None)
MARKS = np.array([[0.5, -0.2], [0.5, 0.2]])


def _cloud(rope_xy: np.ndarray, rng: np.random.Generator, marks=MARKS, n_rope=400, n_mark=60) -> np.ndarray:
    """A rope's points (z 4-10 mm, around the polyline `rope_xy`) and two flat marks (z 1 mm)."""
    seg = resample_polyline(rope_xy, n_rope)
    rope = np.column_stack([seg + rng.normal(0, 0.002, seg.shape), rng.uniform(0.005, 0.010, len(seg))])
    marks_pts = [np.column_stack([m + rng.uniform(-0.015, 0.015, (n_mark, 2)), np.full(n_mark, 0.001)]) for m in marks]
    return np.concatenate([rope, *marks_pts]).astype(np.float32)


def _drag(nodes: np.ndarray, pick: np.ndarray, place: np.ndarray) -> np.ndarray:
    """Follow-the-leader: the node nearest the pick goes to the place, the rest follow when taut."""
    g = int(np.argmin(np.linalg.norm(nodes - pick, axis=1)))
    seg = np.linalg.norm(np.diff(nodes, axis=0), axis=1)
    new = nodes.copy()
    new[g] = place
    for i in range(g + 1, len(new)):
        v = new[i] - new[i - 1]
        n = np.linalg.norm(v)
        new[i] = new[i - 1] + v / n * seg[i - 1] if n > seg[i - 1] else new[i]
    for i in range(g - 1, -1, -1):
        v = new[i] - new[i + 1]
        n = np.linalg.norm(v)
        new[i] = new[i + 1] + v / n * seg[i] if n > seg[i] else new[i]
    return new


def _synthetic_transitions(n_states: int, per_state: int, seed: int) -> Transitions:
    """Curved ropes between the marks, random pick-places, and the cloud after a drag."""
    rng = np.random.default_rng(seed)
    points, params, state, after = [], [], [], []
    for s in range(n_states):
        t = np.linspace(-0.24, 0.24, 20)
        bend = rng.uniform(-0.08, 0.08) * np.sin(np.pi * (t / 0.48 + 0.5)) + rng.uniform(-0.04, 0.04)
        nodes = np.column_stack([0.5 + bend, t])
        points.append(_cloud(nodes, rng))
        for _ in range(per_state):
            pick = nodes[rng.integers(len(nodes))] + rng.normal(0, 0.005, 2)
            place = pick + rng.normal(0, 0.05, 2)
            params.append([pick[0], pick[1], 0.011, place[0], place[1], 0.011, 0.0])
            state.append(s)
            after.append(_cloud(_drag(nodes, pick, place), rng))
    return Transitions(ROPE, "pick_place", np.stack(points), ["straighten the rope"] * n_states,
                       np.arange(n_states), np.zeros(n_states), np.array(params), np.array(state), np.stack(after))


# -- shapes from clouds ---------------------------------------------------------------------

def test_an_ordered_chain_runs_along_a_curve_from_end_to_end():
    rng = np.random.default_rng(0)
    angle = rng.uniform(0, np.pi, 500)
    xy = np.column_stack([np.cos(angle), np.sin(angle)]) * 0.2 + rng.normal(0, 0.003, (500, 2))
    chain = ordered_chain(xy, n_nodes=30)
    along = np.arctan2(chain[:, 1], chain[:, 0])
    assert len(chain) >= 25
    assert np.all(np.diff(along) > 0) or np.all(np.diff(along) < 0)  # in order, no jumping back
    assert min(along[0], along[-1]) < 0.1 and max(along[0], along[-1]) > np.pi - 0.1  # both ends reached
    with pytest.raises(ValueError, match="at least 2 points"):
        ordered_chain(xy[:1])


def test_two_clusters_find_two_marks():
    rng = np.random.default_rng(1)
    pts = np.concatenate([MARKS[0] + rng.normal(0, 0.01, (50, 2)), MARKS[1] + rng.normal(0, 0.01, (70, 2))])
    centres = two_clusters(pts)
    assert np.allclose(centres[np.argsort(centres[:, 1])], MARKS, atol=0.005)


# -- the rope's cloud outcome ---------------------------------------------------------------

def test_the_rope_measures_read_off_a_cloud():
    co = task_outcome(ROPE)
    rng = np.random.default_rng(2)
    on_line = np.column_stack([np.full(20, 0.5), np.linspace(-0.22, 0.22, 20)])
    q, end = co.measures(_cloud(on_line, rng))
    assert q < 0.2 and end < 1.0  # on the segment, ends at the marks: success on both (units of 0.02 / 0.03 m)
    q_off, _ = co.measures(_cloud(on_line + [0.04, 0.0], rng))
    assert q_off == pytest.approx(2.0, abs=0.2)  # 4 cm beside the segment
    no_marks = _cloud(on_line, rng)
    with pytest.raises(ValueError, match="mark points"):
        co.measures(no_marks[no_marks[:, 2] > 0.004])


def test_the_rope_symmetries_are_the_mirrored_and_the_reflected_scene():
    """Inputs of a scene mirrored across the marks' line (or reflected across their bisector)
    are the symmetry copies of the original inputs: augmentation adds only true examples."""
    co = task_outcome(ROPE)
    rng = np.random.default_rng(3)
    nodes = np.column_stack([0.5 + 0.06 * np.sin(np.linspace(0, 3, 20)), np.linspace(-0.23, 0.2, 20)])
    cloud = _cloud(nodes, rng)
    params = np.array([[0.52, -0.1, 0.011, 0.55, -0.05, 0.011, 0.0], [0.5, 0.15, 0.011, 0.45, 0.2, 0.011, 0.0]])
    x = co.inputs(cloud, params)
    mirrored, swapped, _ = co.symmetries(x)

    def reflect(xy, axis):  # across the marks' line x = 0.5 (axis 0) or their bisector y = 0 (axis 1)
        out = np.array(xy, dtype=np.float64, copy=True)
        out[..., axis] = (1.0 if axis == 0 else 0.0) - out[..., axis]
        return out

    for axis, expected in ((0, mirrored), (1, swapped)):
        c = cloud.copy()
        c[:, :2] = reflect(c[:, :2], axis)
        p = params.copy()
        p[:, 0:2], p[:, 3:5] = reflect(p[:, 0:2], axis), reflect(p[:, 3:5], axis)
        assert np.allclose(co.inputs(c, p), expected, atol=0.05), axis


def test_every_task_with_a_cloud_outcome_implements_it():
    for cls in TASKS.values():
        if cls.cloud_outcome is not None:
            assert isinstance(cls.cloud_outcome, CloudOutcome)
            assert cls.cloud_outcome.measure_names
    with pytest.raises(ValueError, match="defines no cloud outcome"):
        task_outcome(next(n for n, c in TASKS.items() if c.cloud_outcome is None and not c.outcome_from_keypoints))


# -- transitions files ----------------------------------------------------------------------

def test_transitions_round_trip_and_bad_files_are_refused(tmp_path):
    data = _synthetic_transitions(3, 2, seed=4)
    path = save_transitions(tmp_path / "tr", data)
    back = load_transitions(path)
    assert path.suffix == ".npz" and len(back) == 6 and back.n_states == 3
    assert np.array_equal(back.next_points, data.next_points) and np.array_equal(back.state, data.state)
    sub = data.subset([2])
    assert len(sub) == 2 and np.array_equal(sub.state, [0, 0]) and np.array_equal(sub.points[0], data.points[2])
    joined = Transitions.concat([data, sub])
    assert len(joined) == 8 and joined.state[-1] == 3
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(TransitionsError, match="not a readable transitions file"):
        load_transitions(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        load_transitions(tmp_path / "missing.npz")
    with pytest.raises(TransitionsError, match="index the 3 states"):
        replace(data, state=data.state + 5)
    with pytest.raises(TransitionsError, match="NaN"):
        replace(data, params=np.full_like(data.params, np.nan))


# -- learning ---------------------------------------------------------------------------------

def test_training_on_transitions_learns_to_rank_the_actions_of_unseen_states():
    """As imitation's tests check that learning improves: on held-out states, the trained model
    orders two actions by their measured outcome far better than chance and than an untrained one."""
    data = _synthetic_transitions(120, 4, seed=5)
    small = TrainOutcomeConfig(model=OutcomeModelConfig(hidden=64, ensemble_size=2), steps=400, val_fraction=0.25)
    _, untrained = train_outcome_model(data, replace(small, steps=1), progress=False)
    model, trained = train_outcome_model(data, small, progress=False)
    assert trained["val_states"] == 30 and trained["skipped"] == 0
    assert trained["val_same_state_pair_accuracy"] > 0.8
    assert trained["val_same_state_pair_accuracy"] > untrained["val_same_state_pair_accuracy"] + 0.15
    assert trained["val_mae"]["rope_to_segment"] < untrained["val_mae"]["rope_to_segment"]


def test_same_state_pairs_are_only_compared_within_a_state():
    acc, n = same_state_pair_accuracy(np.array([1.0, 0.0, 5.0, 9.0]), np.array([2.0, 1.0, 0.0, 3.0]),
                                      np.array([0, 0, 1, 1]))
    assert (acc, n) == (1.0, 2)
    acc, n = same_state_pair_accuracy(np.array([0.0, 1.0]), np.array([2.0, 1.0]), np.array([0, 0]))
    assert (acc, n) == (0.0, 1)


# -- files and the registry -------------------------------------------------------------------

def test_a_saved_model_scores_candidates_through_the_registry(tmp_path):
    data = _synthetic_transitions(20, 3, seed=6)
    model, _ = train_outcome_model(data, TrainOutcomeConfig(model=OutcomeModelConfig(hidden=16, ensemble_size=3),
                                                            steps=20, val_fraction=0.0), progress=False)
    path = save_outcome_model(tmp_path / "outcome", model, ROPE, "pick_place", training={"note": "test"})
    scorer = load_action_scorer(path)
    cands = Candidates("pick_place", data.params[:3], np.arange(3), np.zeros(3, bool))
    obs = Observation(frames={}, proprio=None, goal="straighten the rope", points=data.points[0])
    scores = scorer.score(obs, cands)
    assert scores.members.shape == (3, 3) and np.all(np.isfinite(scores.mean))
    with pytest.raises(RewardInputError, match="mark points"):
        scorer.score(replace(obs, points=data.points[0][data.points[0][:, 2] > 0.004]), cands)
    with pytest.raises(RewardInputError, match="'pick_place'"):
        scorer.score(obs, Candidates("push", np.zeros((2, 6)), np.arange(2), np.zeros(2, bool)))
    other = next(n for n in TASKS if n != ROPE)
    with pytest.raises(Exception, match=f"not '{other}'"):
        load_outcome_model(path, task=other)
    meta = json.loads(path.read_text())
    meta["measure_names"] = ["something_else", "end_to_mark"]
    path.write_text(json.dumps(meta))
    with pytest.raises(Exception, match="retrain it"):
        load_outcome_model(path)


def test_simulated_episodes_give_transitions_a_model_learns_from(tmp_path):
    """collect-transitions -> train-outcome on the shipped rope policy, 1 short episode."""
    from robot_rewards.commands.outcome import collect_transitions_command, train_outcome_command
    from robot_rewards.rewards.outcome.config import CollectTransitionsConfig, TrainOutcomeCommandConfig

    got = collect_transitions_command(CollectTransitionsConfig(episodes=1, max_decisions=1, per_state=3, workers=1,
                                                               output_dir=str(tmp_path / "c")))
    assert (got["states"], got["transitions"]) == (1, 3)
    data = load_transitions(tmp_path / "c" / "transitions.npz")
    assert data.meta["policy"]["sha256"] and data.primitive == "pick_place"
    assert not np.allclose(data.next_points[0], data.points[0])  # the cloud after differs from before
    fit = train_outcome_command(TrainOutcomeCommandConfig(
        data=[str(tmp_path / "c" / "transitions.npz")], output_dir=str(tmp_path / "t"),
        train=TrainOutcomeConfig(model=OutcomeModelConfig(hidden=16, ensemble_size=1), steps=5, val_fraction=0.0)))
    assert fit["usable"] == 3 and load_outcome_model(fit["checkpoint"]).task == ROPE
    with pytest.raises(ValueError, match="name the transitions"):
        train_outcome_command(TrainOutcomeCommandConfig(output_dir=str(tmp_path / "u")))
    no_outcome = next(n for n, c in TASKS.items() if c.cloud_outcome is None and not c.outcome_from_keypoints)
    with pytest.raises(ValueError, match="defines no cloud outcome"):
        collect_transitions_command(CollectTransitionsConfig(task=no_outcome, output_dir=str(tmp_path / "v")))


# -- a preference scorer that reads the outcome model -----------------------------------------

@pytest.fixture(scope="module")
def outcome_file(tmp_path_factory):
    data = _synthetic_transitions(120, 4, seed=7)
    model, _ = train_outcome_model(data, TrainOutcomeConfig(model=OutcomeModelConfig(hidden=64, ensemble_size=2),
                                                            steps=300, val_fraction=0.0), progress=False)
    return save_outcome_model(tmp_path_factory.mktemp("outcome") / "outcome", model, ROPE, "pick_place")


def _rope_pairs(n: int, seed: int, flip: float = 0.0):
    """Pairs of two pick-places in one rope scene, labelled by the measured rope after each."""
    from robot_rewards.rewards.preference.scorer import PreferencePairs

    data = _synthetic_transitions(n, 2, seed)
    co = task_outcome(ROPE)
    q = np.array([co.measures(p)[0] for p in data.next_points]).reshape(n, 2)
    labels = (q[:, 0] < q[:, 1]).astype(np.float64)
    flipped = np.random.default_rng(seed).random(n) < flip
    labels[flipped] = 1.0 - labels[flipped]
    return PreferencePairs("pick_place", data.points, np.zeros(data.points.shape, np.uint8), data.goals,
                           data.params[0::2], data.params[1::2], labels)


def test_the_outcome_recipe_learns_from_few_noisy_labels_and_checks_its_model(outcome_file, tmp_path):
    from robot_rewards.preferences.recipes import outcome_scorer, scorer_recipe
    from robot_rewards.rewards.preference.config import ScorerConfig, TrainScorerConfig
    from robot_rewards.rewards.preference.io import ScorerCheckpointError, load_scorer, save_scorer
    from robot_rewards.rewards.preference.scorer import evaluate_pairs, train_scorer

    base = TrainScorerConfig(scorer=ScorerConfig(goal_dim=16, token_dim=8), ensemble_size=2, steps=200,
                             val_fraction=0.0, calibration_folds=0)
    cfg = outcome_scorer(str(outcome_file), base)
    assert cfg.scorer.layers == 0 and cfg.scorer.outcome_model and not cfg.scorer.keypoint_model
    assert not cfg.scorer.use_actions  # the head weighs the predicted outcomes only
    test, train = _rope_pairs(150, 99), _rope_pairs(120, 0, flip=0.1)
    acc = {n: evaluate_pairs(train_scorer(train.subset(np.arange(n)), cfg)[0], test)["accuracy"] for n in (5, 120)}
    assert acc[120] >= 0.75 and acc[120] >= acc[5], acc
    scorer, _ = train_scorer(train.subset(np.arange(20)), replace(cfg, steps=5))
    path = save_scorer(tmp_path / "s", scorer)
    obs = Observation(frames={}, proprio=None, goal=test.goals[0], points=test.points[0], colors=test.colors[0])
    cands = Candidates("pick_place", test.params_a[:3], np.arange(3), np.zeros(3, bool))
    np.testing.assert_allclose(load_scorer(path).score(obs, cands).members, scorer.score(obs, cands).members, atol=1e-5)
    path.write_text(path.read_text().replace(scorer.outcome.sha256, "0" * 64))
    with pytest.raises(ScorerCheckpointError, match="outcome model"):
        load_scorer(path)
    with pytest.raises(ValueError, match="no outcome model ships for task 'sort_blocks'"):
        scorer_recipe("outcome", "sort_blocks", base)
