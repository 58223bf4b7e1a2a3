"""train-clip's parts: the multi-positive CLIP loss, the compact token table, the metrics, frame
generation from the real sim, preference pairs, and a tiny end-to-end training run."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from robot_rewards.rewards.clip.config import ClipDataConfig, ClipRewardConfig, TinyClipConfig, TrainClipConfig  # noqa: E402
from robot_rewards.rewards.clip.data import ClipDataError, FrameSet, generate_frames, load_frames  # noqa: E402
from robot_rewards.rewards.clip.eval import roc_auc, spearman  # noqa: E402
from robot_rewards.rewards.clip.reward import ClipReward  # noqa: E402
from robot_rewards.rewards.clip.train import (  # noqa: E402
    CompactTokenEmbedding,
    multi_positive_clip_loss,
    preference_pairs,
    stored_token_rows,
    task_balanced,
    train_clip,
)
from robot_rewards.sim.tasks.align_rope import ROPE_BASELINE  # noqa: E402
from robot_rewards.sim.tasks.place_block import PLACE_BASELINE  # noqa: E402

TINY_DATA = ClipDataConfig(place_scenes=2, place_frames=1, rope_scenes=1, rope_frames=2, render_scale=0.15)


def test_loss_equals_open_clip_loss_for_one_caption_per_image():
    torch.manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    scale = torch.tensor(np.log(10.0))
    ours = multi_positive_clip_loss(img, txt, torch.eye(6, dtype=torch.bool), scale)
    ref = open_clip.ClipLoss()(img, txt, scale.exp())
    assert float(ours) == pytest.approx(float(ref), abs=1e-6)


def test_loss_spreads_targets_over_true_pairs():
    torch.manual_seed(1)
    img = torch.nn.functional.normalize(torch.randn(3, 4), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(4, 4), dim=-1)
    truth = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.bool)  # caption 3: a hard negative
    logits = (img @ txt.T).double()
    lp_i = torch.log_softmax(logits, 1)
    i2t = -(lp_i[0, 0] + lp_i[0, 1]) / 2 - lp_i[1, 1] - lp_i[2, 2]
    lp_t = torch.log_softmax(logits[:, :3].T, 1)  # captions true of no image are skipped
    t2i = -lp_t[0, 0] - (lp_t[1, 0] + lp_t[1, 1]) / 2 - lp_t[2, 2]
    want = 0.5 * (i2t / 3 + t2i / 3)
    got = multi_positive_clip_loss(img, txt, truth, torch.tensor(0.0))
    assert float(got) == pytest.approx(float(want), abs=1e-6)


def test_compact_token_embedding_matches_the_full_table():
    torch.manual_seed(0)
    table = torch.nn.Embedding(50, 4)
    rows = [0, 3, 7, 49]
    compact = CompactTokenEmbedding(table, rows)
    ids = torch.tensor([[0, 3, 5, 49], [7, 7, 1, 0]])
    full = compact.full()
    assert torch.equal(compact(ids), full(ids))
    assert torch.equal(full.weight[rows], table.weight[rows]) and float(full.weight.detach()[[1, 5]].abs().sum()) == 0
    assert compact.weight.shape == (4, 4)


def test_auc_and_spearman_numbers():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([1, 1, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.5)  # ties count half
    assert np.isnan(roc_auc([1, 2], [1, 1]))
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)


@pytest.fixture(scope="module")
def tiny_frames(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip_frames") / "frames.h5"
    generate_frames(TINY_DATA, path, progress=False)
    return path


def test_generated_frames_carry_state_labels(tiny_frames):
    fs = load_frames(tiny_frames, TINY_DATA)
    assert len(fs) == 2 * 2 + 2
    assert fs.images.dtype == np.uint8 and fs.images.shape[1:] == (72, 96, 3)
    place, rope = fs.rows("place_block"), fs.rows("align_rope")
    assert len(place) == 4 and len(rope) == 2
    for i in place:
        assert PLACE_BASELINE in fs.true[i] and fs.goal[i].startswith("put the")
        target = fs.goal[i].replace("put the ", "the ").replace(" in the ", " is in the ")
        assert (target in fs.true[i]) == bool(fs.success[i])  # the caption agrees with the task's success test
        assert not set(fs.true[i]) & set(fs.false[i])
    assert not fs.success[place[0]]  # a reset scene never starts solved
    for i in rope:
        assert ROPE_BASELINE in fs.true[i] and 0 < fs.straightness[i] <= 1.0001 and fs.quality[i] >= 0
    assert np.isnan(fs.straightness[place]).all()
    with pytest.raises(ClipDataError, match="other settings"):
        load_frames(tiny_frames, ClipDataConfig(place_scenes=3))


def test_preference_pairs_follow_the_teacher():
    fs = FrameSet(np.zeros((4, 2, 2, 3), np.uint8), np.array(["place_block"] * 4), np.array(["g"] * 4),
                  np.array(["arranged"] * 4), np.array([0, 0, 1, 1]), np.array([True, False, False, False]),
                  np.array([0.0, 0.1, 0.05, 0.2]), np.full(4, np.nan), [[]] * 4, [[]] * 4)
    pairs = preference_pairs(fs, np.random.default_rng(0), 40, 0.0)
    assert {tuple(p) for p in pairs} == {(0, 1), (2, 3)}  # success first, then lower quality
    flipped = preference_pairs(fs, np.random.default_rng(0), 400, 0.25)
    wrong = np.mean([tuple(p) in {(1, 0), (3, 2)} for p in flipped])
    assert 0.18 < wrong < 0.32


def test_balanced_sampling_gives_each_task_an_equal_share():
    n_place, n_rope = 400, 100  # in proportion, place_block would get 80% of each batch
    task = np.array(["place_block"] * n_place + ["align_rope"] * n_rope)
    n = len(task)
    fs = FrameSet(np.zeros((n, 1, 1, 3), np.uint8), task, task, np.array(["arranged"] * n), np.arange(n),
                  np.zeros(n, bool), np.zeros(n), np.full(n, np.nan), [[]] * n, [[]] * n)
    p = task_balanced(fs)
    assert p.sum() == pytest.approx(1.0) and p[task == "align_rope"].sum() == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    # the sampling call train_clip makes: batches without replacement
    picked = np.concatenate([rng.choice(n, 48, replace=False, p=p) for _ in range(300)])
    assert np.mean(task[picked] == "align_rope") == pytest.approx(0.5, abs=0.03)


TINY_MODEL = TinyClipConfig(embed_dim=16, image_size=32, patch_size=16, vision_width=32, vision_layers=1,
                            vision_head_width=16, text_width=32, text_layers=1, text_heads=2, context_length=16)


@pytest.mark.slow
def test_continuing_from_a_compact_checkpoint_keeps_it_compact(tiny_frames, tmp_path):
    from robot_rewards.rewards.clip.model import load_clip_checkpoint

    cfg = TrainClipConfig(data=str(tiny_frames), generate=TINY_DATA, eval_data=str(tiny_frames), eval_generate=TINY_DATA,
                          model=TINY_MODEL, steps=2, batch_size=4, warmup_steps=1, eval_every=0, device="cpu",
                          seed=0, output_dir=str(tmp_path / "scratch"))
    first = train_clip(cfg)
    rows = stored_token_rows(load_clip_checkpoint(first["checkpoint"]).model.token_embedding.weight)
    cfg2 = replace(cfg, init_model=first["checkpoint"], balance_tasks=True, seed=1,
                   output_dir=str(tmp_path / "continued"))
    second = train_clip(cfg2)
    assert second["trained_parameters"] == first["trained_parameters"] < second["parameters"]
    loaded = load_clip_checkpoint(second["checkpoint"])
    assert "token_embedding_shape" in loaded.meta  # saved compact again
    table = loaded.model.token_embedding.weight.detach()
    zero = table.abs().sum(1) == 0
    assert not zero[rows].any() and int((~zero).sum()) == len(rows)  # the same rows trained, the rest still zero
    assert not torch.equal(table[rows], load_clip_checkpoint(first["checkpoint"]).model.token_embedding.weight[rows])
    assert loaded.meta["training"]["config"]["init_model"] == first["checkpoint"]
    reward = ClipReward.from_config(ClipRewardConfig(model=second["checkpoint"], device="cpu"))
    fs = load_frames(tiny_frames)
    r = reward.score_states(list(fs.images[:3]), str(fs.goal[0]))
    assert r.shape == (3,) and np.all(np.isfinite(r))


@pytest.mark.slow
def test_train_clip_end_to_end(tiny_frames, tmp_path):
    model = TINY_MODEL
    cfg = TrainClipConfig(data=str(tiny_frames), generate=TINY_DATA, eval_data=str(tiny_frames), eval_generate=TINY_DATA,
                          model=model, steps=3, batch_size=4, warmup_steps=1, eval_every=0, preference_weight=0.5,
                          preference_pairs=2, device="cpu", seed=3, output_dir=str(tmp_path / "run"))
    metrics = train_clip(cfg)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["final"]["0.5"]["place_block_n_all"] == 4 and len(saved["history"]) == 1
    assert metrics["trained_parameters"] < metrics["parameters"]  # the compact token table
    reward = ClipReward.from_config(ClipRewardConfig(model=metrics["checkpoint"], device="cpu"))
    assert reward.preprocess.resize == "squash" and reward.preprocess.size == (32, 32)
    fs = load_frames(tiny_frames)
    r = reward.score_states(list(fs.images), str(fs.goal[0]))
    assert r.shape == (len(fs),) and np.all(np.isfinite(r))
    # the shipped numbers are the checkpoint's: re-evaluating the saved model reproduces them
    from robot_rewards.rewards.clip.eval import evaluate_reward

    again = evaluate_reward(reward, fs, [0.5])[0.5]
    assert again["place_block_auc_all"] == pytest.approx(saved["final"]["0.5"]["place_block_auc_all"])
    # same seed, same weights
    cfg.output_dir = str(tmp_path / "run2")
    metrics2 = train_clip(cfg)
    assert metrics2["history"][0]["loss"] == pytest.approx(metrics["history"][0]["loss"], abs=1e-6)


def test_preference_groups_by_scope_and_task():
    from robot_rewards.rewards.clip.train import scene_groups

    task = np.array(["place_block"] * 4 + ["align_rope"] * 4)
    fs = FrameSet(np.zeros((8, 2, 2, 3), np.uint8), task, np.array(["g"] * 8), np.array(["arranged"] * 8),
                  np.array([0, 0, 1, 1, 0, 0, 1, 1]), np.zeros(8, bool),
                  np.array([0.0, 0.1, 0.05, 0.2, 0.01, 0.03, 0.02, 0.04]), np.full(8, np.nan), [[]] * 8, [[]] * 8)
    assert [g.tolist() for g in scene_groups(fs)] == [[4, 5], [6, 7], [0, 1], [2, 3]]
    assert [g.tolist() for g in scene_groups(fs, "scene", ["align_rope"])] == [[4, 5], [6, 7]]
    assert [g.tolist() for g in scene_groups(fs, "task", ["align_rope"])] == [[4, 5, 6, 7]]
    pairs = preference_pairs(fs, np.random.default_rng(0), 200, 0.0, scene_groups(fs, "task", ["align_rope"]))
    assert {tuple(p) for p in pairs} == {(a, b) for a in range(4, 8) for b in range(4, 8)
                                         if fs.quality[a] < fs.quality[b]}  # pairs across scenes too
    with pytest.raises(ValueError, match="preference_scope"):
        scene_groups(fs, "episode")


def test_task_scope_preference_loss_scores_each_frame_for_its_own_goal():
    from robot_rewards.rewards.clip.model import build_clip, tokenizer_for
    from robot_rewards.rewards.clip.prompts import goal_prompts
    from robot_rewards.rewards.clip.train import _preference_loss, scene_groups

    torch.manual_seed(0)
    model_cfg = TINY_MODEL.open_clip_cfg()
    model, tokenizer = build_clip(model_cfg), tokenizer_for(model_cfg)
    goals = np.array(["align the rope from the red mark to the blue mark"] * 3
                     + ["align the rope from the green mark to the yellow mark"] * 3)
    fs = FrameSet(np.zeros((6, 2, 2, 3), np.uint8), np.array(["align_rope"] * 6), goals, np.array(["arranged"] * 6),
                  np.array([0, 0, 0, 1, 1, 1]), np.zeros(6, bool), np.array([0.01, 0.03, 0.05, 0.02, 0.04, 0.06]),
                  np.full(6, 0.9), [[]] * 6, [[]] * 6)
    images = torch.randn(6, 3, 32, 32)
    cfg = TrainClipConfig(preference_pairs=6, preference_scope="task", alpha=1.0)
    loss = _preference_loss(model, tokenizer, fs, scene_groups(fs, "task"), {g: goal_prompts(g) for g in set(goals)},
                            np.random.default_rng(0), lambda idx: images[torch.from_numpy(idx)], cfg, "cpu")
    loss.backward()
    assert torch.isfinite(loss) and model.visual.conv1.weight.grad.abs().sum() > 0
    assert model.token_embedding.weight.grad is None  # the text side is detached
