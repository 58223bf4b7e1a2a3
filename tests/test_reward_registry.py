"""The one reward registry: shipped families, specs, and docs/adding-a-reward-model.md followed
with a tiny throw-away family (its own config, model, checkpoint I/O, registration, selection)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rewards.core.coerce import coerce_config
from robot_rewards.core.paths import resolve
from robot_rewards.nn.artifacts import ArtifactError, ArtifactMismatchError, artifact_paths, load_artifact, save_artifact
from robot_rewards.rewards import registry
from robot_rewards.rewards.base import ActionScorer, RewardInputError, ScoreSet, StateReward, check_candidates
from robot_rewards.rewards.config import HostConfig
from robot_rewards.rewards.host import RewardHost
from robot_rewards.rewards.registry import (
    RewardFamily,
    RewardSpecError,
    build,
    build_state_reward,
    checkpoint_training,
    load_action_scorer,
    register,
    unregister,
)
from robot_rewards.rewards.synthetic import planted_observation, random_candidates

# -- the throw-away family, written as the guide says -------------------------------------------

TOY_FORMAT = "tests.toy_reward"


@dataclass
class ToyConfig:
    """The toy family's architecture (saved in its checkpoint) and its spec options."""

    scale: float = 1.0
    target_z: float = 0.0


class ToyScorer:
    """ActionScorer: candidates closer to a learned point score higher (one 'weight' tensor)."""

    def __init__(self, config: ToyConfig, point: torch.Tensor):
        self.config, self.point = config, point

    def score(self, obs, candidates) -> ScoreSet:
        check_candidates(candidates)
        d = np.linalg.norm(candidates.params[:, :3] - self.point.numpy()[None], axis=1)
        return ScoreSet.from_members(-self.config.scale * d)


class ToyReward:
    """StateReward: how close each observation's highest point is to `target_z`."""

    def __init__(self, config: ToyConfig):
        self.config = config

    def score_states(self, observations_or_images, goal=None) -> np.ndarray:
        obs = list(observations_or_images)
        if not obs:
            raise RewardInputError("no observations to score")
        return np.array([-self.config.scale * abs(float(np.max(o.points[:, 2])) - self.config.target_z) for o in obs])


def save_toy(path: Path, config: ToyConfig, point, training: dict | None = None) -> Path:
    # a folder names where to put toy.json (as the shipped families' save functions do)
    json_path, st_path = (path / "toy.json", path / "toy.safetensors") if path.is_dir() else artifact_paths(path, ())
    meta = {"toy": asdict(config), "training": dict(training or {})}
    return save_artifact(json_path, st_path, {"point": torch.as_tensor(point, dtype=torch.float32)}, meta,
                         TOY_FORMAT, 1)


def load_toy(path, primitive=None, device="cpu") -> ToyScorer:
    json_path, st_path = artifact_paths(path, ("toy",))
    meta, tensors = load_artifact(json_path, st_path, TOY_FORMAT, 1, "toy reward", ("toy",))
    return ToyScorer(ToyConfig(**meta["toy"]), tensors["point"].to(device))


def toy_reward(device: str = "cpu", **options) -> ToyReward:
    return ToyReward(coerce_config(ToyConfig, options))


@pytest.fixture
def toy_family():
    fam = register(RewardFamily("toy", formats=(TOY_FORMAT,), default_names=("toy",), scorer=load_toy,
                                state_reward=toy_reward, summary="tests: distance to a stored point"))
    yield fam
    unregister("toy")


def test_a_new_family_loads_through_the_registry_everywhere(tmp_path, toy_family):
    point = [0.5, 0.0, 0.1]
    ckpt = save_toy(tmp_path / "toy", ToyConfig(scale=2.0), point, training={"steps": 3})
    assert registry.checkpoint_format(ckpt) == TOY_FORMAT
    assert checkpoint_training(tmp_path / "toy") == {"steps": 3}
    assert toy_family in registry.families()

    # by checkpoint: file, stem and folder all work; the scorer is an ActionScorer
    folder = tmp_path / "run"
    folder.mkdir()
    save_toy(folder, ToyConfig(scale=2.0), point)
    obs, _ = planted_observation(0)
    cands = random_candidates(6, seed=1)
    for path in (ckpt, tmp_path / "toy", folder):
        scorer = load_action_scorer(path, primitive="pick_place")
        assert isinstance(scorer, ToyScorer) and isinstance(scorer, ActionScorer)
        s = scorer.score(obs, cands)
        want = -2.0 * np.linalg.norm(cands.params[:, :3] - np.array(point, dtype=np.float32), axis=1)
        np.testing.assert_allclose(s.mean, want, rtol=1e-6)

    # the reward host (and so the ROS reward_server) serves it by checkpoint path
    with RewardHost.from_config(HostConfig({"toy": str(ckpt)})) as host:
        np.testing.assert_allclose(host.score(obs, cands, "toy").mean, scorer.score(obs, cands).mean)

    # by spec: a state reward with typed options
    reward = build_state_reward("toy?scale=3&target_z=0.05")
    assert isinstance(reward, StateReward) and reward.config == ToyConfig(3.0, 0.05)
    r = reward.score_states([obs], obs.goal)
    assert r.shape == (1,) and np.isfinite(r).all()
    with pytest.raises(RewardSpecError, match=r"unknown parameter\(s\) \['scael'\]"):
        build_state_reward("toy?scael=3")

    # a family= restriction refuses it with a clear error
    with pytest.raises(ArtifactMismatchError, match="'toy' checkpoint; a 'preference' scorer is needed"):
        load_action_scorer(ckpt, family="preference")


def test_register_refuses_clashes_and_unregister_forgets(toy_family):
    with pytest.raises(ValueError, match="already registered"):
        register(RewardFamily("toy"))
    with pytest.raises(ValueError, match="already loaded by 'toy'"):
        register(RewardFamily("toy2", formats=(TOY_FORMAT,)))
    with pytest.raises(ValueError, match="must be non-empty"):
        register(RewardFamily("a:b"))
    unregister("toy")
    assert "toy" not in [f.name for f in registry.families()]
    assert registry.family_for_format(TOY_FORMAT) is None
    with pytest.raises(KeyError, match="no reward family 'toy'"):
        registry.family("toy")


# -- the shipped families ---------------------------------------------------------------------


def test_shipped_families_and_checkpoints():
    assert [f.name for f in registry.families()][:5] == ["preference", "implicit", "keypoints", "outcome", "clip"]
    from robot_rewards.rewards.implicit import reward as implicit
    from robot_rewards.rewards.keypoints import io as keypoint_io
    from robot_rewards.rewards.outcome import model as outcome_model
    from robot_rewards.rewards.preference import io as preference_io

    # the formats the registry names are the ones the families write
    assert registry.family("preference").formats == (preference_io.FORMAT,)
    assert registry.family("implicit").formats == (implicit.FORMAT,)
    assert registry.family("keypoints").formats == (keypoint_io.FORMAT,)
    assert registry.family("outcome").formats == (outcome_model.FORMAT,)

    for task in ("place_block", "align_rope"):
        scorer = load_action_scorer(resolve(f"checkpoints/scorer_{task}.json"))
        assert type(scorer).__name__ == "PreferenceScorer"
        assert checkpoint_training(resolve(f"checkpoints/scorer_{task}.json"))
    kp = load_action_scorer(resolve("checkpoints/keypoints_place_block.json"), primitive="pick_place")
    assert type(kp).__name__ == "KeypointScorer"
    outcome = load_action_scorer(resolve("checkpoints/outcome_align_rope.json"), primitive="pick_place")
    assert type(outcome).__name__ == "OutcomeModelScorer"
    with pytest.raises(ArtifactMismatchError, match="keypoint scores exist for"):
        load_action_scorer(resolve("checkpoints/keypoints_place_block.json"), primitive="fold")
    # a CLIP checkpoint is a state reward, not an action scorer
    with pytest.raises(ArtifactError, match="'clip' checkpoint, which has no action scorer"):
        load_action_scorer(resolve("checkpoints/clip_tabletop.json"))
    # ... and a policy checkpoint is nobody's
    with pytest.raises(ArtifactError, match="not a scorer checkpoint"):
        load_action_scorer(resolve("checkpoints/policy_place_block.json"))


def test_keypoint_state_reward_by_spec():
    reward = build_state_reward("keypoints?checkpoint=checkpoints/keypoints_place_block.json&kind=exp&scale=0.1")
    assert type(reward).__name__ == "KeypointReward" and reward.kind == "exp" and reward.scale == 0.1
    with pytest.raises(RewardSpecError, match="unknown keypoint reward kind"):
        build_state_reward("keypoints?checkpoint=checkpoints/keypoints_place_block.json&kind=nope")


def test_clip_state_reward_by_family_name_and_by_the_old_ros_spec():
    ckpt = resolve("checkpoints/clip_tabletop.json")
    new = build_state_reward(f"clip?model={ckpt}&alpha=0.25", device="cpu")
    old = build_state_reward(f"robot_rewards.ros.plugins:clip_reward?model={ckpt}&alpha=0.25", device="cpu")
    assert type(new).__name__ == type(old).__name__ == "ClipReward"
    assert new.config == old.config and new.config.alpha == 0.25 and new.config.device == "cpu"


def test_spec_errors():
    with pytest.raises(RewardSpecError, match="nor a registered reward family"):
        build("no_such_family?x=1")
    with pytest.raises(RewardSpecError, match="'preference' reward family has no state reward"):
        build_state_reward("preference")
    with pytest.raises(RewardSpecError, match="option 'oops' of"):
        build("clip?oops")
    assert build_state_reward("") is None
    # a plain factory by module:function still works (console choosers, test doubles)
    assert build("collections:OrderedDict?a=1") == {"a": "1"}


def test_missing_and_unreadable_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="no reward-model checkpoint"):
        load_action_scorer(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no reward-model checkpoint"):
        load_action_scorer(tmp_path)  # a folder without any family's default file
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not a readable checkpoint"):
        load_action_scorer(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ArtifactError, match="not a readable checkpoint"):
        load_action_scorer(tmp_path / "list.json")
