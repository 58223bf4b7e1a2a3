"""CLIP goal reward (VLM-RM) on a tiny open_clip model: formula, cache, batching, preprocessing,
prompts, checkpoints and bad input. No weights are downloaded: the model is random (pretrained=None)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from robot_rewards.core.camera import CameraIntrinsics, CameraModel  # noqa: E402
from robot_rewards.core.observation import CameraFrame, Observation  # noqa: E402
from robot_rewards.nn.artifacts import ArtifactError  # noqa: E402
from robot_rewards.rewards.base import RewardInputError, RewardModelError, StateReward  # noqa: E402
from robot_rewards.rewards.clip.config import ClipRewardConfig  # noqa: E402
from robot_rewards.rewards.clip.model import (  # noqa: E402
    ClipModelError,
    ClipWeightsMissingError,
    build_clip,
    load_clip,
    save_clip_checkpoint,
)
from robot_rewards.rewards.clip.preprocess import Preprocess, preprocess  # noqa: E402
from robot_rewards.rewards.clip.prompts import goal_prompts  # noqa: E402
from robot_rewards.rewards.clip.reward import ClipReward  # noqa: E402
from robot_rewards.sim.tasks.align_rope import ROPE_BASELINE, rope_captions  # noqa: E402
from robot_rewards.sim.tasks.place_block import PLACE_BASELINE  # noqa: E402

TINY = "rr-test-tiny-clip"
TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
GOALS = ["the red block is in the green bowl", "a red cube inside a green bowl", "red block, green bowl"]
BASELINES = ["blocks and bowls on a table", "a table"]


@pytest.fixture(scope="module")
def tiny_name(tmp_path_factory):
    """A tiny open_clip model registered under TINY (open_clip.add_model_config)."""
    folder = tmp_path_factory.mktemp("clip_cfg")
    (folder / f"{TINY}.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(folder / f"{TINY}.json")
    return TINY


@pytest.fixture(scope="module")
def reward(tiny_name):
    torch.manual_seed(0)
    return ClipReward.from_config(ClipRewardConfig(model=tiny_name, device="cpu", batch_size=3))


def images(n: int, h: int = 48, w: int = 64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def direct_numpy(reward: ClipReward, imgs, goals, baselines, alpha) -> np.ndarray:
    """VLM-RM computed from scratch with numpy from the open_clip model's own embeddings."""
    model, tok = reward.model, reward.loaded.tokenizer
    with torch.no_grad():
        x = model.encode_image(preprocess(imgs, reward.preprocess)).double().numpy()
        t = model.encode_text(tok(goals + baselines)).double().numpy()
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    g, b = t[: len(goals)].mean(0), t[len(goals):].mean(0)
    d = g - b
    P = alpha * np.outer(d, d) / (d @ d) + (1 - alpha) * np.eye(len(d))
    return 1 - 0.5 * np.sum(((x - g) @ P) ** 2, axis=1)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_vlm_rm_formula_matches_numpy(tiny_name, alpha):
    torch.manual_seed(0)
    r = ClipReward.from_config(ClipRewardConfig(model=tiny_name, device="cpu", alpha=alpha, baseline_prompts=BASELINES))
    imgs = images(5)
    got = r.score_states(imgs, GOALS)
    want = direct_numpy(r, imgs, GOALS, BASELINES, alpha)
    assert got.shape == (5,) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # several prompts are averaged: one goal prompt alone gives different numbers
    assert not np.allclose(r.score_states(imgs, GOALS[:1]), got)
    if alpha == 0.0:  # plain cosine similarity, shifted: R = x.g + (1 - |g|^2) / 2
        x = r.embed_images(imgs).double().numpy()
        g = r.goal_embedding(GOALS).g.double().numpy()
        np.testing.assert_allclose(got, x @ g + 0.5 * (1 - g @ g), atol=1e-5)


def test_alpha_override_and_range(reward):
    imgs = images(3)
    a1 = reward.score_states(imgs, "put the red block in the green bowl", alpha=1.0)
    a0 = reward.score_states(imgs, "put the red block in the green bowl", alpha=0.0)
    assert not np.allclose(a0, a1)
    with pytest.raises(ValueError, match="alpha"):
        reward.score_states(imgs, "put the red block in the green bowl", alpha=1.5)


def test_text_embeddings_cached_per_goal(tiny_name):
    r = ClipReward.from_config(ClipRewardConfig(model=tiny_name, device="cpu"))
    calls = []
    encode = r.model.encode_text
    r.model.encode_text = lambda tokens, *a, **k: (calls.append(len(tokens)), encode(tokens, *a, **k))[1]
    imgs = images(2)
    first = r.score_states(imgs, "put the red block in the green bowl")
    second = r.score_states(imgs, "put the red block in the green bowl")
    np.testing.assert_array_equal(first, second)
    assert r.cache_info() == {"hits": 1, "misses": 1, "goals": 1}
    assert calls == [2]  # one text pass: the goal's state prompt + its baseline
    r.score_states(imgs, "put the blue block in the red bowl")
    assert r.cache_info() == {"hits": 1, "misses": 2, "goals": 2} and calls == [2, 2]


def test_batched_equals_one_at_a_time(reward):
    imgs = images(7) + images(2, h=30, w=40, seed=1)  # two frame sizes in one call
    batched = reward.score_states(imgs, "put the red block in the green bowl")
    single = np.concatenate([reward.score_states([im], "put the red block in the green bowl") for im in imgs])
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-6)
    stacked = reward.score_states(np.stack(imgs[:7]), "put the red block in the green bowl")
    np.testing.assert_allclose(stacked, batched[:7], atol=1e-6)


def test_observations_use_their_camera_frame(reward):
    cam = CameraModel("front", CameraIntrinsics.from_fov(64, 48, 60.0))
    rgb = images(1)[0]
    obs = Observation({"front": CameraFrame(cam, rgb, np.zeros((48, 64), np.float32))}, None, "g")
    np.testing.assert_allclose(reward.score_states([obs], "put the red block in the green bowl"),
                               reward.score_states([rgb], "put the red block in the green bowl"), atol=1e-7)
    bad = ClipReward(reward.loaded, ClipRewardConfig(model="x", camera="wrist", device="cpu"))
    with pytest.raises(RewardInputError, match="no camera frame 'wrist'"):
        bad.score_states([obs], "put the red block in the green bowl")
    assert isinstance(reward, StateReward)


def test_resize_policies():
    # 32 x 64 frame: left quarter red, middle half green, right quarter blue
    im = np.zeros((32, 64, 3), np.uint8)
    im[:, :16, 0] = 255
    im[:, 16:48, 1] = 255
    im[:, 48:, 2] = 255
    spec = lambda resize, roi=None: Preprocess((16, 16), (0, 0, 0), (1, 1, 1), resize, roi)
    crop = preprocess([im], spec("crop"))[0]
    assert crop.shape == (3, 16, 16)
    # the centre half (green) fills it; antialiasing blends only the outermost columns
    assert torch.allclose(crop[1, :, 1:-1], torch.ones(16, 14)) and float(crop[[0, 2]].max()) < 0.2
    pad = preprocess([im], spec("pad"))[0]
    assert torch.all(pad[:, :4] == 0) and torch.all(pad[:, 12:] == 0)  # 16 x 8 image centred, mean colour around
    assert float(pad[0, 8, 0]) > 0.9 and float(pad[2, 8, 15]) > 0.9  # both sides kept
    squash = preprocess([im], spec("squash"))[0]
    assert float(squash[0, :, 0].min()) > 0.9 and float(squash[2, :, 15].min()) > 0.9 and float(squash[1, :, 8].min()) > 0.9
    roi = preprocess([im], spec("squash", (0.75, 0.0, 1.0, 1.0)))[0]  # only the blue quarter
    assert torch.allclose(roi[2], torch.ones(16, 16)) and float(roi[:2].max()) < 1e-6
    with pytest.raises(ValueError, match="resize policy"):
        Preprocess((16, 16), (0, 0, 0), (1, 1, 1), "stretch")
    with pytest.raises(ValueError, match="roi"):
        Preprocess((16, 16), (0, 0, 0), (1, 1, 1), "crop", (0.5, 0.0, 0.4, 1.0))


def test_goal_prompts():
    assert goal_prompts("put the red block in the green bowl").goal == ("the red block is in the green bowl",)
    assert goal_prompts("put the red block in the green bowl").baseline == (PLACE_BASELINE,)
    rope = goal_prompts("align the rope between the red mark and the blue mark")
    assert rope.goal == ("the rope is straight", "the rope lies on the line between the red and blue marks")
    assert rope.baseline == (ROPE_BASELINE,)
    assert goal_prompts("straighten the rope between the two marks").goal[1] == \
        "the rope lies on the line between the two marks"
    assert goal_prompts("open the drawer").goal == ("open the drawer",)
    true, false = rope_captions(0.99, 0.01, ("red", "blue"))
    assert "the rope is straight" in true and "the rope is straight" not in false
    assert set(rope.goal) <= set(true)  # the goal state's prompts are captions of a goal-state frame


def test_bad_inputs(reward):
    goal = "put the red block in the green bowl"
    with pytest.raises(RewardInputError, match="uint8"):
        reward.score_states([np.zeros((8, 8, 3), np.float32)], goal)
    with pytest.raises(RewardInputError, match=r"\(H, W, 3\)"):
        reward.score_states([np.zeros((8, 8), np.uint8)], goal)
    with pytest.raises(RewardInputError, match="wrap a single image"):
        reward.score_states(np.zeros((8, 8, 3), np.uint8), goal)
    with pytest.raises(RewardInputError, match="empty"):
        reward.score_states([], goal)
    for empty in ("", "   ", None):
        with pytest.raises(RewardInputError, match="goal text is empty"):
            reward.score_states(images(1), empty)
    with pytest.raises(RewardInputError, match="no goal prompts"):
        reward.score_states(images(1), [])


def test_same_goal_and_baseline_is_refused(tiny_name):
    r = ClipReward.from_config(ClipRewardConfig(model=tiny_name, device="cpu", alpha=0.5, baseline_prompts=["a table"]))
    with pytest.raises(RewardInputError, match="g = b"):
        r.score_states(images(1), ["a table"])


def test_unknown_model_and_missing_weights(tiny_name, tmp_path):
    with pytest.raises(ClipModelError, match="did you mean ViT-B-32"):
        load_clip("ViT-B-23")
    with pytest.raises(ClipModelError, match="not a pretrained tag.*laion2b_s34b_b79k"):
        load_clip("ViT-B-32", "no_such_tag")
    # a real tag whose weights are not on this machine: a clear error, and no download attempt
    with pytest.raises(ClipWeightsMissingError) as exc:
        load_clip("ViT-B-32", "laion2b_s34b_b79k", cache_dir=str(tmp_path))
    msg = str(exc.value)
    assert "huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in msg and "pretrained=/path/to/file" in msg
    assert str(tmp_path) in msg
    with pytest.raises(ClipWeightsMissingError, match="not found"):
        load_clip(tiny_name, str(tmp_path / "weights.safetensors"))
    with pytest.raises(ClipWeightsMissingError, match="local-dir"):
        load_clip("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")


def test_local_weights_file_and_checkpoint_round_trip(tiny_name, tmp_path):
    torch.manual_seed(1)
    src = ClipReward.from_config(ClipRewardConfig(model=tiny_name, device="cpu"))
    weights = tmp_path / "tiny.pt"
    torch.save(src.model.state_dict(), weights)
    from_file = ClipReward.from_config(ClipRewardConfig(model=tiny_name, pretrained=str(weights), device="cpu"))
    imgs, goal = images(3), "put the red block in the green bowl"
    want = src.score_states(imgs, goal)
    np.testing.assert_allclose(from_file.score_states(imgs, goal), want, atol=1e-6)

    # robot_rewards checkpoint with a compact token table: rows outside the captions are zero
    model = build_clip(TINY_CFG)
    model.load_state_dict(src.model.state_dict())
    rows = sorted(set(src.loaded.tokenizer([goal, "blocks and bowls on a table"]).unique().tolist()))
    with torch.no_grad():
        keep = torch.zeros(49408, dtype=torch.bool)
        keep[rows] = True
        model.token_embedding.weight[~keep] = 0
    spec = Preprocess((32, 32), src.preprocess.mean, src.preprocess.std, "squash", (0.1, 0.2, 0.9, 1.0))
    path = save_clip_checkpoint(tmp_path / "clip_tiny", model, TINY_CFG, spec, {"note": "test"}, rows)
    assert path.stat().st_size < 100_000 and (tmp_path / "clip_tiny.safetensors").stat().st_size < 1_000_000
    loaded = ClipReward.from_config(ClipRewardConfig(model=str(path), device="cpu"))
    assert loaded.preprocess == spec and loaded.loaded.meta["note"] == "test"
    ref = ClipReward(load_clip(tiny_name), ClipRewardConfig(model="x", device="cpu"))
    ref.model.load_state_dict(model.state_dict())
    ref.preprocess = spec
    np.testing.assert_allclose(loaded.score_states(imgs, goal), ref.score_states(imgs, goal), atol=1e-6)
    # preprocessing overrides at load time
    crop = load_clip(str(path), resize="crop", roi=[0.0, 0.0, 1.0, 1.0])
    assert crop.preprocess.resize == "crop" and crop.preprocess.roi == (0.0, 0.0, 1.0, 1.0)

    # a damaged weights file is refused; so is a model whose weights are NaN
    st = tmp_path / "clip_tiny.safetensors"
    st.write_bytes(st.read_bytes()[:-7] + b"garbage")
    with pytest.raises(ArtifactError, match="corrupted"):
        load_clip(str(path))
    broken = ClipReward(load_clip(tiny_name), ClipRewardConfig(model="x", device="cpu"))
    with torch.no_grad():
        broken.model.visual.proj.fill_(float("nan"))
    with pytest.raises(RewardModelError, match="NaN"):
        broken.score_states(imgs, goal)


def test_outcome_scorer_ranks_candidates_by_outcome_reward(reward):
    from robot_rewards.core.candidates import Candidates
    from robot_rewards.rewards.base import ActionScorer
    from robot_rewards.rewards.clip.scorer import OutcomeScorer

    outcomes = images(3, seed=5)
    cands = Candidates("pick_place", np.zeros((3, 7)), np.arange(3), np.zeros(3, bool))
    obs = Observation({}, None, "put the red block in the green bowl")
    scorer = OutcomeScorer(reward, lambda o, c: outcomes[: len(c)])
    assert isinstance(scorer, ActionScorer)
    s = scorer.score(obs, cands)
    assert s.k == 1 and s.n == 3
    np.testing.assert_allclose(s.mean, reward.score_states(outcomes, obs.goal))
    with pytest.raises(RewardModelError, match="2 images for 3"):
        OutcomeScorer(reward, lambda o, c: outcomes[:2]).score(obs, cands)
    with pytest.raises(RewardInputError, match="goal"):
        scorer.score(Observation({}, None, ""), cands)


@pytest.mark.slow
def test_sim_outcomes_leave_the_scene_unchanged(reward):
    from robot_rewards.core.candidates import Candidates
    from robot_rewards.rewards.clip.scorer import OutcomeScorer, sim_outcome_images
    from robot_rewards.sim.env import TabletopEnv

    with TabletopEnv("place_block") as env:
        env.reset(3)
        before = {n: env.world.position(n).copy() for n in env.task.blocks}
        expert = env.expert_action()
        cands = Candidates("pick_place", np.stack([expert.params, expert.params]), np.arange(2), np.zeros(2, bool))
        s = OutcomeScorer(reward, sim_outcome_images(env)).score(env.observe(), cands)
        assert s.n == 2 and s.mean[0] == pytest.approx(s.mean[1], abs=1e-6)  # same action, same outcome
        for n, pos in before.items():
            np.testing.assert_allclose(env.world.position(n), pos, atol=1e-6)
        assert env.steps == 0
