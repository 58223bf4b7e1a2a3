"""Training loop of the diffusion policy (`robot-rewards train-policy`), single process or DDP.

Single process when WORLD_SIZE is unset; under `torchrun --nproc_per_node=K` every rank trains
on its own shard of the samples (sample i goes to rank i % K) with its own noise stream,
gradients are averaged by DistributedDataParallel (gloo on CPU, nccl on CUDA), and only rank 0
writes checkpoints and metrics and runs the simulator evaluation.

Reproducibility: all training randomness (batch indices, timesteps, noise) comes from one
torch.Generator per rank whose state is saved with the optimiser, weights and EMA every
`checkpoint_every` steps; `resume=auto|PATH` restores all of it, so on CPU a resumed run ends
with exactly the weights of an uninterrupted one.

Schedules: linear warm-up to `lr` over `warmup_steps`, then cosine decay to 0; EMA with the
warm-up power schedule decay = min(ema_max, 1 - (1 + step)^-ema_power) (Chi et al.'s EMAModel,
which starts as a plain copy and approaches ema_max as training goes on).
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from robot_rewards.core.device import resolve_device
from robot_rewards.core.primitives import PRIMITIVE_SPECS
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.nn.encoders import build_vocab, neighbourhood_features
from robot_rewards.nn.normalizer import ActionNormalizer
from robot_rewards.nn.training import OptimConfig, lr_at, make_optimizer, optimizer_step, set_lr
from robot_rewards.policy.augment import PlanarAugmentation
from robot_rewards.policy.checkpoint import (
    find_train_state,
    load_train_state,
    save_policy,
    save_train_state,
)
from robot_rewards.policy.config import TrainPolicyConfig, keep_flat_targets
from robot_rewards.policy.dataset import PolicyDataset, load_dataset
from robot_rewards.policy.model import DiffusionPolicy, PolicyBatch
from robot_rewards.sim.tasks import make_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    distributed: bool = False

    @classmethod
    def from_env(cls) -> DistInfo:
        if "WORLD_SIZE" not in os.environ:
            return cls()
        return cls(int(os.environ.get("RANK", 0)), int(os.environ["WORLD_SIZE"]),
                   int(os.environ.get("LOCAL_RANK", 0)), True)

    @property
    def main(self) -> bool:
        return self.rank == 0


def training_device(name: str, dist: DistInfo) -> torch.device:
    """`resolve_device(name)`, except that under torchrun "auto" / "cuda" mean this process's GPU
    (cuda:LOCAL_RANK): one GPU per process."""
    resolved = resolve_device(name)
    if resolved == "cuda" and dist.distributed:
        resolved = f"cuda:{dist.local_rank}"
    return torch.device(resolved)


def optim_config(cfg: TrainPolicyConfig) -> OptimConfig:
    """The shared optimiser settings from train-policy's own fields (`lr=`, `warmup_steps=`, ...):
    AdamW, linear warm-up then cosine decay to 0 at `cfg.steps`, gradient-norm clipping."""
    return OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps, schedule="cosine",
                       grad_clip=cfg.grad_clip)


def ema_decay(step: int, power: float, max_decay: float) -> float:
    """EMA decay after `step` optimiser steps (0 at the first step: the EMA starts as a copy)."""
    return min(max_decay, 1.0 - (1.0 + step) ** -power)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


@dataclass(eq=False)
class TrainTensors:
    """The dataset as tensors on the training device (one shard of it under DDP); actions stay
    raw primitive parameters until a batch is drawn, so augmentation can move them."""

    points: torch.Tensor
    colors: torch.Tensor | None
    goals: torch.Tensor
    params: torch.Tensor  # (N, D) float64 primitive parameters, on the CPU
    normalizer: ActionNormalizer
    augmentation: PlanarAugmentation
    # (N, P, 4) neighbourhood features of the whole clouds (policy.neighbourhood_radius > 0):
    # computed once here, as at inference on the whole cloud, not on each step's point subset
    neighbourhood: torch.Tensor | None = None

    def batch(self, idx: torch.Tensor, gen: torch.Generator, points: int | None = None) -> PolicyBatch:
        """Rows `idx`; with `points`, a random subset of that many points of each cloud; then
        the planar augmentation (when enabled) and action normalisation."""
        pts, cols = self.points[idx], None if self.colors is None else self.colors[idx]
        nbr = None if self.neighbourhood is None else self.neighbourhood[idx]
        if points is not None and points < pts.shape[1]:
            keep = torch.rand(pts.shape[:2], generator=gen).argsort(dim=1)[:, :points].to(pts.device)
            pts = torch.take_along_dim(pts, keep[..., None], dim=1)
            cols = None if cols is None else torch.take_along_dim(cols, keep[..., None], dim=1)
            nbr = None if nbr is None else torch.take_along_dim(nbr, keep[..., None], dim=1)
        params = self.params[idx.cpu()]
        if self.augmentation.enabled:
            theta, shift = self.augmentation.draw(len(idx), gen)
            pts, params = self.augmentation.apply(pts, params, self.normalizer.spec, theta, shift)
            nbr = None if nbr is None else self.augmentation.turn(nbr, theta)
        actions = torch.from_numpy(self.normalizer.encode(params.numpy()).astype(np.float32)).to(pts.device)
        return PolicyBatch(pts, cols, self.goals[idx], actions, nbr)


def augmentation_of(cfg: TrainPolicyConfig) -> PlanarAugmentation:
    return PlanarAugmentation(cfg.augment_rotation, cfg.augment_shift)


def fit_normalizer(primitive: str, actions: np.ndarray, augmentation: PlanarAugmentation, seed: int,
                   draws: int = 32) -> ActionNormalizer:
    """Ranges that cover the demonstrated actions and their augmented copies (the sampler
    clips to [-1, 1], so an augmented action outside the range could not be learned)."""
    if not augmentation.enabled:
        return ActionNormalizer.fit(primitive, actions)
    spec = PRIMITIVE_SPECS[primitive]
    gen = torch.Generator().manual_seed(seed)
    params = torch.from_numpy(np.asarray(actions, np.float64)).repeat(draws, 1)
    theta, shift = augmentation.draw(len(params), gen)
    _, moved = augmentation.apply(torch.zeros(len(params), 1, 3), params, spec, theta, shift)
    return ActionNormalizer.fit(primitive, np.concatenate([actions, moved.numpy()]))


def to_tensors(ds: PolicyDataset, model: DiffusionPolicy, rows: np.ndarray, device,
               augmentation: PlanarAugmentation) -> TrainTensors:
    use_rgb = model.config.use_rgb
    if use_rgb and ds.colors is None:
        raise ValueError("policy.use_rgb=true but the perception config has colors=false")
    goals = model.goal_inputs([ds.goals[i] for i in rows])
    points = torch.from_numpy(ds.points[rows]).to(device)
    radius = model.config.neighbourhood_radius
    return TrainTensors(points, torch.from_numpy(ds.colors[rows]).to(device) if use_rgb else None,
                        goals.to(device), torch.from_numpy(np.asarray(ds.actions[rows], np.float64)),
                        model.normalizer, augmentation,
                        neighbourhood_features(points, radius) if radius > 0 else None)


def _check(cfg: TrainPolicyConfig) -> None:
    if not cfg.data:
        raise ValueError("train-policy needs data=PATH (an episode file from `robot-rewards collect-demos`)")
    if cfg.train_points is not None and cfg.train_points < 1:
        raise ValueError(f"train_points must be positive (or null for the whole cloud), got {cfg.train_points}")
    for name in ("steps", "batch_size", "noise_draws", "log_every", "checkpoint_every"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(cfg, name)}")
    if cfg.resume not in ("", "auto") and find_train_state(cfg.resume) is None \
            and find_train_state(Path(cfg.resume) / "checkpoints") is None:
        raise FileNotFoundError(f"resume={cfg.resume}: no train_state.json there (or in its checkpoints/)")


def _resume_source(cfg: TrainPolicyConfig) -> Path | None:
    if not cfg.resume:
        return None
    base = Path(cfg.output_dir) if cfg.resume == "auto" else Path(cfg.resume)
    for cand in (base / "checkpoints", base):
        found = find_train_state(cand)
        if found is not None:
            return found
    if cfg.resume == "auto":
        log.info("resume=auto: no training state in %s, starting fresh", base)
        return None
    raise FileNotFoundError(f"resume={cfg.resume}: no train_state.json there")


def train_policy(cfg: TrainPolicyConfig, evaluate_fn: Callable[..., dict] | None = None) -> dict:
    """Train a policy on an episode file; returns the metrics (also written by rank 0).

    evaluate_fn(policy, task, episodes, seed, perception, n_candidates, selection, sim=, progress=)
    runs the closed-loop evaluations every `eval_every` steps (`eval.policy.evaluate_policy`, passed
    in by the command: training does not depend on the simulator); None skips them."""
    _check(cfg)
    dist = DistInfo.from_env()
    device = training_device(cfg.device, dist)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    if dist.distributed and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    try:
        return _train(cfg, dist, device, evaluate_fn)
    finally:
        if dist.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _barrier(dist: DistInfo) -> None:
    if dist.distributed:
        torch.distributed.barrier()


def _train(cfg: TrainPolicyConfig, dist: DistInfo, device: torch.device,
           evaluate_fn: Callable[..., dict] | None) -> dict:
    t_start = time.perf_counter()
    primitive = make_task(cfg.task).primitive
    cfg = replace(cfg, perception=keep_flat_targets(cfg.perception, cfg.task))  # saved in the checkpoint
    out = Path(cfg.output_dir)
    ckpt_dir = out / "checkpoints"
    # Rank 0 perceives and fills the cloud cache; the others then read it.
    if dist.main:
        ds = load_dataset(cfg.data, cfg.perception, cfg.successful_only, cfg.max_episodes, cfg.cache or None)
    _barrier(dist)
    if not dist.main:
        ds = load_dataset(cfg.data, cfg.perception, cfg.successful_only, cfg.max_episodes, cfg.cache or None,
                          progress=False)
    if ds.task != cfg.task or ds.primitive != primitive:
        raise ValueError(f"{cfg.data} holds {ds.task} ({ds.primitive}) episodes, not {cfg.task}")

    source = _resume_source(cfg)
    state = load_train_state(source) if source is not None else None
    if state is not None:
        info = state[0]
        if info.get("task") != cfg.task or info.get("policy") != asdict(cfg.policy):
            raise ValueError(f"resume: {source} was written for another task or policy config; "
                             "use a fresh output_dir or resume=''")
        # The stored normaliser and vocabulary, not a refit: the data may have grown since.
        normalizer = ActionNormalizer.from_dict(info["normalizer"])
        vocab = info.get("vocab")
    else:
        normalizer = fit_normalizer(primitive, ds.actions, augmentation_of(cfg), cfg.seed)
        vocab = build_vocab(ds.goals) if cfg.policy.goal_encoder == "vocab" else None

    torch.manual_seed(cfg.seed)  # network initialisation
    model = DiffusionPolicy(cfg.policy, primitive, normalizer, vocab).to(device)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    optim = optim_config(cfg)
    optimizer = make_optimizer(model.parameters(), optim)
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, dist.rank]).generate_state(1)[0]))
    start = 0
    running: list[float] = []
    history: list[dict] = []
    evals: list[dict] = []
    if state is not None:
        info, tensors, opt_state = state
        model.load_state_dict(tensors["model"])
        ema.load_state_dict(tensors["ema"])
        optimizer.load_state_dict(opt_state)
        key = f"train{dist.rank}" if dist.distributed else "train"
        if key not in tensors["rng"] or int(info.get("world_size", 1)) != dist.world:
            raise ValueError(f"resume: {source} was written by {info.get('world_size', 1)} process(es); "
                             f"resume it with the same number ({dist.world} now)")
        gen.set_state(tensors["rng"][key])
        start = int(info["step"])
        history, evals = list(info.get("history", [])), list(info.get("evals", []))
        running[:] = info.get("running_losses", [])  # the log window spanning the interruption
        if dist.main:
            log.info("resumed from %s at step %d", source, start)

    shard = np.arange(len(ds))[dist.rank :: dist.world]
    if len(shard) == 0:
        raise ValueError(f"{len(ds)} samples cannot be split over {dist.world} processes")
    if len(shard) < cfg.batch_size:  # each batch would repeat samples: too few demos for this batch
        per = f" per process ({dist.world} processes)" if dist.world > 1 else ""
        raise ValueError(f"{cfg.data}: {len(shard)} training samples{per} from {len(np.unique(ds.episode))} "
                         f"episodes, fewer than batch_size={cfg.batch_size}: record more demonstrations "
                         f"(collect-demos n=...) or lower batch_size")
    data = to_tensors(ds, model, shard, device, augmentation_of(cfg))
    net = model
    if dist.distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    end = min(cfg.steps, cfg.stop_at) if cfg.stop_at is not None else cfg.steps
    meta = {"task": cfg.task, "seed": cfg.seed, "policy": asdict(cfg.policy),
            "normalizer": normalizer.to_dict(), "vocab": vocab, "samples": len(ds),
            "episodes": int(len(np.unique(ds.episode))), "world_size": dist.world}

    def checkpoint(step: int) -> None:
        rng = gen.get_state()
        if dist.distributed:  # every rank's generator, so a resumed DDP run continues exactly
            states: list = [None] * dist.world
            torch.distributed.all_gather_object(states, rng)
            rngs = {f"train{r}": s for r, s in enumerate(states)}
        else:
            rngs = {"train": rng}
        if not dist.main:
            return
        save_train_state(ckpt_dir, model.state_dict(), ema.state_dict(), optimizer, rngs,
                         {**meta, "step": step, "history": history, "evals": evals, "running_losses": running})
        save_policy(ckpt_dir / "policy", model, ema.state_dict(), cfg.task, cfg.perception,
                    {"step": step, "seed": cfg.seed, "samples": len(ds), "world_size": dist.world})

    def evaluate(step: int) -> None:
        if evaluate_fn is None:
            return
        ema.eval()
        r = evaluate_fn(ema, cfg.task, cfg.eval_episodes, cfg.eval_seed, cfg.perception,
                            cfg.eval_candidates, "first", sim=cfg.sim, progress=False)
        evals.append({"step": step, **r})
        tqdm.write(f"step {step}: success {100 * r['success_rate']:.0f}% over {r['episodes']} episodes "
                   f"(quality {1000 * r['quality_mean']:.1f} mm)")

    bar = tqdm(total=end, initial=start, desc=f"train {cfg.task}", unit="step", disable=not dist.main)
    for step in range(start, end):
        set_lr(optimizer, lr_at(step, optim, cfg.steps))
        idx = torch.randint(len(shard), (cfg.batch_size,), generator=gen).to(device)
        loss = net(data.batch(idx, gen, cfg.train_points), gen, cfg.noise_draws)
        optimizer_step(optimizer, loss, model.parameters(), optim)
        ema_update(ema, model, ema_decay(step, cfg.ema_power, cfg.ema_max))
        running.append(float(loss.detach()))
        done = step + 1
        bar.update(1)
        if done % cfg.log_every == 0 or done == cfg.steps:
            history.append({"step": done, "loss": float(np.mean(running)), "lr": lr_at(step, optim, cfg.steps)})
            bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
            running.clear()
        if done % cfg.checkpoint_every == 0 or done == end:
            checkpoint(done)
        if dist.main and cfg.eval_every and cfg.eval_episodes and done % cfg.eval_every == 0 and done < cfg.steps:
            evaluate(done)
    bar.close()
    if start >= end:  # nothing left to do: still leave a checkpoint
        checkpoint(end)
    if end == cfg.steps and cfg.eval_episodes and dist.main and not any(e["step"] == end for e in evals):
        evaluate(end)  # reported in metrics.json (the last train state predates it)
    metrics = {"command": "train-policy", "config": asdict(cfg), **{k: meta[k] for k in ("samples", "episodes", "world_size")},
               "steps_done": end, "final_loss": history[-1]["loss"] if history else None,
               "history": history, "evals": evals, "checkpoint": str(ckpt_dir / "policy.json"),
               "seconds": time.perf_counter() - t_start, "device": str(device)}
    if dist.main:
        rows = [(e["step"], e["episodes"], f"{100 * e['success_rate']:.1f}%",
                 f"[{100 * e['success_ci95'][0]:.1f}, {100 * e['success_ci95'][1]:.1f}]",
                 1000 * e["quality_mean"], e["steps_mean"]) for e in evals]
        print(f"\ntrain-policy {cfg.task}: {len(ds)} samples from {meta['episodes']} episodes, "
              f"{end} steps, final loss {metrics['final_loss']}")
        if rows:
            print(format_table(["step", "episodes", "success", "95% CI", "quality (mm)", "steps"], rows))
        print(f"checkpoint: {metrics['checkpoint']}")
        print(f"metrics: {write_metrics(out, metrics)}")
    _barrier(dist)  # the others wait for rank 0's final evaluation and files
    return metrics
