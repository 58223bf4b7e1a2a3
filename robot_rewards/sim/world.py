"""The PyBullet tabletop world: table, arm, cameras, and helpers to add task objects."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pybullet as p
import pybullet_data

from robot_rewards.calibration.camera_info import load_camera
from robot_rewards.core.camera import CameraModel
from robot_rewards.core.observation import CameraFrame
from robot_rewards.core.paths import resolve
from robot_rewards.core.primitives import Primitive, Workspace
from robot_rewards.primitives.config import limit_motion
from robot_rewards.primitives.planner import UnreachableError, plan_primitive
from robot_rewards.robots.kinematics import ArmKinematics
from robot_rewards.robots.registry import get_arm
from robot_rewards.sim.arm import ExecutionResult, SimArm
from robot_rewards.sim.camera import render
from robot_rewards.sim.config import SimConfig, apply_profile

TABLE_HEIGHT = 0.625  # pybullet_data table.urdf top surface (its AABB adds a 1 mm margin); top = z 0
SETTLE_CHECK_S = 1.0 / 12.0  # s of sim time between rest checks while settling
OBJECT_FRICTION = 1.0  # friction multiplies between bodies: 1.0 on fingers and objects holds reliably


@dataclass(frozen=True, eq=False)
class WorldSnapshot:
    """A saved physics state of one World (see `World.snapshot`)."""

    state_id: int
    sim_time: float
    ticks: int
    arm_target: np.ndarray
    gripper_target: float


class World:
    """One PyBullet client with the table top at z = 0 and the arm (`cfg.arm`) based at the origin.

    `reset()` rebuilds the scene from scratch, so a seeded task reset is reproducible
    bit for bit (same body ids, same contacts, same images).
    """

    def __init__(self, cfg: SimConfig | None = None):
        self.cfg = apply_profile(cfg or SimConfig())
        arm = get_arm(self.cfg.arm)
        self.cfg = replace(self.cfg, motion=limit_motion(self.cfg.motion, arm))  # the arm's speed limits
        self.client = p.connect(p.GUI if self.cfg.gui else p.DIRECT)
        self.kin = ArmKinematics(arm)
        self.cameras: dict[str, CameraModel] = {}
        self._camera_cfg = {}
        for c in self.cfg.cameras:
            camera = load_camera(resolve(c.intrinsics), resolve(c.extrinsics), c.name)
            # the extrinsics are relative to the arm's base at the origin, whichever arm stands there
            self.cameras[c.name] = replace(camera, base_frame=arm.base_frame)
            self._camera_cfg[c.name] = c
        self.sim_time = 0.0
        self.ticks = 0
        self.step_hook = None  # called with the tick count after every physics step (video)
        self.reset()

    @property
    def camera(self) -> CameraModel:
        """The first configured camera."""
        return next(iter(self.cameras.values()))

    def reset(self) -> None:
        """Empty the world back to table + arm at home."""
        c = self.client
        p.resetSimulation(physicsClientId=c)
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=c)
        p.setGravity(0, 0, -9.81, physicsClientId=c)
        p.setPhysicsEngineParameter(
            fixedTimeStep=self.cfg.timestep, numSolverIterations=self.cfg.solver_iterations,
            deterministicOverlappingPairs=int(self.cfg.deterministic_pairs), physicsClientId=c,
        )
        if self.cfg.gui:
            p.configureDebugVisualizer(p.COV_ENABLE_GUI, 0, physicsClientId=c)
        self.table = p.loadURDF("table/table.urdf", [0.5, 0.0, -TABLE_HEIGHT], useFixedBase=True,
                                physicsClientId=c)
        p.changeDynamics(self.table, -1, lateralFriction=OBJECT_FRICTION, physicsClientId=c)
        self.arm = SimArm(c, self.cfg.motion, self.step, self.kin)
        self.seg_labels: dict[int, str] = {self.table: "table", self.arm.body: self.kin.arm.name}
        self.objects: dict[str, int] = {}
        self.sim_time = 0.0

    def close(self) -> None:
        if p.isConnected(self.client):
            p.disconnect(self.client)
        self.kin.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- physics -------------------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        for _ in range(n):
            p.stepSimulation(physicsClientId=self.client)
            self.sim_time += self.cfg.timestep
            self.ticks += 1
            if self.step_hook is not None:
                self.step_hook(self.ticks)
            if self.cfg.gui:
                time.sleep(self.cfg.timestep)

    def settle(self, max_s: float = 2.0, speed_tol: float = 1e-3) -> None:
        """Step until every object is (nearly) at rest, for at most `max_s` seconds of sim time."""
        every = max(1, round(SETTLE_CHECK_S / self.cfg.timestep))
        for k in range(int(round(max_s / self.cfg.timestep))):
            self.step()
            if k % every == every - 1 and all(
                np.linalg.norm(p.getBaseVelocity(b, physicsClientId=self.client)[0]) < speed_tol
                for b in self.objects.values()
            ):
                return

    # -- what-if rollouts -------------------------------------------------------------------
    def snapshot(self) -> WorldSnapshot:
        """Save the physics state (bodies, contacts) and the controller targets, so a primitive
        can be tried and undone: `restore(snap)` puts everything back, `discard(snap)` frees it."""
        return WorldSnapshot(p.saveState(physicsClientId=self.client), self.sim_time, self.ticks,
                             self.arm._arm_target.copy(), self.arm._gripper_target)

    def restore(self, snap: WorldSnapshot) -> None:
        p.restoreState(stateId=snap.state_id, physicsClientId=self.client)
        self.sim_time, self.ticks = snap.sim_time, snap.ticks
        self.arm._arm_target = snap.arm_target.copy()
        self.arm._gripper_target = snap.gripper_target
        self.arm._command()

    def discard(self, snap: WorldSnapshot) -> None:
        p.removeState(snap.state_id, physicsClientId=self.client)

    # -- objects -------------------------------------------------------------------------
    def _register(self, name: str, body: int) -> int:
        if name in self.objects:
            raise ValueError(f"an object named '{name}' already exists")
        self.objects[name] = body
        self.seg_labels[body] = name
        return body

    def add_box(self, name, half_extents, position, rgba, mass=0.05, yaw=0.0) -> int:
        """A dynamic (mass > 0) or static box resting with its centre at `position`."""
        c = self.client
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=list(half_extents), physicsClientId=c)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=list(half_extents), rgbaColor=list(rgba),
                                  physicsClientId=c)
        body = p.createMultiBody(mass, col, vis, list(position),
                                 p.getQuaternionFromEuler([0, 0, yaw]), physicsClientId=c)
        p.changeDynamics(body, -1, lateralFriction=OBJECT_FRICTION, spinningFriction=0.001,
                         rollingFriction=0.0001, physicsClientId=c)
        return self._register(name, body)

    def add_marker(self, name, half_extents, position, rgba, yaw=0.0) -> int:
        """A flat visual-only mark on the table (target zones, rope end marks): no collision."""
        c = self.client
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=list(half_extents), rgbaColor=list(rgba),
                                  physicsClientId=c)
        body = p.createMultiBody(0, -1, vis, list(position), p.getQuaternionFromEuler([0, 0, yaw]),
                                 physicsClientId=c)
        return self._register(name, body)

    def add_bowl(self, name, position, rgba, inner_radius=0.055, wall_height=0.025,
                 wall_thickness=0.008, segments=12) -> int:
        """A static, open bowl: a flat floor and a ring of wall slabs (compound collision shape)."""
        c = self.client
        floor_half = 0.002
        r_mid = inner_radius + wall_thickness / 2
        seg_len = 2 * r_mid * np.tan(np.pi / segments) + 0.002
        kinds, halves, positions, orns = [p.GEOM_CYLINDER], [None], [[0, 0, floor_half]], [[0, 0, 0, 1]]
        for k in range(segments):
            a = 2 * np.pi * k / segments
            kinds.append(p.GEOM_BOX)
            halves.append([wall_thickness / 2, seg_len / 2, wall_height / 2])
            positions.append([r_mid * np.cos(a), r_mid * np.sin(a), wall_height / 2])
            orns.append(p.getQuaternionFromEuler([0, 0, a]))
        radius = inner_radius + wall_thickness
        shape = dict(
            shapeTypes=kinds,
            halfExtents=[h or [0, 0, 0] for h in halves],
            radii=[radius] + [0] * segments,
            lengths=[2 * floor_half] + [0] * segments,
            collisionFramePositions=positions,
            collisionFrameOrientations=orns,
        )
        col = p.createCollisionShapeArray(physicsClientId=c, **shape)
        vis = p.createVisualShapeArray(
            shapeTypes=kinds, halfExtents=shape["halfExtents"], radii=shape["radii"],
            lengths=shape["lengths"], rgbaColors=[list(rgba)] * len(kinds),
            visualFramePositions=positions, visualFrameOrientations=orns, physicsClientId=c,
        )
        body = p.createMultiBody(0, col, vis, list(position), physicsClientId=c)
        p.changeDynamics(body, -1, lateralFriction=0.6, physicsClientId=c)
        return self._register(name, body)

    def pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(position, quaternion xyzw) of a named object."""
        pos, orn = p.getBasePositionAndOrientation(self.objects[name], physicsClientId=self.client)
        return np.asarray(pos), np.asarray(orn)

    def position(self, name: str) -> np.ndarray:
        return self.pose(name)[0]

    def yaw(self, name: str) -> float:
        return float(p.getEulerFromQuaternion(self.pose(name)[1])[2])

    def teleport(self, name: str, position, yaw: float = 0.0, orientation=None) -> None:
        """Put a named object at `position` (its centre), turned by `yaw` about z or to the
        quaternion `orientation` (xyzw) when given, at rest. Scene arrangement without the arm
        (data generation); call `settle()` afterwards to let physics resolve contacts."""
        orn = p.getQuaternionFromEuler([0, 0, yaw]) if orientation is None else list(map(float, orientation))
        body = self.objects[name]
        p.resetBasePositionAndOrientation(body, list(map(float, position)), orn, physicsClientId=self.client)
        p.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0], physicsClientId=self.client)

    # -- acting ----------------------------------------------------------------------------
    def execute(self, primitive: Primitive, workspace: Workspace) -> ExecutionResult:
        """Check, plan and run one primitive, then let objects come to rest.

        A primitive that fails its checks or has no IK solution is reported with the arm
        untouched; a fault while moving (arm blocked) stops the motion and sends the arm home.
        """
        reason = primitive.check(workspace)
        if reason is not None:
            return ExecutionResult(False, reason)
        try:
            segments = plan_primitive(self.kin, primitive, self.arm.joint_positions(), self.cfg.motion)
        except UnreachableError as exc:
            return ExecutionResult(False, f"unreachable: {exc}")
        result = self.arm.execute(segments)
        if not result.ok:
            self.arm.home()
        self.settle()
        return result

    # -- sensing -------------------------------------------------------------------------
    def render(self, camera: str | None = None) -> CameraFrame:
        """An RGB-D-segmentation frame from a configured camera (default: the first)."""
        name = camera or self.camera.name
        if name not in self.cameras:
            raise KeyError(f"unknown camera '{name}'; configured: {sorted(self.cameras)}")
        cfg = self._camera_cfg[name]
        return render(self.cameras[name], self.client, cfg.near, cfg.far, self.cfg.render_shadows)
