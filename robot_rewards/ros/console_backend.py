"""The console's ROS 2 backend: `robot-rewards console backend=ros` on the live graph.

Run in a shell where ROS 2 is sourced, next to a graph launched with `console:=true` (the
policy node then only proposes, and the executor runs what the console sends):

- a query is the next candidate set on /policy/candidates, with the cloud it was sampled in
  (/policy/cloud, matched by stamp; both latched, so a console started while the policy waits
  for it gets the pending set; stored with the labels, as in the sim) and the colour
  image nearest that stamp (colour + depth + camera_info, camera pose from TF or an extrinsics
  file) to draw the candidates on;
- executing ('x', or execute_after_label) sends an ExecutePrimitive goal to
  `ros.execute_action`, tagged with the set's decision id so the policy node takes the
  executor's report as the end of its decision and proposes the next one; the call returns
  when the goal ends (its result, or a final status on `ros.status_topic`). This is how the
  operator overrides the policy;
- home, jog and new scenes are not available: the executor runs primitives only.

`OperatorCore` holds what the subscriptions deliver (plain Python; thread-safe, because the
callbacks run in the spin thread while the console waits in its own). Malformed messages are
logged (throttled) and dropped, so nothing of them reaches the preference store.
`RosRobot` spins the rclpy shell (robot_rewards.ros.nodes.console.OperatorNode) in a
background thread; rclpy is imported only when one is made.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from robot_rewards.calibration.camera_info import load_base_transform
from robot_rewards.core.camera import CameraModel
from robot_rewards.core.observation import CameraFrame, Observation
from robot_rewards.core.primitives import Primitive
from robot_rewards.robots.base import ActionResult, Offer, Robot, RobotError
from robot_rewards.ros.convert_common import MessageConversionError, stamp_to_ns
from robot_rewards.ros.convert_image import (
    camera_info_usable,
    check_image_matches_camera_info,
    msg_to_camera_info,
    msg_to_depth,
    msg_to_rgb,
)
from robot_rewards.ros.convert_interfaces import to_payload
from robot_rewards.ros.observation import cloud_observation
from robot_rewards.ros.payloads import CandidateSet, ExecutorStatus, PrimitiveCommand, ns_of_stamp
from robot_rewards.ros.report import Reporter
from robot_rewards.ros.sync import PairSync
from robot_rewards.ros.tf_tree import TfTree, TransformError

CLOUD_CACHE = 16  # clouds kept to find the one a candidate set names by stamp
FRAME_CACHE = 8  # colour/depth pairs kept to find the one nearest a cloud
STATUS_CACHE = 64
CAMERA = "camera"  # the name the console shows the live camera under


def import_rclpy():
    """rclpy, or a ValueError saying how to make it importable."""
    try:
        import rclpy
    except ImportError as exc:
        raise ValueError(
            f"backend=ros needs ROS 2's rclpy, which this Python cannot import ({exc}): source your ROS 2 "
            "setup first (e.g. `source /opt/ros/jazzy/setup.bash`) and run from a Python that sees it (the "
            "ROS Python, or a venv created with --system-site-packages after sourcing); or use backend=sim"
        ) from None
    return rclpy


@dataclass(frozen=True, eq=False)
class ReceivedSet:
    """A candidate set as received: arrival number and the executor activity seen before it."""

    cset: CandidateSet
    seq: int
    moves: int


class OperatorCore:
    """What the operator console's subscriptions deliver, and waiting for it.

    cfg: a robot_rewards.console.config.RosConsoleConfig. `moves` counts executor statuses
    other than 'rejected' (the arm moved, or is moving): the console's scene version.
    """

    def __init__(self, cfg, log=None):
        self.cfg = cfg
        self.report = Reporter(log)
        self._cond = threading.Condition()
        self._set: ReceivedSet | None = None
        self._set_seq = 0
        self._clouds: deque = deque(maxlen=CLOUD_CACHE)  # (stamp_ns, msg), oldest first
        self._cloud_seq = 0
        self._pairs: deque = deque(maxlen=FRAME_CACHE)  # (stamp_ns, colour msg, depth msg)
        self._sync = PairSync(cfg.sync_slop)
        self._info = None
        self._tf = TfTree()
        self._statuses: deque = deque(maxlen=STATUS_CACHE)  # (seq, ExecutorStatus)
        self._status_seq = 0
        self.moves = 0
        self.goal = ""
        self.extrinsics: np.ndarray | None = None
        if cfg.extrinsics_file:
            self.extrinsics = load_base_transform(cfg.extrinsics_file, cfg.base_frame, "ros.extrinsics_file")

    # -- subscriptions (the spin thread) -----------------------------------------------------
    def on_candidates(self, value) -> None:
        """A candidate set (robot_rewards_interfaces/CandidateSet, a payload or JSON)."""
        try:
            cset = to_payload(CandidateSet, value)
        except MessageConversionError as exc:
            self.report.error("candidates", f"candidate set rejected: {exc}")
            return
        if len(cset.candidates) < 2:
            self.report.warning("too_few", f"decision {cset.decision_id}: {len(cset.candidates)} candidate, "
                                "nothing to compare; skipped")
            return
        with self._cond:
            self._set_seq += 1
            self._set = ReceivedSet(cset, self._set_seq, self.moves)
            self._cond.notify_all()

    def on_cloud(self, msg) -> None:
        try:
            stamp = stamp_to_ns(msg.header.stamp)
        except (MessageConversionError, AttributeError, TypeError) as exc:
            self.report.error("cloud", f"point cloud rejected: {exc}")
            return
        with self._cond:
            self._clouds.append((stamp, msg))
            self._cloud_seq += 1
            self._cond.notify_all()

    def on_color(self, msg) -> None:
        self._push("a", msg)

    def on_depth(self, msg) -> None:
        self._push("b", msg)

    def _push(self, stream: str, msg) -> None:
        # Only pairing here; images are converted when a query needs one (most are never shown).
        try:
            pair = self._sync.push(stream, stamp_to_ns(msg.header.stamp), msg)
        except (MessageConversionError, AttributeError, TypeError) as exc:
            self.report.error("image", f"image rejected: {exc}")
            return
        if pair is not None:
            color, depth, _, depth_ns = pair
            with self._cond:
                self._pairs.append((depth_ns, color, depth))
                self._cond.notify_all()

    def on_camera_info(self, msg) -> None:
        if not camera_info_usable(msg, lambda why: self.report.error("camera_info", why)):
            return
        with self._cond:
            self._info = msg

    def on_tf(self, msg, static: bool = False) -> None:
        try:
            with self._cond:
                self._tf.add_message(msg, static)
        except MessageConversionError as exc:
            self.report.error("tf", f"{'/tf_static' if static else '/tf'} message rejected: {exc}")

    def on_goal(self, text) -> None:
        with self._cond:
            self.goal = str(text)

    def on_status(self, value) -> None:
        """An executor status (robot_rewards_interfaces/ExecutorStatus, a goal's end, or JSON)."""
        try:
            status = to_payload(ExecutorStatus, value)
        except MessageConversionError as exc:
            self.report.error("status", f"executor status rejected: {exc}")
            return
        with self._cond:
            self._status_seq += 1
            self._statuses.append((self._status_seq, status))
            if status.state != "rejected":  # the arm moved or is moving: older queries are stale
                self.moves += 1
            self._cond.notify_all()

    # -- the console's side -----------------------------------------------------------------------
    def _wait(self, ready, timeout: float):
        """ready() under the lock until it is not None, or None after `timeout` s."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                got = ready()
                left = end - time.monotonic()
                if got is not None or left <= 0:
                    return got
                self._cond.wait(min(left, 0.5))

    def next_set(self, after_seq: int, timeout: float) -> ReceivedSet | None:
        """The newest candidate set that arrived after arrival number `after_seq` (older
        unseen ones are passed over: the scene has moved on since), or None after `timeout`."""
        return self._wait(lambda: self._set if self._set is not None and self._set.seq > after_seq else None,
                          timeout)

    def cloud_at(self, stamp_ns: int):
        """The cloud message stamped `stamp_ns`, if it is still cached."""
        with self._cond:
            return next((m for s, m in reversed(self._clouds) if s == stamp_ns), None)

    def latest_cloud(self, timeout: float):
        """The newest cloud message, waiting up to `timeout` s for a first one (None if none)."""
        return self._wait(lambda: self._clouds[-1][1] if self._clouds else None, timeout)

    @property
    def status_seq(self) -> int:
        with self._cond:
            return self._status_seq

    def wait_status(self, decision_id: int, after_seq: int, timeout: float) -> ExecutorStatus | None:
        """The first final executor status of `decision_id` that arrived after `after_seq`."""
        def final():
            return next((st for seq, st in self._statuses
                         if seq > after_seq and st.decision_id == decision_id and st.terminal), None)
        return self._wait(final, timeout)

    def frame_near(self, stamp_ns: int, timeout: float) -> CameraFrame:
        """The camera frame (rgb, depth, calibrated camera) nearest `stamp_ns`; RobotError
        naming what is missing."""
        cfg = self.cfg
        pair = self._wait(lambda: min(self._pairs, key=lambda p: abs(p[0] - stamp_ns)) if self._pairs else None,
                          timeout)
        if pair is None:
            raise RobotError(f"no colour + depth image pair within {timeout:g} s on {cfg.color_topic} and "
                               f"{cfg.depth_topic} (stamps within ros.sync_slop={cfg.sync_slop} s): is the camera "
                               "driver (or sim_bridge) running, and are these its topics?")
        with self._cond:
            info = self._info
        if info is None:
            raise RobotError(f"no camera_info on {cfg.camera_info_topic}: the candidates cannot be drawn "
                               "without the camera's calibration")
        depth_ns, color_msg, depth_msg = pair
        try:
            check_image_matches_camera_info(color_msg, info, check_frame=False)
            check_image_matches_camera_info(depth_msg, info, check_frame=False)
            intrinsics, info_frame = msg_to_camera_info(info)
            rgb, depth = msg_to_rgb(color_msg), msg_to_depth(depth_msg)
        except MessageConversionError as exc:
            raise RobotError(f"camera image unusable: {exc}") from None
        frame_id = cfg.camera_frame or info_frame
        if not frame_id:
            raise RobotError("camera_info.header.frame_id is empty and ros.camera_frame is not set")
        if self.extrinsics is not None:
            T = self.extrinsics
        else:
            try:
                with self._cond:
                    T = self._tf.lookup(cfg.base_frame, frame_id, depth_ns, cfg.tf_tolerance)
            except TransformError as exc:
                raise RobotError(f"no camera pose '{cfg.base_frame}' -> '{frame_id}' from /tf, /tf_static "
                                   f"({exc}); publish the hand-eye result (robot.launch.py extrinsics:=...) "
                                   "or set ros.extrinsics_file") from None
        camera = CameraModel(CAMERA, intrinsics, T, frame_id=frame_id, base_frame=cfg.base_frame)
        return CameraFrame(camera, rgb, depth)


class RosRobot(Robot):
    """The console's robot on the live ROS 2 graph (see the module docstring).

    cfg: RosConsoleConfig. spin=False leaves spinning to the caller (a test driving the graph
    itself); the node is created in the current rclpy context, or in one this backend opens
    (and shuts down on close) where none is open.
    """

    name = "ros"
    can_prefetch = False  # observing takes the next candidate set: only for the query shown next

    def __init__(self, cfg, spin: bool = True):
        super().__init__()
        rclpy = import_rclpy()
        try:
            # the node module imports rclpy's message packages: only where a ROS robot is made
            from robot_rewards.ros.nodes.console import OperatorNode
        except ImportError as exc:
            raise ValueError(f"backend=ros: a ROS 2 package is missing ({exc}); source your ROS 2 setup "
                             "(sensor_msgs, std_msgs, tf2_msgs are needed)") from None
        self.cfg = cfg
        self._rclpy = rclpy
        self._owns_context = not rclpy.ok()
        if self._owns_context:
            rclpy.init()
        try:
            self.node = OperatorNode(cfg)
        except BaseException:
            if self._owns_context:
                rclpy.shutdown()
            raise
        self.core: OperatorCore = self.node.core
        self._seen = 0  # arrival number of the last candidate set taken
        self._offer: Offer | None = None
        self._observed = 0
        self._own_ids = itertools.count(-2, -1)  # negative: never one of the policy node's decisions
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        if spin:
            self._thread = threading.Thread(target=self._spin, daemon=True, name="console-ros-spin")
            self._thread.start()

    # The scene version is the executor's activity on the graph: the arm may move without us.
    @property
    def scene_version(self) -> int:
        core = getattr(self, "core", None)
        return core.moves if core is not None else 0

    @scene_version.setter
    def scene_version(self, value) -> None:
        pass  # Robot.__init__ sets 0; here the executor's statuses count

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

        executor = SingleThreadedExecutor()
        executor.add_node(self.node)
        while not self._stop.is_set() and self._rclpy.ok():
            try:
                executor.spin_once(timeout_sec=0.05)
            except ExternalShutdownException:
                break
            except Exception as exc:  # a failing callback must not stop the console's graph link
                if self._stop.is_set() or not self._rclpy.ok():
                    break
                self.node.get_logger().error(f"console: callback failed: {type(exc).__name__}: {exc}")
            time.sleep(0)  # let the console's threads run between callbacks
        executor.shutdown()

    # -- Robot --------------------------------------------------------------------------
    def observe(self) -> Observation:
        with self.lock:
            obs = self._observe_set() if self.cfg.source == "policy" else self._observe_cloud()
            self.last_observation = obs
            return obs

    def _observe_set(self) -> Observation:
        cfg = self.cfg
        end = time.monotonic() + cfg.candidates_timeout
        while True:
            got = self.core.next_set(self._seen, max(0.0, end - time.monotonic()))
            if got is None:
                raise RobotError(
                    f"no new candidate set on {cfg.candidates_topic} within {cfg.candidates_timeout:g} s. The policy "
                    f"node publishes one per decision, from a fresh cloud on {cfg.cloud_topic} and a goal; in a "
                    "console:=true graph it waits until its last decision is executed: execute one ('x', or "
                    "execute_after_label=true)")
            self._seen = got.seq
            cset = got.cset
            stamp_ns = ns_of_stamp(cset.stamp)
            msg = self.core.cloud_at(stamp_ns)
            if msg is None:  # subscribed after the cloud went out, or it was dropped
                self.core.report.warning("no_cloud", f"decision {cset.decision_id}: its cloud ({stamp_ns / 1e9:.3f} s) "
                                         f"was not received on {cfg.cloud_topic}; skipped")
                continue
            try:
                obs = cloud_observation(msg, cset.goal)
            except MessageConversionError as exc:
                self.core.report.error("cloud", f"decision {cset.decision_id}: cloud rejected: {exc}; skipped")
                continue
            break
        frame = self.core.frame_near(stamp_ns, cfg.data_timeout)
        obs.frames = {frame.camera.name: frame}
        # One reward family: its members are the scores to show; several: no single score.
        scores = next(iter(cset.scores.values())) if len(cset.scores) == 1 else None
        self._offer = Offer(cset.candidates, scores, cset.decision_id, cset.chosen,
                            f"{cfg.candidates_topic} decision {cset.decision_id}")
        self._observed = got.moves
        return obs

    def _observe_cloud(self) -> Observation:
        cfg = self.cfg
        moves = self.core.moves
        msg = self.core.latest_cloud(cfg.data_timeout)
        if msg is None:
            raise RobotError(f"no point cloud on {cfg.cloud_topic} within {cfg.data_timeout:g} s: is the "
                               "perception node running?")
        try:
            obs = cloud_observation(msg, self.core.goal)
        except MessageConversionError as exc:
            raise RobotError(f"the latest cloud on {cfg.cloud_topic} is unusable: {exc}") from None
        frame = self.core.frame_near(stamp_to_ns(msg.header.stamp), cfg.data_timeout)
        obs.frames = {frame.camera.name: frame}
        self._offer = None
        self._observed = moves
        return obs

    def offer(self) -> Offer | None:
        return self._offer

    def observed_version(self) -> int:
        return self._observed

    def execute(self, primitive: Primitive) -> ActionResult:
        """Send `primitive` to the executor's ExecutePrimitive action and wait for its end."""
        cfg = self.cfg
        with self.lock:
            did = self._offer.decision_id if self._offer is not None else next(self._own_ids)
            after = self.core.status_seq
            self.node.execute(PrimitiveCommand(did, primitive, "console"))
            status = self.core.wait_status(did, after, cfg.execute_timeout)
        if status is None:
            return ActionResult(False, f"no end of decision {did} from {cfg.execute_action} or {cfg.status_topic} "
                                f"within {cfg.execute_timeout:g} s: is the executor running?")
        if status.state == "succeeded":
            return ActionResult(True, f"executor: decision {did} succeeded")
        return ActionResult(False, f"executor: decision {did} {status.state} (code {status.error_code}: "
                            f"{status.error_string})")

    def home(self) -> ActionResult:
        raise RobotError("the ros backend cannot home the arm: the executor runs primitives only "
                           "(use the robot's own tools to move it)")

    def jog(self, delta_m) -> ActionResult:
        raise RobotError("the ros backend cannot jog the arm: the executor runs primitives only "
                           "(use the robot's own teleop)")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.node.destroy_node()
        if self._owns_context and self._rclpy.ok():
            self._rclpy.shutdown()


__all__ = ["OperatorCore", "ReceivedSet", "RosRobot", "import_rclpy"]
