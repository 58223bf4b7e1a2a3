"""`robot-rewards console`: label (and teleoperate) the policy's candidates, one query at a time.

Per query: observe -> the policy samples N candidates -> (a preference scorer scores them) ->
the overlay is rendered -> `<output_dir>/current.png` is replaced atomically (and an OpenCV
window shows it where a display exists) -> the terminal prints the candidates, their scores,
progress and the prompt -> answers go to the preference store the moment they are given.

The next query is prepared in a background thread while the operator answers (`queries.py`),
so after an answer only a file rename and a few lines of text stand between the operator and
the next query. With `execute_after_label` the next scene depends on the answer (the chosen
candidate is executed first), so nothing can be prepared ahead; that latency includes the
arm's motion and is reported separately.

Input is line based (one key, a few rank digits, or one teleop command per line), so the
console works over SSH and in a pseudo-terminal; in the OpenCV window single keys work too and
two clicks give the pixels of a demonstration (`window.py`).

This module is the interactive loop (`Console`), `run_console` and the
`python -m robot_rewards.console.app` entry point.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from pathlib import Path
from typing import TextIO

import numpy as np

from robot_rewards.console.config import ConsoleConfig
from robot_rewards.console.queries import PreparedQuery, QueryPreparer, render_overlay
from robot_rewards.console.ranking_session import (
    Demonstrate,
    Execute,
    Home,
    Jog,
    PairAnswer,
    Quit,
    RankAnswer,
    RankingSession,
    Skip,
    UndoStored,
)
from robot_rewards.console.recording import QueryRecorder, pair_preferred
from robot_rewards.console.window import Window
from robot_rewards.core.atomic import write_atomic
from robot_rewards.core.primitives import Primitive
from robot_rewards.preferences.errors import PreferenceStoreError
from robot_rewards.robots.base import Robot, RobotError, pixel_to_point
from robot_rewards.robots.workspace import narrowed, outside

IMAGE_NAME = "current.png"


def demonstration_params(primitive: str, first: np.ndarray, second: np.ndarray, yaw: float,
                         grasp_depth: float, place_height: float) -> np.ndarray:
    """Primitive parameters from two clicked surface points (base frame, table top at z = 0).

    pick_place: grasp `grasp_depth` below the clicked top of the object (at least half way
    up it, for thin objects), release `place_height` above the clicked target surface.
    push: start and end `place_height` above the clicked table points.
    """
    a, b = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if primitive == "pick_place":
        pick = np.array([a[0], a[1], max(a[2] - grasp_depth, a[2] / 2.0)])
        return np.r_[pick, b + [0.0, 0.0, place_height], yaw]
    if primitive == "push":
        return np.r_[a + [0.0, 0.0, place_height], b + [0.0, 0.0, place_height]]
    raise ValueError(f"no demonstration by clicks for primitive '{primitive}'")


class _LineReader:
    """Reads input lines in a thread (so the window stays responsive) with their arrival times."""

    def __init__(self, stream: TextIO):
        self.lines: queue.Queue[tuple[float, str | None]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True, name="console-input")
        self._thread.start()

    def _run(self, stream: TextIO) -> None:
        try:
            for line in iter(stream.readline, ""):
                self.lines.put((time.perf_counter(), line.rstrip("\r\n")))
        except (OSError, ValueError):  # the terminal went away
            pass
        self.lines.put((time.perf_counter(), None))

    def get(self, timeout: float | None) -> tuple[float, str | None] | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None


class Console:
    """One labelling session: the loop of `run_console` and the state it keeps."""

    def __init__(self, cfg: ConsoleConfig, policy, scorer, backends: list[Robot], store,
                 output: TextIO, out_dir: Path, window: Window | None, decision_log=None,
                 policy_identity: dict | None = None):
        """decision_log: a viz.rerun_log.DecisionLog that each query and answer is logged to
        (None: no recording). policy_identity: the policy checkpoint's {"path", "sha256"}, kept
        with the session so its labels are not reused for another policy's candidates."""
        self.cfg, self.policy, self.store = cfg, policy, store
        self.recorder = None if decision_log is None else QueryRecorder(decision_log)
        self.output, self.out_dir, self.window = output, out_dir, window
        self.labeller = cfg.labeller_name()
        self.primitive = policy.primitive
        # The robot's configured box is the authority; the checkpoint's may narrow it, never
        # widen it (`robots.workspace.narrowed`: a wider one is intersected, with a warning).
        # The policy clips its candidates into this box, and nothing outside it is executed or
        # stored as a demonstration (candidates a robot's own policy offers are not clipped).
        self.workspace, warning = narrowed(backends[0].workspace, policy.workspace, "the policy checkpoint")
        policy.workspace = self.workspace
        if warning:
            output.write(f"warning: {warning}\n")
        self.session = RankingSession(cfg.mode, cfg.jog_max_cm)
        self.session_id = store.start_session(self.labeller, cfg.task, cfg.mode, meta={
            "backend": cfg.backend, "checkpoint": cfg.checkpoint_path(), "scorer": cfg.scorer,
            "n_candidates": cfg.n_candidates, "seed": cfg.seed, "execute_after_label": cfg.execute_after_label,
            **({"policy": dict(policy_identity)} if policy_identity else {})})
        self.preparer = QueryPreparer(cfg, policy, scorer, backends)
        self.history: list[PreparedQuery] = []  # answered queries, newest last (for undo)
        self.current: PreparedQuery | None = None
        self.counts = collections.Counter()
        self.latency: list[float] = []  # answer -> next query shown, no arm motion in between
        self.latency_motion: list[float] = []  # the same where the answer made the arm move first
        self.ready: list[bool] = []  # whether the next query was prepared when the answer came
        self.build_s: list[float] = []
        self._shown_t = 0.0
        self.stopped: str | None = None  # why the session ended early (the robot failed), if it did

    # -- showing -------------------------------------------------------------------------------
    def _publish(self, image: np.ndarray | None, png: bytes | None, scale: float) -> None:
        if png is not None:
            path = self.out_dir / IMAGE_NAME
            write_atomic(path, png, durable=False)  # viewers never see a half-written image; no fsync per frame
        if self.window is not None and image is not None:
            self.window.show(image, scale)

    def _show(self, q: PreparedQuery) -> float:
        """Put q on screen (image, window, terminal); returns the time it was shown, then
        stores it and starts preparing the one after."""
        self.current = q
        self.session.new_query(len(q.candidates), q.pair, (q.frame.camera.intrinsics.width,
                                                           q.frame.camera.intrinsics.height))
        self._publish(q.image, q.png, q.scale)
        self._say(self._describe(q), prompt=True)
        t_shown = self._shown_t = time.perf_counter()
        q.shown_at = time.time()
        if q.query_id is None:
            meta = {"index": q.index, "episode_seed": q.episode_seed, "decision": q.decision,
                    "backend": self.cfg.backend, "camera": q.frame.camera.name,
                    "checkpoint": self.cfg.checkpoint_path(), "pair": list(q.pair) if q.pair else None}
            if q.offer is not None:  # proposed by the robot's policy: which decision it was
                meta.update(proposed_by=q.offer.origin, decision_id=q.offer.decision_id,
                            policy_choice=q.offer.chosen)
            q.query_id = self.store.add_query(
                self.session_id, self.cfg.task, q.obs.goal, q.candidates, q.obs.points, q.obs.colors,
                image=q.frame.rgb, scores=None if q.scores is None else q.scores.members, meta=meta)
            self.counts["shown"] += 1
            self.build_s.append(q.build_s)
            if self.recorder is not None:
                self.recorder.shown(q)
        self.store.mark_shown(q.query_id, q.shown_at)
        self.preparer.prefetch(self.cfg.queries - self.counts["done"] - 1)  # queries needed after q
        return t_shown

    def _describe(self, q: PreparedQuery) -> str:
        labels = self.store.label_count(self.cfg.task)
        head = (f"\n{'=' * 72}\nquery {self.counts['done'] + 1}/{self.cfg.queries}, {labels} labels "
                f"({self.counts['answers']} answers this session) | {self.cfg.task} | {self.cfg.backend}"
                + (f" episode {q.episode_seed}, decision {q.decision + 1}" if q.episode_seed is not None else ""))
        lines = [head, f"goal: {q.obs.goal}", f"image: {self.out_dir / IMAGE_NAME}"]
        spec = q.candidates.primitive(0).spec
        shown = q.pair if q.pair is not None else range(len(q.candidates))
        best = int(np.argmax(q.scores.mean)) if q.scores is not None else None
        for i in shown:
            prim = q.candidates.primitive(i)
            tag = f"{'AB'[q.pair.index(i)]} " if q.pair is not None else ""
            pts = " -> ".join(f"{p} ({', '.join(f'{c:.3f}' for c in prim[p])})" for p in spec.points)
            extra = "".join(f"  {a} {np.degrees(prim[a]):+.0f}deg" for a in spec.angles)
            score = ""
            if q.scores is not None:
                score = f"  score {q.scores.mean[i]:+.3f} +- {q.scores.std[i]:.3f}" + ("  (top)" if i == best else "")
            flag = "  [clipped]" if q.candidates.clipped[i] else ""
            lines.append(f"  {tag}{i + 1:>2}  {pts}{extra}{score}{flag}")
        return "\n".join(lines)

    def _say(self, text: str, prompt: bool = False) -> None:
        if text:
            self.output.write(text + "\n")
        if prompt:
            self.output.write(self.session.prompt() + "\n> ")
        self.output.flush()

    # -- acting on input -------------------------------------------------------------------------
    def run(self, input_stream: TextIO) -> None:
        """The query loop; returns when enough queries are done, on 'q', or at end of input."""
        reader = _LineReader(input_stream)
        first = self._take_next()
        if first is None:
            return
        self._show(first[0])
        while self.counts["done"] < self.cfg.queries:
            arrived, line = self._read(reader)
            if line is None:
                self._say("end of input: quitting (answers are stored)")
                return
            # Typed-ahead input counts from when its query appeared, not from when it was read.
            t_in = max(arrived, self._shown_t)
            picks = list(self.session.picks)
            step = self.session.feed(line)
            if step.message:
                self._say(step.message)
            advance, motion, shown = False, False, self._shown_t
            for event in step.events:
                if isinstance(event, Quit):
                    self._say("quitting (answers are stored)")
                    return
                done, moved = self._handle(event)
                advance, motion = advance or done, motion or moved
            if advance:
                self.counts["done"] += 1
                if self.counts["done"] >= self.cfg.queries:
                    return
                nxt = self._take_next()
                if nxt is None:
                    return
                q, ready = nxt
                t_shown = self._show(q)
                (self.latency_motion if motion else self.latency).append(t_shown - t_in)
                if not motion:
                    self.ready.append(ready)
            elif self._shown_t == shown:  # nothing new on screen: prompt again
                if self.session.picks != picks:
                    self._refresh_window()
                self._say("", prompt=True)

    def _take_next(self) -> tuple[PreparedQuery, bool] | None:
        """The next query, or None (after saying why) where the robot cannot give one, e.g. no
        candidate set came from the live graph in time; the session then ends, answers stored."""
        try:
            return self.preparer.take_next()
        except RobotError as exc:
            self.stopped = str(exc)
            self._say(f"error: {exc}\nstopping (answers are stored)")
            return None

    def _refresh_window(self) -> None:
        """Rank mode: redraw the window with the picks so far highlighted (current.png keeps
        the plain overlay; encoding it again would cost more than the answer)."""
        q = self.current
        if self.window is None or q.pair is not None:
            return
        marks = {i: f"#{k + 1}" for k, i in enumerate(self.session.picks)}
        self._publish(render_overlay(q.frame, q.candidates, None, marks, q.scale, q.obs.goal), None, q.scale)

    def _read(self, reader: _LineReader) -> tuple[float, str | None]:
        while True:
            got = reader.get(None if self.window is None else 0.0)
            if got is not None:
                return got
            key = self.window.poll(20)
            for u, v in self.window.new_clicks:
                self._say(f"click at pixel ({u:.0f}, {v:.0f})")
            self.window.new_clicks.clear()
            if key is not None:
                self._say(key)
                return time.perf_counter(), key

    def _handle(self, event) -> tuple[bool, bool]:
        """Carry out one event; returns (the query is finished, the arm moved for it)."""
        q = self.current
        if isinstance(event, (RankAnswer, PairAnswer)):
            try:
                if isinstance(event, RankAnswer):
                    self.store.add_ranking(q.query_id, list(event.order), self.labeller, event.rest_equal,
                                           q.shown_at)
                    what = "ranking " + (" > ".join(str(i + 1) for i in event.order) or "all equal")
                    chosen = event.order[0] if event.order else None
                    preferred = list(event.order)
                else:
                    self.store.add_pair(q.query_id, event.a, event.b, event.answer, self.labeller, q.shown_at)
                    what = f"{event.answer} (A = {event.a + 1}, B = {event.b + 1})"
                    chosen = {"a": event.a, "b": event.b}.get(event.answer)
                    preferred = pair_preferred(event.a, event.b, event.answer)
            except PreferenceStoreError as exc:
                self.session.reopen()
                self._say(f"answer NOT stored: {exc}\nanswer this query again")
                return False, False
            self._answered(q, what)
            if self.recorder is not None:
                self.recorder.answered(q, preferred, what)
            return True, self._execute_after(q, chosen)
        try:
            if isinstance(event, Skip):
                self.counts["skipped"] += 1
                self._say("skipped")
                if self.recorder is not None:
                    self.recorder.skipped(q)
                return True, False
            if isinstance(event, UndoStored):
                self._undo()
                return False, False
            if isinstance(event, Execute):
                return self._execute_now(q, event), False
            if isinstance(event, Home):
                self._say(f"home: {q.backend.home().message}")
            elif isinstance(event, Jog):
                self._say(f"jog {tuple(round(100 * d, 1) for d in event.delta_m)} cm: "
                          f"{q.backend.jog(event.delta_m).message}")
            elif isinstance(event, Demonstrate):
                self._demonstrate(q, event)
        except (PreferenceStoreError, RobotError, ValueError) as exc:
            self._say(f"error: {exc}")
        return False, False

    def _answered(self, q: PreparedQuery, what: str) -> None:
        self.counts["answers"] += 1
        self.history.append(q)
        self._say(f"stored: {what}")

    def _undo(self) -> None:
        what = self.store.undo_last(self.session_id)
        if what is None:
            self._say("nothing to undo in this session")
            return
        self.counts["answers"] -= 1
        self.counts["undone"] += 1
        self._say(f"undid {what}")
        if self.history:
            prev = self.history.pop()
            self.counts["done"] -= 1
            if self.recorder is not None:
                self.recorder.undone(prev)
            self.preparer.requeue(self.current)
            self._say("showing that query again")
            self._show(prev)

    def _primitive_for(self, q: PreparedQuery, index: int | None) -> tuple[Primitive, str]:
        """What to execute: candidate `index`, else this query's demonstration, else the top-scored."""
        if index is not None:
            return q.candidates.primitive(index), f"candidate {index + 1}"
        if q.demo is not None:
            return Primitive(self.primitive, q.demo), "the demonstration"
        if q.scores is not None:
            best = int(np.argmax(q.scores.mean))
            return q.candidates.primitive(best), f"top-scored candidate {best + 1}"
        raise ValueError("nothing chosen and no scorer to pick the top-scored candidate: "
                         "rank first, or say which one, e.g. 'x 3'")

    def _execute_now(self, q: PreparedQuery, event: Execute) -> bool:
        """'x': execute on the arm, then show a fresh query of the changed scene."""
        prim, what = self._primitive_for(q, event.index)
        problem = outside(prim, self.workspace)
        if problem is not None:
            raise ValueError(f"not executing {what}: {problem}")
        with q.backend.lock:  # no prefetch may reset this scene between the check and the motion
            if q.stale:
                raise ValueError("the scene of this query is gone (it changed since): not executing")
            if self.session.picks:
                self._say("the ranking in progress is dropped: the scene is about to change")
            self._say(f"executing {what}: {prim!r}")
            self._say(q.backend.execute(prim).message)
        self.counts["executions"] += 1
        fresh = self.preparer.build(q.index, replacing=q)
        self._show(fresh)
        return False

    def _execute_after(self, q: PreparedQuery, index: int | None) -> bool:
        """execute_after_label: run the chosen candidate (or the demonstration / top-scored one)."""
        if not self.cfg.execute_after_label:
            return False
        try:
            prim, what = self._primitive_for(q, index)
        except ValueError:
            prim, what = q.candidates.primitive(0), "candidate 1 (nothing preferred, no scorer)"
        problem = outside(prim, self.workspace)
        if problem is not None:
            self._say(f"not executing {what}: {problem}")
            return False
        with q.backend.lock:
            if q.stale:
                self._say("not executing: the scene changed since this query was made")
                return False
            self._say(f"executing {what}...")
            try:
                self._say(q.backend.execute(prim).message)
            except RobotError as exc:  # the answer is stored; carry on with the next query
                self._say(f"error: {exc}")
                return False
        self.counts["executions"] += 1
        return True

    def _demonstrate(self, q: PreparedQuery, event: Demonstrate) -> None:
        pick_uv, place_uv = event.pick_uv, event.place_uv
        if pick_uv is None:
            clicks = self.window.clicks if self.window is not None else []
            if len(clicks) < 2:
                raise ValueError("no pixels given: 'd <u1> <v1> <u2> <v2>' (camera pixels, see the ruler on the "
                                 "image), or click pick and place in the window first")
            pick_uv, place_uv = clicks[-2], clicks[-1]
        a = pixel_to_point(q.frame, *pick_uv)
        b = pixel_to_point(q.frame, *place_uv)
        params = demonstration_params(self.primitive, a, b, event.yaw, self.cfg.demo_grasp_depth,
                                      self.cfg.demo_place_height)
        prim = Primitive(self.primitive, params)
        problem = outside(prim, self.workspace)
        if problem is not None:
            raise ValueError(f"demonstration not stored: {problem}")
        demo_id = self.store.add_demonstration(q.query_id, params, self.labeller)
        q.demo = params
        self.counts["demonstrations"] += 1
        self._say(f"demonstration {demo_id} stored: {prim!r} ('x' executes it; rank, or 's' for the next query)")

    # -- results -------------------------------------------------------------------------------
    def metrics(self) -> dict:
        return {
            "command": "console",
            "task": self.cfg.task,
            "mode": self.cfg.mode,
            "backend": self.cfg.backend,
            "labeller": self.labeller,
            "session_id": self.session_id,
            "store": str(self.store.root),
            "image": str(self.out_dir / IMAGE_NAME),
            "queries_shown": self.counts["shown"],
            "queries_done": self.counts["done"],
            "answers": self.counts["answers"],
            "skipped": self.counts["skipped"],
            "undone": self.counts["undone"],
            "demonstrations": self.counts["demonstrations"],
            "executions": self.counts["executions"],
            "labels": self.store.label_count(self.cfg.task),
            "next_query_latency_ms": _summary(self.latency),
            "next_query_latency_with_motion_ms": _summary(self.latency_motion),
            "prefetch_ready_fraction": float(np.mean(self.ready)) if self.ready else None,
            "query_build_ms": _summary(self.build_s),
            "stopped": self.stopped,
        }

    def close(self) -> None:
        self.preparer.close()
        try:
            self.store.end_session(self.session_id)
        except Exception:  # the session's answers are stored already; the end time is cosmetic
            pass


def _summary(seconds: list[float]) -> dict:
    if not seconds:
        return {"n": 0, "median": None, "p95": None, "max": None}
    ms = 1000.0 * np.asarray(seconds)
    return {"n": int(ms.size), "median": float(np.median(ms)), "p95": float(np.percentile(ms, 95)),
            "max": float(ms.max())}


def output_dir_for(path: str) -> Path:
    if "${" in path:  # called directly, not through hydra: resolve the default's timestamp here
        path = f"outputs/console/{time.strftime('%Y-%m-%d_%H-%M-%S')}"
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out
