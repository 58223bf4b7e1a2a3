"""`robot-rewards demo`'s parts: scene counts, the printed comparison, the worker's recorded episode
(the whole command runs in tests/test_cli.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from robot_rewards.commands.demo import DemoRunner, loop_table, scene_count
from robot_rewards.commands.experiment_report import paired_vs
from robot_rewards.conf.commands import DemoConfig
from robot_rewards.core.paths import resolve
from robot_rewards.eval.loop import LoopSpec
from robot_rewards.policy.checkpoint import load_policy


def test_scene_counts_per_task_unless_one_count_is_given():
    cfg = DemoConfig()
    assert set(cfg.tasks) <= set(cfg.task_episodes)
    assert scene_count(cfg, "align_rope") == cfg.task_episodes["align_rope"]
    assert scene_count(cfg, "new_task") == cfg.task_episodes["other"]
    assert scene_count(replace(cfg, policy_episodes=3), "align_rope") == 3
    no_other = replace(cfg, task_episodes={"align_rope": 30})
    with pytest.raises(ValueError, match="no scene count for task 'new_task'.*policy_episodes=K"):
        scene_count(no_other, "new_task")


def _summary(success, steps, quality):
    return {"episodes": len(success), "seeds": list(range(len(success))), "success": success, "steps": steps,
            "quality": quality, "quality_mean": sum(quality) / len(quality)}


def test_the_table_prints_wilson_intervals_and_the_paired_error_difference():
    a = _summary([True, False, True, False], [1, 3, 2, 3], [0.010, 0.050, 0.012, 0.060])
    c = _summary([True, True, True, False], [1, 1, 2, 3], [0.008, 0.012, 0.010, 0.050])
    c["vs_first"] = paired_vs(a, c)
    table = loop_table({"place_block": {"first": a, "scorer": c}}, {"place_block": {"success_rate": 1.0}})
    header, _, row = table.splitlines()
    assert "(c)-(a) error mm" in header
    # final success 2/4 and 3/4, first try 1/4 and 2/4, each with its Wilson interval
    for cell in ("50% [15, 85]", "75% [30, 95]", "25% [5, 70]"):
        assert cell in row
    assert "33.0" in row and "20.0" in row  # mean final errors, mm
    assert "-13.0 [" in row  # the paired (c) - (a) difference


@pytest.mark.slow
def test_a_recorded_episode_is_the_same_episode_with_a_video():
    """The video's scene counts in the comparison: recording frames does not change it."""
    ck = load_policy(resolve("checkpoints/policy_place_block.json"), task="place_block")
    spec = LoopSpec("place_block", ck.policy.eval(), "first", 8, None, ck.perception)
    runner = DemoRunner({("place_block", "first"): spec})
    try:
        recorded, frames, _ = runner(("place_block", "first", 100_000, True))
        plain, none, cpu_s = runner(("place_block", "first", 100_000, False))
    finally:
        runner.close()
    assert len(frames) > 10 and none == [] and cpu_s > 0
    assert replace(recorded, select_s=()) == replace(plain, select_s=())
