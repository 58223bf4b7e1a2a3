"""TabletopEnv: a task in the PyBullet world, stepped one primitive at a time."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from robot_rewards.core.camera import CameraModel
from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import Observation, Proprio
from robot_rewards.core.primitives import InvalidPrimitiveError, Primitive, Workspace
from robot_rewards.perception.config import PerceptionConfig
from robot_rewards.perception.pipeline import perceive
from robot_rewards.sim.camera import render
from robot_rewards.sim.config import SimConfig
from robot_rewards.sim.expert_config import ExpertConfig
from robot_rewards.sim.tasks import make_task
from robot_rewards.sim.world import World


@dataclass(frozen=True, eq=False)
class StepResult:
    """Outcome of one primitive: whether it ran (and why not), and the task state after it."""

    primitive: Primitive | None
    executed: bool
    reason: str
    success: bool
    quality: float
    wall_time: float


class TabletopEnv:
    """One task in one simulated world. Rendering only happens in `observe()`."""

    def __init__(self, task: str, sim: SimConfig | None = None, workspace: Workspace | None = None,
                 perception: PerceptionConfig | None = None):
        """`perception`: when given, observations also carry the base-frame point cloud."""
        self.task = make_task(task)
        self.perception = perception
        self.world = World(sim)
        self.workspace = workspace or self.world.arm.description.workspace
        self.goal = ""
        self.seed: int | None = None
        self.steps = 0
        self._frame_hook: tuple[int, Callable[[], None]] | None = None

    def close(self) -> None:
        self.world.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def reset(self, seed: int) -> str:
        """A new random scene from `seed`; returns the goal sentence."""
        self.world.reset()
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.goal = self.task.reset(self.world, self.rng)
        self.steps = 0
        return self.goal

    # -- sensing -------------------------------------------------------------------------
    def observe(self, cameras: list[str] | None = None) -> Observation:
        """Rendered RGB-D-segmentation frames, proprioception and the goal (and the point
        cloud, through the same `perceive` entry point as ROS and replay, if configured)."""
        names = cameras or list(self.world.cameras)
        frames = {n: self.world.render(n) for n in names}
        arm = self.world.arm
        proprio = Proprio(arm.joint_positions(), arm.gripper_width())
        seg_labels = dict(self.world.seg_labels)
        if self.perception is not None:
            return perceive(frames, config=self.perception, proprio=proprio, goal=self.goal,
                            timestamp=self.world.sim_time, seg_labels=seg_labels)
        return Observation(frames=frames, proprio=proprio, goal=self.goal,
                           timestamp=self.world.sim_time, seg_labels=seg_labels)

    def success(self) -> bool:
        return self.task.success(self.world)

    def quality(self) -> float:
        return self.task.quality(self.world)

    @property
    def done(self) -> bool:
        return self.success() or self.steps >= self.task.max_steps

    # -- acting --------------------------------------------------------------------------
    def expert_action(self, cfg: ExpertConfig | None = None) -> Primitive:
        """The scripted expert's next primitive (uses the episode's seeded generator)."""
        return self.task.expert(self.world, self.rng, cfg or ExpertConfig())

    def step(self, primitive: Primitive) -> StepResult:
        """Execute one primitive (see `World.execute`) and evaluate the task after it."""
        t0 = time.perf_counter()
        self.steps += 1
        result = self.world.execute(primitive, self.workspace)
        return StepResult(primitive, result.ok, result.reason, self.success(), self.quality(),
                          time.perf_counter() - t0)

    def step_params(self, name: str, params) -> StepResult:
        """`step` from a raw parameter vector; malformed vectors are reported, not raised."""
        try:
            primitive = Primitive(name, params)
        except InvalidPrimitiveError as exc:
            self.steps += 1
            return StepResult(None, False, str(exc), self.success(), self.quality(), 0.0)
        return self.step(primitive)

    def what_if(self, actions: Primitive | Candidates | Sequence[Primitive],
                measure: Callable[[StepResult], Any] | None = None) -> list:
        """Try each primitive from the current state and undo it: save -> step -> measure -> restore.

        The simulator's privileged look-ahead (oracle selector, scripted teachers, outcome images);
        the one what-if path. `measure(result)` runs right after each step, with the world in the
        post-step state (default: the `StepResult` itself); returns one measurement per primitive.
        On return the scene, the sim time, the controller targets and the episode's step counter
        are as before, bit for bit (rope scenes need `SimConfig.deterministic_pairs`).
        """
        if isinstance(actions, Primitive):
            primitives = [actions]
        elif isinstance(actions, Candidates):
            primitives = list(actions.primitives())
        else:
            primitives = list(actions)
        world, steps = self.world, self.steps
        snap = world.snapshot()
        out = []
        try:
            for primitive in primitives:
                result = self.step(primitive)
                out.append(result if measure is None else measure(result))
                world.restore(snap)
                self.steps = steps
        finally:
            world.restore(snap)
            world.discard(snap)
            self.steps = steps
        return out

    # -- video -----------------------------------------------------------------------------
    def video_camera(self, scale: float = 0.5) -> CameraModel:
        cam = self.world.camera
        return replace(cam, intrinsics=cam.intrinsics.scaled(scale))

    def record_frames(self, sink: Callable[[np.ndarray], None], fps: float = 10.0, scale: float = 0.5):
        """Render an RGB frame into `sink` every 1/fps seconds of sim time (None stops)."""
        if sink is None:
            self.world.step_hook = None
            return
        camera = self.video_camera(scale)
        every = max(1, int(round(1.0 / (fps * self.world.cfg.timestep))))
        cfg = self.world._camera_cfg[self.world.camera.name]

        def hook(tick: int) -> None:
            if tick % every == 0:
                sink(render(camera, self.world.client, cfg.near, cfg.far).rgb)

        self.world.step_hook = hook
