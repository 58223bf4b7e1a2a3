"""Optional dependencies (setup.py extras): import them, or say in one line what to install."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingDependencyError(ValueError):
    """An optional package a requested feature needs is not installed (a configuration that
    cannot run here: the CLI reports it in one line)."""


def require(module: str, extra: str, purpose: str, package: str | None = None) -> ModuleType:
    """`module` imported, or MissingDependencyError naming the extra and the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs {package or module}, which is not installed: "
            f"pip install 'robot_rewards[{extra}]' (or pip install {package or module})") from exc
