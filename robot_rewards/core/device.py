"""The one device resolver: a config's "auto" / "cpu" / "cuda" / "cuda:N" -> a torch device name."""

from __future__ import annotations


class DeviceError(ValueError):
    """A device name that is unknown, or a GPU that is not there."""


def resolve_device(name: str = "auto") -> str:
    """The torch device name for a config's `device` setting.

    "auto" -> "cuda" if a CUDA GPU is visible, else "cpu"; "cpu" -> "cpu"; "cuda" and "cuda:N"
    as given, after checking that the GPU exists. Anything else raises DeviceError in one line.
    Callers whose "auto" means more (torchrun's one GPU per LOCAL_RANK) add that themselves.
    """
    # torch only here: core is imported by torch-free code (configs, the CLI's help), and every
    # caller of this function is about to use torch anyway.
    import torch

    text = str(name).strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return "cpu"
    kind, sep, index = text.partition(":")
    if kind == "cuda" and (not sep or index.isdigit()):
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{name}' requested but no CUDA GPU is visible (use device=cpu or auto)")
        if sep and int(index) >= torch.cuda.device_count():
            raise DeviceError(f"device '{name}' requested but only {torch.cuda.device_count()} CUDA GPU(s) are visible")
        return text
    raise DeviceError(f"unknown device '{name}' (use auto, cpu, cuda or cuda:N)")
