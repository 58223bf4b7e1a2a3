"""Active query selection in teacher labelling: pairs chosen by a scorer retrained on the labels so far."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rewards.core.candidates import Candidates
from robot_rewards.eval.collect import ActiveQueries, CollectStats, LabelDecision, _label, _PairChooser
from robot_rewards.preferences import PreferenceStore
from robot_rewards.preferences.teachers import ScriptedTeacher, teacher_preset
from robot_rewards.rewards.base import ScoreSet


class Unsure:
    """Members agree on every candidate but 2 and 5, where they disagree strongly."""

    def score(self, obs, cands):
        m = np.zeros((3, len(cands)))
        m[:, 2] = [3.0, -3.0, 0.0]
        m[:, 5] = [-3.0, 3.0, 0.0]
        return ScoreSet.from_members(m)


def decision(rng) -> LabelDecision:
    cands = Candidates("pick_place", rng.uniform(0.3, 0.6, (8, 7)), np.arange(8), np.zeros(8, bool))
    return LabelDecision(0, 0, "put the red block in the green bowl", cands,
                         rng.normal(0.5, 0.1, (64, 3)).astype(np.float32),
                         rng.integers(0, 256, (64, 3), dtype=np.uint8), np.zeros((4, 4, 3), np.uint8),
                         rng.normal(0, 1, 8))


def test_the_scorer_picks_the_pair_its_members_disagree_on_and_is_retrained_on_schedule(tmp_path):
    trained = []

    def train():
        trained.append(1)
        return None if len(trained) == 1 else Unsure()  # too few labels at first: uniform

    chooser = _PairChooser(ActiveQueries("disagreement", train, every=4))
    rng = np.random.default_rng(0)
    rater = ScriptedTeacher(teacher_preset("oracle", 0))
    stats = CollectStats()
    with PreferenceStore(tmp_path / "s") as store:
        sid = store.start_session("teacher:oracle", "place_block", "pairwise")
        for _ in range(4):
            _label(store, sid, "place_block", decision(rng), rater, rng, 2, "teacher:oracle", stats,
                   choice=chooser(stats.labels))
        firsts = [sorted((r["a"], r["b"])) for r in store._conn.execute("SELECT a, b FROM labels ORDER BY id")][::2]
    # decisions 1-2 (labels 0-3): no scorer yet, uniform; the scorer trained at 4 labels asks
    # first about the pair its members disagree on in decisions 3-4
    assert len(trained) == 2 and stats.labels == 8
    assert firsts[2:] == [[2, 5], [2, 5]] and firsts[:2] != [[2, 5], [2, 5]]


def test_active_settings_are_checked():
    with pytest.raises(ValueError, match="disagreement or entropy"):
        ActiveQueries("uniform", lambda: None)
    with pytest.raises(ValueError, match="retrain every"):
        ActiveQueries("entropy", lambda: None, every=0)
