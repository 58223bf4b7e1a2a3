"""The experiment refuses a scorer labelled on another policy's candidates."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from robot_rewards.commands.experiment import check_scorer_policy


def scorer_json(tmp_path, training: dict):
    path = tmp_path / "scorer.json"
    path.write_text(json.dumps({"format": "robot_rewards.preference_scorer", "training": training}))
    return path


def test_a_scorer_from_another_policys_candidates_is_refused_for_scorer_conditions(tmp_path):
    path = scorer_json(tmp_path, {"policy": "old.json", "policy_sha256": "a" * 64})
    ck = SimpleNamespace(meta={"weights_sha256": "b" * 64}, path="new.json")
    with pytest.raises(ValueError, match="trained on the candidates of another policy"):
        check_scorer_policy(path, ck, ["scorer"])
    check_scorer_policy(path, ck, [])  # first / oracle alone do not use it
    check_scorer_policy(path, SimpleNamespace(meta={"weights_sha256": "a" * 64}, path="old.json"), ["scorer"])
    # scorers saved before the policy was recorded are taken as they are
    check_scorer_policy(scorer_json(tmp_path, {"labels": 500}), ck, ["scorer"])
