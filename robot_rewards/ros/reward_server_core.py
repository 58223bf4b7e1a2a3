"""The reward server's logic: score candidate sets with the hosted models; the goal reward.

Score requests name the cloud (by stamp) the policy sampled in; the server keeps the clouds of
the last `cloud_keep` seconds (by stamp, at most `cloud_cache` of them), so a cloud is never sent
twice. The window is in seconds because the policy samples for seconds while new clouds keep
coming: a count of clouds (8 once) was outrun on a loaded machine, where sampling the rope policy
took 7-13 s at 1.4 clouds/s. A request that arrives before its cloud waits for it up to
`request_timeout`, then is answered with an error; one that names a cloud older than those kept
is answered with an error at once (it can no longer arrive). Requests go to a
`RewardHost` (micro-batched on its worker thread); `reply` is called from that thread with
the ScoreResponse once every requested model has answered (the node's ScoreCandidates service
answers with it). One failing model fails alone: its message goes into the response's `errors`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable

import numpy as np

from robot_rewards.core.observation import Observation
from robot_rewards.rewards.base import RewardInputError
from robot_rewards.ros.config import RewardServerConfig
from robot_rewards.ros.convert_common import MessageConversionError, stamp_to_ns
from robot_rewards.ros.convert_image import msg_to_rgb
from robot_rewards.ros.convert_interfaces import to_payload
from robot_rewards.ros.observation import cloud_observation
from robot_rewards.ros.payloads import ScoreRequest, ScoreResponse, ns_of_stamp
from robot_rewards.ros.report import Reporter

Reply = Callable[[ScoreResponse], None]  # may be called from the reward host's worker thread


class RewardServerCore:
    """Hosts the scorers (`host`, may be None) and an optional goal reward (`state_reward`)."""

    def __init__(self, cfg: RewardServerConfig, host=None, state_reward=None, log=None,
                 clock: Callable[[], float] = time.monotonic):
        if cfg.state_reward_input not in ("image", "observation"):
            raise ValueError(f"state_reward_input must be image or observation, got '{cfg.state_reward_input}'")
        if not cfg.cloud_keep > 0 or cfg.cloud_cache < 0:
            raise ValueError(f"cloud_keep must be positive and cloud_cache >= 0, got {cfg.cloud_keep} and "
                             f"{cfg.cloud_cache}")
        self.cfg = cfg
        self.host = host
        self.state_reward = state_reward
        self.report = Reporter(log)
        self.clock = clock
        self.goal = cfg.goal
        self._clouds: OrderedDict[int, Observation] = OrderedDict()  # stamp ns -> cloud, in arrival order
        self._newest_ns = -1  # newest cloud stamp received
        self._dropped_ns = -1  # newest stamp no longer kept: requests at or before it are answered at once
        self._parked: list[tuple[float, ScoreRequest, Reply]] = []
        self._lock = threading.Lock()
        self._last_goal_reward: float | None = None

    # -- inputs ------------------------------------------------------------------------------
    def on_goal(self, text: str) -> None:
        self.goal = str(text)

    def on_cloud(self, msg) -> float | None:
        """Cache the cloud; serve requests that waited for it. Returns a goal reward when due."""
        try:
            obs = cloud_observation(msg, self.goal)
        except MessageConversionError as exc:
            self.report.error("cloud", f"point cloud rejected: {exc}")
            return None
        ns = stamp_to_ns(msg.header.stamp)
        with self._lock:
            self._keep(ns, obs)
            ready = [(r, reply) for _, r, reply in self._parked if ns_of_stamp(r.stamp) == ns]
            self._parked = [x for x in self._parked if ns_of_stamp(x[1].stamp) != ns]
        for request, reply in ready:
            self._serve(request, obs, reply)
        if self.cfg.state_reward_input == "observation":
            return self._goal_reward(obs)
        return None

    def _keep(self, ns: int, obs: Observation) -> None:
        """Cache a cloud, then drop those older than cloud_keep behind the newest or over cloud_cache
        (the caller holds the lock)."""
        self._newest_ns = max(self._newest_ns, ns)
        horizon = self._newest_ns - int(round(self.cfg.cloud_keep * 1e9))
        if ns < horizon:  # arrived out of order and already too old: serves waiting requests only
            self._dropped_ns = max(self._dropped_ns, ns)
            return
        self._clouds[ns] = obs
        while self._clouds:
            oldest = next(iter(self._clouds))
            if oldest >= horizon and not (self.cfg.cloud_cache and len(self._clouds) > self.cfg.cloud_cache):
                break
            del self._clouds[oldest]
            self._dropped_ns = max(self._dropped_ns, oldest)

    def cached(self) -> list[int]:
        """Stamps (ns) of the clouds kept, oldest first."""
        with self._lock:
            return list(self._clouds)

    def on_color(self, msg) -> float | None:
        """Goal reward of a colour frame (state_reward_input = image), when due."""
        if self.state_reward is None or self.cfg.state_reward_input != "image":
            return None
        try:
            image = msg_to_rgb(msg)
        except MessageConversionError as exc:
            self.report.error("image", f"colour image rejected: {exc}")
            return None
        return self._goal_reward(image)

    def _goal_reward(self, item) -> float | None:
        if self.state_reward is None:
            return None
        if not self.goal.strip():
            self.report.warning("no_goal", "no goal sentence yet: goal reward not computed")
            return None
        now = self.clock()
        if self._last_goal_reward is not None and self.cfg.goal_reward_rate > 0:
            if now - self._last_goal_reward < 1.0 / self.cfg.goal_reward_rate:
                return None
        self._last_goal_reward = now
        try:
            value = float(np.asarray(self.state_reward.score_states([item], self.goal)).reshape(-1)[0])
        except Exception as exc:  # a model error must not stop the server
            self.report.error("goal_reward", f"goal reward failed: {type(exc).__name__}: {exc}")
            return None
        if not np.isfinite(value):
            self.report.error("goal_reward", f"goal reward is {value}: not published")
            return None
        return value

    # -- score requests ----------------------------------------------------------------------
    def on_request(self, value, reply: Reply) -> bool:
        """Serve (or park) a score request (a ScoreRequest, a ScoreCandidates request or JSON);
        a malformed one is logged and refused (False: `reply` is never called)."""
        try:
            request = to_payload(ScoreRequest, value)
        except MessageConversionError as exc:
            self.report.error("request", f"score request rejected: {exc}")
            return False
        ns = ns_of_stamp(request.stamp)
        with self._lock:
            obs = self._clouds.get(ns)
            if obs is None and ns > self._dropped_ns:
                self._parked.append((self.clock(), request, reply))
                return True
            gone = None if obs is not None else self._gone(ns)
        if gone is not None:
            self.report.error("cloud_gone", f"request {request.request_id}: {gone}")
            reply(ScoreResponse(request.request_id, errors={"server": gone}))
            return True
        self._serve(request, obs, reply)
        return True

    def _gone(self, ns: int) -> str:
        """Why the cloud stamped `ns` is not kept (the caller holds the lock)."""
        sec, nsec = divmod(ns, 1_000_000_000)
        behind = (self._newest_ns - ns) / 1e9
        full = bool(self.cfg.cloud_cache) and len(self._clouds) >= self.cfg.cloud_cache
        return (f"no cloud stamped {sec}.{nsec:09d} is kept any more: it is {behind:.1f} s older than the newest "
                f"on {self.cfg.cloud_topic}, and {len(self._clouds)} clouds of the last cloud_keep "
                f"{self.cfg.cloud_keep:g} s (cloud_cache {self.cfg.cloud_cache}) are kept: raise "
                f"{'cloud_cache' if full else 'cloud_keep'} over the policy's sampling time")

    def expire(self) -> int:
        """Answer requests that waited longer than request_timeout for their cloud; returns how many."""
        now = self.clock()
        with self._lock:
            late = [x for x in self._parked if now - x[0] > self.cfg.request_timeout]
            self._parked = [x for x in self._parked if now - x[0] <= self.cfg.request_timeout]
        for _, request, reply in late:
            sec, nsec = request.stamp
            msg = (f"no cloud stamped {sec}.{nsec:09d} arrived within {self.cfg.request_timeout} s "
                   f"on {self.cfg.cloud_topic}")
            self.report.error("no_cloud", f"request {request.request_id}: {msg}")
            reply(ScoreResponse(request.request_id, errors={"server": msg}))
        return len(late)

    def _serve(self, request: ScoreRequest, obs: Observation, reply: Reply) -> None:
        if self.host is None:  # no scorers: an empty answer, and the policy ranks by itself
            reply(ScoreResponse(request.request_id))
            return
        goal = request.goal or self.goal
        obs = Observation(frames=obs.frames, proprio=None, goal=goal, timestamp=obs.timestamp,
                          points=obs.points, colors=obs.colors)
        models = request.models or list(self.host.scorers)
        response = ScoreResponse(request.request_id)
        pending = {"n": len(models)}
        lock = threading.Lock()

        def finish(name: str, scores=None, error: str | None = None) -> None:
            with lock:
                if error is not None:
                    response.errors[name] = error
                    self.report.error(f"score:{name}", f"request {request.request_id}: model '{name}': {error}")
                else:
                    response.scores[name] = scores.members
                pending["n"] -= 1
                last = pending["n"] == 0
            if last:
                reply(response)

        for name in models:
            try:
                future = self.host.submit(obs, request.candidates, name)
            except (KeyError, RewardInputError, RuntimeError) as exc:
                finish(name, error=str(exc).strip("'\""))
                continue

            def done(fut, name=name):
                exc = fut.exception()
                if exc is not None:
                    finish(name, error=f"{type(exc).__name__}: {exc}")
                else:
                    finish(name, fut.result())

            future.add_done_callback(done)
