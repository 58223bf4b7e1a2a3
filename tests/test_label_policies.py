"""Labels know the policy whose candidates they judge: stores filter by it, and training or an
experiment refuses labels of another policy before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
from test_preference_store import TASK, add_query, dump

from robot_rewards.commands.experiment import check_store_policy
from robot_rewards.commands.scorer import labels_policy
from robot_rewards.core.paths import resolve
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.preferences import PreferenceStore

SHIPPED = "checkpoints/policy_place_block.json"


@pytest.fixture(scope="module")
def ck():
    return load_policy(resolve(SHIPPED), task=TASK)


def labelled(store, rng, policy: dict | None, n: int = 3) -> None:
    sid = store.start_session("teacher:mistake", TASK, "pairwise", meta={"policy": policy} if policy else {})
    for _ in range(n):
        q = add_query(store, sid, rng)
        store.add_pair(q, 0, 1, "a", "teacher:mistake")


def test_sessions_record_the_policy_and_pairs_filter_by_it(tmp_path, ck):
    rng = np.random.default_rng(0)
    other = {"path": "runs/other/policy.json", "sha256": "f" * 64}
    with PreferenceStore(tmp_path / "s") as store:
        labelled(store, rng, ck.identity(), 3)
        labelled(store, rng, other, 2)
        labelled(store, rng, None, 1)  # a store from before policies were recorded
        assert store.label_policies(TASK) == {ck.identity()["sha256"]: str(ck.path), "f" * 64: other["path"], "": ""}
        assert len(store.pairs(task=TASK)) == 6
        assert len(store.pairs(task=TASK, policy_sha256=ck.identity()["sha256"])) == 3
        assert len(store.pairs(task=TASK, policy_sha256="f" * 64)) == 2
        assert store.label_policies("align_rope") == {}


def test_training_and_experiments_refuse_labels_of_another_policy_and_change_nothing(tmp_path, ck):
    rng = np.random.default_rng(1)
    other = {"path": "runs/other/policy.json", "sha256": "e" * 64}
    with PreferenceStore(tmp_path / "mixed") as store:
        labelled(store, rng, ck.identity(), 3)
        labelled(store, rng, other, 2)
        before = dump(tmp_path / "mixed")
        with pytest.raises(ValueError, match=r"candidates of another policy \(runs/other/policy.json \(eeeeeeeeeeee\)\)"):
            check_store_policy(store, TASK, ck)
        with pytest.raises(ValueError, match="judge the candidates of 2 policies .* pass policy=<checkpoint>"):
            labels_policy(store, TASK, "")
        assert labels_policy(store, TASK, SHIPPED) == ck.identity()  # choosing one is fine
        assert dump(tmp_path / "mixed") == before
    with PreferenceStore(tmp_path / "other") as store:
        labelled(store, rng, other, 2)
        with pytest.raises(ValueError, match="no place_block labels judge the candidates of"):
            labels_policy(store, TASK, SHIPPED)
    with PreferenceStore(tmp_path / "own") as store:
        labelled(store, rng, ck.identity(), 2)
        labelled(store, rng, None, 1)
        check_store_policy(store, TASK, ck)  # its own and unrecorded labels pass
        assert labels_policy(store, TASK, "") == {}  # but an unrecorded session means no claim
