"""A deformable rope for the PyBullet tabletop: a chain of capsules joined by ball joints.

Each link is a rigid capsule lying along the rope; neighbouring links are joined by a
point-to-point constraint at the point where they touch, and collisions between neighbours
are switched off (so the joints can bend without the capsules fighting each other). Measured
on these machines (see DESIGN.md): ~20 capsules of 8 mm radius at 25 mm pitch, 0.05 kg links
and constraints with maxForce >= 50 are stable under repeated dragging by the arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet as p

from robot_rewards.sim.world import World

ROPE_COLOR = (0.85, 0.55, 0.2, 1.0)


@dataclass(frozen=True)
class RopeSpec:
    """Geometry and physics of a rope (metres, kilograms, newtons)."""

    n_links: int = 20
    radius: float = 0.008  # capsule radius: the rope is 16 mm thick (the gripper opens 80 mm)
    pitch: float = 0.025  # distance between neighbouring link centres
    link_mass: float = 0.05
    friction: float = 1.0  # lateral friction; multiplies with the table's and the fingers' 1.0
    rolling_friction: float = 0.0005
    spinning_friction: float = 0.001
    max_force: float = 60.0  # N per joint constraint (>= 50 measured stable)
    # Collision capsule length (tip to tip). Shorter than the pitch leaves a gap at each joint, so
    # neighbours may collide without touching while straight: this limits how sharply the rope can
    # bend (~80 degrees per joint at 20 mm) instead of letting two links fold onto each other.
    collision_length: float = 0.025
    neighbour_collisions: bool = False
    rgba: tuple[float, float, float, float] = ROPE_COLOR

    @property
    def length(self) -> float:
        """Distance along the rope between the centres of the two end links."""
        return (self.n_links - 1) * self.pitch


def chain_from_headings(start_xy, headings, pitch: float) -> np.ndarray:
    """(len(headings)+1, 2) points: start, then one step of `pitch` along each heading (rad)."""
    headings = np.asarray(headings, dtype=np.float64)
    steps = pitch * np.stack([np.cos(headings), np.sin(headings)], axis=1)
    return np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)]) + np.asarray(start_xy, dtype=np.float64)


def _quat_z_to(direction) -> np.ndarray:
    """Quaternion (xyzw) turning the local z axis (a capsule's axis) onto `direction`."""
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, d)
    s = np.linalg.norm(axis)
    if s < 1e-9:
        return np.array([0.0, 0.0, 0.0, 1.0]) if d[2] > 0 else np.array([1.0, 0.0, 0.0, 0.0])
    angle = np.arctan2(s, float(np.dot(z, d)))
    axis = axis / s
    return np.concatenate([axis * np.sin(angle / 2), [np.cos(angle / 2)]])


class Rope:
    """A rope built in a `World` from link-centre points; its links are registered world objects
    named ``<prefix>_0 .. <prefix>_<n-1>`` that all share the segmentation label `seg_label`."""

    def __init__(self, world: World, points, spec: RopeSpec | None = None, prefix: str = "rope",
                 seg_label: str = "rope"):
        self.world = world
        self.spec = spec = spec or RopeSpec()
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] not in (2, 3) or pts.shape[0] != spec.n_links:
            raise ValueError(f"a rope of {spec.n_links} links needs ({spec.n_links}, 2|3) points, "
                             f"got shape {pts.shape}")
        if pts.shape[1] == 2:
            pts = np.hstack([pts, np.full((len(pts), 1), spec.radius + 5e-4)])
        gaps = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        if np.any(np.abs(gaps - spec.pitch) > 0.1 * spec.pitch):
            raise ValueError(f"neighbouring rope points must be {spec.pitch} m apart "
                             f"(got {gaps.min():.4f}..{gaps.max():.4f})")
        self.names = [f"{prefix}_{i}" for i in range(spec.n_links)]
        c = world.client
        height = max(spec.collision_length - 2 * spec.radius, 1e-4)
        col = p.createCollisionShape(p.GEOM_CAPSULE, radius=spec.radius, height=height, physicsClientId=c)
        # the visual capsules overlap a little so the rope looks continuous
        vis = p.createVisualShape(p.GEOM_CAPSULE, radius=spec.radius, length=spec.pitch - spec.radius,
                                  rgbaColor=list(spec.rgba), physicsClientId=c)
        # each capsule lies along the local tangent of the chain
        tangents = np.gradient(pts, axis=0)
        quats = [_quat_z_to(t) for t in tangents]
        self.bodies: list[int] = []
        for name, pos, q in zip(self.names, pts, quats):
            body = p.createMultiBody(spec.link_mass, col, vis, pos.tolist(), q.tolist(), physicsClientId=c)
            p.changeDynamics(body, -1, lateralFriction=spec.friction,
                             rollingFriction=spec.rolling_friction,
                             spinningFriction=spec.spinning_friction, physicsClientId=c)
            world._register(name, body)
            world.seg_labels[body] = seg_label
            self.bodies.append(body)
        self.constraints: list[int] = []
        for i in range(spec.n_links - 1):
            a, b = self.bodies[i], self.bodies[i + 1]
            if not spec.neighbour_collisions:
                p.setCollisionFilterPair(a, b, -1, -1, 0, physicsClientId=c)
            joint = (pts[i] + pts[i + 1]) / 2
            fa = _rotate_inv(quats[i], joint - pts[i])
            fb = _rotate_inv(quats[i + 1], joint - pts[i + 1])
            cid = p.createConstraint(a, -1, b, -1, p.JOINT_POINT2POINT, [0, 0, 0],
                                     fa.tolist(), fb.tolist(), physicsClientId=c)
            p.changeConstraint(cid, maxForce=spec.max_force, physicsClientId=c)
            self.constraints.append(cid)

    def __len__(self) -> int:
        return len(self.bodies)

    def teleport(self, points) -> None:
        """Put the links at `points` ((n_links, 2) at resting height, or (n_links, 3)), each along
        the chain's local tangent, at rest. The joints are not rebuilt: neighbouring points must
        stay a pitch apart. Call `world.settle()` afterwards."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.shape[1] == 2:
            pts = np.hstack([pts, np.full((len(pts), 1), self.spec.radius + 5e-4)])
        for name, xyz, t in zip(self.names, pts, np.gradient(pts, axis=0)):
            self.world.teleport(name, xyz, orientation=_quat_z_to(t))

    def positions(self) -> np.ndarray:
        """(n_links, 3) link centres, first to last."""
        c = self.world.client
        return np.array([p.getBasePositionAndOrientation(b, physicsClientId=c)[0] for b in self.bodies])

    def gaps(self) -> np.ndarray:
        """(n_links - 1,) distances between neighbouring link centres (the pitch when intact)."""
        return np.linalg.norm(np.diff(self.positions(), axis=0), axis=1)

    def speeds(self) -> np.ndarray:
        c = self.world.client
        return np.array([np.linalg.norm(p.getBaseVelocity(b, physicsClientId=c)[0]) for b in self.bodies])


def _rotate_inv(quat, v) -> np.ndarray:
    """Rotate world vector `v` into the frame with orientation `quat` (xyzw)."""
    m = np.asarray(p.getMatrixFromQuaternion(list(quat))).reshape(3, 3)
    return m.T @ np.asarray(v, dtype=np.float64)


def rope_positions(world: World, prefix: str = "rope") -> np.ndarray:
    """(n, 3) centres of the links named ``<prefix>_0, <prefix>_1, ...`` in `world`, in order."""
    out = []
    i = 0
    while f"{prefix}_{i}" in world.objects:
        out.append(world.position(f"{prefix}_{i}"))
        i += 1
    if not out:
        raise KeyError(f"no rope named '{prefix}' in the world")
    return np.array(out)
