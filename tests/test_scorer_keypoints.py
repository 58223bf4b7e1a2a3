"""Preference scorers that read candidate features relative to learned keypoints."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from robot_rewards.core import Candidates, Observation
from robot_rewards.rewards.keypoints.net import predict_keypoints
from robot_rewards.rewards.preference.config import ScorerConfig, TrainScorerConfig
from robot_rewards.rewards.preference.io import ScorerCheckpointError, load_scorer, save_scorer
from robot_rewards.rewards.preference.keypoint_features import (
    KeypointFeaturizer,
    candidate_keypoint_features,
    keypoint_feature_dim,
)
from robot_rewards.rewards.preference.scorer import PreferencePairs, evaluate_pairs, train_scorer

MODEL = "checkpoints/keypoints_place_block.json"
GOAL = "put the red block in the green bowl"


def test_features_are_offsets_distances_and_the_analytic_score():
    obj = torch.tensor([[[0.5, 0.0, 0.02]]])
    tgt = torch.tensor([[[0.6, 0.1, 0.03]]])
    pts = torch.tensor([[[[0.5, 0.0, 0.02], [0.6, 0.1, 0.03]], [[0.4, 0.0, 0.02], [0.6, 0.1, 0.03]]]])
    f = candidate_keypoint_features(obj, tgt, pts)
    assert f.shape == (1, 2, keypoint_feature_dim(1))
    assert torch.allclose(f[0, 0], torch.zeros(9))  # on the object, on the target: all zero
    assert torch.isclose(f[0, 1, 0], torch.tensor(-1.0)) and torch.isclose(f[0, 1, -1], torch.tensor(-1.0))


def scenes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pts = rng.uniform([0.3, -0.3, 0.0], [0.7, 0.3, 0.05], (n, 256, 3)).astype(np.float32)
    cols = rng.integers(0, 256, (n, 256, 3), dtype=np.uint8)
    return pts, cols


def pairs_judged_by_keypoints(n: int, seed: int, featurizer: KeypointFeaturizer) -> PreferencePairs:
    """Pairs labelled by which candidate picks nearer the model's object keypoint and places
    nearer its target keypoint (a teacher that cares about what the keypoints mark)."""
    pts, cols = scenes(n, seed)
    obj, tgt = predict_keypoints(featurizer.model, pts, cols, [GOAL] * n)
    rng = np.random.default_rng(seed + 1)

    def cand():
        pick = obj[:, 0] + rng.normal(0, 0.06, (n, 3)) * [1, 1, 0]
        place = tgt[:, 0] + rng.normal(0, 0.06, (n, 3)) * [1, 1, 0]
        return np.c_[pick, place, rng.uniform(-1, 1, n)]

    a, b = cand(), cand()
    cost = lambda p: np.linalg.norm(p[:, :3] - obj[:, 0], axis=1) + np.linalg.norm(p[:, 3:6] - tgt[:, 0], axis=1)
    labels = (cost(a) < cost(b)).astype(np.float64)
    return PreferencePairs("pick_place", pts, cols, [GOAL] * n, a, b, labels)


@pytest.fixture(scope="module")
def featurizer() -> KeypointFeaturizer:
    return KeypointFeaturizer(MODEL)


def small(keypoints: bool) -> TrainScorerConfig:
    sc = ScorerConfig(point_channels=[16, 32], attention_heads=2, obs_dim=32, goal_dim=16, token_dim=8,
                      hidden=64, use_global=False, keypoint_model=MODEL if keypoints else "")
    return TrainScorerConfig(scorer=sc, ensemble_size=2, steps=200, val_fraction=0.0, seed=0)


def test_keypoint_features_learn_from_few_labels_and_more_labels_help(featurizer):
    """Learning improves with labels, and with keypoint features 40 labels already beat what the
    same scorer without them reaches from 160."""
    test = pairs_judged_by_keypoints(200, 99, featurizer)
    train = pairs_judged_by_keypoints(160, 0, featurizer)
    acc = {}
    for kp in (False, True):
        for n in (10, 40, 160):
            scorer, _ = train_scorer(train.subset(np.arange(n)), small(kp))
            acc[kp, n] = evaluate_pairs(scorer, test)["accuracy"]
    assert acc[True, 160] >= acc[True, 10] + 0.05, acc
    assert acc[True, 40] >= 0.85 and acc[True, 40] > acc[False, 160], acc


def test_a_keypoint_scorer_round_trips_and_checks_its_keypoint_model(featurizer, tmp_path):
    train = pairs_judged_by_keypoints(30, 0, featurizer)
    scorer, _ = train_scorer(train, replace(small(True), steps=5))
    path = save_scorer(tmp_path / "s", scorer)
    loaded = load_scorer(path)
    pts, cols = scenes(1, 5)
    obs = Observation(frames={}, proprio=None, goal=GOAL, points=pts[0], colors=cols[0])
    cands = Candidates("pick_place", train.params_a[:4], np.arange(4), np.zeros(4, bool))
    np.testing.assert_allclose(loaded.score(obs, cands).members, scorer.score(obs, cands).members, atol=1e-5)
    # a keypoint model with other weights than the one it was trained with is refused
    meta = path.read_text().replace(featurizer.sha256, "0" * 64)
    path.write_text(meta)
    with pytest.raises(ScorerCheckpointError, match="keypoint model"):
        load_scorer(path)


def test_the_keypoints_recipe_is_a_linear_head_that_learns_from_few_noisy_labels(featurizer):
    """The `keypoints` recipe (linear head over keypoint features): with a tenth of the labels
    flipped, accuracy rises with labels and 40 labels already get most of the way."""
    from robot_rewards.preferences.recipes import keypoint_scorer

    test = pairs_judged_by_keypoints(200, 99, featurizer)
    train = pairs_judged_by_keypoints(160, 0, featurizer)
    flip = np.random.default_rng(3).random(len(train)) < 0.1
    train.labels[flip] = 1.0 - train.labels[flip]
    cfg = keypoint_scorer(MODEL, replace(small(True), ensemble_size=3, steps=300))
    assert cfg.scorer.layers == 0 and cfg.scorer.local_k == 0 and not cfg.scorer.use_global
    acc = {n: evaluate_pairs(train_scorer(train.subset(np.arange(n)), cfg)[0], test)["accuracy"] for n in (5, 40, 160)}
    assert acc[160] >= acc[5] + 0.05 and acc[40] >= 0.8 and acc[160] >= 0.85, acc


def test_scorer_recipes_resolve_per_task_and_refuse_unknown_names():
    from robot_rewards.preferences.recipes import scorer_recipe, shipped_keypoint_model

    base = small(False)
    assert scorer_recipe("auto", "place_block", base).scorer.keypoint_model == shipped_keypoint_model("place_block")
    assert scorer_recipe("auto", "place_block", base).ensemble_size == base.ensemble_size  # the rest is kept
    stack = scorer_recipe("auto", "stack_blocks", base)  # measured: patches that read the keypoints
    assert stack.scorer.keypoint_model == "checkpoints/keypoints_stack_blocks.json" and stack.scorer.local_k == 32
    assert scorer_recipe("keypoints", "stack_blocks", base).scorer.layers == 0
    rope = scorer_recipe("auto", "align_rope", base)  # measured: a linear head over its outcome model
    assert rope.scorer.outcome_model == "checkpoints/outcome_align_rope.json" and rope.scorer.layers == 0
    assert not rope.scorer.keypoint_model and rope.calibrate
    push = scorer_recipe("auto", "push_block", base)  # measured: its outcome model, read by a keypoint model
    assert push.scorer.outcome_model == "checkpoints/outcome_push_block.json" and not push.scorer.use_actions
    patches = scorer_recipe("auto", "sort_blocks", base)  # no keypoint model ships for it
    assert patches.scorer.local_k == 32 and patches.scorer.keypoint_model == ""
    assert scorer_recipe("custom", "place_block", base) is base
    with pytest.raises(ValueError, match="unknown scorer recipe 'linear'"):
        scorer_recipe("linear", "place_block", base)
    with pytest.raises(ValueError, match="no keypoint model ships for task 'sort_blocks'"):
        scorer_recipe("keypoints", "sort_blocks", base)
    with pytest.raises(ValueError, match="recipe 'patches_keypoints': no keypoint model ships"):
        scorer_recipe("patches_keypoints", "sort_blocks", base)


def test_fewer_labels_than_ensemble_members_are_refused(featurizer):
    from robot_rewards.rewards.base import RewardInputError

    train = pairs_judged_by_keypoints(4, 0, featurizer)
    with pytest.raises(RewardInputError, match="4 labelled training pairs for 5 ensemble members"):
        train_scorer(train, replace(small(True), ensemble_size=5))


def test_calibration_keeps_the_ranking_and_fits_the_noisy_labels_better(featurizer):
    """calibrate: a temperature and lapse rate from the grids, scores divided by the
    temperature (same order), and the labels' likelihood under the fitted model no worse."""
    from robot_rewards.rewards.preference.scorer import LAPSES, TEMPERATURES, calibrate_scorer

    train = pairs_judged_by_keypoints(80, 0, featurizer)
    flip = np.random.default_rng(4).random(len(train)) < 0.1
    train.labels[flip] = 1.0 - train.labels[flip]
    scorer, _ = train_scorer(train, replace(small(True), steps=100))
    pts, cols = scenes(1, 5)
    obs = Observation(frames={}, proprio=None, goal=GOAL, points=pts[0], colors=cols[0])
    cands = Candidates("pick_place", train.params_a[:6], np.arange(6), np.zeros(6, bool))
    before = scorer.score(obs, cands).members.copy()
    p = np.clip(scorer.pair_probabilities(train).mean(0), 1e-6, 1 - 1e-6)
    nll_before = float(-np.mean(train.labels * np.log(p) + (1 - train.labels) * np.log1p(-p)))
    fit = calibrate_scorer(scorer, train)
    assert fit["temperature"] in TEMPERATURES and fit["lapse"] in LAPSES
    after = scorer.score(obs, cands).members
    np.testing.assert_allclose(after, before / fit["temperature"], rtol=1e-4, atol=1e-5)
    assert fit["nll"] <= nll_before + 1e-9


def test_out_of_fold_calibration_is_better_calibrated_on_new_pairs_than_in_sample(featurizer):
    """calibrate with folds: temperature and lapse come from probabilities on pairs each fold's
    scorer did not train on. Trained on labels with 10% flipped and judged against clean ones (as
    `experiment` does), it is better calibrated than no calibration (the flips shrink a raw
    Bradley-Terry head) and than a temperature fitted on the training pairs themselves."""
    from robot_rewards.rewards.preference.scorer import expected_calibration_error

    train = pairs_judged_by_keypoints(120, 0, featurizer)
    flip = np.random.default_rng(5).random(len(train)) < 0.1
    train.labels[flip] = 1.0 - train.labels[flip]
    test = pairs_judged_by_keypoints(600, 98, featurizer)
    ece = {}
    for name, cal, folds in (("raw", False, 0), ("in-sample", True, 1), ("5 folds", True, 5)):
        cfg = replace(small(True), steps=300, lr=1e-2, head_l2=1.0, calibrate=cal, calibration_folds=folds,
                      scorer=replace(small(True).scorer, layers=0, local_k=0))
        scorer, fit = train_scorer(train, cfg)
        assert (fit.get("calibration", {}).get("folds") == 5) == (folds == 5)
        ece[name] = expected_calibration_error(scorer.pair_probabilities(test).mean(0), test.labels)
    assert ece["5 folds"] < ece["in-sample"] and ece["5 folds"] < ece["raw"], ece


def test_the_calibration_floor_is_what_a_calibrated_predictor_measures_and_shrinks_with_pairs():
    """ECE has a sampling floor: even labels drawn from the predicted probabilities give ECE > 0,
    about 1/sqrt(pairs); 200 pairs cannot show ECE <= 0.05 for a scorer that is often unsure."""
    from robot_rewards.preferences.heldout import calibration_floor

    rng = np.random.default_rng(0)
    few, many = calibration_floor(rng.uniform(0.2, 0.8, 200)), calibration_floor(rng.uniform(0.2, 0.8, 5000))
    assert 0.05 < few < 0.15 and many < 0.03 and few > 3 * many
    assert calibration_floor(np.ones(50)) == 0.0
