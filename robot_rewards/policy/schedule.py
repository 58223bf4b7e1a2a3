"""DDPM noise schedule, forward noising, and the DDPM / DDIM reverse processes (epsilon prediction).

Notation (Ho et al. 2020; Song et al. 2021): t = 0..T-1, beta_t the per-step noise variance,
alpha_t = 1 - beta_t, abar_t = prod_{s<=t} alpha_s. Forward: x_t = sqrt(abar_t) x_0 +
sqrt(1 - abar_t) eps. The network predicts eps; the clean sample follows as
x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t).

`squaredcos_cap_v2` is the cosine schedule of Nichol & Dhariwal (2021):
abar(s) = cos^2((s + 0.008) / 1.008 * pi / 2), beta_t = min(1 - abar((t+1)/T) / abar(t/T), 0.999).

All randomness comes from explicit torch.Generators, one per sample row, so a row's result
depends only on its own seed (not on how many rows are sampled with it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t (B, D), t (B,) long) -> eps


def make_betas(train_steps: int, schedule: str = "squaredcos_cap_v2", max_beta: float = 0.999) -> torch.Tensor:
    """Per-step noise variances beta_t (float64, shape (train_steps,))."""
    if train_steps < 1:
        raise ValueError(f"train_steps must be >= 1, got {train_steps}")
    if schedule == "squaredcos_cap_v2":
        def abar(s: float) -> float:
            return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = [min(1 - abar((t + 1) / train_steps) / abar(t / train_steps), max_beta)
                 for t in range(train_steps)]
        return torch.tensor(betas, dtype=torch.float64)
    if schedule == "linear":  # Ho et al., scaled so the end points match 1000 steps
        scale = 1000.0 / train_steps
        return torch.linspace(scale * 1e-4, scale * 0.02, train_steps, dtype=torch.float64)
    raise ValueError(f"unknown beta schedule '{schedule}' (use squaredcos_cap_v2 or linear)")


def ddim_timesteps(train_steps: int, steps: int) -> list[int]:
    """`steps` timesteps from T-1 down, evenly spaced ("trailing"): the first step starts from
    pure noise (t = T-1) and the last step lands on the clean sample."""
    if not 1 <= steps <= train_steps:
        raise ValueError(f"inference steps must be in 1..{train_steps}, got {steps}")
    ts = [int(round(train_steps - k * train_steps / steps)) - 1 for k in range(steps)]
    return sorted(set(ts), reverse=True)


def row_generators(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One seeded generator per sample row."""
    gens = []
    for s in seeds:
        g = torch.Generator(device=device)
        g.manual_seed(int(s))
        gens.append(g)
    return gens


def row_randn(gens: Sequence[torch.Generator], dim: int, device, dtype=torch.float32) -> torch.Tensor:
    """(len(gens), dim) standard normal noise, row i drawn from gens[i]."""
    return torch.stack([torch.randn(dim, generator=g, device=device, dtype=dtype) for g in gens])


@dataclass
class NoiseSchedule:
    """A DDPM schedule with `train_steps` steps; tensors live on `device` as float32."""

    train_steps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    clip_sample: bool = True  # clip the predicted clean sample to [-1, 1] (actions are normalised)

    def __post_init__(self):
        betas = make_betas(self.train_steps, self.beta_schedule)
        abar = torch.cumprod(1.0 - betas, dim=0)
        # Computed in float64, kept in float32 (what the network sees).
        self.betas = betas.float()
        self.alphas = (1.0 - betas).float()
        self.alphas_cumprod = abar.float()
        self._abar64 = abar

    def to(self, device) -> NoiseSchedule:
        self.betas = self.betas.to(device)
        self.alphas = self.alphas.to(device)
        self.alphas_cumprod = self.alphas_cumprod.to(device)
        return self

    def _abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod.to(like.device)[t]
        return a.reshape(-1, *([1] * (like.dim() - 1)))

    # -- forward process ---------------------------------------------------------------------
    def add_noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t a (B,) long tensor."""
        a = self._abar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * eps

    def predict_x0(self, x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The clean sample implied by x_t and a noise estimate (inverse of `add_noise`)."""
        a = self._abar(t, x_t)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()

    def predict_eps(self, x_t: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The noise implied by x_t and a clean-sample estimate."""
        a = self._abar(t, x_t)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    def _clip(self, x0: torch.Tensor) -> torch.Tensor:
        return x0.clamp(-1.0, 1.0) if self.clip_sample else x0

    # -- reverse steps -----------------------------------------------------------------------
    def ddpm_step(self, x_t: torch.Tensor, eps: torch.Tensor, t: int,
                  gens: Sequence[torch.Generator]) -> torch.Tensor:
        """One ancestral step x_t -> x_{t-1} from the posterior q(x_{t-1} | x_t, x0_hat)."""
        tt = torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device)
        x0 = self._clip(self.predict_x0(x_t, eps, tt))
        abar_t = self._abar64[t].item()
        abar_prev = self._abar64[t - 1].item() if t > 0 else 1.0
        beta_t = 1 - abar_t / abar_prev
        c0 = math.sqrt(abar_prev) * beta_t / (1 - abar_t)
        ct = math.sqrt(1 - beta_t) * (1 - abar_prev) / (1 - abar_t)
        mean = c0 * x0 + ct * x_t
        if t == 0:
            return mean
        var = max(beta_t * (1 - abar_prev) / (1 - abar_t), 1e-20)
        return mean + math.sqrt(var) * row_randn(gens, x_t.shape[1], x_t.device, x_t.dtype)

    def ddim_step(self, x_t: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int,
                  gens: Sequence[torch.Generator] | None = None, eta: float = 0.0) -> torch.Tensor:
        """One DDIM step x_t -> x_{t_prev} (t_prev = -1: the clean sample); eta=0 is deterministic."""
        tt = torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device)
        x0 = self._clip(self.predict_x0(x_t, eps, tt))
        # Re-derive eps from the clipped x0 so that x0 and eps stay consistent with x_t.
        eps = self.predict_eps(x_t, x0, tt) if self.clip_sample else eps
        abar_t = self._abar64[t].item()
        abar_prev = self._abar64[t_prev].item() if t_prev >= 0 else 1.0
        sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))
        out = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            if gens is None:
                raise ValueError("DDIM with eta > 0 needs generators")
            out = out + sigma * row_randn(gens, x_t.shape[1], x_t.device, x_t.dtype)
        return out

    # -- full sampling loops -------------------------------------------------------------------
    def sample(self, eps_fn: EpsFn, gens: Sequence[torch.Generator], dim: int, device,
               sampler: str = "ddim", steps: int = 10, eta: float = 0.0,
               known: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Draw len(gens) samples of size `dim`: x_T ~ N(0, I) per row from its generator, then
        `steps` DDIM steps (or all T DDPM steps). `eps_fn` is called once per step with the
        whole batch.

        known: (values (n, dim), mask (dim,) bool): entries given, not sampled. They are held at
        their clean values at every step, so a network trained with them clean
        (`DiffusionPolicy.loss` with a pick head) fills in the rest conditioned on them. (Replacing
        them by noised values instead, RePaint-style, let the place be decided at high noise,
        before the pick meant anything: 0/10 rope scenes solved, places spread over 27 cm.)"""
        x = row_randn(gens, dim, device)
        n = x.shape[0]
        fix = None
        if known is not None:
            values, mask = known[0].to(device, x.dtype), known[1].to(device)

            def fix(x: torch.Tensor, t: int) -> torch.Tensor:
                return torch.where(mask, values, x)
        if sampler == "ddpm":
            for t in range(self.train_steps - 1, -1, -1):
                x = fix(x, t) if fix else x
                eps = eps_fn(x, torch.full((n,), t, dtype=torch.long, device=device))
                x = self.ddpm_step(x, eps, t, gens)
            return fix(x, -1) if fix else x
        if sampler != "ddim":
            raise ValueError(f"unknown sampler '{sampler}' (use ddim or ddpm)")
        ts = ddim_timesteps(self.train_steps, steps)
        for k, t in enumerate(ts):
            t_prev = ts[k + 1] if k + 1 < len(ts) else -1
            x = fix(x, t) if fix else x
            eps = eps_fn(x, torch.full((n,), t, dtype=torch.long, device=device))
            x = self.ddim_step(x, eps, t, t_prev, gens, eta)
        return fix(x, -1) if fix else x
