"""Diffusion-DPO fine-tuning of a diffusion policy on preference pairs (DeformPAM's reward model).

For a preferred action a_w and a rejected a_l in the same observation, one shared noise draw
(t, eps) and the frozen reference:

    loss = -log sigmoid(-beta T [(e_tuned(a_w) - e_ref(a_w)) - (e_tuned(a_l) - e_ref(a_l))]),
    e_model(a) = |eps - eps_model(sqrt(abar_t) a + sqrt(1 - abar_t) eps, t)|^2.

Sharing (t, eps) between a_w and a_l makes the difference measure the actions, not the noise;
subtracting the reference's errors means only a *change* relative to the reference is rewarded,
which is what keeps the tuned policy close to it (the KL term of DPO). Ties and "can't tell"
carry no preferred action and are left out.

The tuned policy is a deep copy of the reference; with `freeze_encoder` only its denoiser trains,
on observation features computed once.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from robot_rewards.core.device import resolve_device
from robot_rewards.nn.training import OptimConfig, make_optimizer, optimizer_step
from robot_rewards.policy.model import DiffusionPolicy
from robot_rewards.rewards.base import RewardInputError
from robot_rewards.rewards.implicit.config import TrainImplicitConfig
from robot_rewards.rewards.implicit.reward import (
    ImplicitRewardScorer,
    check_compatible,
    denoising_error,
    evaluate_implicit,
    reward_scale,
)
from robot_rewards.rewards.preference.scorer import split_pairs

log = logging.getLogger(__name__)


def decisive(pairs):
    """The pairs labelled 'a' or 'b' (ties and can't-tell dropped): (pairs, preferred (M, D),
    rejected (M, D))."""
    y = pairs.labels
    keep = np.flatnonzero((y == 0.0) | (y == 1.0))
    if len(keep) == 0:
        raise RewardInputError("no decisive pairs (only ties / can't tell): DPO needs a preferred action")
    sub = pairs.subset(keep)
    a_wins = (sub.labels == 1.0)[:, None]
    return sub, np.where(a_wins, sub.params_a, sub.params_b), np.where(a_wins, sub.params_b, sub.params_a)


@torch.no_grad()
def _encode_all(policy: DiffusionPolicy, pairs, device, batch: int = 32) -> torch.Tensor:
    out = []
    for s in range(0, len(pairs), batch):
        pts = torch.as_tensor(pairs.points[s:s + batch], device=device)
        cols = None if pairs.colors is None else torch.as_tensor(pairs.colors[s:s + batch], device=device)
        out.append(policy.encode(pts, cols, policy.goal_inputs(pairs.goals[s:s + batch]).to(device)))
    return torch.cat(out)


def dpo_loss(tuned: DiffusionPolicy, reference: DiffusionPolicy, cond_tuned: torch.Tensor, cond_ref: torch.Tensor,
             x_w: torch.Tensor, x_l: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, beta: float) -> tuple:
    """(loss, margins) of B rows: x_w / x_l (B, F) normalised preferred / rejected actions sharing
    the noise draw t (B,), eps (B, F); margins = r(a_w) - r(a_l) estimated from that draw."""
    x = torch.cat([x_w, x_l])
    tt, ee = torch.cat([t, t]), torch.cat([eps, eps])
    err_t = denoising_error(tuned, torch.cat([cond_tuned, cond_tuned]), x, tt, ee)
    with torch.no_grad():
        err_r = denoising_error(reference, torch.cat([cond_ref, cond_ref]), x, tt, ee)
    d = err_t - err_r
    n = len(x_w)
    margins = -reward_scale(reference, beta) * (d[:n] - d[n:])
    return -nn.functional.logsigmoid(margins).mean(), margins.detach()


def train_dpo(reference: DiffusionPolicy, pairs, config: TrainImplicitConfig | None = None,
              val_pairs=None, progress: bool = False) -> tuple[ImplicitRewardScorer, dict]:
    """Fine-tune a copy of `reference` with Diffusion-DPO on `pairs` (a PreferencePairs).

    Validation: `val_pairs`, else a seeded `config.val_fraction` split of `pairs`. Returns the
    implicit-reward scorer (tuned vs reference, eval mode) and metrics: pair counts, the loss
    at the start / end, train and validation pair accuracy of the implicit reward (ties
    excluded) and, with `eval_every`, the validation accuracy along the way. Same inputs and
    seed -> same weights on CPU.
    """
    cfg = config or TrainImplicitConfig()
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.noise_draws < 1 or not cfg.beta > 0:
        raise ValueError("steps, batch_size, noise_draws must be >= 1 and beta > 0")
    if pairs.primitive != reference.primitive:
        raise RewardInputError(f"pairs of '{pairs.primitive}' for a '{reference.primitive}' policy")
    if val_pairs is None and cfg.val_fraction > 0:
        train_idx, val_idx = split_pairs(pairs, cfg.val_fraction, cfg.seed)
        pairs, val_pairs = pairs.subset(train_idx), pairs.subset(val_idx)
    train, win, lose = decisive(pairs)
    device = torch.device(resolve_device(cfg.device))

    reference = reference.to(device).eval()
    reference.requires_grad_(False)
    tuned = copy.deepcopy(reference)
    tuned.requires_grad_(True)
    if cfg.freeze_encoder:
        tuned.goal_encoder.requires_grad_(False)
        tuned.point_encoder.requires_grad_(False)
    check_compatible(tuned, reference)

    norm = reference.normalizer
    x_w = torch.as_tensor(norm.encode(win), dtype=torch.float32, device=device)
    x_l = torch.as_tensor(norm.encode(lose), dtype=torch.float32, device=device)
    cond_ref = _encode_all(reference, train, device)
    points = torch.as_tensor(train.points, device=device)
    colors = None if train.colors is None else torch.as_tensor(train.colors, device=device)
    goal_ids = tuned.goal_inputs(train.goals).to(device)

    def scorer() -> ImplicitRewardScorer:
        return ImplicitRewardScorer(tuned, reference, cfg.beta, cfg.score_draws, cfg.score_seed, cfg.score_members,
                                    cfg.score_t_fraction)

    optim = OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip)  # constant lr
    opt = make_optimizer([p for p in tuned.parameters() if p.requires_grad], optim)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    n, k, steps_t, dim = len(train), cfg.noise_draws, reference.schedule.train_steps, norm.dim
    bar = None
    if progress:
        bar = tqdm(total=cfg.steps, desc="train implicit (DPO)")
    losses, history = [], []
    for step in range(cfg.steps):
        tuned.train()
        b = torch.randint(0, n, (min(cfg.batch_size, n),), generator=gen).to(device)
        rows = b.repeat_interleave(k)  # k noise draws of each pair
        # Drawn on the CPU generator, then moved: a seed means the same run on CPU and GPU.
        t = torch.randint(0, steps_t, (len(rows),), generator=gen).to(device)
        eps = torch.randn(len(rows), dim, generator=gen).to(device)
        if cfg.freeze_encoder:
            cond_t = cond_ref[rows]
        else:
            cond_t = tuned.encode(points[b], None if colors is None else colors[b], goal_ids[b]).repeat_interleave(k, 0)
        loss, _ = dpo_loss(tuned, reference, cond_t, cond_ref[rows], x_w[rows], x_l[rows], t, eps, cfg.beta)
        optimizer_step(opt, loss, tuned.parameters(), optim)
        losses.append(float(loss.detach()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        if cfg.eval_every and val_pairs is not None and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            tuned.eval()
            acc = evaluate_implicit(scorer(), val_pairs)["accuracy"]
            history.append({"step": step + 1, "loss": float(np.mean(losses[-cfg.eval_every:])), "val_accuracy": acc})
            log.info("step %d: val accuracy %.3f", step + 1, acc)
    if bar is not None:
        bar.close()
    tuned.eval()
    tuned.requires_grad_(False)
    result = scorer()
    window = max(1, cfg.steps // 10)
    metrics: dict = {
        "n_train": int(len(pairs)), "n_train_decisive": int(n), "steps": cfg.steps, "beta": cfg.beta,
        "seed": cfg.seed, "freeze_encoder": cfg.freeze_encoder, "score_draws": cfg.score_draws,
        "loss_start": float(np.mean(losses[:window])), "loss_end": float(np.mean(losses[-window:])),
        "train_accuracy": evaluate_implicit(result, train)["accuracy"],
    }
    if val_pairs is not None and len(val_pairs):
        ev = evaluate_implicit(result, val_pairs)
        metrics.update({"val_accuracy": ev["accuracy"], "val_ece": ev["ece"], "val_pairs": len(val_pairs),
                        "val_decisive": ev["n_decisive"], "val_mean_abs_margin": ev["mean_abs_margin"]})
    if history:
        metrics["history"] = history
    return result, metrics
