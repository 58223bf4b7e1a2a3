"""experiment-merge: runs split over conditions and seed ranges join into one report."""

import json
from dataclasses import replace

import numpy as np
import pytest

from robot_rewards.commands.experiment_report import episode_successes, experiment_merge, first_try_rate, merge_runs, paired_vs
from robot_rewards.core.reporting import wilson_interval
from robot_rewards.eval.loop import EpisodeStats
from robot_rewards.preferences.config import ExperimentMergeConfig

SCORER = {"n_train": 200, "seed": 0, "ensemble_size": 5, "heldout_accuracy": 0.6}


def _summary(seeds, rng, shift=0.0, steps=3):
    """An EpisodeStats summary for seeds with random outcomes (shift: metres added to the error)."""
    st = EpisodeStats()
    for s in seeds:
        q = float(rng.uniform(0.0, 0.06)) + shift
        st.seeds.append(s)
        st.quality.append(q)
        st.success.append(q < 0.02)
        st.steps.append(steps)
    return st.summary()


def _write_run(path, conditions, curve=(), scorer=SCORER, policy="checkpoints/policy_align_rope.json", **top):
    path.mkdir(parents=True)
    task = {"policy": policy, "scorer": dict(scorer), "conditions": conditions, "curve": list(curve)}
    meta = {"command": "experiment", "n_candidates": 8, "labels": 200, "teacher": "mistake", **top}
    (path / "metrics.json").write_text(json.dumps({**meta, "tasks": {"align_rope": task}}))
    return str(path)


def test_runs_split_by_seeds_and_conditions_merge_into_one_table(tmp_path):
    rng = np.random.default_rng(0)
    first_a, first_b = _summary(range(0, 10), rng), _summary(range(10, 20), rng)
    # the scorer's choice is 1 cm better than the first sample on every seed
    better = {k: dict(v) for k, v in (("a", first_a), ("b", first_b))}
    for s in better.values():
        s["quality"] = [q - 0.01 for q in s["quality"]]
        s["success"] = [q < 0.02 for q in s["quality"]]
        s["failed_seeds"] = [seed for seed, ok in zip(s["seeds"], s["success"]) if not ok]
    a = _write_run(tmp_path / "a", {"first": first_a, "scorer": better["a"]}, curve=[{"labels": 50, "accuracy": 0.55}])
    b = _write_run(tmp_path / "b", {"first": first_b, "scorer": better["b"]}, curve=[{"labels": 50, "accuracy": 0.55}])
    c = _write_run(tmp_path / "c", {"oracle": _summary(range(0, 5), rng, steps=2)})
    shared, res = merge_runs([a, b, c])
    assert shared == {"n_candidates": 8, "labels": 200, "teacher": "mistake"}
    conds = res["align_rope"]["conditions"]
    assert conds["first"]["seeds"] == list(range(20)) and conds["oracle"]["episodes"] == 5
    wins = sum(first_a["success"]) + sum(first_b["success"])
    assert conds["first"]["success_rate"] == pytest.approx(wins / 20)
    assert conds["first"]["success_ci95"] == pytest.approx(list(wilson_interval(wins, 20)))
    assert conds["first"]["quality_mean"] == pytest.approx(np.mean(first_a["quality"] + first_b["quality"]))
    assert conds["oracle"]["steps_mean"] == 2 and conds["oracle"]["steps"] == [2] * 5
    p = res["align_rope"]["paired_vs_first"]["scorer"]
    assert p["episodes"] == 20 and p["quality_diff"] == pytest.approx(-0.01) and p["closer_fraction"] == 1.0
    assert p["quality_diff_ci95"] == pytest.approx([-0.01, -0.01])
    assert res["align_rope"]["paired_vs_first"]["oracle"]["episodes"] == 5  # only the seeds both ran
    assert res["align_rope"]["curve"] == [{"labels": 50, "accuracy": 0.55}]

    out = tmp_path / "merged"
    experiment_merge(ExperimentMergeConfig(runs=[a, b, c], output_dir=str(out)))
    table = (out / "table.md").read_text()
    assert "(f) oracle best-of-N" in table and "-10.0 [-10.0, -10.0], 20 ep" in table
    assert (out / "conditions.png").stat().st_size > 0 and (out / "learning_curve.png").stat().st_size > 0
    assert json.loads((out / "metrics.json").read_text())["tasks"]["align_rope"]["conditions"]["first"]["episodes"] == 20


def test_older_summaries_without_per_episode_success_or_steps(tmp_path):
    rng = np.random.default_rng(1)
    s1, s2 = _summary(range(4), rng, steps=5), _summary(range(4, 6), rng, steps=2)
    for s in (s1, s2):
        del s["success"], s["steps"]
    merged = merge_runs([_write_run(tmp_path / "a", {"first": s1}), _write_run(tmp_path / "b", {"first": s2})])[1]
    first = merged["align_rope"]["conditions"]["first"]
    assert first["steps_mean"] == pytest.approx(4.0) and "steps" not in first  # weighted by episodes
    assert first["success"] == episode_successes(s1) + episode_successes(s2)


def test_a_repeated_run_counts_once_but_a_different_outcome_is_refused(tmp_path):
    rng = np.random.default_rng(2)
    s = _summary(range(6), rng)
    again = merge_runs([_write_run(tmp_path / "a", {"first": s}), _write_run(tmp_path / "b", {"first": s})])[1]
    assert again["align_rope"]["conditions"]["first"]["episodes"] == 6
    changed = dict(s, quality=[q + 0.001 for q in s["quality"]])
    with pytest.raises(ValueError, match="seed 0 ended differently"):
        merge_runs([str(tmp_path / "a"), _write_run(tmp_path / "c", {"first": changed})])
    # seeds 3..5 as in run a, then three new ones
    tail = _summary(range(6, 9), rng)
    part = {k: s[k][3:] + tail[k] for k in ("seeds", "quality", "success", "steps")}
    part.update(steps_mean=3.0, failed_seeds=[x for x, ok in zip(part["seeds"], part["success"]) if not ok])
    with pytest.raises(ValueError, match="only some of its seeds"):
        merge_runs([str(tmp_path / "a"), _write_run(tmp_path / "d", {"first": part})])


def test_runs_that_are_not_comparable_are_refused(tmp_path):
    rng = np.random.default_rng(3)
    a = _write_run(tmp_path / "a", {"first": _summary(range(3), rng), "scorer": _summary(range(3), rng)})
    with pytest.raises(ValueError, match="different policies"):
        merge_runs([a, _write_run(tmp_path / "b", {"random": _summary(range(3), rng)}, policy="other.json")])
    with pytest.raises(ValueError, match="different scorers"):
        merge_runs([a, _write_run(tmp_path / "c", {"scorer_wco": _summary(range(3), rng)},
                                  scorer=dict(SCORER, heldout_accuracy=0.7))])
    with pytest.raises(ValueError, match="differ in labels"):
        merge_runs([a, _write_run(tmp_path / "d", {"scorer_uwo": _summary(range(3), rng)}, labels=500)])
    with pytest.raises(ValueError, match="differ in n_candidates"):
        merge_runs([a, _write_run(tmp_path / "e", {"oracle": _summary(range(3), rng)}, n_candidates=4)])
    with pytest.raises(FileNotFoundError, match="not an experiment run"):
        merge_runs([a, str(tmp_path)])
    with pytest.raises(ValueError, match="empty"):
        merge_runs([])


def test_runs_that_do_not_use_their_scorer_merge_with_any_scorer(tmp_path):
    # (a) run beside a scorer given by checkpoint: its labels and scorer do not matter
    rng = np.random.default_rng(4)
    curve = [{"labels": 500, "accuracy": 0.62}]
    trained = _write_run(tmp_path / "c", {"scorer": _summary(range(4), rng)}, curve=curve,
                         scorer=dict(SCORER, n_train=500), labels=500)
    alone = _write_run(tmp_path / "a", {"first": _summary(range(4), rng), "oracle": _summary(range(2), rng)})
    shared, res = merge_runs([alone, trained])
    assert shared["labels"] == 500 and res["align_rope"]["scorer"]["n_train"] == 500
    assert set(res["align_rope"]["conditions"]) == {"first", "scorer", "oracle"}
    assert res["align_rope"]["paired_vs_first"]["scorer"]["episodes"] == 4
    # a learning curve depends on the scorer's labels, so it is checked like a scorer condition
    with pytest.raises(ValueError, match="differ in labels"):
        merge_runs([trained, _write_run(tmp_path / "k", {"first": _summary(range(4), rng)}, curve=curve)])


def test_a_stopped_run_is_read_from_its_partial_results(tmp_path):
    rng = np.random.default_rng(4)
    d = tmp_path / "stopped" / "partial_align_rope"
    d.mkdir(parents=True)
    s = _summary(range(4), rng)
    (d / "metrics.json").write_text(json.dumps({"policy": "p.json", "scorer": SCORER, "conditions": {"first": s}}))
    shared, res = merge_runs([str(tmp_path / "stopped")])
    assert res["align_rope"]["conditions"]["first"]["quality"] == pytest.approx(s["quality"])
    assert shared["n_candidates"] is None


def test_paired_vs_uses_only_common_seeds():
    base = {"seeds": [1, 2, 3], "quality": [0.03, 0.05, 0.01], "success": [False, False, True]}
    other = {"seeds": [2, 3, 4], "quality": [0.01, 0.02, 0.0], "failed_seeds": [3, 4]}
    p = paired_vs(base, other)
    assert p["episodes"] == 2 and p["quality_diff"] == pytest.approx((-0.04 + 0.01) / 2)
    assert p["closer_fraction"] == 0.5 and p["success_diff"] == pytest.approx(0.0)
    assert paired_vs(base, {"seeds": [9], "quality": [0.0], "success": [True]}) is None


def test_first_try_success_and_its_paired_difference(tmp_path):
    # (a) succeeds at once on seeds 0, 1; the other succeeds at once on 0, 1, 2 and needs a retry on 3
    base, other = EpisodeStats(seeds=[0, 1, 2, 3], quality=[0.01] * 4), EpisodeStats(seeds=[0, 1, 2, 3], quality=[0.01] * 4)
    base.success, base.steps = [True, True, True, False], [1, 1, 2, 3]
    other.success, other.steps = [True] * 4, [1, 1, 1, 2]
    base, other = base.summary(), other.summary()
    assert first_try_rate(base) == 0.5 and first_try_rate(other) == 0.75
    assert first_try_rate({"seeds": [0], "quality": [0.0], "success": [True]}) is None  # no per-episode steps
    p = paired_vs(base, other)
    assert p["first_try_diff"] == pytest.approx(0.25)
    lo, hi = p["first_try_diff_ci95"]  # differences 0, 0, 1, 0: sd 0.5 over 4 episodes
    assert (lo, hi) == pytest.approx((0.25 - 1.96 * 0.25, 0.25 + 1.96 * 0.25))
    # a learning-curve point with episodes reports its first try too (accuracy-only points do not)
    curve = [{"labels": 50, "accuracy": 0.55}, {"labels": 200, "accuracy": 0.6, **other}]
    run = _write_run(tmp_path / "run", {"first": base, "scorer": other}, curve=curve)
    experiment_merge(ExperimentMergeConfig(runs=[run], output_dir=str(tmp_path / "merged")))
    lines = (tmp_path / "merged" / "table.md").read_text().splitlines()
    row = next(line for line in lines if "(c)" in line)
    assert "75%, +25 [-24, +74]" in row
    point = next(line for line in lines if line.strip().startswith("200"))
    assert "75%, +25 [-24, +74]" in point and "60.0%" in point
    assert "%, +" not in next(line for line in lines if line.strip().startswith("50 "))


def test_experiment_with_a_given_scorer_collects_no_training_labels(tmp_path):
    # the shipped scorer evaluated as is: no teacher labels, no training, no learning curve
    from robot_rewards.commands.experiment import experiment
    from robot_rewards.preferences.config import ExperimentConfig
    from robot_rewards.preferences.store import PreferenceStore

    cfg = ExperimentConfig(tasks=["place_block"], workers=1, scorer_checkpoint="checkpoints/scorer_place_block.json",
                           conditions=["first", "scorer"], episodes=2, heldout_labels=0, curve=[50],
                           output_dir=str(tmp_path / "run"))
    m = experiment(cfg)["tasks"]["place_block"]
    with PreferenceStore(tmp_path / "run" / "preferences") as store:
        assert store.label_count(task="place_block") == 0
    assert m["scorer"]["n_train"] == 500 and "heldout_accuracy" not in m["scorer"]
    assert m["scorer"]["checkpoint"].endswith("scorer_place_block.json")
    assert m["curve"] == []
    assert [c["episodes"] for c in m["conditions"].values()] == [2, 2]
    table = (tmp_path / "run" / "table.md").read_text()
    assert table.count("(c) scorer, mean") == 1 and "accuracy not measured" in table


def test_experiment_scorer_checkpoint_bad_input(tmp_path):
    from robot_rewards.commands.experiment import experiment
    from robot_rewards.preferences.config import ExperimentConfig

    with pytest.raises(ValueError, match="one task at a time"):
        experiment(ExperimentConfig(scorer_checkpoint="checkpoints/scorer_place_block.json",
                                    output_dir=str(tmp_path / "a")))
    with pytest.raises(FileNotFoundError):
        experiment(ExperimentConfig(tasks=["place_block"], scorer_checkpoint=str(tmp_path / "missing.json"),
                                    conditions=["scorer"], episodes=1, heldout_labels=0,
                                    output_dir=str(tmp_path / "b")))


def test_learning_curve_reuses_the_scorer_trained_on_all_labels(tmp_path, monkeypatch):
    # the curve's last point is (c)'s scorer on (c)'s episodes: neither trained nor run twice
    import robot_rewards.commands.experiment as exp
    from robot_rewards.preferences.config import ExperimentConfig, loop_scorer

    calls = {"train": 0, "episodes": []}
    train, run = exp.train_scorer, exp.run_condition

    def counting_train(*a, **k):
        calls["train"] += 1
        return train(*a, **k)

    def counting_run(*a, **k):
        calls["episodes"].append(a[4])
        return run(*a, **k)

    monkeypatch.setattr(exp, "train_scorer", counting_train)
    monkeypatch.setattr(exp, "run_condition", counting_run)
    scorer = replace(loop_scorer(0.0), ensemble_size=2, steps=20)
    cfg = ExperimentConfig(tasks=["place_block"], workers=1, conditions=["scorer"], episodes=2, labels=8, heldout_labels=4,
                           pairs_per_query=4, curve=[4, 8], curve_episodes=2, scorer=scorer,
                           output_dir=str(tmp_path / "run"))
    m = exp.experiment(cfg)["tasks"]["place_block"]
    assert calls["train"] == 2 and calls["episodes"] == ["place_block scorer", "place_block curve 4"]
    small, full = m["curve"]
    assert (small["labels"], full["labels"]) == (4, 8) and 0.0 <= small["accuracy"] <= 1.0
    assert full["accuracy"] == pytest.approx(m["scorer"]["heldout_accuracy"])
    assert full["seeds"] == m["conditions"]["scorer"]["seeds"] == small["seeds"]
    assert full["quality"] == m["conditions"]["scorer"]["quality"]
    top1 = m["scorer"]["heldout_top1"]  # the choice on the held-out decisions, by their true values
    assert top1["queries"] == 1 and top1["first_value"] <= top1["best_value"]
    assert small["heldout_top1"]["queries"] == 1 and full["heldout_top1"]["top1_value"] == top1["top1_value"]
    assert "offline top-1 on 1 held-out decisions" in (tmp_path / "run" / "table.md").read_text()


def test_the_implicit_condition_tunes_the_policy_on_the_runs_labels_and_selects_with_it(tmp_path):
    """(g): DPO on the training labels, saved beside the scorer, measured on the held-out pairs,
    then best-of-N by its implicit reward on the episodes."""
    from robot_rewards.commands.experiment import experiment
    from robot_rewards.preferences.config import ExperimentConfig, loop_scorer
    from robot_rewards.rewards.implicit.config import TrainImplicitConfig
    from robot_rewards.rewards.implicit.reward import load_implicit_scorer

    cfg = ExperimentConfig(tasks=["place_block"], workers=1, conditions=["implicit"], episodes=1, labels=8,
                           heldout_labels=4, curve=[], scorer=replace(loop_scorer(0.0), ensemble_size=2, steps=20),
                           scorer_recipe="custom",
                           implicit=TrainImplicitConfig(steps=4, batch_size=8, score_draws=10, score_t_fraction=0.1,
                                                        val_fraction=0.0),
                           output_dir=str(tmp_path / "run"))
    m = experiment(cfg)["tasks"]["place_block"]
    im = m["implicit"]
    assert im["steps"] == 4 and 0.0 <= im["heldout_accuracy"] <= 1.0 and im["heldout_top1"]["queries"] == 1
    assert load_implicit_scorer(im["checkpoint"]).t_fraction == 0.1
    assert m["conditions"]["implicit"]["episodes"] == 1
    assert "(g) implicit reward (DPO" in (tmp_path / "run" / "table.md").read_text()


def test_a_condition_that_always_succeeds_is_plotted(tmp_path):
    # Wilson's upper bound at 100/100 is 0.9999999999999999: a "negative" error bar once stopped the report
    assert wilson_interval(100, 100)[1] < 1.0
    st = EpisodeStats()
    for s in range(100):
        st.seeds.append(s), st.quality.append(0.01), st.success.append(True), st.steps.append(1)
    run = _write_run(tmp_path / "run", {"first": st.summary(), "oracle": st.summary()})
    experiment_merge(ExperimentMergeConfig(runs=[run], output_dir=str(tmp_path / "merged")))
    assert (tmp_path / "merged" / "table.md").is_file() and list((tmp_path / "merged").glob("*.png"))
