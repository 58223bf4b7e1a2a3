"""Observation encoders: a goal-FiLM PointNet over the point cloud, and goal-text encoders.

PointEncoder: a shared per-point MLP (PointNet) whose layers are FiLM-modulated by the goal
feature (so "red block" can switch on red points early), pooled two ways: a max over points
(global shape) and `attention_heads` goal-conditioned attention pools, each returning a
feature and the attention-weighted mean xyz (where the goal's objects are). Points are given
in workspace coordinates ([-1, 1] over the `Workspace` box), colours in [-0.5, 0.5].

Goal encoders: `VocabGoalEncoder` (lower-cased word tokens -> learned embeddings plus learned
position embeddings, flattened over positions so word order matters: "red block in the green
bowl" differs from "green block in the red bowl"); `ClipGoalEncoder` (frozen open_clip text
tower + a trained projection).

LocalPatchEncoder: a small PointNet over the cloud around given query points (shared by the
preference scorer's pick/place patches and the policy's denoiser, which looks around each
candidate's current pick and place at every denoising step).
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import torch
from torch import nn

from robot_rewards.core.primitives import Workspace

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+")


def tokenize(goal: str) -> list[str]:
    """Lower-cased word tokens of a goal sentence (punctuation dropped)."""
    return _WORD.findall(goal.lower())


def build_vocab(goals: Sequence[str]) -> list[str]:
    """Vocabulary of the training goals: PAD and UNK first, then the words in sorted order."""
    return [PAD, UNK] + sorted({w for g in goals for w in tokenize(g)})


class Film(nn.Module):
    """Feature-wise linear modulation: h * (1 + gamma(c)) + beta(c); starts as the identity."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(cond).chunk(2, dim=-1)
        if h.dim() == 3:  # (B, P, C) per-point features, (B, C) condition
            gamma, beta = gamma[:, None], beta[:, None]
        return h * (1 + gamma) + beta


def workspace_scale(workspace: Workspace) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and half-size of the workspace box (xyz -> [-1, 1])."""
    lo, hi = torch.tensor(workspace.low), torch.tensor(workspace.high)
    return (lo + hi) / 2, (hi - lo) / 2


@torch.no_grad()
def neighbourhood_features(points: torch.Tensor, radius: float, chunk: int = 16) -> torch.Tensor:
    """(B, P, 4): for each point, the offset to the centroid of the cloud within `radius` of it
    (in units of radius) and that offset's length.

    Inside a rope, a block face or a mark the neighbours surround the point and the offset is
    near 0; at a rope END they lie on one side only (length ~0.5, pointing along the rope,
    inward). A per-point MLP cannot see this from one point's xyz, and max-pooling cannot find
    the ends without it. No learned neighbourhood layer: one (P, P) distance matrix per cloud,
    `chunk` clouds at a time (memory). The offsets are vectors: a turned cloud has turned offsets.
    """
    out = []
    for p in points.split(chunk):
        w = (torch.cdist(p, p) <= radius).to(p.dtype)  # each point is its own neighbour: never empty
        centroid = (w @ p) / w.sum(dim=-1, keepdim=True)
        offset = (centroid - p) / radius
        out.append(torch.cat([offset, offset.norm(dim=-1, keepdim=True)], dim=-1))
    return torch.cat(out) if out else points.new_zeros((0, points.shape[1], 4))


class PointEncoder(nn.Module):
    """(B, P, 3) points (+ (B, P, 3) colours) and a (B, G) goal feature -> (B, obs_dim)."""

    def __init__(self, channels: Sequence[int], goal_dim: int, obs_dim: int, heads: int,
                 use_rgb: bool = True, workspace: Workspace | None = None, token_dim: int = 0,
                 max_tokens: int = 0, neighbourhood_radius: float = 0.0):
        """token_dim, max_tokens > 0: every goal word also attends over the points by itself
        (pass `tokens` to forward) and the position it attends to joins the output.
        neighbourhood_radius > 0: each point also gets `neighbourhood_features` at that radius."""
        super().__init__()
        self.use_rgb = use_rgb
        self.neighbourhood_radius = float(neighbourhood_radius)
        centre, half = workspace_scale(workspace or Workspace())
        self.register_buffer("ws_centre", centre, persistent=False)
        self.register_buffer("ws_half", half, persistent=False)
        dims = [(6 if use_rgb else 3) + (4 if self.neighbourhood_radius > 0 else 0), *channels]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.films = nn.ModuleList(Film(goal_dim, b) for b in dims[1:])
        c = dims[-1]
        self.heads = heads
        # Cosine attention logits s * cos(centred h_p, W q_h): projecting the goal query into the
        # point-feature space costs H*C per observation instead of C*C per point for a key
        # projection. With raw dot products every head attended alike (points differed mostly in
        # feature norm), collapsed onto the largest object (a bowl), and the small named block
        # was never attended, so its position never reached the denoiser.
        self.query = nn.Linear(goal_dim, heads * c) if heads else None
        self.log_scale = nn.Parameter(torch.tensor(math.log(20.0))) if heads else None
        # Word-level grounding: each goal word's query attends over the points on its own, so the
        # block-colour word and the bowl-colour word look for different objects. (Goal-vector
        # heads all learned the same, easiest target; per-word queries are not symmetric.)
        self.max_tokens = max_tokens if token_dim else 0
        self.token_query = nn.Linear(token_dim, c) if self.max_tokens else None
        self.token_log_scale = nn.Parameter(torch.tensor(math.log(20.0))) if self.max_tokens else None
        width = c + (heads * (c // heads + 3) if heads else 0) + 3 * self.max_tokens
        self.out = nn.Sequential(nn.Linear(width, obs_dim), nn.GELU(), nn.Linear(obs_dim, obs_dim))

    def normalise(self, points: torch.Tensor, colors: torch.Tensor | None,
                  neighbourhood: torch.Tensor | None = None) -> torch.Tensor:
        """Per-point input features: workspace-normalised xyz (+ colours centred on 0, + the
        neighbourhood features: computed here unless given, e.g. precomputed on a whole cloud of
        which `points` is a subset)."""
        x = (points - self.ws_centre) / self.ws_half
        if self.use_rgb:
            if colors is None:
                raise ValueError("this policy uses colour (use_rgb=true) but the cloud has no colours")
            x = torch.cat([x, colors.to(x.dtype) / 255.0 - 0.5], dim=-1)
        if self.neighbourhood_radius > 0:
            if neighbourhood is None:
                neighbourhood = neighbourhood_features(points, self.neighbourhood_radius)
            x = torch.cat([x, neighbourhood.to(x.dtype)], dim=-1)
        return x

    def forward(self, points: torch.Tensor, colors: torch.Tensor | None, goal: torch.Tensor,
                tokens: torch.Tensor | None = None, token_mask: torch.Tensor | None = None,
                neighbourhood: torch.Tensor | None = None, per_point: bool = False):
        """tokens (B, L, token_dim), token_mask (B, L): the goal's word features (when built with
        token_dim > 0); neighbourhood (B, P, 4): see `normalise`. per_point: also return the
        per-point features (B, P, C) and workspace-normalised xyz (B, P, 3) (a per-point head)."""
        x = self.normalise(points, colors, neighbourhood)
        h = x
        # No per-point LayerNorm: it costs ~10% of the step on CPU, and the inputs are already
        # normalised (xyz to the workspace box, colours centred).
        for layer, film in zip(self.layers, self.films):
            h = torch.nn.functional.gelu(film(layer(h), goal))
        pooled = [h.max(dim=1).values]
        if self.heads or self.max_tokens:
            # Attention keys: each point's features centred first, since after GELU they share a
            # large positive component that would otherwise make every point look alike.
            k = nn.functional.normalize(h - h.mean(dim=-1, keepdim=True), dim=-1)
        if self.heads:
            B, P, C = h.shape
            d = C // self.heads
            q = nn.functional.normalize(self.query(goal).reshape(B, self.heads, C), dim=-1)
            w = torch.softmax(self.log_scale.exp() * torch.einsum("bpc,bhc->bph", k, q), dim=1)  # over points
            v = h[..., : self.heads * d].reshape(B, P, self.heads, d)
            pooled.append((w[..., None] * v).sum(1).reshape(B, -1))
            # Where the attended points are: lets the action head read off an object position.
            pooled.append(torch.einsum("bph,bpc->bhc", w, x[..., :3]).reshape(B, -1))
        if self.max_tokens:
            if tokens is None or token_mask is None:
                raise ValueError("this point encoder grounds goal words: pass tokens and token_mask")
            qt = nn.functional.normalize(self.token_query(tokens), dim=-1)  # (B, L, C)
            wt = torch.softmax(self.token_log_scale.exp() * torch.einsum("bpc,blc->bpl", k, qt), dim=1)
            where = torch.einsum("bpl,bpc->blc", wt, x[..., :3]) * token_mask[..., None]
            pooled.append(where.reshape(where.shape[0], -1))
        out = self.out(torch.cat(pooled, dim=-1))
        return (out, h, x[..., :3]) if per_point else out


class LocalPatchEncoder(nn.Module):
    """Features (B, Q, C) of the cloud around Q query points per observation: the k nearest points
    within `radius` of each query, relative to it (+ colours), through a shared MLP and max-pooled.
    What lies under a pick or place point; an empty patch (nothing there) gives zeros."""

    def __init__(self, k: int, radius: float, channels: Sequence[int], use_rgb: bool):
        super().__init__()
        self.k, self.radius, self.use_rgb = int(k), float(radius), use_rgb
        dims = [4 + (3 if use_rgb else 0)] + list(channels)
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.GELU()]
        self.mlp = nn.Sequential(*layers)
        self.out_dim = dims[-1]

    def forward(self, points: torch.Tensor, colors: torch.Tensor | None, queries: torch.Tensor) -> torch.Tensor:
        k = min(self.k, points.shape[1])
        dist, idx = torch.cdist(queries, points).topk(k, dim=-1, largest=False)  # (B, Q, k)
        b = torch.arange(points.shape[0], device=points.device)[:, None, None]
        rel = (points[b, idx] - queries[..., None, :]) / self.radius  # (B, Q, k, 3)
        feats = [rel, (dist / self.radius)[..., None]]
        if self.use_rgb:
            feats.append(colors[b, idx].float() / 255.0)
        h = self.mlp(torch.cat(feats, dim=-1))
        # points beyond the radius do not count; an empty patch (nothing there) gives zeros
        inside = (dist <= self.radius)[..., None]
        h = torch.where(inside, h, torch.full_like(h, -torch.inf)).amax(dim=2)
        return torch.where(torch.isfinite(h), h, torch.zeros_like(h))


class VocabGoalEncoder(nn.Module):
    """Goal sentences -> (B, goal_dim) via word + position embeddings of a fixed vocabulary."""

    def __init__(self, vocab: Sequence[str], token_dim: int, max_tokens: int, goal_dim: int):
        super().__init__()
        if list(vocab[:2]) != [PAD, UNK]:
            raise ValueError(f"a goal vocabulary starts with {PAD}, {UNK}")
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_tokens = max_tokens
        self.words = nn.Embedding(len(self.vocab), token_dim, padding_idx=0)
        self.positions = nn.Parameter(torch.randn(max_tokens, token_dim) * 0.02)
        self.mlp = nn.Sequential(nn.Linear(max_tokens * token_dim, goal_dim), nn.GELU(),
                                 nn.Linear(goal_dim, goal_dim))

    def token_ids(self, goals: Sequence[str]) -> torch.Tensor:
        """(B, max_tokens) ids: unknown words -> UNK, padding -> PAD, long goals truncated."""
        ids = torch.zeros((len(goals), self.max_tokens), dtype=torch.long)
        for b, g in enumerate(goals):
            toks = tokenize(g)[: self.max_tokens]
            ids[b, : len(toks)] = torch.tensor([self.index.get(w, 1) for w in toks], dtype=torch.long)
        return ids

    def token_features(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Word + position embeddings (B, L, token_dim) and the mask of real words (B, L)."""
        mask = (ids != 0).to(self.positions.dtype)
        return self.words(ids) + self.positions * mask[..., None], mask

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.token_features(ids)[0].flatten(1))


class ClipGoalEncoder(nn.Module):
    """Frozen open_clip text tower (embeddings cached per goal) + a trained projection."""

    def __init__(self, model_name: str, pretrained: str, goal_dim: int, device="cpu"):
        super().__init__()
        try:
            import open_clip
        except ImportError as exc:
            raise ImportError(
                "goal_encoder=clip needs the open_clip package: pip install open_clip_torch "
                "(or use policy.goal_encoder=vocab)"
            ) from exc
        model, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=pretrained or None,
                                                            device=device)
        model.eval().requires_grad_(False)
        # Not a submodule: the frozen tower is not part of our checkpoint (it is rebuilt from
        # clip_model / clip_pretrained).
        self.__dict__["clip"] = model
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.cache: dict[str, torch.Tensor] = {}
        width = model.text_projection.shape[1] if hasattr(model, "text_projection") else 512
        self.proj = nn.Sequential(nn.Linear(width, goal_dim), nn.GELU(), nn.Linear(goal_dim, goal_dim))

    @torch.no_grad()
    def embed(self, goals: Sequence[str]) -> torch.Tensor:
        missing = [g for g in dict.fromkeys(goals) if g not in self.cache]
        if missing:
            dev = next(self.proj.parameters()).device
            e = self.clip.to(dev).encode_text(self.tokenizer(missing).to(dev)).float()
            for g, v in zip(missing, torch.nn.functional.normalize(e, dim=-1)):
                self.cache[g] = v
        return torch.stack([self.cache[g] for g in goals])

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.proj(embeddings)
