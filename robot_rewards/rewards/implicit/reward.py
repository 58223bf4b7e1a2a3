"""DeformPAM's implicit reward: a preference-tuned diffusion policy against its frozen reference.

Diffusion-DPO (Wallace et al.) fine-tunes a copy of the policy so that preferred actions become
easier to denoise than under the reference and rejected ones harder. The tuned/reference pair
then defines, for an action a in observation o,

    r(a) = -beta * T * E_{t, eps} [ |eps - eps_tuned(a_t, t)|^2 - |eps - eps_ref(a_t, t)|^2 ],
    a_t = sqrt(abar_t) a + sqrt(1 - abar_t) eps,

(|.|^2 the mean over the action's features, T the number of diffusion steps), which is what
DPO's loss treats as the reward; DeformPAM ranks the policy's candidates by it.

The expectation is estimated with M fixed noise draws (t_m, eps_m) derived from a seed:

- the same draws for every candidate and every request ("common random numbers"): the noise
  cancels in the differences between candidates, which is all that ranking uses, and a
  candidate's score does not depend on which other candidates are scored with it;
- timesteps are stratified over [0, T) so that a few draws cover the whole noise range.

Scoring runs every candidate x draw through each model's denoiser in one batched call, after
encoding each observation once per model. `members` > 1 splits the M draws into that many
groups, each one a member of the ScoreSet: their spread is the Monte-Carlo error of the
estimate (not an ensemble's epistemic uncertainty).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation
from robot_rewards.core.paths import resolve
from robot_rewards.nn.artifacts import ArtifactError, ArtifactMismatchError, read_json, write_json
from robot_rewards.policy import checkpoint
from robot_rewards.policy.checkpoint import load_policy
from robot_rewards.policy.model import DiffusionPolicy, PolicyInputError
from robot_rewards.rewards.base import (
    RewardInputError,
    RewardModelError,
    ScoreSet,
    check_candidates,
    check_goal,
)
from robot_rewards.rewards.preference.scorer import expected_calibration_error, preference_accuracy

FORMAT = "robot_rewards.implicit_reward"
VERSION = 1


class ReferenceMismatchError(ArtifactMismatchError):
    """A tuned policy and a reference that do not describe the same action space / task."""


# -- the estimator ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class NoiseDraws:
    """M fixed (timestep, noise) draws: t (M,) long, eps (M, F) float32, on the CPU."""

    t: torch.Tensor
    eps: torch.Tensor

    @classmethod
    def make(cls, seed: int, m: int, dim: int, train_steps: int, t_fraction: float = 1.0) -> NoiseDraws:
        """Stratified timesteps over the lowest-noise `t_fraction` of the schedule (draw k in
        [k S / M, (k + 1) S / M) with S = ceil(t_fraction T)) and Gaussian noise, from `seed`.
        DeformPAM scores with the lowest-noise 10% only: there the denoisers differ by the action."""
        if m < 1:
            raise ValueError(f"noise_draws must be >= 1, got {m}")
        if not 0.0 < t_fraction <= 1.0:
            raise ValueError(f"t_fraction must be in (0, 1], got {t_fraction}")
        span = max(1, math.ceil(t_fraction * train_steps))
        g = torch.Generator().manual_seed(int(seed))
        u = torch.rand(m, generator=g, dtype=torch.float64)
        t = torch.floor((torch.arange(m, dtype=torch.float64) + u) * span / m).long()
        eps = torch.randn(m, dim, generator=g)
        return cls(t.clamp_(0, span - 1), eps)

    def __len__(self) -> int:
        return len(self.t)


def denoising_error(policy: DiffusionPolicy, cond: torch.Tensor, x0: torch.Tensor, t: torch.Tensor,
                    eps: torch.Tensor) -> torch.Tensor:
    """(B,) mean squared error of the policy's noise prediction for clean actions x0 (B, F)
    noised with eps (B, F) to timesteps t (B,), conditioned on cond (B, C)."""
    x_t = policy.schedule.add_noise(x0, eps, t)
    pred = policy.denoise(x_t, t, cond)
    return (pred - eps).pow(2).mean(dim=-1)


def reward_scale(policy: DiffusionPolicy, beta: float) -> float:
    """beta * T: DPO's beta is per diffusion step, the reward sums the T steps' terms."""
    return float(beta) * policy.schedule.train_steps


def check_compatible(tuned: DiffusionPolicy, reference: DiffusionPolicy) -> None:
    """Raise ReferenceMismatchError unless both policies denoise the same action vector with the
    same noise schedule: otherwise their errors are not comparable and r(a) means nothing."""
    reference.require_full_diffusion("the implicit (DPO) reward")
    if tuned.primitive != reference.primitive:
        raise ReferenceMismatchError(f"tuned policy is for '{tuned.primitive}', the reference for "
                                     f"'{reference.primitive}'")
    tn, rn = tuned.normalizer, reference.normalizer
    if tn.dim != rn.dim or not (np.array_equal(tn.low, rn.low) and np.array_equal(tn.high, rn.high)):
        raise ReferenceMismatchError(
            f"tuned policy and reference normalise {tuned.primitive} actions differently (the tuned "
            "policy must be fine-tuned from this reference)")
    ts, rs = tuned.schedule, reference.schedule
    if (ts.train_steps, ts.beta_schedule) != (rs.train_steps, rs.beta_schedule):
        raise ReferenceMismatchError(
            f"noise schedules differ: tuned {ts.train_steps} steps '{ts.beta_schedule}', reference "
            f"{rs.train_steps} steps '{rs.beta_schedule}'")


# -- the scorer ------------------------------------------------------------------------------

class ImplicitRewardScorer:
    """An `ActionScorer`: candidates scored by r(a) of a tuned policy vs its reference.

    beta: DPO's beta (the reward is scaled by beta * T); noise_draws: M; seed: fixes the draws,
    so the same (obs, candidates) always gets the same scores; members: groups of draws reported
    as ScoreSet members (M must be a multiple).
    """

    def __init__(self, tuned: DiffusionPolicy, reference: DiffusionPolicy, beta: float = 1.0,
                 noise_draws: int = 16, seed: int = 0, members: int = 1, t_fraction: float = 1.0):
        check_compatible(tuned, reference)
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        if members < 1 or noise_draws % members:
            raise ValueError(f"noise_draws ({noise_draws}) must be a positive multiple of members ({members})")
        self.tuned, self.reference = tuned.eval(), reference.eval()
        self.beta, self.seed, self.members, self.t_fraction = float(beta), int(seed), int(members), float(t_fraction)
        self.draws = NoiseDraws.make(seed, noise_draws, tuned.normalizer.dim, tuned.schedule.train_steps, t_fraction)

    @property
    def primitive(self) -> str:
        return self.tuned.primitive

    @property
    def noise_draws(self) -> int:
        return len(self.draws)

    @property
    def device(self) -> torch.device:
        return self.tuned.device

    def to(self, device) -> ImplicitRewardScorer:
        self.tuned.to(device)
        self.reference.to(device)
        return self

    # -- core ----------------------------------------------------------------------------------
    def rewards(self, cond_tuned: torch.Tensor, cond_ref: torch.Tensor, x0: torch.Tensor,
                draws: NoiseDraws | None = None) -> torch.Tensor:
        """(members, B) rewards of B normalised actions x0 (B, F), row i conditioned on
        cond_tuned[i] / cond_ref[i]; all B x M rows in one denoiser call per model."""
        d = draws or self.draws
        b, m = x0.shape[0], len(d)
        dev = x0.device
        rows_t = d.t.to(dev).repeat(b)
        rows_eps = d.eps.to(dev).repeat(b, 1)
        rows_x0 = x0.repeat_interleave(m, dim=0)
        err_t = denoising_error(self.tuned, cond_tuned.repeat_interleave(m, dim=0), rows_x0, rows_t, rows_eps)
        err_r = denoising_error(self.reference, cond_ref.repeat_interleave(m, dim=0), rows_x0, rows_t, rows_eps)
        diff = (err_t - err_r).view(b, self.members, m // self.members).mean(dim=-1)  # (B, G)
        return -reward_scale(self.tuned, self.beta) * diff.T

    def encode(self, points: torch.Tensor, colors: torch.Tensor | None,
               goals: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditioning of B observations under each model (each has its own encoder)."""
        ct = self.tuned.encode(points, colors, self.tuned.goal_inputs(goals).to(points.device))
        cr = self.reference.encode(points, colors, self.reference.goal_inputs(goals).to(points.device))
        return ct, cr

    def encode_actions(self, params: np.ndarray) -> torch.Tensor:
        """(N, D) parameters -> (N, F) float32 normalised actions (the models' action space)."""
        return torch.as_tensor(self.tuned.normalizer.encode(params), dtype=torch.float32, device=self.device)

    # -- ActionScorer --------------------------------------------------------------------------
    def _check(self, obs: Observation, candidates: Candidates) -> None:
        check_candidates(candidates, self.primitive)
        check_goal(obs.goal if isinstance(obs, Observation) else None)
        try:
            self.tuned.check_observation(obs)
            self.reference.check_observation(obs)
        except PolicyInputError as exc:  # one error type for every scorer
            raise RewardInputError(str(exc)) from exc

    @torch.no_grad()
    def score(self, obs: Observation, candidates: Candidates) -> ScoreSet:
        """(members, N) implicit rewards of the candidates (higher = preferred)."""
        return self.score_batch([(obs, candidates)])[0]

    @torch.no_grad()
    def score_batch(self, requests: Sequence[tuple[Observation, Candidates]]) -> list[ScoreSet]:
        """Several requests: observations with equally sized clouds are encoded together, and all
        their candidates x draws go through each denoiser in one call."""
        for obs, cands in requests:
            self._check(obs, cands)
        out: list[ScoreSet | None] = [None] * len(requests)
        groups: dict[tuple[int, bool], list[int]] = {}
        for i, (obs, _) in enumerate(requests):
            groups.setdefault((len(obs.points), obs.colors is not None), []).append(i)
        dev = self.device
        for idx in groups.values():
            pts = torch.as_tensor(np.stack([np.asarray(requests[i][0].points, np.float32) for i in idx]), device=dev)
            cols = None
            if requests[idx[0]][0].colors is not None:
                cols = torch.as_tensor(np.stack([np.asarray(requests[i][0].colors, np.uint8) for i in idx]),
                                       device=dev)
            ct, cr = self.encode(pts, cols, [requests[i][0].goal for i in idx])
            counts = [len(requests[i][1]) for i in idx]
            owner = torch.repeat_interleave(torch.arange(len(idx), device=dev), torch.as_tensor(counts, device=dev))
            x0 = torch.cat([self.encode_actions(requests[i][1].params) for i in idx])
            scores = self.rewards(ct[owner], cr[owner], x0).double().cpu().numpy()  # (G, sum N)
            for j, chunk in zip(idx, np.split(scores, np.cumsum(counts)[:-1], axis=1)):
                out[j] = ScoreSet.from_members(chunk)
        return out  # type: ignore[return-value]

    # -- pairs ---------------------------------------------------------------------------------
    @torch.no_grad()
    def pair_margins(self, pairs, batch_size: int = 32) -> np.ndarray:
        """(M,) r(a) - r(b) of every pair of a `PreferencePairs` (mean over members)."""
        if pairs.primitive != self.primitive:
            raise RewardInputError(f"pairs of '{pairs.primitive}' for a '{self.primitive}' implicit reward")
        if self.tuned.config.use_rgb and pairs.colors is None:
            raise RewardInputError("this policy uses colour but the pairs have no colours")
        dev = self.device
        a, b = self.encode_actions(pairs.params_a), self.encode_actions(pairs.params_b)
        out = []
        for s in range(0, len(pairs), batch_size):
            sl = slice(s, s + batch_size)
            pts = torch.as_tensor(pairs.points[sl], device=dev)
            cols = None if pairs.colors is None else torch.as_tensor(pairs.colors[sl], device=dev)
            ct, cr = self.encode(pts, cols, pairs.goals[sl])
            r = self.rewards(torch.cat([ct, ct]), torch.cat([cr, cr]), torch.cat([a[sl], b[sl]])).mean(dim=0)
            n = len(ct)
            out.append((r[:n] - r[n:]).double().cpu().numpy())
        margins = np.concatenate(out) if out else np.zeros(0)
        if not np.all(np.isfinite(margins)):
            raise RewardModelError("implicit reward produced NaN/inf")
        return margins


def evaluate_implicit(scorer: ImplicitRewardScorer, pairs) -> dict:
    """Pair accuracy (decisive pairs; ties and can't-tell excluded), ECE and counts, with
    P(a > b) = sigmoid(r(a) - r(b)) as in DPO's Bradley-Terry model."""
    margins = scorer.pair_margins(pairs)
    p = 1.0 / (1.0 + np.exp(-np.clip(margins, -50, 50)))
    y = pairs.labels
    return {"accuracy": preference_accuracy(p, y), "ece": expected_calibration_error(p, y, 10),
            "n_decisive": int(np.sum((y == 0) | (y == 1))), "mean_abs_margin": float(np.mean(np.abs(margins)))}


# -- checkpoints -----------------------------------------------------------------------------

@dataclass
class ImplicitSettings:
    """What the implicit-reward JSON stores besides the two policy checkpoints."""

    beta: float = 1.0
    noise_draws: int = 16
    seed: int = 0
    members: int = 1
    t_fraction: float = 1.0  # the lowest-noise share of timesteps the draws come from


def implicit_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(implicit JSON, tuned-policy stem) of `<name>`, `<name>.json` or a folder with implicit.json."""
    p = Path(path)
    if p.is_dir():
        p = p / "implicit"
    elif p.suffix == ".json":
        p = p.with_suffix("")
    return p.parent / (p.name + ".json"), p.parent / (p.name + "_tuned")


def save_implicit(path: str | os.PathLike, scorer: ImplicitRewardScorer, task: str, perception,
                  reference_path: str | os.PathLike, training: dict | None = None) -> Path:
    """Write the tuned policy as a policy checkpoint `<path>_tuned.{json,safetensors}` and
    `<path>.json` naming it, the reference checkpoint (path and weights SHA-256, so a reference
    retrained later is refused rather than silently compared against) and beta / M / seed."""

    json_path, tuned_stem = implicit_paths(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    ref_json, _ = checkpoint.checkpoint_paths(resolve(reference_path))
    ref_meta = read_json(ref_json, checkpoint.FORMAT, checkpoint.VERSION, "policy checkpoint")
    tuned_json = checkpoint.save_policy(tuned_stem, scorer.tuned, None, task, perception,
                                        training={"dpo": dict(training or {})})
    write_json(json_path, {
        "format": FORMAT, "version": VERSION, "task": task, "primitive": scorer.primitive,
        "tuned": tuned_json.name,
        "reference": str(reference_path), "reference_absolute": str(ref_json.resolve()),
        "reference_sha256": ref_meta.get("weights_sha256"),
        **asdict(ImplicitSettings(scorer.beta, scorer.noise_draws, scorer.seed, scorer.members, scorer.t_fraction)),
        "training": dict(training or {}),
    })
    return json_path


def _find_reference(meta: dict, json_path: Path, override: str | os.PathLike | None) -> Path:
    if override:
        return resolve(override)
    for cand in (Path(meta["reference"]), json_path.parent / meta["reference"], Path(meta["reference_absolute"])):
        if cand.exists():
            return cand
    try:
        return resolve(meta["reference"])  # relative to the data folder (shipped checkpoints)
    except FileNotFoundError:
        raise FileNotFoundError(f"{json_path}: reference policy checkpoint {meta['reference']} not found "
                                "(pass reference=PATH)") from None


def load_implicit_scorer(path: str | os.PathLike, primitive: str | None = None, task: str | None = None,
                         device: str | torch.device = "cpu",
                         reference: str | os.PathLike | None = None) -> ImplicitRewardScorer:
    """Load an implicit-reward scorer (both policies, eval mode). `reference` overrides where the
    reference checkpoint is looked for; its weights must be the ones the tuned policy was tuned
    against. Mismatched task / primitive / perception raise ReferenceMismatchError."""

    json_path, _ = implicit_paths(path)
    meta = read_json(json_path, FORMAT, VERSION, "implicit-reward")
    for key in ("tuned", "reference", "reference_absolute", "beta", "noise_draws", "seed"):
        if key not in meta:
            raise ArtifactError(f"{json_path} lacks '{key}' (incomplete file)")
    tuned = load_policy(json_path.parent / meta["tuned"], task=task, primitive=primitive, device=device)
    ref = load_policy(_find_reference(meta, json_path, reference), primitive=primitive, device=device)
    if meta.get("reference_sha256") and ref.meta.get("weights_sha256") != meta["reference_sha256"]:
        raise ReferenceMismatchError(f"{ref.path} is not the reference {json_path.name} was tuned against "
                                     "(its weights differ)")
    if ref.task != tuned.task:
        raise ReferenceMismatchError(f"tuned policy is for task '{tuned.task}', the reference {ref.path} "
                                     f"for '{ref.task}'")
    if ref.perception != tuned.perception:
        raise ReferenceMismatchError(f"tuned policy and reference {ref.path} expect clouds from different "
                                     "perception configs")
    return ImplicitRewardScorer(tuned.policy, ref.policy, float(meta["beta"]), int(meta["noise_draws"]),
                                int(meta["seed"]), int(meta.get("members", 1)), float(meta.get("t_fraction", 1.0)))
