"""core.device.resolve_device: the one "auto" / "cpu" / "cuda[:N]" resolver."""

from __future__ import annotations

import pytest
import torch

from robot_rewards.core.device import DeviceError, resolve_device
from robot_rewards.policy.train import DistInfo, training_device


def _gpus(monkeypatch, n: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def test_auto_is_cuda_when_a_gpu_is_visible_else_cpu(monkeypatch):
    assert resolve_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    _gpus(monkeypatch, 0)
    assert resolve_device("auto") == "cpu"
    assert resolve_device(" CPU ") == "cpu"
    _gpus(monkeypatch, 2)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda") == "cuda" and resolve_device("cuda:1") == "cuda:1"
    assert resolve_device(torch.device("cuda:0")) == "cuda:0"  # a torch.device is accepted too


def test_clear_one_line_errors(monkeypatch):
    _gpus(monkeypatch, 0)
    for name in ("cuda", "cuda:0"):
        with pytest.raises(DeviceError, match=f"device '{name}' requested but no CUDA GPU is visible") as e:
            resolve_device(name)
        assert "\n" not in str(e.value)
    _gpus(monkeypatch, 1)
    with pytest.raises(DeviceError, match="only 1 CUDA GPU"):
        resolve_device("cuda:1")
    for bad in ("tpu", "cuda:x", "gpu", ""):
        with pytest.raises(DeviceError, match="unknown device"):
            resolve_device(bad)
    assert issubclass(DeviceError, ValueError)


def test_torchrun_gives_each_process_its_local_gpu(monkeypatch):
    _gpus(monkeypatch, 4)
    dist = DistInfo(rank=3, world=4, local_rank=3, distributed=True)
    assert training_device("auto", dist) == torch.device("cuda:3")
    assert training_device("cuda", dist) == torch.device("cuda:3")
    assert training_device("cuda:1", dist) == torch.device("cuda:1")  # named explicitly: as given
    assert training_device("auto", DistInfo()) == torch.device("cuda")
    _gpus(monkeypatch, 0)
    assert training_device("auto", dist) == torch.device("cpu")
