"""A query's array file (`arrays/<uid>.npz` of a preference store): what it holds, how a new
one is checked, and how it is written and read back safely.

Files are written atomically (`core.atomic.write_atomic`: temporary file, fsync, rename, fsync
of the folder) so a reader sees the old file or the complete new one, never half of it. A file
is read back only if it matches the SHA-256 recorded with its query and the query's shapes
(`MissingArraysError` otherwise). The archives hold plain arrays only: they are loaded without
pickles.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_rewards.core.candidates import Candidates
from robot_rewards.preferences.errors import MissingArraysError, QueryInputError

log = logging.getLogger(__name__)

# The hidden temporary name `core.atomic.temp_path` gives `<uid>.npz` while it is written:
# `.<uid>.npz.<pid>.<8 hex>.tmp.npz`. Only names of exactly this shape are ever removed.
_TEMP_NAME = re.compile(r"^\.([0-9a-f]{32})\.npz\.(\d+)\.[0-9a-f]{8}\.tmp\.npz$")
# A write of one query's arrays takes milliseconds: a temporary file this old is not being
# written, whatever its pid says (a reused pid, a writer on another machine).
ORPHAN_AGE_S = 3600.0
# Even a file whose pid is gone must be this old: a writer in another PID namespace (a container
# sharing the folder) has a pid this process cannot see.
ORPHAN_MIN_AGE_S = 10.0


@dataclass(eq=False)
class QueryArrays:
    """A query's arrays: points (P, 3) float32 base frame, colors (P, 3) uint8 or None,
    params (N, D) float64, seeds (N,) int64, image (H, W, 3) uint8 or None, scores (K, N)
    float64 ensemble-member scores shown to the labeller or None, clipped (N,) bool or None."""

    points: np.ndarray
    colors: np.ndarray | None
    params: np.ndarray
    seeds: np.ndarray
    image: np.ndarray | None = None
    scores: np.ndarray | None = None
    clipped: np.ndarray | None = None

    def candidates(self, primitive: str) -> Candidates:
        """The candidate set as `Candidates` of `primitive`."""
        clipped = self.clipped if self.clipped is not None else np.zeros(len(self.params), bool)
        return Candidates(primitive, self.params, self.seeds, clipped)


def checked_query_arrays(candidates: Candidates, points, colors, image, scores) -> dict[str, np.ndarray]:
    """The arrays of a new query, checked (`QueryInputError`) and in their stored dtypes."""
    if not isinstance(candidates, Candidates):
        raise QueryInputError(f"candidates must be Candidates, got {type(candidates).__name__}")
    n = len(candidates)
    if n == 0:
        raise QueryInputError("empty candidate set: nothing to label")
    if not np.all(np.isfinite(candidates.params)):
        raise QueryInputError("candidate parameters contain NaN/inf")
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise QueryInputError(f"points must be a non-empty (P, 3) cloud, got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise QueryInputError(f"points contain {int((~np.isfinite(pts).all(axis=1)).sum())} NaN/inf rows")
    out = {"points": pts.astype(np.float32), "params": candidates.params.astype(np.float64),
           "seeds": candidates.seeds.astype(np.int64), "clipped": candidates.clipped.astype(bool)}
    for name, arr, shape in (("colors", colors, pts.shape), ("image", image, None)):
        if arr is None:
            continue
        arr = np.asarray(arr)
        if shape is not None and arr.shape != shape:
            raise QueryInputError(f"{name} {arr.shape} must match points {shape}")
        if shape is None and (arr.ndim != 3 or arr.shape[2] != 3):
            raise QueryInputError(f"{name} must be (H, W, 3), got {arr.shape}")
        # Float colours in [0, 1] would silently become black if cast: insist on 8-bit values.
        if arr.dtype != np.uint8 and not (np.issubdtype(arr.dtype, np.integer)
                                          and arr.size and 0 <= arr.min() and arr.max() <= 255):
            raise QueryInputError(f"{name} must be uint8 (0-255), got dtype {arr.dtype}")
        out[name] = arr.astype(np.uint8)
    if scores is not None:
        members = getattr(scores, "members", scores)  # a ScoreSet or a plain array
        s = np.asarray(members, dtype=np.float64)
        s = s[None] if s.ndim == 1 else s
        if s.ndim != 2 or s.shape[1] != n:
            raise QueryInputError(f"scores must be (K, {n}) for {n} candidates, got {np.shape(members)}")
        if not np.all(np.isfinite(s)):
            raise QueryInputError("scores contain NaN/inf")
        out["scores"] = s
    return out


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """`arrays` as the bytes of an (uncompressed) .npz archive."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    """The hex SHA-256 of `data`, as recorded with each query."""
    return hashlib.sha256(data).hexdigest()


def read_arrays(path: Path, sha256_hex: str, n: int, dim: int, what: str) -> tuple[QueryArrays, bytes]:
    """(arrays, file bytes) of an array file, checked against its SHA-256 and shapes.

    n, dim: the query's number of candidates and parameter dimension; what: the query as named
    in error messages."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingArraysError(f"arrays of {what} are missing: {path}") from None
    if sha256(data) != sha256_hex:
        raise MissingArraysError(f"arrays of {what} are corrupted or were replaced: {path} "
                                 "does not match the SHA-256 recorded with the query")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        arrays = QueryArrays(a["points"], a.get("colors"), a["params"], a["seeds"], a.get("image"),
                             a.get("scores"), a.get("clipped"))
    except Exception as exc:  # zipfile/numpy raise many types for a damaged archive
        raise MissingArraysError(f"arrays of {what} are unreadable: {path} ({type(exc).__name__}: {exc})") from exc
    if arrays.params.shape != (n, dim) or arrays.seeds.shape != (n,) or arrays.points.ndim != 2:
        raise MissingArraysError(f"arrays of {what} do not match the query ({n} candidates of dim {dim}): "
                                 f"params {arrays.params.shape}, seeds {arrays.seeds.shape} in {path}")
    return arrays, data


def _pid_running(pid: int) -> bool:
    """Whether a process `pid` exists on this machine (one we may not signal counts as running)."""
    if pid <= 0:
        return True  # not a real writer's pid: never call it dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_orphaned_temp_files(arrays_dir: Path, now: float | None = None) -> list[Path]:
    """Delete the temporary array files a killed writer left in `arrays_dir`; returns them.

    A file is removed only if its name is exactly the store's temporary name of a query's
    array file (`.<32 hex uid>.npz.<pid>.<8 hex>.tmp.npz`) AND its writer is gone: the pid in
    its name runs no process here and the file is older than `ORPHAN_MIN_AGE_S`, or the file is
    older than `ORPHAN_AGE_S` (a writer on another machine sharing the folder, or a reused pid).
    Such a file is never referred to by a row (rows name `<uid>.npz`, renamed into place only
    when complete), so nothing stored is lost."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(arrays_dir.iterdir())
    except FileNotFoundError:
        return removed
    for path in entries:
        m = _TEMP_NAME.match(path.name)
        if m is None:
            continue
        try:
            if not path.is_file() or path.is_symlink():
                continue
            age = now - path.stat().st_mtime
            if age < ORPHAN_MIN_AGE_S or (age < ORPHAN_AGE_S and _pid_running(int(m.group(2)))):
                continue  # perhaps being written right now by another process
            path.unlink()
        except FileNotFoundError:
            continue  # renamed into place or removed by its writer meanwhile
        removed.append(path)
    if removed:
        log.info("removed %d orphaned temporary array file(s) in %s (writers killed mid-write)",
                 len(removed), arrays_dir)
    return removed
