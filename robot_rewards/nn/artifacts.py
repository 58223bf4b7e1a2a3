"""Model files on disk, without pickles: `<name>.safetensors` (tensors) + `<name>.json` (the rest).

Every trained model (policy, preference scorer, ...) is stored this way. The JSON carries a
format name and version, library versions, the creation time and the SHA-256 of the tensor
file, so a damaged or foreign file is refused with a specific error instead of producing
silently wrong outputs. Both files are written atomically (`core.atomic`: temporary file, fsync,
rename).

The JSON's safety-relevant settings (`SAFETY_SETTINGS`: the workspace box and the action
normaliser, which decide where the model's actions land) are covered too: the tensor file's
header records a SHA-256 of each (`meta_sha256/<key>`), and the JSON records the tensor file's
SHA-256, so a JSON edited by hand (a widened workspace, another normaliser) is refused, naming
the edited setting. Files written before this have no such header entries and still load. Every
setting is also type-checked on load (`dataclass_from`, `workspace_from`, ...), and a robot never
trusts a model's workspace beyond its own configured box (`robots.workspace`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors import safe_open
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


def read_header(path: Path) -> dict[str, str]:
    """The string metadata in a safetensors file's header ({} if none)."""
    try:
        with safe_open(str(path), "pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for garbled headers
        raise ArtifactError(f"{path} is corrupted or truncated ({type(exc).__name__}: {exc})") from exc


# -- the settings' integrity hash ---------------------------------------------------------------

META_HASH = "meta_sha256/"  # header key prefix: one SHA-256 per covered JSON setting
# Where the model's actions may land and how they are scaled; the other settings are checked for
# type and fit instead, so an edit to them is reported by what is wrong with it.
SAFETY_SETTINGS = ("workspace", "normalizer")


def _setting_sha256(value: Any) -> str:
    # Canonical JSON of the value as it reads back from the file (numpy scalars as floats), so
    # the hash at save time equals the one recomputed from the loaded JSON.
    canonical = json.loads(json.dumps(value, default=float))
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def settings_header(meta: Mapping[str, Any]) -> dict[str, str]:
    """The header entries that pin `meta`'s safety-relevant settings (`meta_sha256/<key>`)."""
    return {META_HASH + key: _setting_sha256(meta[key]) for key in SAFETY_SETTINGS if key in meta}


def check_settings(meta: Mapping[str, Any], header: Mapping[str, str], json_path: Path, st_path: Path) -> None:
    """Refuse a JSON whose settings differ from those its tensor file was written with.

    Files from before the header entries existed have none and pass (see the module docstring)."""
    edited = sorted(key[len(META_HASH):] for key, digest in header.items()
                    if key.startswith(META_HASH) and (key[len(META_HASH):] not in meta
                                                     or _setting_sha256(meta[key[len(META_HASH):]]) != digest))
    if edited:
        raise ArtifactError(f"{json_path} was edited after it was saved: {', '.join(repr(k) for k in edited)} "
                            f"{'differs' if len(edited) == 1 else 'differ'} from what {st_path.name} was written "
                            "with; restore the file or retrain")


def read_json(path: Path, fmt: str, version: int, kind: str) -> dict:
    """The JSON of a `fmt` file no newer than `version`; `kind` names it in errors."""
    if not path.is_file():
        raise FileNotFoundError(f"{kind} file missing: {path}")
    try:
        data = json.loads(path.read_text())
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8; nesting too deep to parse
        raise ArtifactError(f"{path} is corrupted or truncated (not valid JSON: {exc})") from exc
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ArtifactError(f"{path} is not a robot_rewards {kind} file")
    if isinstance(data.get("version"), bool) or not isinstance(data.get("version", -1), int):
        raise ArtifactError(f"{path}: 'version' must be an integer, got {data.get('version')!r}")
    if data.get("version", -1) > version:
        raise ArtifactError(f"{path} has format version {data['version']}, newer than this code "
                            f"reads ({version}); upgrade robot_rewards")
    return data


def save_artifact(json_path: Path, st_path: Path, tensors: Mapping[str, torch.Tensor], meta: dict,
                  fmt: str, version: int) -> Path:
    """Write the tensors, then the JSON (`meta` plus format, versions and the tensors' SHA-256)."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_tensors(st_path, tensors, {"format": fmt, **settings_header(meta)})
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
    check_settings(meta, read_header(st_path), json_path, st_path)
    return meta, read_tensors(st_path)


def check_primitive(meta: dict, json_path: Path, primitive: str | None, verb: str = "predicts") -> str:
    """The file's primitive, refusing an unknown one, another than `primitive`, or another layout."""
    prim = meta.get("primitive")
    if not isinstance(prim, str) or prim not in PRIMITIVE_SPECS:
        raise ArtifactMismatchError(f"{json_path} is for primitive {prim!r}, unknown here "
                                    f"(known: {sorted(PRIMITIVE_SPECS)})")
    if primitive is not None and prim != primitive:
        raise ArtifactMismatchError(f"{json_path} {verb} '{prim}', not '{primitive}'")
    layout = list(PRIMITIVE_SPECS[prim].param_names)
    names = meta.get("param_names", [])
    if not isinstance(names, list) or names != layout:
        raise ArtifactMismatchError(f"{json_path} has the {prim} layout {names!r}, but this "
                                    f"code's {prim} layout is {layout}")
    return prim


# -- typed settings ------------------------------------------------------------------------------

# Sizes in a model file's configs (of any model): a value outside these bounds cannot have been
# trained here, and a huge one would exhaust memory while the network is built (which happens
# before its weights can be compared with the file's). Lists (per-layer widths) hold at most
# MAX_LAYERS entries.
_WIDTH = (1, 4096)
MAX_LAYERS = 8
SIZE_BOUNDS: dict[str, tuple[int, int]] = {
    **dict.fromkeys(("obs_dim", "goal_dim", "token_dim", "max_goal_tokens", "point_channels", "local_channels",
                     "hidden", "width", "time_dim"), _WIDTH),
    **dict.fromkeys(("train_steps", "inference_steps"), (1, 100_000)),
    **dict.fromkeys(("blocks", "layers", "attention_heads"), (0, 64)),
    "local_k": (0, 4096),
    "min_points": (0, 1 << 20),
    "n_points": (1, 1 << 20),  # perception: points per cloud
    "ransac_iterations": (1, 1 << 20),
}


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin in (list, tuple, Sequence):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {_type_name(args[0])}" if args else "a list"
    return getattr(hint, "__name__", str(hint))


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a dataclass field's annotation (types not listed here pass)."""
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if hint is str:
        return isinstance(value, str)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        items = [a for a in args if a is not Ellipsis]
        if origin is tuple and len(items) > 1:
            return len(value) == len(items) and all(_matches(v, a) for v, a in zip(value, items))
        return not items or all(_matches(v, items[0]) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True


def _field_problem(name: str, value: Any, hint: Any) -> str | None:
    """Why `value` cannot be field `name` (annotated `hint`), or None."""
    if hint is not None and not _matches(value, hint):
        return f"must be {_type_name(hint)}, got {value!r} ({type(value).__name__})"
    bounds = SIZE_BOUNDS.get(name)
    if bounds is not None:
        values = value if isinstance(value, (list, tuple)) else [value]
        if len(values) > MAX_LAYERS:
            return f"may list at most {MAX_LAYERS} sizes, got {len(values)}"
        lo, hi = bounds
        bad = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and not lo <= v <= hi]
        if bad:
            return f"must be {'sizes' if isinstance(value, (list, tuple)) else 'a size'} from {lo} to {hi}, got {value!r}"
    return None


def dataclass_from(cls, data: Any, what: str, path: Path):
    """`cls(**data)`, refusing a missing entry, keys this code does not know, values of the wrong
    type (per the field annotations) and sizes out of bounds (`SIZE_BOUNDS`), each naming the field."""
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: '{what}' entry is missing or malformed (got {type(data).__name__})")
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ArtifactError(f"{path}: '{what}' has keys this code does not know: {unknown} "
                            "(written by a newer robot_rewards?)")
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve at run time: check the bounds only
        hints = {}
    for name, value in data.items():
        problem = _field_problem(name, value, hints.get(name))
        if problem:
            raise ArtifactError(f"{path}: '{what}.{name}' {problem}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:  # a config's own checks (__post_init__)
        raise ArtifactError(f"{path}: '{what}' is not a valid {cls.__name__}: {exc}") from exc


def checked_vocab(meta: dict, path: Path) -> list[str] | None:
    """The file's goal vocabulary: a list of strings, or None where it has none."""
    vocab = meta.get("vocab")
    if vocab is not None and not (isinstance(vocab, list) and all(isinstance(w, str) for w in vocab)):
        raise ArtifactError(f"{path}: 'vocab' must be a list of words (strings), got {str(vocab)[:80]}")
    return vocab


def checked_int(meta: dict, key: str, path: Path, low: int, high: int) -> int:
    """An integer setting of the file in [low, high], else an error naming it."""
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ArtifactError(f"{path}: '{key}' must be an integer from {low} to {high}, got {value!r}")
    return value


def checked_text(meta: dict, key: str, path: Path) -> str:
    """A string setting of the file, else an error naming it."""
    value = meta.get(key)
    if not isinstance(value, str):
        raise ArtifactError(f"{path}: '{key}' must be a string, got {value!r}")
    return value


def workspace_dict(ws: Workspace) -> dict:
    return {"low": list(ws.low), "high": list(ws.high)}


def workspace_from(meta: dict, path: Path | None = None) -> Workspace:
    """The file's workspace box (the default where it has none), checked: `low` and `high` are 3
    finite numbers each with low < high. It says what the model was trained on; a robot narrows
    it to its own configured box and never widens it (`robots.workspace.narrowed`)."""
    ws = meta.get("workspace")
    if ws is None:
        return Workspace()
    where = f"{path}: " if path is not None else ""
    if not isinstance(ws, dict) or set(ws) != {"low", "high"}:
        raise ArtifactError(f"{where}'workspace' must be {{\"low\": [x, y, z], \"high\": [x, y, z]}}, got {ws!r}")
    box = {}
    for key in ("low", "high"):
        v = ws[key]
        if not (isinstance(v, list) and len(v) == 3 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)):
            raise ArtifactError(f"{where}'workspace.{key}' must be 3 finite numbers (metres), got {v!r}")
        box[key] = tuple(float(x) for x in v)
    if not all(lo < hi for lo, hi in zip(box["low"], box["high"])):
        raise ArtifactError(f"{where}'workspace' is empty: low {list(box['low'])} must be below high "
                            f"{list(box['high'])} on every axis")
    return Workspace(box["low"], box["high"])
