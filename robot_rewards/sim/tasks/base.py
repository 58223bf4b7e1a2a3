"""What every task provides: a seeded scene, a goal sentence, a success test, a quality
measure, a step budget and a scripted expert that uses privileged sim state; and, optionally,
what the code outside asks of a task: ground-truth keypoints, scene perturbations, CLIP
captions and goal prompts, whether its target is a flat mark, what an outcome model reads from
its clouds (see docs/adding-a-task.md)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from robot_rewards.core.keypoints import Keypoints
from robot_rewards.core.primitives import Primitive
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.world import World

# Named colours used for objects and in goal sentences.
COLORS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.1, 0.1, 1.0),
    "green": (0.1, 0.7, 0.2, 1.0),
    "blue": (0.15, 0.3, 0.9, 1.0),
    "yellow": (0.95, 0.85, 0.1, 1.0),
    "purple": (0.55, 0.2, 0.75, 1.0),
    "orange": (1.0, 0.5, 0.05, 1.0),
}
BLOCK_HALF = 0.02  # 4 cm cubes
BLOCK_MASS = 0.05


@dataclass(frozen=True)
class CaptionSpec:
    """How a task takes part in the CLIP caption data (`robot_rewards.rewards.clip.data`).

    - config_prefix: its counts in `ClipDataConfig` are `<prefix>_scenes`, `<prefix>_frames` and
      `<prefix>_episodes`; also the short name in the evaluation tables ("place AUC");
    - seed_salt: arranged scene `s` draws its arrangements from `default_rng([s, seed_salt])`;
    - reset_frame: the reset state is a frame of its own, before the arrangements;
    - metric: how a reward is judged on its frames: "auc" (ROC AUC of the reward against task
      success) or "spearman" (rank correlation with -quality, and with the frames' straightness).
    """

    config_prefix: str
    seed_salt: int
    reset_frame: bool
    metric: str


@dataclass(eq=False)
class Captions:
    """Closed-world captions of a state (a sentence is true of it iff it is in `true`), plus the
    rope's straightness (end-to-end distance / length; NaN for tasks without a rope)."""

    true: list[str]
    false: list[str]
    straightness: float = float("nan")


class CloudOutcome(ABC):
    """What a task's outcome model (`robot_rewards.rewards.outcome`) reads from observed clouds:
    the task's progress measured on a cloud, and per-candidate inputs from the cloud before the
    action. Both from the cloud alone (what a real robot's camera gives), never sim state: an
    outcome model learns from the robot's own transitions (cloud, executed action, next cloud)
    to predict the measures of the next cloud, and candidates are ranked by `score` of them."""

    measure_names: ClassVar[tuple[str, ...]]  # what `measures` returns, in order
    input_dim: ClassVar[int]  # columns of `inputs`: a model trained on other inputs is refused
    # those that are signed offsets from a target (which side of it the object ends on): a
    # preference head also reads how likely each is to end positive
    signed_measures: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def measures(self, points: np.ndarray, colors: np.ndarray | None = None, goal: str = "") -> np.ndarray:
        """(M,) progress measures of one cloud (N, 3) (its point colours (N, 3) uint8 and goal
        sentence where the reading needs them), e.g. distances to the goal in task units.
        Raises ValueError for a cloud they cannot be read from."""

    @abstractmethod
    def inputs(self, points: np.ndarray, params: np.ndarray, colors: np.ndarray | None = None,
               goal: str = "") -> np.ndarray:
        """(N, D) float32 inputs of N candidates (primitive parameters `params` (N, P)) in one cloud."""

    @abstractmethod
    def score(self, predicted: np.ndarray) -> np.ndarray:
        """(N,) candidate scores (higher is better) from predicted measures (N, M)."""

    def symmetries(self, inputs: np.ndarray) -> list[np.ndarray]:
        """Transformed copies of `inputs` (N, D) whose outcomes measure the same (mirror images
        of the scene, relabelled ends...), for augmentation; [] = none."""
        return []


@dataclass(frozen=True)
class KeypointReading:
    """That a task's outcomes can be measured with its learned keypoint model (one object/target
    pair naming the same object and target after a step as before), and how the cloud's own points
    sharpen the predicted pair (a few millimetres matter: which half of a bowl a block rests in).

    - object_top: the object keypoint moves to the centroid of the points within this xy radius
      (m) of it and within `top_depth` of the highest of them, the object's top face (0: as
      predicted);
    - target_ring: (r_min, r_max, z_min, z_max): the target keypoint moves, in xy, to the centre
      of the circle fitted to the points in that annulus around it and that height band, away
      from the object (a bowl's rim); None: as predicted.
    Either keeps the prediction where the cloud shows too few such points."""

    object_top: float = 0.0
    top_depth: float = 0.006
    target_ring: tuple[float, float, float, float] | None = None


class Task(ABC):
    """A tabletop task. Subclasses set the class attributes and implement the methods; the
    optional hooks below have defaults meaning "not supported by this task"."""

    name: ClassVar[str]
    primitive: ClassVar[str]  # the primitive the expert uses: "pick_place" or "push"
    max_steps: ClassVar[int]  # step budget of an episode
    # Targets are flat visual marks ~1 mm high: the policy's perception must keep them
    # (policy.config.keep_flat_targets), or a policy that cannot see its target cannot learn it.
    flat_target: ClassVar[bool] = False
    # Names of the `keypoints` pairs once sorted into the learned models' canonical order (by
    # target y, then x; `train-keypoints`); empty: the task has no keypoints.
    keypoint_names: ClassVar[tuple[str, ...]] = ()
    # The preference-scorer recipe `auto` picks once a keypoint model ships for the task
    # (`preferences/recipes.py`); "" = the linear keypoint head, "patches_keypoints" where
    # measured better for this task.
    scorer_recipe: ClassVar[str] = ""
    # Progress measures and candidate inputs read from clouds, for a learned outcome model
    # (`train-outcome`); None: the task has none.
    cloud_outcome: ClassVar[CloudOutcome | None] = None
    # Without a `cloud_outcome`: whether (and how) the learned keypoint model measures outcomes
    # instead; None where its pair changes meaning across a step (stack_blocks' next block).
    outcome_from_keypoints: ClassVar[KeypointReading | None] = None
    # CLIP caption data (`captions`, `arrange`); None: the task has no captions.
    captioning: ClassVar[CaptionSpec | None] = None
    # CLIP baseline prompt (the generic scene sentence) of prompts that use one of `scene_words`.
    scene_words: ClassVar[frozenset[str]] = frozenset()
    baseline: ClassVar[str] = ""

    goal: str = ""

    @abstractmethod
    def reset(self, world: World, rng: np.random.Generator) -> str:
        """Build a random scene in an empty `world`; return the language goal."""

    @abstractmethod
    def success(self, world: World) -> bool:
        """Whether the goal is achieved in the current state."""

    @abstractmethod
    def quality(self, world: World) -> float:
        """Residual distance to the goal configuration in metres (lower is better, 0 = perfect)."""

    @abstractmethod
    def expert(self, world: World, rng: np.random.Generator, cfg: ExpertConfig) -> Primitive:
        """The scripted expert's next primitive, from privileged state."""

    def grasp_targets(self, world: World) -> np.ndarray | None:
        """(K, 3) points that a useful grasp lands near (the expert grasps one of them), for
        evaluation diagnostics only; None for tasks that do not define them."""
        return None

    # -- optional hooks: what code outside sim/ asks of a task ---------------------------------
    def keypoints(self, world: World) -> Keypoints | None:
        """Ground-truth keypoints of the current state (privileged): the object points and the
        targets they should reach, one pair per `keypoint_names` entry; None: not defined."""
        return None

    def perturb(self, world: World, rng: np.random.Generator) -> str:
        """Move the task's objects to another state by teleporting them (no arm) and settle;
        returns a word for what was done. Keypoint data collection (`train-keypoints`) uses it to
        show models the states a reward has to score after a step, not only reset poses."""
        raise NotImplementedError(f"task '{self.name}' defines no scene perturbations")

    def captions(self, world: World) -> Captions:
        """Closed-world CLIP captions of the current state (see `captioning`)."""
        raise NotImplementedError(f"task '{self.name}' defines no captions")

    def arrange(self, world: World, rng: np.random.Generator) -> None:
        """A new arrangement of the current scene for CLIP caption data (satisfied and
        unsatisfied states in about equal measure), settled by physics."""
        raise NotImplementedError(f"task '{self.name}' defines no arrangements")

    @classmethod
    def goal_prompts(cls, goal: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(state prompts, baseline prompts) of a goal in this task's wording (lower case, single
        spaces, no final full stop), in the words its `captions` use; None: not this task's."""
        return None

    # -- helpers shared by the experts -----------------------------------------------------
    @staticmethod
    def jitter(xyz, rng: np.random.Generator, cfg: ExpertConfig) -> np.ndarray:
        """Position with the expert's Gaussian noise (none when cfg.noise == 0)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        if cfg.noise <= 0:
            return xyz.copy()
        return xyz + rng.normal(0.0, cfg.noise * cfg.pos_std, size=3)

    @staticmethod
    def jitter_yaw(yaw: float, rng: np.random.Generator, cfg: ExpertConfig) -> float:
        if cfg.noise <= 0:
            return float(yaw)
        return float(yaw + rng.normal(0.0, cfg.noise * cfg.yaw_std))

    @staticmethod
    def poor(rng: np.random.Generator, cfg: ExpertConfig) -> bool:
        """Whether this action should be a deliberately poor one."""
        return cfg.noise > 0 and rng.random() < cfg.noise * cfg.poor_rate


def sample_positions(
    rng: np.random.Generator, n: int, min_dist, low=(0.35, -0.25), high=(0.65, 0.25), tries: int = 1000
) -> np.ndarray:
    """n xy positions in the box [low, high] with pairwise distances >= min_dist[i] + min_dist[j].

    `min_dist` is a radius per position (or one number for all); rejection sampling.
    """
    radii = np.broadcast_to(np.asarray(min_dist, dtype=np.float64), (n,))
    out: list[np.ndarray] = []
    for i in range(n):
        for _ in range(tries):
            cand = rng.uniform(low, high)
            if all(np.linalg.norm(cand - q) >= radii[i] + radii[j] for j, q in enumerate(out)):
                out.append(cand)
                break
        else:
            raise RuntimeError(f"could not place {n} objects without overlap; widen the area")
    return np.array(out)


def clear_spot(rng: np.random.Generator, world: World, names, low=(0.35, -0.25), high=(0.65, 0.25),
               tries: int = 50) -> np.ndarray | None:
    """A table xy at least a bowl's (0.10 m, names ending in "_bowl") or a block's (0.06 m)
    reach from every object in `names`, or None after `tries` draws."""
    others = [(world.position(n)[:2], 0.10 if n.endswith("_bowl") else 0.06) for n in names]
    for _ in range(tries):
        xy = rng.uniform(low, high)
        if all(np.linalg.norm(xy - c) >= r for c, r in others):
            return xy
    return None
