"""Shared fixtures: a headless world per test module (PyBullet DIRECT, seeded); one torch thread."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(scope="module")
def world():
    from robot_rewards.sim.world import World

    w = World()
    yield w
    w.close()


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny networks: one thread is faster than several on a shared 2-core machine (and the
    same thread count everywhere keeps float results reproducible)."""
    torch = sys.modules.get("torch")  # only where the test module already uses torch
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
