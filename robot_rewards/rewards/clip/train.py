"""`train-clip`: domain adaptation of a CLIP to sim frames, contrastively on state captions.

Zero-shot CLIP is weak on robot renders (VLM-RM's failure modes: spatial relations, off-
distribution images), so the reward's model is trained (from scratch: `TinyClipConfig`; or
fine-tuned: `init_model`) on frames from `clip_data` with captions computed from sim state.

Loss: a multi-positive CLIP loss. Each frame contributes one true caption drawn at random
(and, with `hard_negatives`, one false caption of the same scene, e.g. "the red block is in
the green bowl" when it lies beside it). Captions are closed-world facts, so the truth of every
caption for every frame in the batch is known: image -> text and text -> image cross-entropies
use targets spread evenly over all true pairs, instead of treating a repeated caption in the
batch ("the rope is straight") as a negative.

Optional RAPL-style alignment (`preference_weight > 0`): pairs of frames of one scene ranked by
a scripted teacher from the task's quality (success first; B-Pref "mistake" flips with
`teacher_error`); a Bradley-Terry loss on the VLM-RM reward of the scene's goal (text side
detached: it aligns the image encoder's representation with the preferences).

The result is a `robot_rewards.clip` checkpoint (`output_dir/checkpoints/clip.{json,safetensors}`)
that `ClipReward` loads by path, offline; the held-out metrics go to metrics.json.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from robot_rewards.core.device import resolve_device
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.nn.training import OptimConfig, lr_at, make_optimizer, optimizer_step, set_lr
from robot_rewards.rewards.clip.config import ClipRewardConfig, TrainClipConfig
from robot_rewards.rewards.clip.data import FrameSet, frames_for
from robot_rewards.rewards.clip.eval import evaluate_reward, headline, summary_table
from robot_rewards.rewards.clip.model import (
    LoadedClip,
    build_clip,
    load_clip,
    save_clip_checkpoint,
    tokenizer_for,
)
from robot_rewards.rewards.clip.preprocess import Preprocess, preprocess
from robot_rewards.rewards.clip.prompts import goal_prompts
from robot_rewards.rewards.clip.reward import ClipReward, mean_embedding, projection, vlm_rm_reward

log = logging.getLogger(__name__)
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp of the learned temperature


class CaptionTable:
    """Every caption of a frame set, tokenised once, and which are true of which frame."""

    def __init__(self, frames: FrameSet, tokenizer, extra: list[str] = ()):
        texts = sorted({t for lst in frames.true + frames.false for t in lst} | set(extra))
        self.texts = texts
        self.index = {t: i for i, t in enumerate(texts)}
        self.tokens = tokenizer(texts)
        self.truth = torch.zeros((len(frames), len(texts)), dtype=torch.bool)
        for i, lst in enumerate(frames.true):
            self.truth[i, [self.index[t] for t in lst]] = True
        self.true_ids = [np.array([self.index[t] for t in lst]) for lst in frames.true]
        self.false_ids = [np.array([self.index[t] for t in lst], dtype=np.int64) for lst in frames.false]

    def used_tokens(self) -> list[int]:
        return sorted(set(self.tokens.unique().tolist()))


class CompactTokenEmbedding(torch.nn.Module):
    """Training stand-in for a from-scratch text tower's 49408-row token table: only the rows of
    tokens that occur in the captions are parameters, the rest are zero. Updating the full table
    with AdamW would cost more than the image tower on CPU, for rows that never get a gradient."""

    def __init__(self, table: torch.nn.Embedding, rows: list[int]):
        super().__init__()
        idx = torch.as_tensor(rows, dtype=torch.long)
        self.num_embeddings = table.num_embeddings
        self.rows = rows
        self.weight = torch.nn.Parameter(table.weight.detach()[idx].clone())
        lookup = torch.full((table.num_embeddings,), len(rows), dtype=torch.long)  # unknown -> zero row
        lookup[idx] = torch.arange(len(rows))
        self.register_buffer("lookup", lookup, persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        table = torch.cat([self.weight, self.weight.new_zeros(1, self.weight.shape[1])])
        return table[self.lookup[ids]]

    def full(self) -> torch.nn.Embedding:
        """The equivalent full-size embedding (zeros outside the trained rows)."""
        emb = torch.nn.Embedding(self.num_embeddings, self.weight.shape[1])
        with torch.no_grad():
            emb.weight.zero_()
            emb.weight[torch.as_tensor(self.rows)] = self.weight.detach().cpu()
        return emb


def frames_to_tensor(frames: FrameSet, spec: Preprocess) -> torch.Tensor:
    """All frames through the model's ROI + resize policy, kept as (N, 3, H, W) uint8 in [0, 255]
    (normalised per batch, after augmentation)."""
    raw = Preprocess(spec.size, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), spec.resize, spec.roi)
    out = torch.empty((len(frames), 3, *spec.size), dtype=torch.uint8)
    for i in range(0, len(frames), 256):
        x = preprocess(list(frames.images[i:i + 256]), raw)
        out[i:i + 256] = (x * 255).round().clamp(0, 255).to(torch.uint8)
    return out


def augment(x: torch.Tensor, gen: torch.Generator, shift: int = 4) -> torch.Tensor:
    """Random shifts of up to `shift` pixels and brightness/contrast jitter of +-10% (no hue
    change: colours name the objects)."""
    b = x.shape[0]
    padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
    dx = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
    dy = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
    h, w = x.shape[-2:]
    x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
    gain = 1 + 0.2 * (torch.rand((b, 1, 1, 1), generator=gen) - 0.5)
    bias = 0.2 * (torch.rand((b, 1, 1, 1), generator=gen) - 0.5)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * gain + mean + bias).clamp(0, 1)


def multi_positive_clip_loss(img: torch.Tensor, txt: torch.Tensor, truth: torch.Tensor,
                             logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric CLIP loss with soft targets spread over every true (image, caption) pair.

    img (B, D), txt (T, D) normalised; truth (B, T) bool, every image with >= 1 true caption.
    Captions true of no image in the batch (hard negatives) only act as negatives.
    """
    logits = logit_scale.exp() * img @ txt.T
    t = truth.float()
    i2t = -(F.log_softmax(logits, dim=1) * t / t.sum(1, keepdim=True)).sum(1).mean()
    has = t.sum(0) > 0
    tt = t[:, has]
    t2i = -(F.log_softmax(logits[:, has].T, dim=1) * (tt / tt.sum(0, keepdim=True)).T).sum(1).mean()
    return 0.5 * (i2t + t2i)


def scene_groups(frames: FrameSet, scope: str = "scene", tasks=()) -> list[np.ndarray]:
    """Row indices of the frame groups that preference pairs are drawn from, each with at least two
    frames: every scene (task, kind, seed; one goal per scene) with scope "scene", every task
    with scope "task"; only the frames of `tasks` when given."""
    if scope == "scene":
        key = np.array([f"{t}/{k}/{s}" for t, k, s in zip(frames.task, frames.kind, frames.scene)])
    elif scope == "task":
        key = np.asarray(frames.task)
    else:
        raise ValueError(f"preference_scope must be 'scene' or 'task', got {scope!r}")
    keep = np.isin(frames.task, list(tasks)) if len(tasks) else np.ones(len(frames), bool)
    groups = [np.flatnonzero((key == k) & keep) for k in np.unique(key[keep])]
    return [g for g in groups if len(g) > 1]


def preference_pairs(frames: FrameSet, rng: np.random.Generator, n: int, teacher_error: float,
                     groups: list[np.ndarray] | None = None) -> np.ndarray:
    """(n, 2) frame indices (preferred, other) of random pairs within one scene, ranked by a
    scripted teacher: success beats failure, else lower quality wins; flipped with prob. `teacher_error`."""
    groups = scene_groups(frames) if groups is None else groups
    if not groups:
        raise ValueError("preference alignment needs scenes with several frames")
    out = []
    while len(out) < n:
        g = groups[int(rng.integers(len(groups)))]
        a, b = rng.choice(g, 2, replace=False)
        sa, sb = (frames.success[a], -frames.quality[a]), (frames.success[b], -frames.quality[b])
        if sa == sb or abs(frames.quality[a] - frames.quality[b]) < 0.002 and frames.success[a] == frames.success[b]:
            continue  # the teacher cannot tell them apart ("equal"): skipped
        win, lose = (a, b) if sa > sb else (b, a)
        if rng.random() < teacher_error:
            win, lose = lose, win
        out.append((win, lose))
    return np.array(out)


def task_balanced(frames: FrameSet) -> np.ndarray:
    """Per-frame sampling probabilities giving every task the same share of each batch."""
    tasks, inverse, counts = np.unique(frames.task, return_inverse=True, return_counts=True)
    p = 1.0 / (len(tasks) * counts[inverse])
    return p / p.sum()


def optim_config(cfg: TrainClipConfig) -> OptimConfig:
    """The shared optimiser settings from train-clip's own fields: AdamW (weight decay on matrices
    only, see `_param_groups`), linear warm-up then cosine decay to 0, gradient-norm clipping."""
    return OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps, schedule="cosine",
                       grad_clip=cfg.grad_clip)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only (not on gains, biases, embeddings or the temperature)."""
    decay, rest = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        plain = p.ndim < 2 or "embedding" in name or "logit_scale" in name
        (rest if plain else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def _check(cfg: TrainClipConfig) -> None:
    for name in ("steps", "batch_size", "preference_pairs"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(cfg, name)}")
    if cfg.lr <= 0 or cfg.preference_weight < 0 or not 0 <= cfg.teacher_error <= 0.5:
        raise ValueError("lr must be > 0, preference_weight >= 0 and teacher_error in [0, 0.5]")
    if cfg.preference_scope not in ("scene", "task"):
        raise ValueError(f"preference_scope must be 'scene' or 'task', got {cfg.preference_scope!r}")


def _initial_model(cfg: TrainClipConfig) -> tuple[torch.nn.Module, object, dict, Preprocess, list[int] | None]:
    """(model, tokenizer, open_clip model config, preprocessing, carried token rows).

    The last is None when the whole token table is trained (fine-tuning a pretrained CLIP), else
    the table is kept compact: [] for a model from scratch (only the captions' tokens get rows),
    and a compact checkpoint's stored rows when continuing a train-clip run, so that its trained
    rows are kept and its zero rows stay zero."""
    import open_clip

    roi = None if cfg.roi is None else tuple(cfg.roi)
    if not cfg.init_model:
        model_cfg = cfg.model.open_clip_cfg()
        size = (cfg.model.image_size, cfg.model.image_size)
        spec = Preprocess(size, tuple(open_clip.OPENAI_DATASET_MEAN), tuple(open_clip.OPENAI_DATASET_STD),
                          cfg.resize, roi)
        return build_clip(model_cfg), tokenizer_for(model_cfg), model_cfg, spec, []
    loaded = load_clip(cfg.init_model, cfg.init_pretrained, resize=cfg.resize, roi=roi)
    model_cfg = loaded.meta.get("model_cfg") or open_clip.get_model_config(cfg.init_model)
    if model_cfg is None:
        raise ValueError(f"init_model={cfg.init_model}: its model config cannot be stored in a checkpoint")
    carried = None
    if "token_embedding_shape" in loaded.meta:  # saved compact: the rows it stored are its nonzero ones
        carried = stored_token_rows(loaded.model.token_embedding.weight)
    return loaded.model, loaded.tokenizer, model_cfg, loaded.preprocess, carried


def stored_token_rows(table: torch.Tensor) -> list[int]:
    """Rows of a loaded compact token table that hold values (a compact checkpoint zero-fills the rest)."""
    return torch.nonzero(table.detach().abs().sum(1)).flatten().tolist()


def train_clip(cfg: TrainClipConfig) -> dict:
    """Train (or fine-tune) a CLIP on sim frames; returns the metrics (also in metrics.json)."""
    _check(cfg)
    t_start = time.perf_counter()
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    device = torch.device(resolve_device(cfg.device))
    out = Path(cfg.output_dir)
    train_frames = frames_for(cfg.data or out / "clip_frames_train.h5", cfg.generate)
    eval_frames = frames_for(cfg.eval_data or out / "clip_frames_eval.h5", cfg.eval_generate)
    t_data = time.perf_counter() - t_start

    torch.manual_seed(cfg.seed)
    model, tokenizer, model_cfg, spec, carried_rows = _initial_model(cfg)
    goals = sorted({p for g in np.unique(train_frames.goal) for p in goal_prompts(str(g)).goal + goal_prompts(str(g)).baseline})
    table = CaptionTable(train_frames, tokenizer, goals)
    token_rows = None
    if carried_rows is not None:  # rows of tokens that never occur stay zero (and out of the checkpoint)
        token_rows = sorted(set(table.used_tokens()) | set(carried_rows))
        model.token_embedding = CompactTokenEmbedding(model.token_embedding, token_rows)
    model = model.to(device).train()
    images = frames_to_tensor(train_frames, spec)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1).to(device)
    std = torch.tensor(spec.std).view(1, 3, 1, 1).to(device)
    tokens = table.tokens.to(device)
    optim = optim_config(cfg)
    optimizer = make_optimizer(_param_groups(model, cfg.weight_decay), optim)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    goal_text = {g: goal_prompts(str(g)) for g in np.unique(train_frames.goal)}
    groups = scene_groups(train_frames, cfg.preference_scope, cfg.preference_tasks) if cfg.preference_weight > 0 else []
    frame_p = task_balanced(train_frames) if cfg.balance_tasks else None
    trained_params = sum(p.numel() for p in model.parameters())
    log.info("train-clip: %d frames, %d captions, %.2f M trained parameters", len(train_frames), len(table.texts),
             trained_params / 1e6)

    def batch_images(idx: np.ndarray, train: bool = True) -> torch.Tensor:
        x = images[torch.from_numpy(idx)].float().div_(255.0)
        if train and cfg.augment:
            x = augment(x, gen)
        return (x.to(device) - mean) / std

    history, evals = [], []
    running: list[float] = []

    def evaluate(step: int) -> dict:
        model.eval()
        reward = ClipReward(LoadedClip(model, tokenizer, spec, "training", {}),
                            ClipRewardConfig(model="", device=str(device), alpha=cfg.alpha))
        result = evaluate_reward(reward, eval_frames, sorted({0.0, cfg.alpha, 1.0}))
        model.train()
        m = result[float(cfg.alpha)]
        evals.append({"step": step, "by_alpha": {str(a): v for a, v in result.items()}})
        tqdm.write(f"step {step}: {headline(m)} (alpha {cfg.alpha})")
        return result

    bar = tqdm(range(cfg.steps), desc="train-clip", unit="step")
    for step in bar:
        set_lr(optimizer, lr_at(step, optim, cfg.steps))
        idx = rng.choice(len(train_frames), cfg.batch_size, replace=False, p=frame_p)
        caps = [int(rng.choice(table.true_ids[i])) for i in idx]
        if cfg.hard_negatives:
            caps += [int(rng.choice(table.false_ids[i])) for i in idx if len(table.false_ids[i])]
        uniq = np.unique(caps)
        truth = table.truth[torch.from_numpy(idx)][:, torch.from_numpy(uniq)].to(device)
        img = F.normalize(model.encode_image(batch_images(idx)), dim=-1)
        txt = F.normalize(model.encode_text(tokens[torch.from_numpy(uniq).to(device)]), dim=-1)
        loss = multi_positive_clip_loss(img, txt, truth, model.logit_scale)
        if cfg.preference_weight > 0:
            loss = loss + cfg.preference_weight * _preference_loss(model, tokenizer, train_frames, groups, goal_text,
                                                                  rng, batch_images, cfg, device)
        optimizer_step(optimizer, loss, model.parameters(), optim)
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        running.append(float(loss.detach()))
        done = step + 1
        if done % 50 == 0 or done == cfg.steps:
            history.append({"step": done, "loss": float(np.mean(running)), "lr": lr_at(step, optim, cfg.steps),
                            "logit_scale": float(model.logit_scale.detach().exp())})
            bar.set_postfix(loss=f"{history[-1]['loss']:.3f}")
            running.clear()
        if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            evaluate(done)
    bar.close()
    t_train = time.perf_counter() - t_start - t_data
    final = evaluate(cfg.steps)
    model.eval()
    meta = {"training": {"config": asdict(cfg), "steps": cfg.steps, "seed": cfg.seed, "frames": len(train_frames),
                         "captions": len(table.texts), "train_seconds": t_train},
            "eval": {str(a): v for a, v in final.items()}}
    model = model.cpu()
    if token_rows is not None:
        model.token_embedding = model.token_embedding.full()
    n_params = sum(p.numel() for p in model.parameters())
    meta["parameters"], meta["trained_parameters"] = n_params, trained_params
    ckpt = save_clip_checkpoint(out / "checkpoints" / "clip", model, model_cfg, spec, meta, token_rows)
    size_mb = sum(p.stat().st_size for p in ckpt.parent.glob("clip.*")) / 2 ** 20
    print(f"\ntrain-clip: {len(train_frames)} frames, {len(table.texts)} captions, {cfg.steps} steps, "
          f"{n_params / 1e6:.2f} M parameters ({trained_params / 1e6:.2f} M trained; {size_mb:.1f} MB on disk), "
          f"training {t_train / 60:.1f} min "
          f"(+ data {t_data / 60:.1f} min)")
    print(format_table(*summary_table(final)))
    metrics = {"command": "train-clip", "config": asdict(cfg), "checkpoint": str(ckpt), "parameters": n_params,
               "trained_parameters": trained_params,
               "checkpoint_mb": size_mb, "frames": len(train_frames), "eval_frames": len(eval_frames),
               "train_seconds": t_train, "data_seconds": t_data, "device": str(device),
               "torch_threads": torch.get_num_threads(), "history": history, "evals": evals,
               "final": {str(a): v for a, v in final.items()}}
    print(f"checkpoint: {ckpt}\nmetrics: {write_metrics(out, metrics)}")
    return metrics


def _preference_loss(model, tokenizer, frames: FrameSet, groups, goal_text: dict, rng, batch_images, cfg, device):
    """Bradley-Terry loss of the VLM-RM reward on teacher-ranked pairs, each frame scored for its
    own goal (the same goal within a scene); text side detached."""
    pairs = preference_pairs(frames, rng, cfg.preference_pairs, cfg.teacher_error, groups)
    idx = pairs.reshape(-1)
    x = F.normalize(model.encode_image(batch_images(idx)), dim=-1)
    goals = sorted({str(frames.goal[i]) for i in idx})
    texts = [t for g in goals for t in goal_text[g].goal + goal_text[g].baseline]
    with torch.no_grad():
        e = F.normalize(model.encode_text(tokenizer(texts).to(device)), dim=-1)
    goal_vec, proj, at = {}, {}, 0
    for g in goals:
        gp = goal_text[g]
        n_goal, n_base = len(gp.goal), len(gp.baseline)
        gv, bv = mean_embedding(e[at:at + n_goal]), mean_embedding(e[at + n_goal:at + n_goal + n_base])
        goal_vec[g], proj[g] = gv, projection(gv, bv, cfg.alpha)
        at += n_goal + n_base
    r = torch.stack([vlm_rm_reward(x[k:k + 1], goal_vec[str(frames.goal[i])], proj[str(frames.goal[i])])[0]
                     for k, i in enumerate(idx)]).view(len(pairs), 2)
    return -F.logsigmoid((r[:, 0] - r[:, 1]) / cfg.preference_temperature).mean()
