"""CLIP goal reward (VLM-RM, Rocamonde et al.): a `StateReward` from any open_clip model.

    x = normalised image embedding, g = mean of the normalised goal-prompt embeddings,
    b = the same for the baseline prompts, d = g - b,
    P = alpha * d d^T / |d|^2 + (1 - alpha) * I,
    R = 1 - 0.5 * |(x - g) P|^2.

alpha = 0 is the plain cosine similarity shifted (R = x.g + const for normalised g); alpha = 1
measures only the component along the goal-minus-baseline direction, projecting out what the
prompts do not distinguish. Goal instructions are turned into state prompts first
(`clip_prompts.goal_prompts`); text embeddings (g, b and P) are computed once per goal and
cached. Frames are preprocessed and embedded in batches of `batch_size`; fp32 on CPU,
autocast (bf16 by default) on CUDA; optionally torch.compile'd.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from robot_rewards.core.coerce import coerce_config
from robot_rewards.core.device import resolve_device
from robot_rewards.core.observation import Observation
from robot_rewards.rewards.base import RewardInputError, RewardModelError, check_goal
from robot_rewards.rewards.clip.config import ClipRewardConfig
from robot_rewards.rewards.clip.model import LoadedClip, load_clip
from robot_rewards.rewards.clip.preprocess import preprocess
from robot_rewards.rewards.clip.prompts import GoalPrompts, baseline_for, goal_prompts

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def projection(g: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    """VLM-RM's P = alpha d d^T / |d|^2 + (1 - alpha) I with d = g - b, (D, D)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    d = g - b
    eye = torch.eye(len(g), dtype=g.dtype, device=g.device)
    norm2 = float(d @ d)
    if alpha > 0 and norm2 < 1e-12:
        raise RewardInputError("goal and baseline prompts embed identically (g = b): the projection "
                               "direction is undefined; use different baseline prompts or alpha=0")
    if alpha == 0:
        return eye
    return alpha * torch.outer(d, d) / norm2 + (1.0 - alpha) * eye


def vlm_rm_reward(x: torch.Tensor, g: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """R = 1 - 0.5 |(x - g) P|^2 for (B, D) normalised image embeddings x (differentiable)."""
    return 1.0 - 0.5 * ((x - g) @ P).pow(2).sum(-1)


def mean_embedding(features: torch.Tensor) -> torch.Tensor:
    """Mean of the L2-normalised rows (VLM-RM's g and b; not re-normalised)."""
    return torch.nn.functional.normalize(features.float(), dim=-1).mean(0)


@dataclass(frozen=True, eq=False)
class GoalEmbedding:
    """Cached text side of one goal: prompts, g, b and P (on the model's device, float32)."""

    prompts: GoalPrompts
    g: torch.Tensor
    b: torch.Tensor
    P: torch.Tensor


class ClipReward:
    """VLM-RM state reward of a CLIP model: `score_states(images | observations, goal) -> (B,)`."""

    def __init__(self, loaded: LoadedClip, config: ClipRewardConfig | None = None):
        self.config = cfg = config or ClipRewardConfig()
        if cfg.precision not in PRECISIONS:
            raise ValueError(f"unknown precision '{cfg.precision}'; use one of {', '.join(PRECISIONS)}")
        if cfg.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {cfg.batch_size}")
        projection(torch.zeros(2), torch.ones(2), cfg.alpha)  # validates alpha
        self.loaded = loaded
        self.device = torch.device(resolve_device(cfg.device))
        self.model = loaded.model.to(self.device).eval()
        self.preprocess = loaded.preprocess
        self._encode_image = self.model.encode_image
        if cfg.compile:
            self._encode_image = torch.compile(self.model.encode_image)
        self._goals: dict[tuple, GoalEmbedding] = {}
        self._lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0

    @classmethod
    def from_config(cls, config: ClipRewardConfig) -> ClipReward:
        """Load the configured model (offline unless allow_download) and wrap it."""
        loaded = load_clip(config.model, config.pretrained, config.cache_dir, config.allow_download,
                           config.resize, config.roi)
        return cls(loaded, config)

    # -- text side --------------------------------------------------------------------------------
    def prompts(self, goal: str | Sequence[str]) -> GoalPrompts:
        """Goal and baseline prompts of `goal`: a goal sentence (turned into its state prompts
        when `state_prompts`), or a list of goal prompts used as given (averaged)."""
        if not isinstance(goal, (list, tuple)):
            check_goal(goal)  # a sentence (anything else is refused here)
            goals = list(goal_prompts(goal).goal) if self.config.state_prompts else [goal.strip()]
        else:
            goals = [check_goal(g).strip() for g in goal]
            if not goals:
                raise RewardInputError("no goal prompts given")
        baseline = [check_goal(b) for b in self.config.baseline_prompts] or [baseline_for(goals[0])]
        return GoalPrompts(tuple(goals), tuple(baseline))

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """(T, D) L2-normalised text embeddings (float32)."""
        tokens = self.loaded.tokenizer(list(texts)).to(self.device)
        with self._autocast():
            e = self.model.encode_text(tokens).float()
        if not torch.all(torch.isfinite(e)):
            raise RewardModelError("the text encoder returned NaN/inf embeddings (broken or corrupted weights?)")
        return torch.nn.functional.normalize(e, dim=-1)

    def goal_embedding(self, goal: str | Sequence[str], alpha: float | None = None) -> GoalEmbedding:
        """g, b and P of a goal, computed once per (goal, baseline, alpha) and cached."""
        alpha = self.config.alpha if alpha is None else float(alpha)
        prompts = self.prompts(goal)
        key = (prompts.goal, prompts.baseline, alpha)
        with self._lock:
            hit = self._goals.get(key)
            if hit is not None:
                self.cache_hits += 1
                return hit
            self.cache_misses += 1
        e = self.embed_texts(prompts.goal + prompts.baseline)
        n = len(prompts.goal)
        g, b = e[:n].mean(0), e[n:].mean(0)
        ge = GoalEmbedding(prompts, g, b, projection(g, b, alpha))
        with self._lock:
            self._goals[key] = ge
        return ge

    def cache_info(self) -> dict:
        """Text-embedding cache statistics: hits, misses, goals held."""
        return {"hits": self.cache_hits, "misses": self.cache_misses, "goals": len(self._goals)}

    # -- image side -------------------------------------------------------------------------------
    def images_of(self, observations_or_images: Sequence) -> list[np.ndarray]:
        """The RGB frames to score: images as given, observations' frames of the configured camera."""
        if isinstance(observations_or_images, (np.ndarray, torch.Tensor)) and observations_or_images.ndim == 3:
            raise RewardInputError(f"expected a batch of images (B, H, W, 3) or a list, got one array of shape "
                                   f"{tuple(observations_or_images.shape)}: wrap a single image in a list")
        items = list(observations_or_images)
        if not items:
            raise RewardInputError("nothing to score: empty list of images/observations")
        out = []
        for i, item in enumerate(items):
            if isinstance(item, Observation):
                name = self.config.camera or next(iter(item.frames), None)
                if name is None or name not in item.frames:
                    raise RewardInputError(f"observation {i} has no camera frame '{name}' "
                                           f"(has: {sorted(item.frames)})")
                out.append(item.frames[name].rgb)
            else:
                out.append(item)
        return out

    @torch.no_grad()
    def embed_images(self, observations_or_images: Sequence) -> torch.Tensor:
        """(B, D) L2-normalised image embeddings (float32), in batches of `batch_size`."""
        images = self.images_of(observations_or_images)
        bs = self.config.batch_size
        chunks = []
        for i in range(0, len(images), bs):
            x = preprocess(images[i:i + bs], self.preprocess, self.device)
            with self._autocast():
                chunks.append(self._encode_image(x).float())
        e = torch.cat(chunks)
        bad = ~torch.all(torch.isfinite(e), dim=1)
        if torch.any(bad):
            raise RewardModelError(f"the image encoder returned NaN/inf embeddings for images "
                                   f"{torch.nonzero(bad).flatten()[:5].tolist()} (broken or corrupted weights?)")
        return torch.nn.functional.normalize(e, dim=-1)

    # -- reward -----------------------------------------------------------------------------------
    def score_embeddings(self, x: torch.Tensor, goal: str | Sequence[str], alpha: float | None = None) -> np.ndarray:
        """(B,) VLM-RM rewards of precomputed normalised image embeddings."""
        return self._reward(x, self.goal_embedding(goal, alpha))

    def score_states(self, observations_or_images: Sequence, goal: str | Sequence[str],
                     alpha: float | None = None) -> np.ndarray:
        """(B,) rewards, higher = closer to the goal. `goal`: a goal sentence (its state prompts
        are used) or a list of goal prompts (averaged); `alpha` overrides the config's."""
        ge = self.goal_embedding(goal, alpha)  # a bad goal fails before any image work
        return self._reward(self.embed_images(observations_or_images), ge)

    def _reward(self, x: torch.Tensor, ge: GoalEmbedding) -> np.ndarray:
        r = vlm_rm_reward(x.to(self.device, torch.float32), ge.g, ge.P).double().cpu().numpy()
        if not np.all(np.isfinite(r)):
            raise RewardModelError("CLIP reward is NaN/inf (broken model output)")
        return r

    def _autocast(self):
        p = self.config.precision
        if p == "fp32" or (p == "auto" and self.device.type != "cuda"):
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.float16 if p == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)


def clip_reward(device: str = "auto", **options) -> ClipReward:
    """The `clip` family's state reward from spec options (ClipRewardConfig fields; strings are
    converted, unknown names refused before any weights load). Loads offline: open_clip weights
    must already be on disk (see ClipRewardConfig)."""
    return ClipReward.from_config(coerce_config(ClipRewardConfig, {"device": device, **options}))


