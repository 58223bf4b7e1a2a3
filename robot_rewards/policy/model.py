"""DiffusionPolicy: point cloud + goal -> N candidate primitives (DDPM training, DDIM sampling).

Training (`loss`): the observation encoder runs once per observation; its feature is repeated
for `noise_draws` independent (timestep, noise) draws of the same action, which multiplies the
denoiser's training signal at almost no extra cost (the encoder dominates the compute).

Sampling (`sample`): the observation is encoded once and its feature repeated n times; every
denoising step is ONE batched denoiser call over all n candidates. Candidate i starts from
noise drawn with its own seed (reported in `Candidates.seeds`), so it can be re-sampled alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.core.primitives import PRIMITIVE_SPECS, Workspace
from robot_rewards.nn.encoders import ClipGoalEncoder, LocalPatchEncoder, PointEncoder, VocabGoalEncoder
from robot_rewards.nn.normalizer import ActionNormalizer, feature_names
from robot_rewards.policy.config import PolicyConfig
from robot_rewards.policy.denoiser import Denoiser
from robot_rewards.policy.pick import PickHead, draw_points, pick_loss
from robot_rewards.policy.schedule import NoiseSchedule, row_generators


class PolicyInputError(ValueError):
    """An observation (or request) the policy cannot act on, with the reason."""


@dataclass
class PolicyBatch:
    """Training batch: B observations and their normalised actions."""

    points: torch.Tensor  # (B, P, 3) float32, base frame
    colors: torch.Tensor | None  # (B, P, 3) uint8
    goals: torch.Tensor  # (B, L) token ids (vocab) or (B, E) text embeddings (clip)
    actions: torch.Tensor  # (B, F) float32 in [-1, 1]
    # (B, P, 4) neighbourhood features of the points, when the encoder uses them and they were
    # computed on the whole cloud before a subset of its points was drawn (None: from `points`)
    neighbourhood: torch.Tensor | None = None

    def to(self, device) -> PolicyBatch:
        return PolicyBatch(self.points.to(device), None if self.colors is None else self.colors.to(device),
                           self.goals.to(device), self.actions.to(device),
                           None if self.neighbourhood is None else self.neighbourhood.to(device))


def candidate_seeds(seed: int, n: int) -> np.ndarray:
    """Per-candidate noise seeds derived from one seed; candidate i's seed does not depend on n."""
    if seed < 0:
        raise PolicyInputError(f"seed must be >= 0, got {seed}")
    return np.array([np.random.SeedSequence([int(seed), i]).generate_state(1)[0] for i in range(n)],
                    dtype=np.int64)


class DiffusionPolicy(nn.Module):
    """Diffusion policy over one primitive's parameters (see the module docstring)."""

    def __init__(self, config: PolicyConfig, primitive: str, normalizer: ActionNormalizer,
                 vocab: Sequence[str] | None = None, workspace: Workspace | None = None):
        super().__init__()
        if primitive not in PRIMITIVE_SPECS:
            raise ValueError(f"unknown primitive '{primitive}'; known: {sorted(PRIMITIVE_SPECS)}")
        if normalizer.primitive != primitive:
            raise ValueError(f"normaliser is for '{normalizer.primitive}', policy for '{primitive}'")
        self.config = config
        self.primitive = primitive
        self.spec = PRIMITIVE_SPECS[primitive]
        self.normalizer = normalizer
        self.workspace = workspace or Workspace()
        if config.goal_encoder == "vocab":
            if not vocab:
                raise ValueError("goal_encoder=vocab needs a vocabulary (build_vocab of the training goals)")
            self.goal_encoder: nn.Module = VocabGoalEncoder(vocab, config.token_dim, config.max_goal_tokens,
                                                            config.goal_dim)
        elif config.goal_encoder == "clip":
            self.goal_encoder = ClipGoalEncoder(config.clip_model, config.clip_pretrained, config.goal_dim)
        else:
            raise ValueError(f"unknown goal_encoder '{config.goal_encoder}' (use vocab or clip)")
        grounded = config.word_attention and isinstance(self.goal_encoder, VocabGoalEncoder)
        self.point_encoder = PointEncoder(config.point_channels, config.goal_dim, config.obs_dim,
                                          config.attention_heads, config.use_rgb, self.workspace,
                                          config.token_dim if grounded else 0, config.max_goal_tokens,
                                          config.neighbourhood_radius)
        self.cond_dim = config.obs_dim + config.goal_dim
        self.local = (LocalPatchEncoder(config.local_k, config.local_radius, config.local_channels, config.use_rgb)
                      if config.local_k > 0 else None)
        local_dim = self.local.out_dim * len(self.spec.points) if self.local is not None else 0
        self.denoiser = Denoiser(normalizer.dim, self.cond_dim, config.width, config.blocks, config.time_dim,
                                 local_dim)
        # Normalised features -> metres for the candidate's points (local patches look around them).
        names = [f"{p}_{a}" for p in self.spec.points for a in "xyz"]
        idx = torch.tensor([feature_names(self.spec).index(n) for n in names])
        self.register_buffer("point_index", idx, persistent=False)
        self.register_buffer("point_low", torch.as_tensor(normalizer.low, dtype=torch.float32)[idx], persistent=False)
        self.register_buffer("point_high", torch.as_tensor(normalizer.high, dtype=torch.float32)[idx],
                             persistent=False)
        self.schedule = NoiseSchedule(config.train_steps, config.beta_schedule, config.clip_sample)
        self.pick_head = self.place_head = None
        if config.place_on_cloud and not config.pick_on_cloud:
            raise ValueError("place_on_cloud needs pick_on_cloud (the place is scored given the pick)")
        if config.pick_on_cloud:
            if "pick" not in self.spec.points:
                raise ValueError(f"pick_on_cloud needs a primitive with a pick point; '{primitive}' has "
                                 f"{list(self.spec.points)}")
            self.pick_head = PickHead(config.point_channels[-1], config.obs_dim)
            given = ["pick_x", "pick_y"]
            if config.place_on_cloud:
                if "place" not in self.spec.points:
                    raise ValueError(f"place_on_cloud needs a primitive with a place point; '{primitive}' has "
                                     f"{list(self.spec.points)}")
                self.place_head = PickHead(config.point_channels[-1], config.obs_dim + 3)
                given += ["place_x", "place_y"]
            names = feature_names(self.spec)
            # the entries the heads choose; the denoiser gets them clean and samples the rest
            self.register_buffer("given_mask", torch.tensor([n in given for n in names]), persistent=False)

    @property
    def vocab(self) -> list[str] | None:
        return getattr(self.goal_encoder, "vocab", None)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- conditioning --------------------------------------------------------------------------
    def goal_inputs(self, goals: Sequence[str]) -> torch.Tensor:
        """What the goal encoder takes for these sentences (token ids, or cached text embeddings)."""
        if isinstance(self.goal_encoder, VocabGoalEncoder):
            return self.goal_encoder.token_ids(goals)
        return self.goal_encoder.embed(goals)

    def encode(self, points: torch.Tensor, colors: torch.Tensor | None, goals: torch.Tensor,
               neighbourhood: torch.Tensor | None = None) -> torch.Tensor:
        """Conditioning rows (B, C) of B observations for `denoise`: [obs feature, goal feature]
        (C = obs_dim + goal_dim), followed by the flattened cloud when local patches are on.
        neighbourhood: precomputed per-point features (see `PolicyBatch`)."""
        return self.encode_with_picks(points, colors, goals, neighbourhood)[0]

    def encode_with_picks(self, points: torch.Tensor, colors: torch.Tensor | None, goals: torch.Tensor,
                          neighbourhood: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """(`encode`'s rows, per-point features (h, xyz, obs) for `pick_logits` / `place_logits`,
        or None without a pick head)."""
        g = self.goal_encoder(goals)
        tokens = mask = None
        if self.point_encoder.max_tokens:
            tokens, mask = self.goal_encoder.token_features(goals)
        per_point = None
        if self.pick_head is None:
            obs = self.point_encoder(points, colors, g, tokens, mask, neighbourhood)
        else:
            per_point = self.point_encoder(points, colors, g, tokens, mask, neighbourhood, per_point=True)
            obs = per_point[0]
        parts = [obs, g]
        if self.local is not None:
            # Each conditioning row carries its own cloud, so everything that repeats, indexes or
            # concatenates rows (noise draws, N candidates, DPO pairs, FK particles) carries it along.
            parts.append(points.reshape(points.shape[0], -1).to(g.dtype))
            if self.config.use_rgb:
                parts.append(colors.reshape(colors.shape[0], -1).to(g.dtype))
        return torch.cat(parts, dim=-1), per_point

    def pick_logits(self, per_point: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """(B, P) pick scores of every point."""
        obs, h, xyz = per_point
        return self.pick_head(h, xyz, obs)

    def place_logits(self, per_point: tuple[torch.Tensor, ...], picks: torch.Tensor) -> torch.Tensor:
        """(B, P) place scores of every point given each row's pick (B, 3) in metres."""
        obs, h, xyz = per_point
        enc = self.point_encoder
        return self.place_head(h, xyz, torch.cat([obs, (picks - enc.ws_centre) / enc.ws_half], dim=-1))

    def action_points(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Q, 3) metres: the xyz points of normalised actions x (B, F), clamped to the data range."""
        f = (x[:, self.point_index].clamp(-1, 1) + 1) / 2 * (self.point_high - self.point_low) + self.point_low
        return f.reshape(x.shape[0], -1, 3)

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Predicted noise (B, F) for noisy actions x_t (B, F) at timesteps t (B,) under rows of `encode`."""
        if self.local is None:
            return self.denoiser(x_t, t, cond)
        d, b = self.cond_dim, cond.shape[0]
        per_point = 6 if self.config.use_rgb else 3
        n_points = (cond.shape[1] - d) // per_point
        points = cond[:, d:d + 3 * n_points].reshape(b, n_points, 3)
        colors = cond[:, d + 3 * n_points:].reshape(b, n_points, 3) if self.config.use_rgb else None
        local = self.local(points, colors, self.action_points(x_t)).reshape(b, -1)
        return self.denoiser(x_t, t, cond[:, :d], local)

    # -- training ------------------------------------------------------------------------------
    def forward(self, batch: PolicyBatch, generator: torch.Generator | None = None,
                noise_draws: int = 1) -> torch.Tensor:
        """The training loss (so that DistributedDataParallel wraps it); see `loss`."""
        return self.loss(batch, generator, noise_draws)

    def loss(self, batch: PolicyBatch, generator: torch.Generator | None = None,
             noise_draws: int = 1) -> torch.Tensor:
        """Epsilon-prediction MSE with `noise_draws` (t, eps) draws per observation (plus the
        weighted pick cross-entropy with a pick head)."""
        cond, per_point = self.encode_with_picks(batch.points, batch.colors, batch.goals, batch.neighbourhood)
        B, K = batch.actions.shape[0], max(1, noise_draws)
        x0 = batch.actions.repeat_interleave(K, dim=0)
        dev = x0.device
        # Draw on the generator's device (CPU), then move: keeps CPU and CUDA runs on one stream.
        t = torch.randint(0, self.schedule.train_steps, (B * K,), generator=generator).to(dev)
        eps = torch.randn(x0.shape, generator=generator).to(dev)
        x_t = self.schedule.add_noise(x0, eps, t)
        if per_point is not None:  # the pick (and place) are given, chosen by the heads; the rest is denoised
            x_t = torch.where(self.given_mask, x0, x_t)
        pred = self.denoise(x_t, t, cond.repeat_interleave(K, dim=0))
        if per_point is None:
            return nn.functional.mse_loss(pred, eps)
        loss = nn.functional.mse_loss(pred[:, ~self.given_mask], eps[:, ~self.given_mask])
        pts = self.action_points(batch.actions)
        w, sigma = self.config.pick_loss_weight, self.config.pick_sigma
        loss = loss + w * pick_loss(self.pick_logits(per_point), batch.points, pts[:, 0], sigma)
        if self.place_head is not None:  # scored given the demonstrated pick
            loss = loss + w * pick_loss(self.place_logits(per_point, pts[:, 0]), batch.points, pts[:, 1], sigma)
        return loss

    def require_full_diffusion(self, what: str) -> None:
        """Raise PolicyInputError for methods that denoise every action entry themselves (FK
        steering, the DPO implicit reward): with heads on the cloud the denoiser never learned
        the pick/place entries, so their results would mean nothing."""
        if self.pick_head is not None:
            raise PolicyInputError(f"{what} needs a policy that denoises the whole primitive; this one picks "
                                   "on the cloud (policy.pick_on_cloud=true): use best-of-N selection instead")

    # -- inference -----------------------------------------------------------------------------
    def check_observation(self, obs: Observation) -> None:
        """Raise PolicyInputError if `obs` cannot be acted on (no/too small/non-finite cloud)."""
        if obs.points is None:
            raise PolicyInputError(
                "observation has no point cloud: build it with perceive(..., config=<the checkpoint's "
                "perception config>) or TabletopEnv(perception=...)")
        pts = np.asarray(obs.points)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise PolicyInputError(f"point cloud must be (P, 3), got {pts.shape}")
        if not np.all(np.isfinite(pts)):
            bad = int((~np.isfinite(pts).all(axis=1)).sum())
            raise PolicyInputError(f"point cloud has {bad} NaN/inf points")
        distinct = len(np.unique(pts, axis=0)) if len(pts) else 0
        if distinct < self.config.min_points:
            raise PolicyInputError(
                f"point cloud has {distinct} distinct points, fewer than min_points={self.config.min_points} "
                "(is the scene empty or the camera blocked?)")
        if self.config.use_rgb:
            if obs.colors is None:
                raise PolicyInputError("this policy uses colour but the observation's cloud has no colours")
            if np.asarray(obs.colors).shape != pts.shape:
                raise PolicyInputError(f"colours {np.asarray(obs.colors).shape} do not match points {pts.shape}")

    @torch.no_grad()
    def sample(self, obs: Observation, n: int, seed: int = 0, seeds: Sequence[int] | None = None,
               steps: int | None = None, sampler: str | None = None, eta: float = 0.0) -> Candidates:
        """n candidate primitives for one observation.

        seed: derives the per-candidate seeds (`candidate_seeds`); seeds: explicit per-candidate
        seeds instead (n is then len(seeds)). steps/sampler default to the config's
        (`inference_steps`, `sampler`). Candidates with a point outside the workspace box are
        clipped into it and flagged in `Candidates.clipped`.
        """
        if seeds is not None:
            seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
            n = len(seeds)
        if int(n) < 1:
            raise PolicyInputError(f"number of candidates must be >= 1, got {n}")
        self.check_observation(obs)
        if seeds is None:
            seeds = candidate_seeds(seed, int(n))
        dev = self.device
        points = torch.as_tensor(np.asarray(obs.points, dtype=np.float32), device=dev)[None]
        colors = None if obs.colors is None else torch.as_tensor(np.asarray(obs.colors), device=dev)[None]
        cond, per_point = self.encode_with_picks(points, colors, self.goal_inputs([obs.goal]).to(dev))
        known = None if per_point is None else self.drawn_picks(per_point, points[0], seeds)
        x = self.sample_normalized(cond, seeds, steps, sampler, eta, known)
        return self.to_candidates(x, seeds)

    def drawn_picks(self, per_point: tuple[torch.Tensor, ...], points: torch.Tensor,
                    seeds: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Given entries (values (n, F), mask (F,)) for `sample_normalized` of ONE observation:
        each candidate's pick xy is a cloud point drawn from the pick head's softmax with a
        generator of its own (derived from its seed, apart from its diffusion noise); with a place
        head, then its place point given that pick, from another generator of its own."""
        def gens(k: int):
            return row_generators([int(np.random.SeedSequence([int(s), k]).generate_state(1)[0]) for s in seeds])

        temp = self.config.pick_temperature
        pick = points[draw_points(self.pick_logits(per_point)[0], gens(1), temp).to(points.device)]  # (n, 3)
        names = list(self.spec.param_names)
        params = np.zeros((len(seeds), len(names)))
        params[:, names.index("pick_x")], params[:, names.index("pick_y")] = pick[:, 0].cpu(), pick[:, 1].cpu()
        if self.place_head is not None:
            n = len(seeds)
            rows = tuple(t.expand(n, *t.shape[1:]) for t in per_point)
            logits = self.place_logits(rows, pick)
            place = torch.stack([points[draw_points(logits[i], [g], temp)[0]] for i, g in enumerate(gens(2))])
            params[:, names.index("place_x")], params[:, names.index("place_y")] = place[:, 0].cpu(), place[:, 1].cpu()
        values = torch.as_tensor(self.normalizer.encode(params), dtype=torch.float32)
        return values, self.given_mask.cpu()

    def sample_normalized(self, cond: torch.Tensor, seeds: Sequence[int], steps: int | None = None,
                          sampler: str | None = None, eta: float = 0.0,
                          known: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(n, F) normalised actions for ONE conditioning vector (1, C), one batched call per step;
        known: entries given, not sampled (`NoiseSchedule.sample`)."""
        n = len(seeds)
        cond_n = cond.expand(n, -1)
        gens = row_generators(seeds, "cpu")
        dev = cond.device

        def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.denoise(x.to(dev), t.to(dev), cond_n).to(x.device)

        # Noise is drawn on the CPU so a seed means the same candidate on CPU and GPU.
        x = self.schedule.sample(eps_fn, gens, self.normalizer.dim, "cpu", sampler or self.config.sampler,
                                 steps or self.config.inference_steps, eta, known)
        return x

    def to_candidates(self, x: torch.Tensor, seeds: Sequence[int]) -> Candidates:
        """Decode normalised actions, clip points into the workspace and flag the clipped ones."""
        params = self.normalizer.decode(x.detach().cpu().double().numpy())
        low, high = self.spec.bounds(self.workspace)
        clipped_params = np.clip(params, low, high)
        clipped = np.any(clipped_params != params, axis=1) | ~np.all(np.isfinite(params), axis=1)
        return Candidates(self.primitive, clipped_params, np.asarray(seeds), clipped)
