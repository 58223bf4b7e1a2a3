"""The outcome network, its training on executed transitions, and its files.

Inputs and targets come from the task (`Task.cloud_outcome`): a candidate's inputs from the cloud
before it, the measures of the cloud after it. The network is an ensemble of small MLPs on
normalised inputs; training minimises the Huber error of the measures, with the task's symmetric
copies of every transition added (a mirrored scene moves the same way). Files are
`<name>.safetensors` + `<name>.json` (`robot_rewards.nn.artifacts`: no pickles, checksummed).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robot_rewards.data.transitions import Transitions
from robot_rewards.nn.artifacts import ArtifactMismatchError, artifact_paths, dataclass_from, load_artifact, save_artifact
from robot_rewards.rewards.outcome.config import OutcomeModelConfig, TrainOutcomeConfig
from robot_rewards.rewards.outcome.keypoint_outcome import KeypointCloudOutcome, keypoint_outcome
from robot_rewards.sim.tasks import TASKS
from robot_rewards.sim.tasks.base import CloudOutcome, KeypointReading

FORMAT = "robot_rewards.outcome_model"
VERSION = 1
_PREFIX = "model/"


class OutcomeNet(nn.Module):
    """(N, D) candidate inputs -> (K, N, M) predicted measures, one row per ensemble member."""

    def __init__(self, config: OutcomeModelConfig, input_dim: int, n_measures: int):
        super().__init__()
        if config.ensemble_size < 1 or config.layers < 1 or config.hidden < 1:
            raise ValueError(f"an outcome model needs ensemble_size, layers and hidden >= 1, got {config}")
        self.config, self.input_dim, self.n_measures = config, int(input_dim), int(n_measures)
        self.register_buffer("input_mean", torch.zeros(input_dim))
        self.register_buffer("input_std", torch.ones(input_dim))

        def member() -> nn.Sequential:
            dims = [input_dim] + [config.hidden] * config.layers
            layers: list[nn.Module] = []
            for a, b in zip(dims[:-1], dims[1:]):
                layers += [nn.Linear(a, b), nn.GELU()]
            return nn.Sequential(*layers, nn.Linear(dims[-1], n_measures))

        self.members = nn.ModuleList(member() for _ in range(config.ensemble_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.input_mean) / self.input_std
        return torch.stack([m(z) for m in self.members])

    @torch.no_grad()
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """(K, N, M) float64 predictions of (N, D) inputs."""
        x = torch.as_tensor(np.asarray(inputs, dtype=np.float32), device=self.input_mean.device)
        return self(x).double().cpu().numpy()


def task_outcome(task: str, keypoint_model: str = "") -> CloudOutcome:
    """How an outcome model reads `task`'s clouds: the task's own `cloud_outcome`, or, for a task
    whose keypoints keep their meaning across a step (`outcome_from_keypoints`), the keypoint
    model `keypoint_model` (default: the shipped checkpoints/keypoints_<task>.json). A
    ValueError names the tasks that have one."""
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; known: {sorted(TASKS)}")
    cls = TASKS[task]
    if cls.cloud_outcome is not None:
        return cls.cloud_outcome
    if cls.outcome_from_keypoints is not None:
        path = keypoint_model or f"checkpoints/keypoints_{task}.json"
        try:
            outcome = keypoint_outcome(str(path), cls.outcome_from_keypoints)
        except FileNotFoundError as exc:
            raise ValueError(f"task '{task}' measures outcomes with a keypoint model; {exc}") from exc
        if outcome.task != task:
            raise ArtifactMismatchError(f"keypoint model {path} reads task '{outcome.task}', not '{task}'")
        return outcome
    have = sorted(name for name, c in TASKS.items() if c.cloud_outcome is not None or c.outcome_from_keypoints is not None)
    raise ValueError(f"task '{task}' defines no cloud outcome (Task.cloud_outcome, Task.outcome_from_keypoints) "
                     f"for an outcome model; tasks with one: {have}")


def outcome_reader(outcome: CloudOutcome) -> dict | None:
    """What an outcome-model file records of how its measures were read: the keypoint model's
    path and weights' SHA-256, or None for a task's own cloud reading."""
    if isinstance(outcome, KeypointCloudOutcome):
        return {"keypoint_model": outcome.path, "sha256": outcome.sha256, "reading": asdict(outcome.reading)}
    return None


def _same_reading(saved: dict | None, now: dict | None) -> bool:
    """Whether two recorded `KeypointReading`s are the same (None: the default one; JSON turns
    tuples into lists)."""
    def norm(r: dict | None) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in (r or asdict(KeypointReading())).items()}
    return norm(saved) == norm(now)


@dataclass(eq=False)
class OutcomeExamples:
    """Inputs (T, D), measured outcomes (T, M) and start state (T,) of usable transitions."""

    inputs: np.ndarray
    targets: np.ndarray
    state: np.ndarray
    skipped: int  # transitions whose clouds the task could not read (e.g. an occluded mark)


def outcome_examples(data: Transitions, outcome: CloudOutcome) -> OutcomeExamples:
    """Inputs and targets of every transition whose before and after clouds the task can read."""
    xs, ys, states, skipped = [], [], [], 0
    for s in range(data.n_states):
        idx = np.flatnonzero(data.state == s)
        if len(idx) == 0:
            continue
        try:
            x = outcome.inputs(data.points[s], data.params[idx], data.state_colors(s), data.goals[s])
        except ValueError:
            skipped += len(idx)
            continue
        for row, t in zip(x, idx):
            try:
                y = outcome.measures(data.next_points[t], data.next_state_colors(t), data.goals[s])
            except ValueError:
                skipped += 1
                continue
            xs.append(row)
            ys.append(y)
            states.append(s)
    if not xs:
        raise ValueError(f"none of the {len(data)} transitions has clouds the task's outcome can read")
    return OutcomeExamples(np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32), np.asarray(states), skipped)


def same_state_pair_accuracy(score: np.ndarray, truth: np.ndarray, state: np.ndarray, margin: float = 0.0) -> tuple[float, int]:
    """How often two transitions from the same state are ordered by `score` as by `truth`
    (pairs whose truths differ by more than `margin`); (accuracy, pairs)."""
    right, n = 0, 0
    for s in np.unique(state):
        i = np.flatnonzero(state == s)
        a, b = np.triu_indices(len(i), 1)
        d = truth[i[a]] - truth[i[b]]
        keep = np.abs(d) > margin
        right += int(np.sum((score[i[a]] - score[i[b]] > 0)[keep] == (d > 0)[keep]))
        n += int(keep.sum())
    return (right / n if n else float("nan")), n


def train_outcome_model(data: Transitions, config: TrainOutcomeConfig | None = None,
                        progress: bool = True, keypoint_model: str = "") -> tuple[OutcomeNet, dict]:
    """Fit an outcome model to `data`; returns (model in eval mode, metrics). Validation is on
    whole start states held out (`val_fraction`): the measures' mean absolute error and how often
    two actions from one state are ranked as their measured outcomes are."""
    cfg = config or TrainOutcomeConfig()
    if cfg.steps < 1 or cfg.batch_size < 1 or not 0.0 <= cfg.val_fraction < 1.0:
        raise ValueError(f"need steps >= 1, batch_size >= 1 and 0 <= val_fraction < 1, got "
                         f"{cfg.steps}, {cfg.batch_size}, {cfg.val_fraction}")
    outcome = task_outcome(data.task, keypoint_model)
    ex = outcome_examples(data, outcome)
    rng = np.random.default_rng([cfg.seed, 77])
    states = np.unique(ex.state)
    n_val = int(round(cfg.val_fraction * len(states)))
    val_states = set(rng.choice(states, size=n_val, replace=False).tolist()) if n_val else set()
    is_val = np.array([s in val_states for s in ex.state])
    x, y = ex.inputs[~is_val], ex.targets[~is_val]
    if len(x) < 2:
        raise ValueError(f"{len(x)} usable training transitions: too few to fit an outcome model")
    if cfg.augment:
        copies = outcome.symmetries(x)
        x, y = np.concatenate([x, *copies]), np.concatenate([y] * (1 + len(copies)))
    torch.manual_seed(cfg.seed)
    model = OutcomeNet(cfg.model, x.shape[1], y.shape[1])
    model.input_mean.copy_(torch.as_tensor(x.mean(axis=0)))
    model.input_std.copy_(torch.as_tensor(x.std(axis=0) + 1e-6))
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    model.train()
    for k, member in enumerate(model.members):
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + k)
        opt = torch.optim.AdamW(member.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
        for _ in range(cfg.steps):
            i = torch.randint(0, len(xt), (min(cfg.batch_size, len(xt)),), generator=gen)
            z = (xt[i] - model.input_mean) / model.input_std
            loss = nn.functional.smooth_l1_loss(member(z), yt[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if progress:
            print(f"outcome model member {k + 1}/{len(model.members)}: final batch loss {loss.item():.4f}", flush=True)
    model.eval()
    metrics = {"transitions": len(data), "usable": int(len(ex.inputs)), "skipped": ex.skipped,
               "train_transitions": int((~is_val).sum()), "train_examples_with_symmetries": int(len(x)),
               "states": int(len(states)), "val_states": n_val}
    if is_val.any():
        pred = model.predict(ex.inputs[is_val]).mean(axis=0)
        truth = ex.targets[is_val]
        metrics["val_mae"] = {name: float(np.abs(pred[:, j] - truth[:, j]).mean())
                              for j, name in enumerate(outcome.measure_names)}
        acc, n = same_state_pair_accuracy(outcome.score(pred), outcome.score(truth), ex.state[is_val], margin=0.5)
        metrics["val_same_state_pair_accuracy"] = acc
        metrics["val_same_state_pairs"] = n
    return model, metrics


def outcome_model_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(json, safetensors) of `<name>`, `<name>.json`, `<name>.safetensors` or a folder holding `outcome.json`."""
    return artifact_paths(path, ("outcome",))


def save_outcome_model(path: str | os.PathLike, model: OutcomeNet, task: str, primitive: str,
                       perception: dict | None = None, training: dict | None = None, keypoint_model: str = "") -> Path:
    """Write the model (atomically); returns the JSON path. A folder gets `outcome.{json,safetensors}`."""
    p = Path(path)
    json_path, st_path = (p / "outcome.json", p / "outcome.safetensors") if p.is_dir() else outcome_model_paths(p)
    outcome = task_outcome(task, keypoint_model)
    meta = {"task": task, "primitive": primitive, "measure_names": list(outcome.measure_names),
            "measured_by": outcome_reader(outcome),
            "input_dim": model.input_dim, "model": asdict(model.config), "perception": perception,
            "training": dict(training or {})}
    tensors = {_PREFIX + k: v for k, v in model.state_dict().items()}
    return save_artifact(json_path, st_path, tensors, meta, FORMAT, VERSION)


@dataclass(eq=False)
class OutcomeCheckpoint:
    """A loaded outcome model (eval mode) and its metadata."""

    model: OutcomeNet
    task: str
    primitive: str
    meta: dict
    path: Path
    outcome: CloudOutcome  # how its inputs and measures are read from clouds


def load_outcome_model(path: str | os.PathLike, task: str | None = None, device: str = "cpu") -> OutcomeCheckpoint:
    """Load an outcome-model file; another task than `task`, or inputs that no longer match the
    task's `cloud_outcome`, raise ArtifactMismatchError; damaged files ArtifactError."""
    json_path, st_path = outcome_model_paths(path)
    meta, tensors = load_artifact(json_path, st_path, FORMAT, VERSION, "outcome-model",
                                  ("task", "primitive", "measure_names", "input_dim", "model"))
    if task is not None and meta["task"] != task:
        raise ArtifactMismatchError(f"{json_path} predicts outcomes of task '{meta['task']}', not '{task}'")
    reader = meta.get("measured_by") or {}
    outcome = task_outcome(meta["task"], str(reader.get("keypoint_model", "")))
    current = outcome_reader(outcome) or {}
    if reader and reader.get("sha256") != current.get("sha256"):
        raise ArtifactMismatchError(f"{json_path} learned measures read by keypoint model {reader['keypoint_model']} "
                                    f"with weights {str(reader.get('sha256'))[:12]}..., that file now holds other "
                                    f"weights: retrain it (train-outcome)")
    # files from before readings were recorded read with the default (no sharpening)
    if reader and not _same_reading(reader.get("reading"), current.get("reading")):
        raise ArtifactMismatchError(f"{json_path} learned measures read as {reader.get('reading')}, the task now reads "
                                    f"them as {current.get('reading')}: retrain it (train-outcome)")
    if list(meta["measure_names"]) != list(outcome.measure_names):
        raise ArtifactMismatchError(f"{json_path} predicts {meta['measure_names']}, the task now measures "
                                    f"{list(outcome.measure_names)}: retrain it (train-outcome)")
    if int(meta["input_dim"]) != outcome.input_dim:
        raise ArtifactMismatchError(f"{json_path} reads {meta['input_dim']} inputs per candidate, the task now gives "
                                    f"{outcome.input_dim}: retrain it (train-outcome)")
    config = dataclass_from(OutcomeModelConfig, meta["model"], "model", json_path)
    model = OutcomeNet(config, int(meta["input_dim"]), len(meta["measure_names"]))
    state = {k[len(_PREFIX):]: v for k, v in tensors.items() if k.startswith(_PREFIX)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtifactMismatchError(f"{st_path} does not fit the network its config describes: {exc}") from exc
    model.to(device).eval()
    return OutcomeCheckpoint(model, str(meta["task"]), str(meta["primitive"]), meta, json_path, outcome)
