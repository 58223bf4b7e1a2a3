"""Loading CLIP models for rewards, offline: open_clip names + tags, local files, our checkpoints.

Sources (`ClipRewardConfig.model` / `.pretrained`):

- an open_clip model name (`ViT-B-32`, or one registered with `open_clip.add_model_config`)
  with a pretrained tag (`laion2b_s34b_b79k`), a local weights file, or nothing (random init);
- `local-dir:/folder` (open_clip's folder format: open_clip_config.json + weights);
- a robot_rewards CLIP checkpoint (`<name>.json` + `<name>.safetensors`, written by
  `save_clip_checkpoint`, e.g. the domain-adapted model from `train-clip`).

Offline by default: a tag's weights are looked up where open_clip would have downloaded them
(the Hugging Face cache or `~/.cache/clip`); if they are not there, `ClipWeightsMissingError`
says which file to get and where to put it, and nothing touches the network
(`allow_download=True` lets open_clip download).
"""

from __future__ import annotations

import difflib
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from robot_rewards.nn.artifacts import (
    ArtifactError,
    artifact_paths,
    load_artifact,
    save_artifact,
)
from robot_rewards.rewards.clip.preprocess import Preprocess

FORMAT = "robot_rewards.clip"
VERSION = 1
TOKEN_EMBEDDING = "token_embedding.weight"


class ClipModelError(ValueError):
    """A model name, tag or file that cannot give a usable CLIP model."""


class ClipWeightsMissingError(FileNotFoundError):
    """Pretrained weights that are not on this machine (offline: nothing is downloaded)."""


@dataclass(eq=False)
class LoadedClip:
    """A CLIP model ready for inference, with its tokenizer and image preprocessing."""

    model: torch.nn.Module
    tokenizer: object  # open_clip tokenizer: list[str] -> (B, context_length) token ids
    preprocess: Preprocess
    source: str  # what was loaded, for logs and metrics
    meta: dict  # checkpoint metadata ({} for open_clip models)


def is_checkpoint_path(model: str) -> bool:
    """Whether `model` names a robot_rewards CLIP checkpoint rather than an open_clip model."""
    p = Path(model)
    if p.suffix in (".json", ".safetensors"):
        return True
    return (p / "clip.json").is_file() if p.is_dir() else Path(f"{model}.json").is_file()


def _preprocess_of(model, resize: str, roi) -> Preprocess:
    import open_clip

    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg.get("size", 224)
    size = (size, size) if isinstance(size, int) else tuple(size)
    return Preprocess(size, tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
                      tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD)), resize,
                      None if roi is None else tuple(roi))


def _local_tag_weights(name: str, tag: str, cache_dir: str | None) -> tuple[str | None, str]:
    """(local file or None, where to get it) of open_clip's `name`/`tag` weights, offline."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(name, tag)
    if "file" in cfg:
        return (cfg["file"] if os.path.isfile(cfg["file"]) else None), cfg["file"]
    hub, url = cfg.get("hf_hub", ""), cfg.get("url", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache  # optional: comes with open_clip

        repo, filename = os.path.split(hub)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename.endswith((".bin", ".pth")):
            names.insert(0, filename[:-4] + ".safetensors")
        for fname in names:
            found = try_to_load_from_cache(repo, fname, cache_dir=cache_dir or None)
            if isinstance(found, str) and os.path.isfile(found):
                return found, f"https://huggingface.co/{repo}"
        where = f"https://huggingface.co/{repo} (file {names[-1] if not filename else filename})"
    else:
        where = url
    if url:
        target = os.path.join(cache_dir or os.path.expanduser("~/.cache/clip"), os.path.basename(url))
        if os.path.isfile(target):
            return target, url
    return None, where


def _resolve_pretrained(name: str, pretrained: str, cache_dir: str, allow_download: bool) -> str | None:
    """What to pass open_clip as `pretrained`: a local file path, a tag (downloads allowed) or None."""
    import open_clip

    if not pretrained:
        return None
    if os.path.isfile(pretrained):
        return pretrained
    if not open_clip.is_pretrained_cfg(name, pretrained):
        looks_like_path = os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))
        if looks_like_path:
            raise ClipWeightsMissingError(f"pretrained weights file not found: {pretrained}")
        tags = open_clip.list_pretrained_tags_by_model(name)
        raise ClipModelError(f"'{pretrained}' is not a pretrained tag of {name} nor a file; "
                             f"known tags: {', '.join(tags) if tags else '(none: pass a weights file)'}")
    if allow_download:
        return pretrained
    local, where = _local_tag_weights(name, pretrained, cache_dir or None)
    if local is None:
        cache = cache_dir or "the Hugging Face cache (~/.cache/huggingface/hub) or ~/.cache/clip"
        raise ClipWeightsMissingError(
            f"weights of {name} '{pretrained}' are not on this machine and downloads are off: get them from "
            f"{where} and either pass the file as pretrained=/path/to/file, or put them in {cache} "
            "(or set allow_download=true where the network is reachable)")
    return local


def _open_clip_model(name: str, pretrained: str, cache_dir: str, allow_download: bool) -> tuple[torch.nn.Module, object]:
    import open_clip

    if name.startswith("hf-hub:") and not allow_download:
        raise ClipWeightsMissingError(f"{name} is fetched from the Hugging Face Hub, but downloads are off: "
                                      "download the repo and use local-dir:/path/to/it, or set allow_download=true")
    if name.startswith(("local-dir:", "hf-hub:")):
        model = open_clip.create_model(name, device="cpu", cache_dir=cache_dir or None)
        return model, _named_tokenizer(name, cache_dir or None)
    if open_clip.get_model_config(name) is None:
        close = difflib.get_close_matches(name, open_clip.list_models(), n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see open_clip.list_models()"
        raise ClipModelError(f"unknown CLIP model '{name}' (not an open_clip model name, nor a "
                             f"robot_rewards CLIP checkpoint .json){hint}")
    weights = _resolve_pretrained(name, pretrained, cache_dir, allow_download)
    model = open_clip.create_model(name, pretrained=weights, device="cpu", cache_dir=cache_dir or None)
    return model, _named_tokenizer(name, None)


def load_clip(model: str, pretrained: str = "", cache_dir: str = "", allow_download: bool = False,
              resize: str = "", roi=None) -> LoadedClip:
    """A CLIP model for inference (eval mode, CPU) from any source in the module docstring.

    `resize`/`roi` override the checkpoint's preprocessing ("" / None keep it; open_clip models
    default to CLIP's centre crop of the whole frame).
    """
    if not model:
        raise ClipModelError("no CLIP model given (model=NAME or a checkpoint path)")
    if is_checkpoint_path(model):
        loaded = load_clip_checkpoint(model)
        pre = loaded.preprocess
        if resize or roi is not None:
            loaded.preprocess = Preprocess(pre.size, pre.mean, pre.std, resize or pre.resize,
                                           tuple(roi) if roi is not None else pre.roi)
        return loaded
    net, tokenizer = _open_clip_model(model, pretrained, cache_dir, allow_download)
    net.eval()
    source = f"{model}" + (f" ({pretrained})" if pretrained else " (random init)")
    return LoadedClip(net, tokenizer, _preprocess_of(net, resize or "crop", roi), source, {})


# -- robot_rewards CLIP checkpoints ---------------------------------------------------------------

def build_clip(model_cfg: dict) -> torch.nn.Module:
    """An open_clip CLIP from a model config dict (embed_dim, vision_cfg, text_cfg), random init."""
    import open_clip

    try:
        return open_clip.CLIP(**model_cfg)
    except TypeError as exc:
        raise ClipModelError(f"invalid open_clip model config: {exc}") from exc


def tokenizer_for(model_cfg: dict):
    """open_clip's default (BPE) tokenizer at the config's context length."""
    return _simple_tokenizer(int(model_cfg["text_cfg"].get("context_length", 77)))


@functools.lru_cache(maxsize=8)
def _simple_tokenizer(context_length: int):
    import open_clip

    return open_clip.SimpleTokenizer(context_length=context_length)  # ~1 s to build: built once


@functools.lru_cache(maxsize=8)
def _named_tokenizer(name: str, cache_dir: str | None):
    import open_clip

    return open_clip.get_tokenizer(name, cache_dir=cache_dir)


def save_clip_checkpoint(path: str | os.PathLike, model: torch.nn.Module, model_cfg: dict, preprocess: Preprocess,
                         meta: dict | None = None, token_rows: list[int] | None = None) -> Path:
    """Write `<path>.safetensors` + `<path>.json`. With `token_rows`, only those rows of the text
    token embedding are stored (the rest are zero): a from-scratch model only ever trains the
    rows of the tokens in its captions, and the full 49408-row table would dominate the file."""
    state = {k: v for k, v in model.state_dict().items()}
    extra = {}
    if token_rows is not None:
        table = state.pop(TOKEN_EMBEDDING)
        rows = sorted(set(int(r) for r in token_rows))
        others = torch.ones(table.shape[0], dtype=torch.bool)
        others[rows] = False
        if torch.any(table[others] != 0):
            raise ValueError("token rows outside `token_rows` are not zero: they would be lost")
        state["token_embedding.rows"] = torch.tensor(rows, dtype=torch.int64)
        state["token_embedding.values"] = table[rows]
        extra["token_embedding_shape"] = list(table.shape)
    json_path, st_path = artifact_paths(path, ["clip"])
    return save_artifact(json_path, st_path, state, {**(meta or {}), "model_cfg": model_cfg,
                                                     "preprocess": preprocess.to_dict(), **extra}, FORMAT, VERSION)


def load_clip_checkpoint(path: str | os.PathLike) -> LoadedClip:
    """A robot_rewards CLIP checkpoint (checked: format, checksum, complete weights)."""
    json_path, st_path = artifact_paths(path, ["clip"])
    meta, tensors = load_artifact(json_path, st_path, FORMAT, VERSION, "CLIP checkpoint", ["model_cfg", "preprocess"])
    model = build_clip(meta["model_cfg"])
    if "token_embedding.rows" in tensors:
        rows, values = tensors.pop("token_embedding.rows"), tensors.pop("token_embedding.values")
        table = torch.zeros(meta.get("token_embedding_shape") or model.token_embedding.weight.shape, dtype=values.dtype)
        table[rows] = values
        tensors[TOKEN_EMBEDDING] = table
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"{st_path} does not match its model config ({str(exc).splitlines()[0]})") from exc
    model.eval()
    return LoadedClip(model, tokenizer_for(meta["model_cfg"]), Preprocess.from_dict(meta["preprocess"]),
                      str(json_path), meta)
