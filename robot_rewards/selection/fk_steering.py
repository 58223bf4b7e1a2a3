"""Feynman-Kac steering of the diffusion policy's DDIM sampler (Singhal et al. 2025).

K particles are denoised together, one batched denoiser call per step. Every
`resample_every` steps each particle's predicted clean sample x0_hat (free: it comes from
the noise estimate of that very step) is decoded to primitive parameters and scored; the
particles are then resampled in proportion to a potential of those rewards, so compute
moves from hopeless particles to promising ones. Potentials G (lam: inverse temperature):

- immediate: exp(lam r_t)
- difference: exp(lam (r_t - r_prev)); over a whole run the product telescopes to exp(lam r),
  i.e. the tilted target p(x) exp(lam r(x)) (r_prev = 0 before the first resampling)
- max: exp(lam max_{s <= t} r_s) (the best the particle's lineage has looked so far)

Resampling never follows the last step (its x0_hat is the final sample: resampling there
would only duplicate particles); the final particles are returned with their rewards, so
best-of-K over them is possible. Without resampling this is exactly best-of-K sampling,
at the same number of network evaluations (steps * K).

The loop is written here from the schedule's public pieces (predict_x0, ddim_step) and the
policy's public methods, so the policy needs no hook; with resampling disabled it reproduces
`DiffusionPolicy.sample_normalized` bit for bit (per-row generators, seeds from
`candidate_seeds`). Noise generators belong to particle *slots*: after resampling, copies of
one particle in different slots draw different step noise (eta > 0), which is what lets them
spread out again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.policy.model import DiffusionPolicy, candidate_seeds
from robot_rewards.policy.schedule import ddim_timesteps, row_generators, row_randn
from robot_rewards.rewards.base import ScoreSet
from robot_rewards.selection.config import FKSteeringConfig

RewardFn = Callable[[Candidates], np.ndarray]  # K candidates -> (K,) rewards, higher is better
RESAMPLING_STREAM = 0xF5  # spawn key of the resampling generator: independent of the noise seeds


class FKSteeringError(ValueError):
    """FK steering cannot proceed (bad reward output, unsupported settings)."""


@dataclass(eq=False)
class FKResult:
    """The final K particles of one steered sampling run.

    candidates: the particles as primitives (slot order; `seeds` are the slots' noise seeds:
        a resampled particle is reproduced by (seed, config), not by its seed alone).
    rewards: (K,) reward of each final particle; nfe: denoiser evaluations (steps * K);
    reward_calls: reward_fn calls (one per resampling + one on the final particles).
    resampled_at: denoising steps (0-based) after whose x0 prediction the particles were
        resampled; ess: the effective sample size of the weights at each of them.
    ancestors: (K,) the initial particle each final particle descends from.
    """

    candidates: Candidates
    rewards: np.ndarray
    nfe: int
    reward_calls: int
    resampled_at: list[int] = field(default_factory=list)
    ess: list[float] = field(default_factory=list)
    ancestors: np.ndarray | None = None

    def best(self) -> int:
        """Index of the final particle with the highest reward (first on ties)."""
        return int(np.argmax(self.rewards))

    def order(self) -> list[int]:
        """Final particles by descending reward (stable)."""
        return np.argsort(-self.rewards, kind="stable").tolist()


def resample_steps(steps: int, every: int) -> list[int]:
    """Denoising step indices after which particles are resampled (never the last step)."""
    if every <= 0:
        return []
    return [k for k in range(steps - 1) if (k + 1) % every == 0]


def log_potentials(potential: str, lam: float, r: np.ndarray, r_prev: np.ndarray,
                   r_max: np.ndarray) -> np.ndarray:
    """(K,) log G of each particle (r_max: the lineage's best reward including r)."""
    if potential == "immediate":
        return lam * r
    if potential == "difference":
        return lam * (r - r_prev)
    if potential == "max":
        return lam * r_max
    raise FKSteeringError(f"unknown potential '{potential}'")


def normalized_weights(log_w: np.ndarray) -> np.ndarray:
    """Weights exp(log_w) / sum, computed stably (log-sum-exp)."""
    w = np.exp(log_w - np.max(log_w))
    return w / w.sum()


def resample_indices(weights: np.ndarray, rng: np.random.Generator, method: str = "systematic") -> np.ndarray:
    """K ancestor indices drawn in proportion to `weights` (systematic: lower variance)."""
    k = len(weights)
    if method == "multinomial":
        return np.sort(rng.choice(k, size=k, replace=True, p=weights))
    if method == "systematic":
        u = (rng.random() + np.arange(k)) / k
        return np.minimum(np.searchsorted(np.cumsum(weights), u, side="right"), k - 1)
    raise FKSteeringError(f"unknown resampling '{method}'")


def condition(policy: DiffusionPolicy, obs: Observation) -> torch.Tensor:
    """The policy's (1, C) conditioning vector of `obs` (as `DiffusionPolicy.sample` builds it)."""
    policy.check_observation(obs)
    dev = policy.device
    points = torch.as_tensor(np.asarray(obs.points, dtype=np.float32), device=dev)[None]
    colors = None if obs.colors is None else torch.as_tensor(np.asarray(obs.colors), device=dev)[None]
    return policy.encode(points, colors, policy.goal_inputs([obs.goal]).to(dev))


def _rewards(reward_fn: RewardFn, cands: Candidates) -> np.ndarray:
    out = reward_fn(cands)
    if isinstance(out, ScoreSet):
        raise FKSteeringError("reward_fn returned a ScoreSet; aggregate it to (K,) rewards, e.g. "
                              "lambda c: aggregate(scorer.score(obs, c), 'wco')")
    r = np.asarray(out, dtype=np.float64).reshape(-1)
    if r.shape != (len(cands),):
        raise FKSteeringError(f"reward_fn must return {len(cands)} rewards, got shape {np.shape(out)}")
    if not np.all(np.isfinite(r)):
        raise FKSteeringError(f"reward_fn returned NaN/inf rewards for particles "
                              f"{np.flatnonzero(~np.isfinite(r)).tolist()}")
    return r


@torch.no_grad()
def fk_steer(policy: DiffusionPolicy, obs: Observation, reward_fn: RewardFn,
             config: FKSteeringConfig | None = None, seed: int = 0) -> FKResult:
    """K = config.particles candidates from `policy` for `obs`, steered towards high
    `reward_fn(Candidates) -> (K,)` by FK resampling during DDIM denoising.

    Deterministic for a seed (on CPU). config.resample_every = 0 is plain best-of-K sampling:
    the candidates equal `policy.sample(obs, K, seed, eta=config.eta)`.
    """
    config = config or FKSteeringConfig()
    policy.require_full_diffusion("FK steering")
    schedule = policy.schedule
    ts = ddim_timesteps(schedule.train_steps, config.steps or policy.config.inference_steps)
    k_particles = config.particles
    cond = condition(policy, obs)
    cond_k = cond.expand(k_particles, -1)
    dev = cond.device
    seeds = candidate_seeds(seed, k_particles)
    gens = row_generators(seeds, "cpu")  # noise on the CPU, as in sample_normalized
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), RESAMPLING_STREAM]))
    when = set(resample_steps(len(ts), config.resample_every))

    x = row_randn(gens, policy.normalizer.dim, "cpu")
    r_prev = np.zeros(k_particles)
    r_max = np.full(k_particles, -np.inf)
    ancestors = np.arange(k_particles)
    nfe, reward_calls, resampled_at, ess = 0, 0, [], []
    for k, t in enumerate(ts):
        t_prev = ts[k + 1] if k + 1 < len(ts) else -1
        tt = torch.full((k_particles,), t, dtype=torch.long, device="cpu")
        eps = policy.denoise(x.to(dev), tt.to(dev), cond_k).to(x.device)
        nfe += k_particles
        if k in when:
            x0 = schedule.predict_x0(x, eps, tt)
            if schedule.clip_sample:
                x0 = x0.clamp(-1.0, 1.0)
            r = _rewards(reward_fn, policy.to_candidates(x0, seeds))
            reward_calls += 1
            r_max = np.maximum(r_max, r)
            w = normalized_weights(log_potentials(config.potential, config.lam, r, r_prev, r_max))
            idx = resample_indices(w, rng, config.resampling)
            x, eps = x[idx], eps[idx]  # the step below continues each copy with its slot's noise
            r_prev, r_max, ancestors = r[idx], r_max[idx], ancestors[idx]
            resampled_at.append(k)
            ess.append(float(1.0 / np.sum(w**2)))
        x = schedule.ddim_step(x, eps, t, t_prev, gens, config.eta)

    cands = policy.to_candidates(x, seeds)
    rewards = _rewards(reward_fn, cands)
    return FKResult(cands, rewards, nfe, reward_calls + 1, resampled_at, ess, ancestors)
