"""Preference-trained action scorer: a bootstrapped ensemble of Bradley-Terry reward models.

Data: `PreferencePairs`, M comparisons of two candidates (A, B) of one primitive in one
observation (point cloud + colours + goal), labelled 1 (A better), 0 (B better), 0.5 (tie)
or NaN ("can't tell": kept by the data type, excluded from training and metrics).

Model (Bradley-Terry): P(A > B) = sigmoid(r(A) - r(B)); the loss is the binary cross-entropy
of that probability against the label, so a tie trains r(A) - r(B) toward 0.

Ensemble: K members (`ScorerNet`), each with its own init seed and trained on its own
bootstrap resample of the training pairs; `PreferenceScorer.score` returns every member's
scores in a `ScoreSet`, so the selector can aggregate conservatively (`aggregate.wco/uwo`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.device import resolve_device
from robot_rewards.core.observation import Observation
from robot_rewards.core.paths import resolve
from robot_rewards.core.primitives import PRIMITIVE_SPECS, Workspace
from robot_rewards.nn.encoders import build_vocab
from robot_rewards.nn.normalizer import ActionNormalizer
from robot_rewards.nn.training import OptimConfig, make_optimizer, optimizer_step
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.rewards.base import (
    RewardInputError,
    RewardModelError,
    ScoreSet,
    check_candidates,
    check_goal,
    check_point_cloud,
)
from robot_rewards.rewards.preference.config import ScorerConfig, TrainScorerConfig
from robot_rewards.rewards.preference.keypoint_features import KeypointFeaturizer, candidate_keypoint_features
from robot_rewards.rewards.preference.net import ScorerNet, candidate_points, workspace_normalizer
from robot_rewards.rewards.preference.outcome_features import OutcomeFeaturizer

log = logging.getLogger(__name__)

TIE = 0.5
CANT_TELL = float("nan")


# -- data ------------------------------------------------------------------------------------

@dataclass(eq=False)
class PreferencePairs:
    """M labelled comparisons (see the module docstring).

    points (M, P, 3) float32 base frame; colors (M, P, 3) uint8 or None; goals: M sentences;
    params_a / params_b (M, D) candidates of `primitive`; labels (M,) in {1, 0, 0.5, NaN}.
    """

    primitive: str
    points: np.ndarray
    colors: np.ndarray | None
    goals: list[str]
    params_a: np.ndarray
    params_b: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        if self.primitive not in PRIMITIVE_SPECS:
            raise RewardInputError(f"unknown primitive '{self.primitive}'; known: {sorted(PRIMITIVE_SPECS)}")
        d = PRIMITIVE_SPECS[self.primitive].dim
        self.points = np.asarray(self.points, dtype=np.float32)
        m = len(self.points)
        if self.points.ndim != 3 or self.points.shape[2] != 3:
            raise RewardInputError(f"points must be (M, P, 3), got {self.points.shape}")
        if not np.all(np.isfinite(self.points)):
            raise RewardInputError("points contain NaN/inf")
        if self.colors is not None:
            self.colors = np.asarray(self.colors, dtype=np.uint8)
            if self.colors.shape != self.points.shape:
                raise RewardInputError(f"colors {self.colors.shape} must match points {self.points.shape}")
        self.goals = [str(g) for g in self.goals]
        if len(self.goals) != m:
            raise RewardInputError(f"{len(self.goals)} goals for {m} pairs")
        for g in self.goals:
            check_goal(g)
        for name in ("params_a", "params_b"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (m, d):
                raise RewardInputError(f"{name} must be ({m}, {d}) {self.primitive} parameters, got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise RewardInputError(f"{name} contain NaN/inf")
            setattr(self, name, arr)
        self.labels = np.asarray(self.labels, dtype=np.float64).reshape(-1)
        if self.labels.shape != (m,):
            raise RewardInputError(f"{self.labels.shape[0]} labels for {m} pairs")
        ok = np.isnan(self.labels) | np.isin(self.labels, (0.0, 0.5, 1.0))
        if not ok.all():
            raise RewardInputError(f"labels must be 1, 0, 0.5 (tie) or NaN (can't tell); got "
                                   f"{sorted(set(self.labels[~ok].tolist()))[:5]}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def labelled(self) -> np.ndarray:
        """(M,) True for pairs that train the model (everything except "can't tell")."""
        return ~np.isnan(self.labels)

    def subset(self, index) -> PreferencePairs:
        """The pairs at `index` (int array or mask)."""
        index = np.asarray(index)
        return PreferencePairs(self.primitive, self.points[index],
                               None if self.colors is None else self.colors[index],
                               [self.goals[i] for i in np.arange(len(self))[index]],
                               self.params_a[index], self.params_b[index], self.labels[index])

    def swapped(self) -> PreferencePairs:
        """The same comparisons with A and B exchanged (labels 1 - y)."""
        return PreferencePairs(self.primitive, self.points, self.colors, list(self.goals),
                               self.params_b, self.params_a, 1.0 - self.labels)


# -- loss and metrics ------------------------------------------------------------------------

def bt_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry loss: mean BCE of sigmoid(r_a - r_b) vs labels (1, 0, 0.5 for ties);
    NaN labels ("can't tell") are excluded. All-excluded batches give a zero loss (with grad)."""
    labels = labels.to(logits.dtype)
    keep = ~torch.isnan(labels)
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return nn.functional.binary_cross_entropy_with_logits(logits[keep], labels[keep])


def preference_accuracy(probs, labels) -> float:
    """Share of decisive pairs (label 0 or 1) where P(a > b) is on the label's side of 0.5
    (ties and "can't tell" are excluded; NaN when there are no decisive pairs)."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    decisive = (y == 0.0) | (y == 1.0)
    if not decisive.any():
        return math.nan
    return float(np.mean((p[decisive] > 0.5) == (y[decisive] == 1.0)))


def expected_calibration_error(probs, labels, bins: int = 10) -> float:
    """ECE of predicted P(a > b) vs labels: sum_b |B|/n * |mean p_B - mean y_B| over `bins`
    equal-width bins of [0, 1] (the last bin includes 1). Ties count as y = 0.5; "can't tell"
    (NaN) pairs are excluded. NaN when nothing is labelled."""
    p, y = np.asarray(probs, dtype=np.float64).reshape(-1), np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"{p.shape[0]} probabilities for {y.shape[0]} labels")
    keep = ~np.isnan(y)
    p, y = p[keep], y[keep]
    if p.size == 0:
        return math.nan
    idx = np.minimum((p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = idx == b
        if in_bin.any():
            ece += in_bin.sum() / p.size * abs(p[in_bin].mean() - y[in_bin].mean())
    return float(ece)


# -- the ensemble scorer ---------------------------------------------------------------------

class PreferenceScorer(nn.Module):
    """K Bradley-Terry members over one primitive; an `ActionScorer` (higher = preferred)."""

    def __init__(self, config: ScorerConfig, primitive: str, vocab: Sequence[str], k: int = 5,
                 workspace: Workspace | None = None, normalizer: ActionNormalizer | None = None):
        super().__init__()
        if k < 1:
            raise ValueError(f"ensemble size must be >= 1, got {k}")
        self.config = config
        self.primitive = primitive
        self.workspace = workspace or Workspace()
        self.normalizer = normalizer or workspace_normalizer(primitive, self.workspace)
        if self.normalizer.primitive != primitive:
            raise ValueError(f"normaliser is for '{self.normalizer.primitive}', scorer for '{primitive}'")
        self.vocab_list = list(vocab)
        self.featurizer = KeypointFeaturizer(config.keypoint_model) if config.keypoint_model else None
        self.outcome = OutcomeFeaturizer(config.outcome_model) if config.outcome_model else None
        if self.outcome is not None and self.outcome.primitive != primitive:
            raise ValueError(f"outcome model {config.outcome_model} predicts '{self.outcome.primitive}' actions, "
                             f"the scorer scores '{primitive}'")
        self.members = nn.ModuleList(self.new_member() for _ in range(k))

    @property
    def extra_dim(self) -> int:
        """Per-candidate features from the keypoint and outcome models the head reads besides its own."""
        return (self.featurizer.dim if self.featurizer is not None else 0) + \
            (self.outcome.dim if self.outcome is not None else 0)

    def new_member(self) -> ScorerNet:
        """A freshly initialised member of this scorer's architecture."""
        return ScorerNet(self.config, self.normalizer.dim, self.vocab_list, self.workspace,
                         len(PRIMITIVE_SPECS[self.primitive].points), self.extra_dim)

    @property
    def k(self) -> int:
        return len(self.members)

    @property
    def vocab(self) -> list[str]:
        return self.members[0].goal_encoder.vocab

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- inputs ------------------------------------------------------------------------------
    def goal_ids(self, goals: Sequence[str]) -> torch.Tensor:
        return self.members[0].goal_encoder.token_ids(list(goals))

    def encode_actions(self, params: np.ndarray) -> torch.Tensor:
        """(N, D) parameters -> (N, F) float32 normalised features."""
        return torch.as_tensor(self.normalizer.encode(params), dtype=torch.float32)

    def extra_features(self, points: np.ndarray, colors: np.ndarray | None, goals: Sequence[str],
                       params: Sequence[np.ndarray]) -> list[torch.Tensor] | None:
        """Per observation i, (N_i, extra_dim) keypoint and outcome features of its candidates
        params[i] (N_i, D); None without either model."""
        if self.featurizer is None and self.outcome is None:
            return None
        parts: list[list[torch.Tensor]] = []
        if self.featurizer is not None:
            obj, tgt = self.featurizer.keypoints(points, colors, goals)
            parts.append([candidate_keypoint_features(obj[i:i + 1], tgt[i:i + 1],
                                                      candidate_points(self.primitive, p)[None])[0]
                          for i, p in enumerate(params)])
        if self.outcome is not None:
            parts.append([self.outcome.features(points[i], p, None if colors is None else colors[i], goals[i])
                          for i, p in enumerate(params)])
        return [torch.cat(row, dim=-1) for row in zip(*parts)]

    def _check(self, obs: Observation, candidates: Candidates) -> None:
        check_candidates(candidates, self.primitive)
        check_goal(obs.goal if isinstance(obs, Observation) else None)
        check_point_cloud(obs, need_colors=self.config.use_rgb, min_points=self.config.min_points)

    # -- scoring -----------------------------------------------------------------------------
    @torch.no_grad()
    def score(self, obs: Observation, candidates: Candidates) -> ScoreSet:
        """Scores (K, N) of the candidates; the observation is encoded once per member."""
        return self.score_batch([(obs, candidates)])[0]

    @torch.no_grad()
    def score_batch(self, requests: Sequence[tuple[Observation, Candidates]]) -> list[ScoreSet]:
        """Score several (obs, candidates) requests: observations with equally sized clouds are
        encoded together, and all candidates go through each member's head in one call."""
        if not requests:
            return []
        for obs, cands in requests:
            self._check(obs, cands)
        out: list[ScoreSet | None] = [None] * len(requests)
        groups: dict[int, list[int]] = {}
        for i, (obs, _) in enumerate(requests):
            groups.setdefault(len(obs.points), []).append(i)
        dev = self.device
        for idx in groups.values():
            pts = torch.as_tensor(np.stack([np.asarray(requests[i][0].points, np.float32) for i in idx]), device=dev)
            cols = None
            if self.config.use_rgb:
                cols = torch.as_tensor(np.stack([np.asarray(requests[i][0].colors, np.uint8) for i in idx]),
                                       device=dev)
            ids = self.goal_ids([requests[i][0].goal for i in idx]).to(dev)
            counts = [len(requests[i][1]) for i in idx]
            acts = torch.cat([self.encode_actions(requests[i][1].params) for i in idx]).to(dev)
            owner = torch.repeat_interleave(torch.arange(len(idx), device=dev),
                                            torch.as_tensor(counts, device=dev))
            points_of = [candidate_points(self.primitive, requests[i][1].params).to(dev) for i in idx]
            kp = None
            if self.extra_dim:  # its keypoint model may read colours the scorer does not
                kp_cols = (np.stack([np.asarray(requests[i][0].colors, np.uint8) for i in idx])
                           if all(requests[i][0].colors is not None for i in idx) else None)
                kp = self.extra_features(pts.cpu().numpy(), kp_cols, [requests[i][0].goal for i in idx],
                                         [requests[i][1].params for i in idx])
            member_scores = []
            for m in self.members:
                ctx = m.encode(pts, cols, ids)[owner]  # (sum N, C)
                parts = [ctx, acts] if m.config.use_actions else [ctx]
                if m.local is not None:  # each request's candidates against its own cloud
                    parts.append(torch.cat([m.local_features(pts[j:j + 1], None if cols is None else cols[j:j + 1],
                                                             points_of[j][None])[0] for j in range(len(idx))]))
                if kp is not None:
                    parts.append(torch.cat(kp).to(dev))
                member_scores.append(m.head(torch.cat(parts, dim=-1)).squeeze(-1))
            scores = torch.stack(member_scores).double().cpu().numpy()  # (K, sum N)
            for j, chunk in zip(idx, np.split(scores, np.cumsum(counts)[:-1], axis=1)):
                out[j] = ScoreSet.from_members(chunk)
        return out  # type: ignore[return-value]

    # -- pairs -------------------------------------------------------------------------------
    def pair_logits(self, pts, cols, ids, act_a, act_b, members: Sequence[int] | None = None,
                    pts_a=None, pts_b=None, kp_a=None, kp_b=None) -> torch.Tensor:
        """(K', B) member logits r(a) - r(b) of B pairs (tensors already on the device);
        pts_a / pts_b (B, Q, 3): the candidates' points in metres (for local patches);
        kp_a / kp_b (B, keypoint_dim): their keypoint features (with a keypoint model)."""
        acts = torch.stack([act_a, act_b], dim=1)  # (B, 2, F)
        action_points = None if pts_a is None else torch.stack([pts_a, pts_b], dim=1)
        kp = None if kp_a is None else torch.stack([kp_a, kp_b], dim=1)
        out = []
        for k in members if members is not None else range(self.k):
            s = self.members[k](pts, cols, ids, acts, action_points, kp)
            out.append(s[:, 0] - s[:, 1])
        return torch.stack(out)

    @torch.no_grad()
    def pair_probabilities(self, pairs: PreferencePairs, batch_size: int = 256) -> np.ndarray:
        """(K, M) member probabilities P(a > b) of every pair."""
        tensors = _pair_tensors(self, pairs, self.device)
        out = []
        for s in range(0, len(pairs), batch_size):
            sl = slice(s, s + batch_size)
            logits = self.pair_logits(tensors["points"][sl], None if tensors["colors"] is None else tensors["colors"][sl],
                                      tensors["ids"][sl], tensors["a"][sl], tensors["b"][sl],
                                      pts_a=tensors["pa"][sl], pts_b=tensors["pb"][sl],
                                      kp_a=_rows(tensors["ka"], sl), kp_b=_rows(tensors["kb"], sl))
            out.append(torch.sigmoid(logits).double().cpu().numpy())
        probs = np.concatenate(out, axis=1)
        if not np.all(np.isfinite(probs)):
            raise RewardModelError("scorer produced NaN/inf pair probabilities")
        return probs


def _head_weight_norm(member: ScorerNet) -> torch.Tensor:
    """Sum of squares of the head's weight matrices (biases are free)."""
    return sum((m.weight ** 2).sum() for m in member.head if isinstance(m, nn.Linear))


def _rows(t: torch.Tensor | None, sl) -> torch.Tensor | None:
    return None if t is None else t[sl]


def _pair_tensors(scorer: PreferenceScorer, pairs: PreferencePairs, device) -> dict:
    if pairs.primitive != scorer.primitive:
        raise RewardInputError(f"pairs of '{pairs.primitive}' for a '{scorer.primitive}' scorer")
    if scorer.config.use_rgb and pairs.colors is None:
        raise RewardInputError("this scorer uses colour but the pairs have no colours")
    pa, pb = candidate_points(pairs.primitive, pairs.params_a), candidate_points(pairs.primitive, pairs.params_b)
    ka = kb = None
    if scorer.extra_dim:
        fa, fb = [], []
        if scorer.featurizer is not None:
            obj, tgt = scorer.featurizer.keypoints(pairs.points, pairs.colors, pairs.goals)
            f = candidate_keypoint_features(obj, tgt, torch.stack([pa, pb], dim=1))  # pairs as (M, 2, Q, 3)
            fa.append(f[:, 0])
            fb.append(f[:, 1])
        if scorer.outcome is not None:
            oa, ob = scorer.outcome.pair_features(pairs.points, pairs.params_a, pairs.params_b, pairs.colors, pairs.goals)
            fa.append(oa)
            fb.append(ob)
        ka, kb = torch.cat(fa, dim=-1).to(device), torch.cat(fb, dim=-1).to(device)
    return {
        "ka": ka, "kb": kb,
        "points": torch.as_tensor(pairs.points, device=device),
        "colors": torch.as_tensor(pairs.colors, device=device) if scorer.config.use_rgb else None,
        "ids": scorer.goal_ids(pairs.goals).to(device),
        "a": scorer.encode_actions(pairs.params_a).to(device),
        "b": scorer.encode_actions(pairs.params_b).to(device),
        "pa": pa.to(device),
        "pb": pb.to(device),
        "labels": torch.as_tensor(pairs.labels, dtype=torch.float32, device=device),
    }


def evaluate_pairs(scorer: PreferenceScorer, pairs: PreferencePairs) -> dict:
    """Accuracy (decisive pairs), ECE (10 bins) and BT loss of the ensemble-mean P(a > b), plus
    each member's accuracy; counts of decisive / tie / can't-tell pairs."""
    probs = scorer.pair_probabilities(pairs)
    p = probs.mean(axis=0)
    y = pairs.labels
    keep = ~np.isnan(y)
    pc = np.clip(p[keep], 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y[keep] * np.log(pc) + (1 - y[keep]) * np.log(1 - pc))) if keep.any() else math.nan
    return {
        "accuracy": preference_accuracy(p, y),
        "ece": expected_calibration_error(p, y, 10),
        "loss": loss,
        "member_accuracy": [preference_accuracy(pk, y) for pk in probs],
        "n_pairs": int(len(y)),
        "n_decisive": int(np.sum((y == 0) | (y == 1))),
        "n_ties": int(np.sum(y == 0.5)),
        "n_cant_tell": int(np.sum(np.isnan(y))),
    }


# -- training --------------------------------------------------------------------------------

def split_pairs(pairs: PreferencePairs, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: a seeded split of the labelled pairs (can't-tell pairs go nowhere)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    labelled = np.flatnonzero(pairs.labelled)
    if len(labelled) == 0:
        raise RewardInputError("no labelled pairs: every pair is \"can't tell\"")
    perm = np.random.default_rng([seed, 7]).permutation(labelled)
    n_val = int(round(val_fraction * len(perm)))
    n_val = min(n_val, len(perm) - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def policy_encoder_init(path: str, primitive: str, base: ScorerConfig) -> dict:
    """What warm-starting from a policy checkpoint needs: a ScorerConfig whose encoder fields
    match the policy's (head settings kept from `base`), the policy's vocabulary and the
    state dicts of its goal and point encoders."""

    ck = load_policy(resolve(path), primitive=primitive)
    pc = ck.policy.config
    if pc.goal_encoder != "vocab":
        raise RewardInputError(f"{path}: only policies with goal_encoder=vocab can initialise a scorer")
    config = replace(base, use_rgb=pc.use_rgb, point_channels=list(pc.point_channels),
                     attention_heads=pc.attention_heads, obs_dim=pc.obs_dim, goal_dim=pc.goal_dim,
                     token_dim=pc.token_dim, max_goal_tokens=pc.max_goal_tokens, word_attention=pc.word_attention,
                     neighbourhood_radius=pc.neighbourhood_radius)
    return {"config": config, "vocab": list(ck.policy.vocab),
            "goal_encoder": ck.policy.goal_encoder.state_dict(),
            "point_encoder": ck.policy.point_encoder.state_dict()}


@torch.no_grad()
def _encode_pairs(member: ScorerNet, data: dict, batch: int = 64) -> torch.Tensor:
    """(M, C) observation contexts of every pair under a member's (frozen) encoder."""
    was_training = member.training
    member.eval()
    out = []
    for s in range(0, len(data["ids"]), batch):
        sl = slice(s, s + batch)
        cols = None if data["colors"] is None else data["colors"][sl]
        out.append(member.encode(data["points"][sl], cols, data["ids"][sl]))
    member.train(was_training)
    return torch.cat(out)


def train_scorer(pairs: PreferencePairs, config: TrainScorerConfig | None = None,
                 workspace: Workspace | None = None, vocab: Sequence[str] | None = None,
                 progress: bool = False) -> tuple[PreferenceScorer, dict]:
    """Train a K-member bootstrapped Bradley-Terry ensemble on `pairs`.

    Returns (scorer in eval mode, metrics): train/val pair counts, each member's final training
    loss, and on the validation split (`config.val_fraction` of the labelled pairs) the ensemble's
    accuracy (ties excluded), ECE (10 bins) and loss. vocab: the goal vocabulary (default: the
    words of the pairs' goals). Same pairs + same seed -> same weights and scores on CPU.
    """
    cfg = config or TrainScorerConfig()
    if cfg.ensemble_size < 1 or cfg.steps < 1 or cfg.batch_size < 1:
        raise ValueError("ensemble_size, steps and batch_size must be >= 1")
    if len(pairs) == 0:
        raise RewardInputError("no preference pairs to train on")
    train_idx, val_idx = split_pairs(pairs, cfg.val_fraction, cfg.seed)
    if len(train_idx) < cfg.ensemble_size:  # members would train on copies of the same few pairs
        raise RewardInputError(f"{len(train_idx)} labelled training pairs for {cfg.ensemble_size} ensemble members: "
                               f"each member trains on its own resample and needs at least one pair per member; "
                               f"label at least {cfg.ensemble_size} pairs (after the {cfg.val_fraction:g} validation "
                               "split) or lower ensemble_size")
    device = torch.device(resolve_device(cfg.device))
    init = policy_encoder_init(cfg.init_from_policy, pairs.primitive, cfg.scorer) if cfg.init_from_policy else None
    if init is not None:
        cfg = replace(cfg, scorer=init["config"])
        vocab = init["vocab"]
    vocab = list(vocab) if vocab else build_vocab(pairs.goals)
    scorer = PreferenceScorer(cfg.scorer, pairs.primitive, vocab, cfg.ensemble_size, workspace).to(device)
    data = _pair_tensors(scorer, pairs, device)
    n_pts = pairs.points.shape[1]
    frozen = init is not None and cfg.freeze_encoder
    # constant lr, AdamW, clipping when grad_clip > 0 (the field names train-scorer takes)
    optim = OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip)
    contexts = None
    losses = []
    bar = None
    if progress:
        bar = tqdm(total=cfg.ensemble_size * cfg.steps, desc="train scorer")
    for k in range(scorer.k):
        member_seed = int(np.random.SeedSequence([cfg.seed, k]).generate_state(1)[0])
        rng = np.random.default_rng(member_seed)
        with torch.random.fork_rng(devices=[]):  # each member's init depends only on its seed
            torch.manual_seed(member_seed)
            member = scorer.new_member().to(device)
        if init is not None:
            member.goal_encoder.load_state_dict(init["goal_encoder"])
            member.point_encoder.load_state_dict(init["point_encoder"])
        if frozen:
            member.goal_encoder.requires_grad_(False)
            member.point_encoder.requires_grad_(False)
            if contexts is None:  # every member has the same frozen encoder: encode each pair once
                contexts = _encode_pairs(member, data)
        scorer.members[k] = member
        boot = rng.choice(train_idx, size=len(train_idx), replace=True) if cfg.bootstrap else train_idx
        opt = make_optimizer([q for q in member.parameters() if q.requires_grad], optim)
        member.train()
        running = []
        for _step in range(cfg.steps):
            b = torch.as_tensor(rng.choice(boot, size=min(cfg.batch_size, len(boot)), replace=len(boot) < cfg.batch_size),
                                device=device)
            if frozen:
                local = None
                if member.local is not None:
                    local = member.local_features(data["points"][b], None if data["colors"] is None else data["colors"][b],
                                                  torch.stack([data["pa"][b], data["pb"][b]], dim=1))
                kp = None if data["ka"] is None else torch.stack([data["ka"][b], data["kb"][b]], dim=1)
                s = member.score_context(contexts[b], torch.stack([data["a"][b], data["b"][b]], dim=1), local, kp)
                logits = s[:, 0] - s[:, 1]
            else:
                pts, cols = data["points"][b], None if data["colors"] is None else data["colors"][b]
                if cfg.train_points and cfg.train_points < n_pts:
                    sub = torch.as_tensor(rng.choice(n_pts, cfg.train_points, replace=False), device=device)
                    pts = pts[:, sub]
                    cols = None if cols is None else cols[:, sub]
                logits = scorer.pair_logits(pts, cols, data["ids"][b], data["a"][b], data["b"][b], members=[k],
                                            pts_a=data["pa"][b], pts_b=data["pb"][b],
                                            kp_a=_rows(data["ka"], b), kp_b=_rows(data["kb"], b))[0]
            loss = bt_loss(logits, data["labels"][b])
            if cfg.head_l2 > 0:
                loss = loss + cfg.head_l2 / len(train_idx) * _head_weight_norm(member)
            optimizer_step(opt, loss, member.parameters(), optim)
            running.append(float(loss.detach()))
            if bar is not None:
                bar.update(1)
        losses.append(float(np.mean(running[-max(1, cfg.steps // 10):])))
    if bar is not None:
        bar.close()
    scorer.eval()
    metrics = {"n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
               "n_cant_tell": int(np.sum(~pairs.labelled)), "member_train_loss": losses,
               "ensemble_size": scorer.k, "steps": cfg.steps, "seed": cfg.seed,
               "init_from_policy": cfg.init_from_policy, "frozen_encoder": frozen}
    if cfg.calibrate:
        metrics["calibration"] = _calibrate(scorer, pairs, train_idx, cfg, workspace, vocab)
    if len(val_idx):
        val = evaluate_pairs(scorer, pairs.subset(val_idx))
        metrics.update({f"val_{key}": v for key, v in val.items()})
    return scorer, metrics


TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(3.0), 60))
# Plausible labeller lapse rates only: with a weak scorer a large lapse and a small temperature
# explain the labels equally well, and that pair is overconfident against the truth.
LAPSES = (0.0, 0.025, 0.05, 0.075, 0.1)


def _calibrate(scorer: PreferenceScorer, pairs: PreferencePairs, train_idx: np.ndarray, cfg: TrainScorerConfig,
               workspace: Workspace | None, vocab: Sequence[str]) -> dict:
    """Temperature + lapse for `scorer`, fitted on out-of-fold probabilities (cfg.calibration_folds
    scorers, each trained like `scorer` without one fold), then applied to `scorer`'s members.
    Too few pairs for two folds of at least one pair each: fitted on the training pairs."""
    folds = min(int(cfg.calibration_folds), len(train_idx))
    if folds < 2:
        return calibrate_scorer(scorer, pairs.subset(train_idx))
    order = np.random.default_rng([cfg.seed, 19]).permutation(train_idx)
    parts = np.array_split(order, folds)
    logits, labels = [], []
    for f, held in enumerate(parts):
        rest = np.sort(np.concatenate([p for g, p in enumerate(parts) if g != f]))
        sub_cfg = replace(cfg, calibrate=False, val_fraction=0.0, seed=cfg.seed + 1000 * (f + 1),
                          ensemble_size=min(cfg.ensemble_size, len(rest)))
        fold_scorer, _ = train_scorer(pairs.subset(rest), sub_cfg, workspace=workspace, vocab=vocab)
        out = pairs.subset(np.sort(held))
        keep = out.labelled
        probs = np.clip(fold_scorer.pair_probabilities(out)[:, keep], 1e-9, 1 - 1e-9)
        logits.append(np.log(probs) - np.log1p(-probs))
        labels.append(out.labels[keep])
    # fold scorers may differ in member count: fit on each pair's ensemble-mean logit
    q = np.clip(np.concatenate([(0.5 * (1 + np.tanh(0.5 * lg))).mean(axis=0) for lg in logits]), 1e-9, 1 - 1e-9)
    t, e, nll = fit_temperature((np.log(q) - np.log1p(-q))[None], np.concatenate(labels))
    _divide_scores(scorer, t)
    return {"temperature": t, "lapse": e, "nll": nll, "folds": folds}


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(T, e, mean NLL): the grid point of `TEMPERATURES` x `LAPSES` maximising the likelihood of
    `labels` (1 A, 0 B, 0.5 tie) under P(A) = e + (1 - 2e) * mean_k sigmoid(logits_k / T);
    logits: (K, M) member logits of the same M pairs."""
    y = np.where(labels == TIE, 0.5, labels)
    best = (math.inf, 1.0, 0.0)
    for t in TEMPERATURES:
        q = (0.5 * (1.0 + np.tanh(0.5 * logits / t))).mean(axis=0)
        for e in LAPSES:
            p = np.clip(e + (1 - 2 * e) * q, 1e-6, 1 - 1e-6)
            nll = float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
            if nll < best[0]:
                best = (nll, float(t), float(e))
    nll, t, e = best
    return t, e, nll


@torch.no_grad()
def _divide_scores(scorer: PreferenceScorer, t: float) -> None:
    """Every member's scores divided by t (its output layer), so rankings are unchanged."""
    for m in scorer.members:
        out = [layer for layer in m.head if isinstance(layer, nn.Linear)][-1]
        out.weight.div_(t)
        out.bias.div_(t)


@torch.no_grad()
def calibrate_scorer(scorer: PreferenceScorer, pairs: PreferencePairs) -> dict:
    """Fit a temperature T and a lapse rate e on `pairs` (`fit_temperature` on the scorer's own
    member logits) and divide every member's scores by T. Returns {"temperature", "lapse", "nll"}."""
    probs = np.clip(scorer.pair_probabilities(pairs)[:, pairs.labelled], 1e-9, 1 - 1e-9)
    t, e, nll = fit_temperature(np.log(probs) - np.log1p(-probs), pairs.labels[pairs.labelled])
    _divide_scores(scorer, t)
    return {"temperature": t, "lapse": e, "nll": nll}


def learning_curve(train_pairs: PreferencePairs, val_pairs: PreferencePairs, sizes: Sequence[int] = (50, 100, 200, 500),
                   config: TrainScorerConfig | None = None, png: str | Path | None = None) -> list[dict]:
    """Validation accuracy/ECE vs number of training labels (the first n pairs of `train_pairs`).

    Sizes larger than the training set are skipped. png: also write a matplotlib plot there.
    """
    cfg = replace(config or TrainScorerConfig(), val_fraction=0.0)
    vocab = build_vocab(list(train_pairs.goals) + list(val_pairs.goals))
    rows = []
    for n in sorted(set(int(s) for s in sizes)):
        if n < 1 or n > len(train_pairs):
            continue
        scorer, _ = train_scorer(train_pairs.subset(np.arange(n)), cfg, vocab=vocab)
        ev = evaluate_pairs(scorer, val_pairs)
        rows.append({"n_labels": n, "accuracy": ev["accuracy"], "ece": ev["ece"], "loss": ev["loss"]})
    if png is not None and rows:
        _plot_curve(Path(png), rows)
    return rows


def _plot_curve(path: Path, rows: list[dict]) -> Path:
    matplotlib.use("Agg")

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r["n_labels"] for r in rows], [r["accuracy"] for r in rows], "o-", label="val accuracy")
    ax.plot([r["n_labels"] for r in rows], [r["ece"] for r in rows], "s--", label="val ECE")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("preference labels")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
