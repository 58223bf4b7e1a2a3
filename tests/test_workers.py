"""Episodes on every core: the same per-episode results for any number of workers and on Ray;
failed episodes are named and finished ones kept; bad worker counts and executors are refused."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import replace

import pytest

from robot_rewards.core.workers import ExecutorError, JobsFailed, check_executor, resolve_workers, run_jobs


class Squares:
    """A toy runner: job -> job**2; job 3 raises, job -1 kills its process."""

    def __init__(self, offset: int = 0):
        self.offset = offset
        self.closed = False

    def __call__(self, job: int) -> int:
        if job == 3:
            raise RuntimeError("three is unlucky")
        if job == -1:
            os._exit(9)  # a worker that dies (segfault, OOM kill) without raising
        return job * job + self.offset

    def close(self) -> None:
        self.closed = True


def test_results_come_back_in_job_order_for_any_number_of_workers():
    jobs = [5, 0, 7, 2, 9, 1]
    one = run_jobs(Squares, jobs, workers=1, progress=False)
    assert one == [25, 0, 49, 4, 81, 1]
    assert run_jobs(Squares, jobs, workers=2, progress=False) == one


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failed_job_is_named_and_the_finished_ones_are_kept(workers):
    with pytest.raises(JobsFailed) as info:
        run_jobs(Squares, [1, 3, 4], workers=workers, desc="toy", progress=False)
    err = info.value
    assert err.results == [1, None, 16] and set(err.failed) == {1}
    assert "toy: 1 of 3 failed (seed 3)" in str(err) and "three is unlucky" in str(err)
    assert "2 finished and kept" in str(err)


def test_a_worker_process_that_dies_fails_its_job_not_the_command():
    with pytest.raises(JobsFailed) as info:
        run_jobs(Squares, [2, -1], workers=2, progress=False)
    assert info.value.results[0] == 4 or 0 in info.value.failed  # the pool may lose both
    assert 1 in info.value.failed and "worker process died" in info.value.failed[1]


def test_bad_worker_counts_and_executors_are_refused_before_any_work(caplog):
    assert resolve_workers("auto") >= 1
    assert resolve_workers(2) == 2 and resolve_workers("3") == 3
    for bad in (0, -1, "many", 1.5, True):
        with pytest.raises(ValueError, match="workers must be 'auto' or a positive integer"):
            resolve_workers(bad)
    many = resolve_workers("auto") + 997
    with caplog.at_level(logging.WARNING):
        assert resolve_workers(many) == many
        resolve_workers(many)
    assert caplog.text.count(f"workers={many} is more than the") == 1  # a warning, once
    with pytest.raises(ValueError, match="unknown executor 'dask'; known: local, ray"):
        check_executor("dask")


def test_ray_missing_or_unreachable_is_a_clear_error(monkeypatch):
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "ray", None)  # as if not installed
        with pytest.raises(ExecutorError, match=r"executor=ray needs Ray, which is not installed: pip install"):
            check_executor("ray")
    pytest.importorskip("ray")
    with pytest.raises(ExecutorError, match=r"cannot reach the Ray cluster at '127.0.0.1:1'"):
        check_executor("ray", "127.0.0.1:1")


# -- the episode commands --------------------------------------------------------------------------
def _experiment(tmp_path, name, **kw):
    from robot_rewards.commands.experiment import experiment
    from robot_rewards.preferences.config import ExperimentConfig

    cfg = ExperimentConfig(tasks=["place_block"], scorer_checkpoint="checkpoints/scorer_place_block.json",
                           heldout_labels=0, curve=[], conditions=["random", "scorer"], episodes=2,
                           output_dir=str(tmp_path / name))
    return experiment(replace(cfg, **kw))["tasks"]["place_block"]["conditions"]


def _per_episode(conditions):
    keys = ("seeds", "success", "quality", "steps")
    return {c: {k: r[k] for k in keys} for c, r in conditions.items()}


@pytest.mark.slow
def test_experiment_gives_the_same_episodes_on_one_two_workers_and_ray(tmp_path):
    one = _per_episode(_experiment(tmp_path, "one", workers=1))
    assert one["scorer"]["seeds"] == [100_000, 100_001]
    assert _per_episode(_experiment(tmp_path, "two", workers=2)) == one
    pytest.importorskip("ray")
    assert _per_episode(_experiment(tmp_path, "ray", workers=2, executor="ray")) == one
    # the networks served by one inference actor to both simulator actors: still the same episodes
    assert _per_episode(_experiment(tmp_path, "shared", workers=2, executor="ray", shared_inference=True)) == one
    with pytest.raises(ValueError, match="shared_inference=true .* needs executor=ray"):
        _experiment(tmp_path, "bad", shared_inference=True)


@pytest.mark.slow
def test_eval_policy_and_eval_expert_give_the_same_episodes_on_two_workers(tmp_path):
    from robot_rewards.cli import main

    def run(cmd, name, *args):
        out = tmp_path / name
        main([cmd, *args, f"output_dir={out}"])
        return json.loads((out / "metrics.json").read_text())["tasks"]

    for workers in (1, 2):
        policy = run("eval-policy", f"p{workers}", "checkpoint=checkpoints/policy_place_block.json",
                     "episodes=3", f"workers={workers}")["place_block"]
        expert = run("eval-expert", f"e{workers}", "task=push_block", "episodes=3", "video=false",
                     f"workers={workers}")["push_block"]
        got = (policy["quality"], policy["diversity"], expert["quality"], expert["success"])
        if workers == 1:
            first = got
    assert got == first


@pytest.mark.slow
def test_teacher_labels_are_the_same_from_two_workers(tmp_path):
    from robot_rewards.core.paths import resolve
    from robot_rewards.eval.collect import collect_teacher_labels
    from robot_rewards.policy.checkpoint import load_policy
    from robot_rewards.preferences.store import PreferenceStore
    from robot_rewards.preferences.teachers import teacher_preset
    from robot_rewards.sim.env import TabletopEnv

    ck = load_policy(resolve("checkpoints/policy_place_block.json"), task="place_block")
    got = []
    with TabletopEnv("place_block", perception=ck.perception) as env:
        for workers in (1, 2):
            with PreferenceStore(tmp_path / f"w{workers}") as store:
                stats = collect_teacher_labels(env, ck.policy, store, teacher_preset("mistake", 0), n_labels=18,
                                               pairs_per_query=4, seed=500, max_decisions=2, workers=workers,
                                               progress=False)
                queries = [(q.meta["episode_seed"], q.meta["decision"], q.meta["values"])
                           for q in store.queries(task="place_block")]
                pairs = store.pairs(task="place_block")
                got.append((stats.labels, stats.queries, stats.episodes, queries, pairs.labels.tolist(),
                            pairs.params_a.tolist(), pairs.params_b.tolist()))
    assert got[0][0] == 18 and got[0][1] == 5  # 4 + 4 + 4 + 4 + 2
    assert got[1] == got[0]


@pytest.mark.slow
def test_an_experiment_whose_episode_fails_names_it_keeps_the_rest_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    import robot_rewards.eval.loop as loop
    from robot_rewards.cli import main

    real = loop.run_episode

    def flaky(env, policy, selector, ep_seed, *a, **k):
        if ep_seed == 100_001:
            raise RuntimeError("simulated crash")
        return real(env, policy, selector, ep_seed, *a, **k)

    monkeypatch.setattr(loop, "run_episode", flaky)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "tasks=[place_block]", "scorer_checkpoint=checkpoints/scorer_place_block.json",
              "heldout_labels=0", "curve=[]", "conditions=[first]", "episodes=3", "workers=1", f"output_dir={out}"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "place_block first: 1 of 3 failed (seed 100001)" in err and "simulated crash" in err
    kept = json.loads((out / "partial_place_block" / "metrics.json").read_text())["incomplete"]["place_block first"]
    assert kept["seeds"] == [100_000, 100_002] and "simulated crash" in kept["errors"]["100001"]


def test_eval_expert_with_a_failed_episode_keeps_the_finished_ones_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    import robot_rewards.eval.expert as expert
    from robot_rewards.cli import main

    real = expert.run_expert_episode

    def flaky(env, seed, cfg, *a, **k):
        if seed == 1:
            raise RuntimeError("simulated crash")
        return real(env, seed, cfg, *a, **k)

    monkeypatch.setattr(expert, "run_expert_episode", flaky)
    with pytest.raises(SystemExit) as exit_info:
        main(["eval-expert", "task=push_block", "episodes=3", "noise=0", "video=false", "workers=1",
              f"output_dir={tmp_path}"])
    assert exit_info.value.code == 1 and "1 of 3 failed (seed 1)" in capsys.readouterr().err
    kept = json.loads((tmp_path / "partial_push_block" / "metrics.json").read_text())
    assert [e["seed"] for e in kept["finished"]] == [0, 2] and "simulated crash" in kept["failed"]["seed 1"]
