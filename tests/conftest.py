"""Shared fixtures: a headless world per test module (PyBullet DIRECT, seeded)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def world():
    from robot_rewards.sim.world import World

    w = World()
    yield w
    w.close()
