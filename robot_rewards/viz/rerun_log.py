"""Decisions to Rerun (`rerun-sdk`, the optional `rerun` extra): a saved .rrd or a live viewer.

One recording per run, on the timelines `decision` (a counter over the whole run), `episode`
and, where the decision has a recorded time (`bag replay`), `stamp`. Entities:

    world/cloud                 Points3D   the observation's base-frame cloud (its colours)
    world/candidates            Arrows3D   every candidate, first point -> second point
                                           (pick -> place, start -> end), coloured by score
                                           (viridis, low -> high; grey when unscored), labelled
                                           "index: score"
    world/chosen                Arrows3D   the executed candidate, thick and green
    world/rejected              Arrows3D   candidates tried and refused, red, labelled by reason
    world/preferred             Arrows3D   the console operator's answer: ranked candidates
                                           labelled "#1: i", ...; a pair's preferred one (orange)
    world/cameras/<name>        Transform3D (base_T_camera) + Pinhole; .../rgb Image,
                                .../depth DepthImage (metres)
    log/decisions               TextLog    the decision's summary line; one WARN line per rejection
    log/answers                 TextLog    the console operator's answers (skips, undos)
    metrics/<name>              Scalars    chosen utility, task quality, success
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from robot_rewards.core.optional import require
from robot_rewards.core.primitives import PRIMITIVE_SPECS

APP_ID = "robot_rewards"
GREY = (150, 150, 150)
CHOSEN = (40, 220, 60)
REJECTED = (230, 40, 40)
PREFERRED = (255, 150, 0)
LIVE = "live"  # the `rerun=` value that opens a live viewer instead of writing a file


class RecordingPathError(OSError):
    """A .rrd path that cannot be written."""


def _rerun():
    return require("rerun", "rerun", "logging decisions to Rerun", package="rerun-sdk")


def check_writable(path: str | os.PathLike) -> Path:
    """`path` as a Path once a file can be created there (RecordingPathError saying why not);
    checked before any work, since Rerun's file sink reports failures only in its log."""
    p = Path(path)
    if p.suffix != ".rrd":
        raise RecordingPathError(f"Rerun recording path must end in .rrd, got '{p}'")
    if p.is_dir():
        raise RecordingPathError(f"cannot write the Rerun recording {p}: it is a folder")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        existed = p.exists()
        with open(p, "ab"):
            pass
        if not existed:
            p.unlink()
    except OSError as exc:
        raise RecordingPathError(f"cannot write the Rerun recording {p}: {exc.strerror or exc}") from None
    return p


def check_target(target: str) -> str:
    """A command's `rerun=` setting checked before any work: '' (off), 'live' (a viewer), or a
    writable .rrd path (RecordingPathError naming the problem otherwise); a recording also
    needs rerun-sdk installed (MissingDependencyError saying how otherwise)."""
    if not target:
        return target
    if target != LIVE:
        check_writable(target)
    _rerun()
    return target


def open_decision_log(target: str) -> DecisionLog | None:
    """The DecisionLog a command's `rerun=` setting asks for: None for '', a live viewer for
    'live', else the .rrd file at that path."""
    if not target:
        return None
    if target == LIVE:
        return DecisionLog(spawn=True)
    return DecisionLog(target)


def candidate_segments(params: np.ndarray, primitive: str) -> tuple[np.ndarray, np.ndarray]:
    """(origins (N, 3), vectors (N, 3)) of candidates: from the primitive's first point to its
    second (pick -> place, start -> end)."""
    spec = PRIMITIVE_SPECS[primitive]
    names = list(spec.param_names)
    a, b = spec.points[0], spec.points[1]
    ia = [names.index(f"{a}_{x}") for x in "xyz"]
    ib = [names.index(f"{b}_{x}") for x in "xyz"]
    p = np.asarray(params, dtype=np.float64).reshape(-1, spec.dim)
    return p[:, ia], p[:, ib] - p[:, ia]


def score_colours(scores: np.ndarray | None, n: int) -> np.ndarray:
    """(N, 3) uint8 viridis colours of scores (min -> dark, max -> yellow); grey without scores."""
    if scores is None:
        return np.tile(np.array(GREY, np.uint8), (n, 1))
    from matplotlib import colormaps

    s = np.asarray(scores, dtype=np.float64)
    lo, hi = np.nanmin(s), np.nanmax(s)
    t = (s - lo) / (hi - lo) if hi > lo else np.full(n, 0.5)
    return (colormaps["viridis"](np.nan_to_num(t, nan=0.0))[:, :3] * 255).astype(np.uint8)


def decision_scores(decision) -> np.ndarray | None:
    """The (N,) numbers a decision ranked by: its utilities, else the mean of its one scored family."""
    if decision.utilities is not None:
        return np.asarray(decision.utilities, dtype=np.float64)
    if decision.scores:
        return np.asarray(next(iter(decision.scores.values())).mean, dtype=np.float64)
    return None


class DecisionLog:
    """A Rerun recording of observations and decisions (`path`: an .rrd file; `spawn`: a live
    viewer instead; both: the viewer and the file)."""

    def __init__(self, path: str | os.PathLike | None = None, spawn: bool = False, app_id: str = APP_ID,
                 recording_id: str | None = None):
        if not path and not spawn:
            raise ValueError("give an .rrd path or spawn=True for a live viewer")
        self.path = check_writable(path) if path else None
        rr = _rerun()
        self.rr = rr
        self.rec = rr.RecordingStream(app_id, recording_id=recording_id)
        if spawn:
            self.rec.spawn()
        if self.path is not None:
            if spawn:
                self.rec.set_sinks(rr.GrpcSink(), rr.FileSink(str(self.path)))
            else:
                self.rec.save(str(self.path))
        self.rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        self.decisions = 0

    def set_time(self, decision: int, episode: int | None = None, stamp_ns: int | None = None) -> None:
        """Where the next logs go: decision `decision` (and episode, and recorded time in ns)."""
        self.rec.set_time("decision", sequence=int(decision))
        if episode is not None:
            self.rec.set_time("episode", sequence=int(episode))
        if stamp_ns is not None:
            self.rec.set_time("stamp", timestamp=np.datetime64(int(stamp_ns), "ns"))

    def log_observation(self, obs) -> None:
        """Camera poses, intrinsics, colour and depth images, and the cloud if it has one."""
        rr = self.rr
        for name, frame in obs.frames.items():
            cam = frame.camera
            T = np.asarray(cam.base_T_camera, dtype=np.float64)
            base = f"world/cameras/{name}"
            self.rec.log(base, rr.Transform3D(translation=T[:3, 3], mat3x3=T[:3, :3]))
            i = cam.intrinsics
            self.rec.log(base, rr.Pinhole(image_from_camera=np.asarray(i.K), width=i.width, height=i.height,
                                          camera_xyz=rr.ViewCoordinates.RDF))
            self.rec.log(f"{base}/rgb", rr.Image(frame.rgb))
            self.rec.log(f"{base}/depth", rr.DepthImage(frame.depth, meter=1.0))
        if obs.points is not None:
            self.rec.log("world/cloud", rr.Points3D(obs.points, colors=obs.colors, radii=0.002))

    def log_decision(self, obs, decision, episode: int | None = None, summary: str | None = None,
                     stamp_ns: int | None = None) -> int:
        """One decision at the next step of the `decision` timeline: its observation, the
        candidates coloured by score, the chosen one, the rejections with their reasons.

        summary: the text log line instead of the decision's own summary (callers whose
        `chosen` is not a selection, e.g. the console's queries); stamp_ns: the decision's
        recorded time. Returns the decision's index on the timeline (for `log_answer`)."""
        rr = self.rr
        self.set_time(self.decisions, episode, stamp_ns)
        self.log_observation(obs)
        cands = decision.candidates
        origins, vectors = candidate_segments(cands.params, cands.name)
        scores = decision_scores(decision)
        labels = [f"{i}" if scores is None else f"{i}: {scores[i]:.3f}" for i in range(len(cands))]
        self.rec.log("world/candidates", rr.Arrows3D(origins=origins, vectors=vectors,
                                                      colors=score_colours(scores, len(cands)),
                                                      labels=labels, radii=0.002))
        if decision.chosen is not None:
            c = decision.chosen
            self.rec.log("world/chosen", rr.Arrows3D(origins=origins[c:c + 1], vectors=vectors[c:c + 1],
                                                      colors=[CHOSEN], radii=0.006, labels=[labels[c]]))
        else:
            self.rec.log("world/chosen", rr.Clear(recursive=False))
        if decision.rejected:
            idx = [i for i, _ in decision.rejected]
            self.rec.log("world/rejected", rr.Arrows3D(
                origins=origins[idx], vectors=vectors[idx], colors=[REJECTED] * len(idx), radii=0.004,
                labels=[f"{i}: {reason}" for i, reason in decision.rejected]))
        else:
            self.rec.log("world/rejected", rr.Clear(recursive=False))
        if summary is None:
            summary = (f"episode {decision.episode_seed} decision {decision.decision} "
                       f"({decision.method}): {decision.summary().splitlines()[0]}")
        self.rec.log("log/decisions", rr.TextLog(summary, level="INFO"))
        for i, reason in decision.rejected:
            self.rec.log("log/decisions", rr.TextLog(f"rejected {i}: {reason}", level="WARN"))
        if scores is not None and decision.chosen is not None:
            self.rec.log("metrics/chosen_score", rr.Scalars(float(scores[decision.chosen])))
        self.rec.log("world/preferred", rr.Clear(recursive=False))  # no answer (yet) for this one
        self.decisions += 1
        return self.decisions - 1

    def log_answer(self, index: int, candidates, preferred, text: str) -> None:
        """A person's answer about logged decision `index` (the console): `preferred` candidate
        indices best first (a ranking, a pair's winner, both of a tie; empty: no preference),
        drawn orange and labelled "#rank: index", and `text` in the log. A later answer for the
        same decision (after an undo) replaces it."""
        rr = self.rr
        self.set_time(index)
        preferred = [int(i) for i in preferred]
        if preferred:
            origins, vectors = candidate_segments(candidates.params, candidates.name)
            self.rec.log("world/preferred", rr.Arrows3D(
                origins=origins[preferred], vectors=vectors[preferred], colors=[PREFERRED] * len(preferred),
                radii=0.005, labels=[f"#{k + 1}: {i}" for k, i in enumerate(preferred)]))
        else:
            self.rec.log("world/preferred", rr.Clear(recursive=False))
        self.rec.log("log/answers", rr.TextLog(text, level="INFO"))

    def log_outcome(self, quality: float, success: bool) -> None:
        """Task quality and success after the decision just logged."""
        self.rec.log("metrics/quality", self.rr.Scalars(float(quality)))
        self.rec.log("metrics/success", self.rr.Scalars(float(success)))

    def close(self) -> None:
        self.rec.flush()
        self.rec.disconnect()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_recording(path: str | os.PathLike) -> dict[str, list[dict]]:
    """entity path -> its logged rows in `decision` order, each {column: python value}
    (columns as Rerun names them, e.g. 'Arrows3D:labels'); for tests and scripts."""
    _rerun()
    from rerun.chunk import RrdReader  # optional: the `rerun` extra (checked above)

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"Rerun recording not found: {p}")
    out: dict[str, list[dict]] = {}
    for chunk in RrdReader(str(p)).stream():
        batch = chunk.to_record_batch()
        # the row ids and the wall-clock log_time are Rerun's bookkeeping, not what was logged
        cols = [f.name for f in batch.schema if not f.name.startswith("rerun.controls") and f.name != "log_time"]
        data = {c: batch.column(c).to_pylist() for c in cols}
        for r in range(batch.num_rows):
            out.setdefault(chunk.entity_path, []).append({c: data[c][r] for c in cols})
    for rows in out.values():
        rows.sort(key=lambda row: row.get("decision") or 0)
    return out
