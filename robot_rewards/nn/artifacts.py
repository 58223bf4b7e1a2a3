"""Model files on disk, without pickles: `<name>.safetensors` (tensors) + `<name>.json` (the rest).

Every trained model (policy, preference scorer, ...) is stored this way. The JSON carries a
format name and version, library versions, the creation time and the SHA-256 of the tensor
file, so a damaged or foreign file is refused with a specific error instead of producing
silently wrong outputs. Both files are written atomically (`core.atomic`: temporary file, fsync,
rename).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors.torch import load_file, save_file

from robot_rewards import __version__
from robot_rewards.core.atomic import atomic_path, write_atomic
from robot_rewards.core.primitives import PRIMITIVE_SPECS, Workspace


class ArtifactError(ValueError):
    """A model file that cannot be used: corrupted, truncated, incomplete or from a newer format."""


class ArtifactMismatchError(ArtifactError):
    """A valid model file made for something else (another task, primitive or parameter layout)."""


def artifact_paths(path: str | os.PathLike, default_names: Sequence[str]) -> tuple[Path, Path]:
    """(json, safetensors) of a model given as `<name>`, `<name>.json`, `<name>.safetensors`, or a
    folder holding one of `default_names` (relative stems, e.g. "policy", "checkpoints/policy")."""
    p = Path(path)
    if p.is_dir():
        for stem in default_names:
            if (p / f"{stem}.json").exists():
                p = p / stem
                break
        else:
            raise FileNotFoundError(f"no {' or '.join(f'{s}.json' for s in default_names)} in folder {p}")
    elif p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    # Append (not replace) suffixes: a stem such as "policy.step500" keeps its dot.
    return p.parent / (p.name + ".json"), p.parent / (p.name + ".safetensors")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, data: dict) -> None:
    """Atomic JSON write (numpy scalars become floats)."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=float))


def write_tensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Atomic safetensors write (tensors copied to contiguous CPU memory first)."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the writer creates 0600 files; give the usual permissions


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for truncated/garbled files
        raise ArtifactError(f"{path} is corrupted or truncated ({type(exc).__name__}: {exc})") from exc


def read_json(path: Path, fmt: str, version: int, kind: str) -> dict:
    """The JSON of a `fmt` file no newer than `version`; `kind` names it in errors."""
    if not path.is_file():
        raise FileNotFoundError(f"{kind} file missing: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is corrupted or truncated (not valid JSON: {exc})") from exc
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ArtifactError(f"{path} is not a robot_rewards {kind} file")
    if int(data.get("version", -1)) > version:
        raise ArtifactError(f"{path} has format version {data['version']}, newer than this code "
                            f"reads ({version}); upgrade robot_rewards")
    return data


def save_artifact(json_path: Path, st_path: Path, tensors: Mapping[str, torch.Tensor], meta: dict,
                  fmt: str, version: int) -> Path:
    """Write the tensors, then the JSON (`meta` plus format, versions and the tensors' SHA-256)."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_tensors(st_path, tensors, {"format": fmt})
    write_json(json_path, {
        **meta,
        "format": fmt,
        "version": version,
        "versions": {"robot_rewards": __version__, "torch": torch.__version__},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "weights_sha256": sha256(st_path),
    })
    return json_path


def load_artifact(json_path: Path, st_path: Path, fmt: str, version: int, kind: str,
                  required: Sequence[str]) -> tuple[dict, dict[str, torch.Tensor]]:
    """(metadata, tensors) of a model file pair, after checking format, completeness and checksum."""
    meta = read_json(json_path, fmt, version, kind)
    if not st_path.is_file():
        raise FileNotFoundError(f"{kind} weights missing: {st_path} (next to {json_path.name})")
    for key in (*required, "weights_sha256"):
        if key not in meta:
            raise ArtifactError(f"{json_path} lacks '{key}' (incomplete file)")
    if sha256(st_path) != meta["weights_sha256"]:
        raise ArtifactError(f"{st_path} is corrupted or truncated: its SHA-256 does not match {json_path.name}")
    return meta, read_tensors(st_path)


def check_primitive(meta: dict, json_path: Path, primitive: str | None, verb: str = "predicts") -> str:
    """The file's primitive, refusing an unknown one, another than `primitive`, or another layout."""
    prim = meta.get("primitive")
    if prim not in PRIMITIVE_SPECS:
        raise ArtifactMismatchError(f"{json_path} is for primitive '{prim}', unknown here "
                                    f"(known: {sorted(PRIMITIVE_SPECS)})")
    if primitive is not None and prim != primitive:
        raise ArtifactMismatchError(f"{json_path} {verb} '{prim}', not '{primitive}'")
    layout = list(PRIMITIVE_SPECS[prim].param_names)
    if list(meta.get("param_names", [])) != layout:
        raise ArtifactMismatchError(f"{json_path} has the {prim} layout {meta.get('param_names')}, but this "
                                    f"code's {prim} layout is {layout}")
    return prim


def dataclass_from(cls, data: Any, what: str, path: Path):
    """`cls(**data)`, refusing a missing entry or keys this code does not know."""
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: '{what}' entry is missing or malformed")
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ArtifactError(f"{path}: '{what}' has keys this code does not know: {unknown} "
                            "(written by a newer robot_rewards?)")
    return cls(**data)


def workspace_dict(ws: Workspace) -> dict:
    return {"low": list(ws.low), "high": list(ws.high)}


def workspace_from(meta: dict) -> Workspace:
    ws = meta.get("workspace")
    return Workspace(tuple(ws["low"]), tuple(ws["high"])) if ws else Workspace()
