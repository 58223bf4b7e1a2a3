"""What the training loops share: optimiser settings, the AdamW they build, the learning-rate
schedule and one optimiser step.

Every loop (policy, preference scorer, keypoint model, CLIP, implicit reward) keeps its own
config fields (`lr`, `weight_decay`, `warmup_steps`, `grad_clip`: the names users pass on the
command line and that checkpoints store) and builds an `OptimConfig` from them, so the same
settings give the same updates, bit for bit, whichever loop runs them.

    optim = OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps,
                        schedule="cosine", grad_clip=cfg.grad_clip)
    opt = make_optimizer(model.parameters(), optim)
    for step in range(steps):
        set_lr(opt, lr_at(step, optim, steps))
        optimizer_step(opt, loss_of(batch), model.parameters(), optim)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch

SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW settings and the learning-rate schedule of one training run."""

    lr: float = 1e-3
    weight_decay: float = 0.0  # AdamW's decoupled decay (param groups may set their own)
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW's defaults: every loop uses them
    warmup_steps: int = 0  # linear warm-up from lr / warmup_steps to lr
    schedule: str = "constant"  # constant | cosine (decay to 0 at the last step)
    grad_clip: float = 0.0  # max global gradient norm; 0 = no clipping

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'")
        if self.warmup_steps < 0 or self.grad_clip < 0:
            raise ValueError(f"warmup_steps and grad_clip must be >= 0, got {self.warmup_steps}, {self.grad_clip}")


def make_optimizer(params: Iterable, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over `params` (tensors or param-group dicts, which keep their own weight_decay)."""
    return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def lr_at(step: int, cfg: OptimConfig, total: int) -> float:
    """The learning rate of optimiser step `step` (0-based) of `total`: linear warm-up over
    `warmup_steps`, then constant or cosine decay to 0 at `total`."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    span = max(1, total - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - cfg.warmup_steps) / span)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Use `lr` in every param group from the next step on."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: Iterable[torch.Tensor],
                   cfg: OptimConfig) -> None:
    """One update: clear the gradients, backpropagate `loss`, clip the gradient norm of
    `params` to `cfg.grad_clip` (when set), step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    optimizer.step()
