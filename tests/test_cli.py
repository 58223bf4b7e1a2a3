"""The `robot-rewards` CLI end to end: hydra overrides, outputs, errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from robot_rewards.cli import main
from robot_rewards.data.episodes import EpisodeReader


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "robot_rewards.cli", *args],
                          capture_output=True, text=True, timeout=300)


def test_eval_expert_runs_a_short_episode(tmp_path):
    main(["eval-expert", "task=place_block", "episodes=2", "noise=0", "seed=3", "video=true",
          f"output_dir={tmp_path}"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    r = metrics["tasks"]["place_block"]
    assert r["episodes"] == 2 and r["success_rate"] == 1.0
    assert 0 <= r["quality_mean"] < 0.05
    assert metrics["config"]["noise"] == 0.0
    videos = list((tmp_path / "videos").iterdir())
    assert len(videos) == 1 and videos[0].stat().st_size > 10_000
    assert (tmp_path / ".hydra" / "config.yaml").is_file()


def test_collect_demos_writes_a_dataset(tmp_path):
    out = tmp_path / "d.h5"
    main(["collect-demos", "task=push_block", "n=1", "seed=4", f"out={out}", f"output_dir={tmp_path}"])
    with EpisodeReader(out) as r:
        assert len(r) == 1 and r.primitive == "push"
        g = r.episode(0)
        steps = int(g.attrs["n_steps"])
        assert g["actions"].shape == (steps, 6)
        assert g["obs/front/rgb"].shape == (steps + 1, 480, 640, 3)
        assert g["obs/front/depth"].dtype.name == "float32"


def test_collect_demos_in_parallel_writes_the_same_file(tmp_path, capsys):
    """workers=2 runs episodes in two processes; the file holds the same episodes, in seed order,
    as one process writes."""
    import numpy as np

    files = {}
    for workers in (1, 2):
        files[workers] = tmp_path / f"w{workers}.h5"
        main(["collect-demos", "task=push_block", "n=2", "seed=7", f"workers={workers}", f"out={files[workers]}",
              f"output_dir={tmp_path / str(workers)}"])
    with EpisodeReader(files[1]) as one, EpisodeReader(files[2]) as two:
        assert len(one) == len(two) == 2
        for k in range(2):
            a, b = one.episode(k), two.episode(k)
            assert a.attrs["seed"] == b.attrs["seed"] == 7 + k and a.attrs["goal"] == b.attrs["goal"]
            np.testing.assert_array_equal(a["actions"][:], b["actions"][:])
            np.testing.assert_array_equal(a["obs/front/depth"][-1], b["obs/front/depth"][-1])
    with pytest.raises(SystemExit):
        main(["collect-demos", "task=push_block", "n=1", "workers=0", f"out={tmp_path / 'x.h5'}",
              f"output_dir={tmp_path}"])
    assert "workers must be 'auto' or a positive integer, got 0" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_unknown_task_is_a_clear_error(tmp_path):
    res = run_cli("eval-expert", "task=fold_laundry", "episodes=1", f"output_dir={tmp_path}")
    assert res.returncode != 0
    assert "unknown task 'fold_laundry'" in res.stderr and "place_block" in res.stderr


def test_unknown_config_key_and_command():
    res = run_cli("eval-expert", "episodez=3")
    assert res.returncode != 0 and "episodez" in res.stderr
    res = run_cli("teleport")
    assert res.returncode == 2 and "unknown command 'teleport'" in res.stderr
    res = run_cli("bench")
    assert res.returncode == 2 and "sim" in res.stderr


@pytest.mark.parametrize("args", [["--help"], []])
def test_usage(args):
    res = run_cli(*args)
    assert "eval-expert" in res.stdout and "collect-demos" in res.stdout


def test_calibrate_needs_its_inputs(tmp_path):
    res = run_cli("calibrate", "intrinsics", f"output_dir={tmp_path}")
    assert res.returncode != 0 and "images" in res.stderr
    res = run_cli("calibrate", "intrinsics", f"images={tmp_path / 'none'}", f"output_dir={tmp_path}")
    assert res.returncode != 0 and "none" in res.stderr
    assert not (tmp_path / "camera.yaml").exists()


@pytest.mark.slow
def test_demo_runs_experts_and_the_loop_with_the_shipped_checkpoints(tmp_path, capsys):
    """What `make demo` runs, shortened: every expert, then policy alone vs best-of-N by the
    shipped scorer on all four tasks from two worker processes, each with its video, and the
    printed comparison with its intervals."""
    main(["demo", "episodes=1", "policy_episodes=2", "workers=2", f"output_dir={tmp_path}"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["workers"] == 2
    assert set(metrics["experts"]) == {"place_block", "push_block", "stack_blocks", "align_rope"}
    assert set(metrics["loop"]) == {"place_block", "push_block", "stack_blocks", "align_rope"}
    for _task, r in metrics["loop"].items():
        assert set(r) == {"first", "scorer"}
        for cond in r.values():
            assert cond["episodes"] == 2 and cond["seeds"] == [100_000, 100_001]
            assert min(cond["steps"]) >= 1 and cond["stopped"] == 0
            assert cond["first_try_rate"] == sum(ok and st == 1 for ok, st in zip(cond["success"], cond["steps"])) / 2
            assert Path(cond["video"]).stat().st_size > 10_000
        paired = r["scorer"]["vs_first"]
        assert paired["episodes"] == 2
        assert paired["quality_diff"] == pytest.approx(r["scorer"]["quality_mean"] - r["first"]["quality_mean"])
    assert len(list((tmp_path / "experts" / "videos").iterdir())) == 4
    printed = capsys.readouterr().out
    assert "(c)-(a) error mm" in printed and "robot-rewards experiment" in printed


def test_the_command_line_loads_without_torch():
    """Every command's config is importable without torch, so `robot-rewards --help` is fast."""
    code = ("import sys, robot_rewards.cli as c; [cmd.config for cmd in c.COMMANDS.values()]; "
            "assert 'torch' not in sys.modules, 'robot_rewards.cli imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)
