"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one.

The data goes to a uniquely named hidden temporary file beside the target, then is renamed
onto it (a rename within one folder is atomic on POSIX and Windows). With `durable=True`
(the default) the file is fsync'd before the rename and its folder after it, so a completed
write also survives a power cut. A writer that is killed midway leaves at most a hidden
`.<name>.<pid>.<random>.tmp<suffix>` file and the target untouched.

- `write_atomic(path, data)`: bytes or text;
- `atomic_path(path)`: a context manager yielding the temporary path, for writers that need
  a file name (safetensors, np.savez, h5py, cv2.imwrite). The temporary name ends with the
  target's suffix, so writers that pick the format by extension (or add one) behave the same.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _fsync(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename inside it survives a power cut)."""
    _fsync(path)


def temp_path(path: str | os.PathLike) -> Path:
    """A unique hidden temporary name beside `path`, ending with its suffix."""
    p = Path(path)
    return p.with_name(f".{p.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{p.suffix}")


@contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on a clean exit it replaces `path` atomically (fsync'd
    first when `durable`), on an error it is removed and `path` is left as it was.

        with atomic_path(out / "data.npz") as tmp:
            np.savez(tmp, x=x)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"nothing was written to {tmp} for {target}")
        if durable:
            _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)


def write_atomic(path: str | os.PathLike, data: bytes | str, durable: bool = True) -> Path:
    """Write `data` (text is UTF-8 encoded) to `path` atomically; returns `path` as a Path.
    `durable=False` skips the fsyncs (files that only need to be whole, not to survive a power
    cut: a viewer's image, a cache)."""
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_path(path, durable) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)
    return Path(path)
