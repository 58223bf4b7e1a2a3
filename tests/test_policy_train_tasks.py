"""Each task with a learned policy trains end to end on a handful of clean demos and then beats
random primitives on the demonstrated scenes (as `test_trained_policy_beats_random_primitives`
does for place_block; 8 demos test the pipeline, not generalisation, so augmentation is off)."""

from __future__ import annotations

import json

import pytest

from robot_rewards.cli import main

N_DEMOS = 8
# the shipped rope recipe's structure: picks and places on the cloud, patches, neighbourhood features
ROPE = ["policy.pick_on_cloud=true", "policy.place_on_cloud=true", "policy.local_k=32", "policy.neighbourhood_radius=0.03"]


@pytest.mark.slow
# stack_blocks needs two or more primitives per episode: 8 demos and 600 steps bring the blocks far
# closer than random primitives (measured 293 vs 530 mm) but do not yet stack them; align_rope the
# same (25 vs 111 mm from the mark line, 1 of 4 aligned)
@pytest.mark.parametrize("task, min_success", [("push_block", 0.5), ("stack_blocks", 0.0), ("align_rope", 0.0)])
def test_a_few_demos_train_a_policy_that_beats_random_primitives(task, min_success, tmp_path):
    demos = tmp_path / "demos.h5"
    main(["collect-demos", f"task={task}", f"n={N_DEMOS}", "seed=0", "noise=0.0", f"out={demos}",
          f"output_dir={tmp_path / 'collect'}"])
    out = tmp_path / "train"
    main(["train-policy", f"task={task}", f"data={demos}", "steps=600", "batch_size=8", "train_points=256",
          "policy.point_channels=[32,64]", "policy.width=128", "policy.obs_dim=64", "policy.goal_dim=32",
          "policy.token_dim=8", "lr=2e-3", "warmup_steps=20", "eval_every=0", "eval_episodes=0",
          "checkpoint_every=300", "torch_threads=1", "augment_rotation=0", "augment_shift=0",
          *(ROPE if task == "align_rope" else []), f"output_dir={out}"])
    hist = json.loads((out / "metrics.json").read_text())["history"]
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"]
    results = {}
    for sel in ("first", "random_primitive"):
        ev = tmp_path / sel
        args = [f"checkpoint={out}"] if sel == "first" else [f"task={task}"]
        main(["eval-policy", *args, f"selection={sel}", "episodes=4", "seed=0", "workers=1", "torch_threads=1",
              f"output_dir={ev}"])
        results[sel] = json.loads((ev / "metrics.json").read_text())["tasks"][task]
    first, rand = results["first"], results["random_primitive"]
    assert rand["success_rate"] == 0.0
    assert first["success_rate"] >= min_success, first["success"]
    assert first["quality_mean"] < 0.75 * rand["quality_mean"], (first["quality_mean"], rand["quality_mean"])
