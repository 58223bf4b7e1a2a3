"""Preparing the console's queries: observe -> the policy samples N candidates -> (a preference
scorer scores them) -> (pairwise mode: pick the pair to ask about) -> render the overlay ->
encode it as PNG.

`QueryPreparer` prepares the next query in a background thread while the operator answers,
so after an answer only a file rename and a few lines of text stand between the operator and
the next query. In the sim without `execute_after_label` each query is a fresh scene,
prepared in a second PyBullet world so the operator can still teleoperate in the scene on
screen. With `execute_after_label` the next scene depends on the answer (the chosen candidate
is executed first), so nothing can be prepared ahead.
"""

from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from robot_rewards.console import overlay
from robot_rewards.console.config import ConsoleConfig
from robot_rewards.core.candidates import Candidates
from robot_rewards.core.observation import CameraFrame, Observation
from robot_rewards.preferences.query_selection import select_pairs
from robot_rewards.rewards.base import ScoreSet
from robot_rewards.robots.base import Offer, Robot
from robot_rewards.selection.decider import Decider

FAMILY = "preference"  # the console's one reward family: the preference scorer it shows


@dataclass(eq=False)
class PreparedQuery:
    """A query ready to show: observation, candidates, scores and the rendered overlay.

    scene_version: the backend's scene version when observed (a different one now means the
    scene changed and the query must not be executed); query_id: set once stored.
    """

    index: int
    backend: Robot
    scene_version: int
    episode_seed: int | None
    decision: int
    obs: Observation
    frame: CameraFrame
    candidates: Candidates
    scores: ScoreSet | None
    pair: tuple[int, int] | None
    image: np.ndarray
    png: bytes
    scale: float
    build_s: float
    query_id: int | None = None
    shown_at: float | None = None
    demo: np.ndarray | None = None
    offer: Offer | None = None  # where the robot's policy proposed the candidates
    logged_as: int | None = None  # its step on a Rerun recording's decision timeline (`rerun=`)

    @property
    def stale(self) -> bool:
        return self.backend.scene_version != self.scene_version


class QueryPreparer:
    """Builds the console's queries, the next one in a background thread where that is safe.

    Which scene query k shows: with fresh scenes (a resettable backend, no execute_after_label)
    episode `cfg.seed + k`, reset on backend k % len(backends), so a spare world can prepare
    it while the operator works in the other; otherwise the next decision of the episode
    running on the one backend (a new episode, where the backend can reset, once it is done).
    """

    def __init__(self, cfg: ConsoleConfig, policy, scorer, backends: list[Robot]):
        self.cfg, self.policy, self.scorer, self.backends = cfg, policy, scorer, backends
        # The one decision path's sampling (seeds) and scoring; the operator, not a ranking, chooses.
        self.decider = Decider(policy, None if scorer is None else {FAMILY: scorer}, n_candidates=cfg.n_candidates)
        self.fresh_scenes = backends[0].can_reset and not cfg.execute_after_label
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="console-prefetch")
        self.future: Future | None = None
        self.pending: collections.deque[PreparedQuery] = collections.deque()  # re-queued after an undo
        self.next_index = 0
        self._slot_lock = threading.Lock()  # the prefetch thread and 'x' may both plan a query
        self._episode_seed: int | None = None
        self._next_episode = cfg.seed
        self._decision = 0

    def _slot(self, k: int, replacing: PreparedQuery | None) -> tuple[Robot, int | None, int | None, int]:
        """(backend, reset seed or None, episode seed, decision) of query k."""
        if self.fresh_scenes:
            if replacing is not None:  # same scene after a teleop execution: no reset
                return replacing.backend, None, replacing.episode_seed, replacing.decision + 1
            seed = self.cfg.seed + k
            return self.backends[k % len(self.backends)], seed, seed, 0
        backend, reset = self.backends[0], None
        with self._slot_lock:
            if self._episode_seed is None or backend.episode_done():
                if backend.can_reset:
                    reset = self._next_episode
                    self._next_episode += 1
                self._episode_seed, self._decision = reset, 0
            decision = self._decision
            self._decision += 1
            return backend, reset, self._episode_seed, decision

    def build(self, k: int, replacing: PreparedQuery | None = None) -> PreparedQuery:
        """Observe, sample, score and render query k (runs in the prefetch thread too).

        replacing: the query whose scene an execution just changed; with fresh scenes the new
        query shows that scene's next decision instead of a new episode."""
        t0 = time.perf_counter()
        backend, reset, episode_seed, decision = self._slot(k, replacing)
        with backend.lock:  # observe + version as one step
            if reset is not None:
                backend.reset(reset)
            obs = backend.observe()
            version = backend.observed_version()
            offer = backend.offer()
        if not obs.frames:
            raise ValueError("the observation has no camera image to show the candidates on")
        name = self.cfg.camera or next(iter(obs.frames))
        if name not in obs.frames:
            raise ValueError(f"camera '{name}' is not observed; cameras: {sorted(obs.frames)}")
        frame = obs.frames[name]
        base = episode_seed if episode_seed is not None else self.cfg.seed
        if offer is not None:  # the robot's policy proposed them (the ROS policy node)
            cands = offer.candidates
        else:
            cands = self.decider.sample(obs, base, decision)
        if self.scorer is not None:
            scores = self.decider.score(obs, cands)[FAMILY]
        else:
            scores = ScoreSet.from_members(offer.scores) if offer is not None and offer.scores is not None else None
        pair = None
        if self.cfg.mode == "pairwise":
            pair = tuple(int(i) for i in select_pairs(len(cands), 1, self.cfg.pair_selection, scores,
                                                      rng=[self.cfg.seed, k, decision, 5501])[0])
        scale = overlay.display_scale(frame.camera.intrinsics.width, self.cfg.display_width)
        image = render_overlay(frame, cands, pair, {}, scale, obs.goal)
        q = PreparedQuery(k, backend, version, episode_seed, decision, obs, frame, cands, scores, pair, image,
                          encode_png(image), scale, 0.0, offer=offer)
        q.build_s = time.perf_counter() - t0
        return q

    def prefetch(self, remaining: int) -> None:
        """Start preparing the next new query in the background, where that is safe.

        remaining: queries the session still needs after the one on screen (re-queued ones
        count towards it)."""
        if not self.cfg.prefetch or self.future is not None or remaining - len(self.pending) <= 0:
            return
        if self.cfg.execute_after_label or (self.fresh_scenes and len(self.backends) < 2):
            return  # the next scene depends on the answer, or would replace the one on screen
        if not self.backends[0].can_prefetch:
            return  # observing consumes the robot's next proposal: only for the query shown next
        k, self.next_index = self.next_index, self.next_index + 1
        self.future = self.executor.submit(self.build, k)

    def requeue(self, q: PreparedQuery) -> None:
        """Show q again next (it was on screen when an undo brought back the query before it)."""
        self.pending.appendleft(q)

    def take_next(self) -> tuple[PreparedQuery, bool]:
        """The next query to show and whether it was ready without waiting."""
        if self.pending:
            return self.pending.popleft(), True
        if self.future is not None:
            future, self.future = self.future, None
            ready = future.done()
            q = future.result()
            if q.stale and not self.fresh_scenes:  # the scene moved under it: observe again
                q = self.build(q.index)
            return q, ready
        k, self.next_index = self.next_index, self.next_index + 1
        return self.build(k), False

    def close(self) -> None:
        """Stop the background thread (waiting for a query being prepared)."""
        self.executor.shutdown(wait=True, cancel_futures=True)


def render_overlay(frame: CameraFrame, cands: Candidates, pair: tuple[int, int] | None,
                   highlight: dict[int, str], scale: float, goal: str) -> np.ndarray:
    """The candidates drawn on the camera image with the goal as title: all of them numbered
    (`highlight`: index -> tag of the ones to emphasise), or only `pair`, as A and B."""
    if pair is not None:
        labels = [str(i + 1) for i in range(len(cands))]
        labels[pair[0]], labels[pair[1]] = f"A ({pair[0] + 1})", f"B ({pair[1] + 1})"
        return overlay.draw_candidates(frame.rgb, frame.camera, cands, labels, show=pair, scale=scale,
                                       title=f"A or B? {goal}")
    return overlay.draw_candidates(frame.rgb, frame.camera, cands, highlight=highlight, scale=scale,
                                   title=goal)


def encode_png(rgb: np.ndarray) -> bytes:
    """An RGB image as PNG bytes, encoded for speed."""
    # No PNG filtering: twice as fast to encode, and the file is only for looking at.
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE])
    if not ok:
        raise RuntimeError("could not encode the overlay as PNG")
    return buf.tobytes()
