"""A learned keypoint source: a small goal-conditioned PointNet regressing task keypoints.

Input: a point cloud (+ colours) and the goal sentence; output: K object keypoints and K target
keypoints in the base frame. The network is the policy's goal-FiLM `PointEncoder` (whose
attention pools already report where the goal's objects are) + a linear head predicting
workspace-normalised coordinates. Trained on sim ground truth (`collect_keypoint_dataset` +
`train_keypoint_model`), evaluated as mean keypoint error in mm on held-out seeds
(`evaluate_keypoint_model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from robot_rewards.core.device import resolve_device
from robot_rewards.core.keypoints import canonical_order
from robot_rewards.core.observation import Observation
from robot_rewards.core.primitives import Workspace
from robot_rewards.nn.encoders import PointEncoder, VocabGoalEncoder, build_vocab, workspace_scale
from robot_rewards.nn.training import OptimConfig, make_optimizer, optimizer_step
from robot_rewards.policy.config import policy_perception
from robot_rewards.rewards.base import RewardInputError, check_goal, check_point_cloud
from robot_rewards.rewards.keypoints.config import KeypointModelConfig, TrainKeypointConfig
from robot_rewards.rewards.keypoints.reward import Keypoints, task_keypoints
from robot_rewards.sim.env import TabletopEnv


@dataclass(eq=False)
class KeypointDataset:
    """M scenes: points (M, P, 3), colors (M, P, 3) uint8 or None, goals, ground-truth object and
    target keypoints (M, K, 3), the seeds they came from and the keypoint names."""

    points: np.ndarray
    colors: np.ndarray | None
    goals: list[str]
    objects: np.ndarray
    targets: np.ndarray
    seeds: np.ndarray
    names: list[str]

    def __post_init__(self):
        self.points = np.asarray(self.points, dtype=np.float32)
        m = len(self.points)
        self.objects = np.asarray(self.objects, dtype=np.float64)
        self.targets = np.asarray(self.targets, dtype=np.float64)
        if self.points.ndim != 3 or self.points.shape[2] != 3:
            raise RewardInputError(f"points must be (M, P, 3), got {self.points.shape}")
        if self.objects.ndim != 3 or self.objects.shape[0] != m or self.objects.shape != self.targets.shape:
            raise RewardInputError(f"objects {self.objects.shape} and targets {self.targets.shape} must be (M, K, 3), M={m}")
        if self.colors is not None:
            self.colors = np.asarray(self.colors, dtype=np.uint8)
        if len(self.goals) != m:
            raise RewardInputError(f"{len(self.goals)} goals for {m} scenes")
        self.seeds = np.asarray(self.seeds, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return len(self.points)

    def subset(self, index) -> KeypointDataset:
        index = np.asarray(index)
        return KeypointDataset(self.points[index], None if self.colors is None else self.colors[index],
                               [self.goals[i] for i in np.arange(len(self))[index]], self.objects[index],
                               self.targets[index], self.seeds[index], self.names)


class KeypointNet(nn.Module):
    """(cloud, goal) -> (B, K, 3) object and (B, K, 3) target keypoints in metres."""

    def __init__(self, config: KeypointModelConfig, vocab: Sequence[str], workspace: Workspace | None = None):
        super().__init__()
        self.config = config
        self.workspace = workspace or Workspace()
        self.goal_encoder = VocabGoalEncoder(vocab, config.token_dim, config.max_goal_tokens, config.goal_dim)
        self.point_encoder = PointEncoder(config.point_channels, config.goal_dim, config.obs_dim,
                                          config.attention_heads, config.use_rgb, self.workspace)
        self.head = nn.Linear(config.obs_dim + config.goal_dim, 2 * config.n_keypoints * 3)
        centre, half = workspace_scale(self.workspace)
        self.register_buffer("ws_centre", centre.float(), persistent=False)
        self.register_buffer("ws_half", half.float(), persistent=False)

    def forward_normalised(self, points, colors, goal_ids) -> torch.Tensor:
        """(B, 2K, 3) keypoints in workspace coordinates ([-1, 1] over the box)."""
        g = self.goal_encoder(goal_ids)
        h = torch.cat([self.point_encoder(points, colors, g), g], dim=-1)
        return self.head(h).reshape(len(points), 2 * self.config.n_keypoints, 3)

    def forward(self, points, colors, goal_ids) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.forward_normalised(points, colors, goal_ids) * self.ws_half + self.ws_centre
        k = self.config.n_keypoints
        return x[:, :k], x[:, k:]


def train_keypoint_model(data: KeypointDataset, config: TrainKeypointConfig | None = None,
                         workspace: Workspace | None = None) -> tuple[KeypointNet, dict]:
    """Fit a KeypointNet to ground-truth keypoints (MSE in workspace coordinates); returns
    (model in eval mode, {"train_loss", "train_error_mm"}). Seeded."""
    cfg = config or TrainKeypointConfig()
    if len(data) == 0:
        raise RewardInputError("empty keypoint dataset")
    k = data.objects.shape[1]
    if cfg.model.n_keypoints != k:
        raise ValueError(f"model predicts {cfg.model.n_keypoints} keypoints, the data has {k}")
    device = torch.device(resolve_device(cfg.device))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = KeypointNet(cfg.model, build_vocab(data.goals), workspace).to(device)
    rng = np.random.default_rng(cfg.seed)
    pts = torch.as_tensor(data.points, device=device)
    cols = torch.as_tensor(data.colors, device=device) if cfg.model.use_rgb else None
    if cfg.model.use_rgb and data.colors is None:
        raise RewardInputError("the model uses colour but the dataset has no colours")
    ids = model.goal_encoder.token_ids(data.goals).to(device)
    target = torch.as_tensor(np.concatenate([data.objects, data.targets], axis=1), dtype=torch.float32, device=device)
    target = (target - model.ws_centre) / model.ws_half
    optim = OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay)  # constant lr, no clipping
    opt = make_optimizer(model.parameters(), optim)
    model.train()
    losses = []
    for _ in range(cfg.steps):
        b = torch.as_tensor(rng.choice(len(data), size=min(cfg.batch_size, len(data)), replace=False), device=device)
        pred = model.forward_normalised(pts[b], None if cols is None else cols[b], ids[b])
        loss = nn.functional.mse_loss(pred, target[b])
        optimizer_step(opt, loss, model.parameters(), optim)
        losses.append(float(loss.detach()))
    model.eval()
    return model, {"train_loss": float(np.mean(losses[-max(1, cfg.steps // 10):])),
                   "train_error_mm": evaluate_keypoint_model(model, data)["mean_error_mm"]}


@torch.no_grad()
def predict_keypoints(model: KeypointNet, points, colors, goals: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(M, K, 3) object and target keypoints (metres) for M clouds."""
    dev = next(model.parameters()).device
    pts = torch.as_tensor(np.asarray(points, dtype=np.float32), device=dev)
    cols = torch.as_tensor(np.asarray(colors, dtype=np.uint8), device=dev) if model.config.use_rgb else None
    ids = model.goal_encoder.token_ids(list(goals)).to(dev)
    obj, tgt = model(pts, cols, ids)
    return obj.double().cpu().numpy(), tgt.double().cpu().numpy()


def evaluate_keypoint_model(model: KeypointNet, data: KeypointDataset) -> dict:
    """Mean / median / per-keypoint errors (mm) of the model on `data` (e.g. held-out seeds)."""
    obj, tgt = predict_keypoints(model, data.points, data.colors, data.goals)
    err_obj = np.linalg.norm(obj - data.objects, axis=-1) * 1000
    err_tgt = np.linalg.norm(tgt - data.targets, axis=-1) * 1000
    both = np.concatenate([err_obj, err_tgt], axis=1)
    return {"mean_error_mm": float(both.mean()), "median_error_mm": float(np.median(both)),
            "object_error_mm": float(err_obj.mean()), "target_error_mm": float(err_tgt.mean()),
            "n_scenes": int(len(data)), "seeds": data.seeds.tolist()}


def mean_baseline_error_mm(train: KeypointDataset, test: KeypointDataset) -> float:
    """Mean error (mm) of always predicting the training set's mean keypoints (the floor a
    learned model must beat)."""
    obj, tgt = train.objects.mean(axis=0), train.targets.mean(axis=0)
    e = np.concatenate([np.linalg.norm(test.objects - obj, axis=-1), np.linalg.norm(test.targets - tgt, axis=-1)], axis=1)
    return float(e.mean() * 1000)


def collect_keypoint_dataset(task: str, seeds: Sequence[int], perception=None, sim=None) -> KeypointDataset:
    """Reset `task` at each seed, observe (point cloud through `perception`, default the
    policy's settings) and record the ground-truth keypoints (`task_keypoints`), pairs in
    `canonical_order` and named by the task's `keypoint_names` (as `train-keypoints` does)."""
    pts, cols, goals, objs, tgts = [], [], [], [], []
    with TabletopEnv(task, sim=sim, perception=perception or policy_perception()) as env:
        for s in seeds:
            env.reset(int(s))
            obs = env.observe()
            kp = task_keypoints(env.task, env.world)
            obj, tgt = canonical_order(kp.objects, kp.targets)
            pts.append(obs.points)
            cols.append(obs.colors)
            goals.append(obs.goal)
            objs.append(obj)
            tgts.append(tgt)
        names = list(env.task.keypoint_names)
    return KeypointDataset(np.stack(pts), np.stack(cols), goals, np.stack(objs), np.stack(tgts),
                           np.asarray(seeds), names)


class LearnedKeypointSource:
    """`KeypointSource` from a trained KeypointNet (names from the training data)."""

    def __init__(self, model: KeypointNet, names: Sequence[str] = ()):
        self.model, self.names = model, list(names)

    def keypoints(self, obs: Observation) -> Keypoints:
        check_goal(obs.goal)
        check_point_cloud(obs, need_colors=self.model.config.use_rgb)
        obj, tgt = predict_keypoints(self.model, np.asarray(obs.points)[None],
                                     None if obs.colors is None else np.asarray(obs.colors)[None], [obs.goal])
        return Keypoints(obj[0], tgt[0], self.names)
