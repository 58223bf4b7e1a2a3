"""Intents (issue 28): a teacher's own way of doing a task that the metric ignores, ground truth
from sim state; the intent teacher's values and labels; the experiment's per-decision record;
scorers trained on intent labels choose intent-satisfying candidates more often."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from robot_rewards.core.primitives import Primitive
from robot_rewards.sim.intents import UnknownIntentError, make_intent, task_intents, what_if_intent
from robot_rewards.sim.tasks import TASKS
from robot_rewards.sim.tasks.align_rope import GRASP_Z, RED_END_MOVED, RED_END_STILL, grasp_yaw
from robot_rewards.sim.tasks.place_block import BLOCK_HALF, BOWL_FLOOR, toward_base

POLICY = "checkpoints/policy_place_block.json"


def test_tasks_declare_their_intents_and_unknown_names_are_refused():
    assert list(task_intents(TASKS["place_block"])) == ["near_half"]
    assert list(task_intents(TASKS["align_rope"])) == ["red_end_first"]
    assert task_intents(TASKS["push_block"]) == {}
    with pytest.raises(UnknownIntentError, match="its intents: near_half"):
        make_intent(TASKS["place_block"], "red_end_first")
    with pytest.raises(UnknownIntentError, match="none"):
        make_intent(TASKS["push_block"], "near_half")


def test_toward_base_is_the_offset_along_the_bowl_to_base_direction():
    bowl = np.array([0.5, 0.0, 0.0])  # straight ahead of the base: towards the base is -x
    assert toward_base([0.48, 0.0], bowl) == pytest.approx(0.02)
    assert toward_base([0.52, 0.01], bowl) == pytest.approx(-0.02)
    assert toward_base([0.5, 0.03], bowl) == pytest.approx(0.0, abs=1e-12)  # sideways: neither half
    diag = np.array([0.4, 0.3])
    assert toward_base(diag - 0.01 * diag / np.linalg.norm(diag), diag) == pytest.approx(0.01)


@pytest.fixture(scope="module")
def place_env():
    from robot_rewards.sim.env import TabletopEnv

    env = TabletopEnv("place_block")
    yield env
    env.close()


@pytest.mark.parametrize("where,expected", [("near", True), ("far", False), ("table", False)])
def test_near_half_on_constructed_scenes(place_env, where, expected):
    env = place_env
    env.reset(3)
    task, world = env.task, env.world
    intent = make_intent(task, "near_half")
    bowl = world.position(task.target_bowl)
    to_base = -bowl[:2] / np.linalg.norm(bowl[:2])
    if where == "table":  # beside the bowl on the robot's side: near, but not in the bowl
        xy, z = bowl[:2] + 0.1 * to_base, BLOCK_HALF + 0.002
    else:
        xy, z = bowl[:2] + (0.02 if where == "near" else -0.02) * to_base, BOWL_FLOOR + BLOCK_HALF + 0.003
    world.teleport(task.target_block, [xy[0], xy[1], z], 0.3)
    world.settle(max_s=1.0)
    assert task.success(world) == (where != "table")
    assert intent.satisfied(task, world, intent.before(task, world)) is expected


@pytest.fixture(scope="module")
def rope_env():
    from robot_rewards.sim.env import TabletopEnv

    env = TabletopEnv("align_rope")
    env.reset(100001)  # marks red and blue: the red end is the one the assignment sends to red
    yield env
    env.close()


def _drag_end(env, link: int, distance: float) -> Primitive:
    """Grasp rope link `link` (an end) and drag it `distance` outward along the rope's end direction."""
    pts = env.task.positions(env.world)[:, :2]
    inward = pts[1] if link == 0 else pts[-2]
    out = (pts[link] - inward) / np.linalg.norm(pts[link] - inward)
    heading = float(np.arctan2(*(pts[link] - inward)[::-1]))
    pick = np.array([*pts[link], GRASP_Z])
    place = np.array([*(pts[link] + distance * out), GRASP_Z])
    return Primitive.pick_place(pick, place, grasp_yaw(heading))


def test_red_end_first_picks_the_end_assigned_to_the_red_mark(rope_env):
    env = rope_env
    task, world = env.task, env.world
    intent = make_intent(task, "red_end_first")
    pts = task.positions(world)[:, :2]
    ends = {i: m for i, _, m, _ in task._ends(pts)}
    red, other, start = intent.before(task, world)
    assert task.mark_colors == ("red", "blue")
    np.testing.assert_array_equal(ends[red], task.marks[0])
    assert {red, other} == {0, len(pts) - 1}
    np.testing.assert_array_equal(start, pts[[red, other]])
    saved = task.mark_colors
    try:
        task.mark_colors = ("blue", "red")  # the red mark is now b: the other end is the red end
        assert intent.before(task, world)[0] == other
        task.mark_colors = ("green", "yellow")  # no red mark: the one the goal names first (a)
        assert intent.before(task, world)[0] == red
    finally:
        task.mark_colors = saved


def test_red_end_first_thresholds_on_displacements(rope_env):
    env = rope_env
    task, world = env.task, env.world
    intent = make_intent(task, "red_end_first")
    red, other, start = intent.before(task, world)
    assert not intent.satisfied(task, world, (red, other, start))  # nothing moved
    moved = start.copy()
    moved[0] += [RED_END_MOVED + 0.002, 0.0]  # as if the red end had been dragged here from there
    assert intent.satisfied(task, world, (red, other, moved))
    moved[1] += [0.0, RED_END_STILL + 0.002]  # ...and the other end came along
    assert not intent.satisfied(task, world, (red, other, moved))
    # the other end moved, the red one did not
    assert not intent.satisfied(task, world, (red, other, np.stack([start[0], start[1] + 0.05])))


@pytest.mark.slow
def test_red_end_first_on_what_if_drags_of_each_end(rope_env):
    env = rope_env
    intent = make_intent(env.task, "red_end_first")
    red, other, _ = intent.before(env.task, env.world)
    before = env.task.positions(env.world).copy()
    out = what_if_intent(env, [_drag_end(env, red, 0.06), _drag_end(env, other, 0.06)], intent)
    assert out.executed.all()
    assert out.satisfied.tolist() == [True, False]
    np.testing.assert_array_equal(env.task.positions(env.world), before)  # the scene is restored
    assert env.steps == 0


# One labelling decision (8 candidates, their what-if outcomes and intent) per place_block scene:
# the scorers' training scenes and held-out scenes (disjoint), as the experiment's stores hold them.
TRAIN_SCENES = list(range(200000, 200012))
HELDOUT_SCENES = list(range(200048, 200064))
PLAIN_SCENES = [200000, 200004]  # also played without the intent


@pytest.fixture(scope="module")
def decisions():
    """{"intent": [LabelDecision of each TRAIN_SCENES + HELDOUT_SCENES scene, near_half, weight 1],
    "plain": [... of PLAIN_SCENES without an intent]}."""
    from robot_rewards.core.paths import resolve
    from robot_rewards.eval.collect import LabelEpisodes
    from robot_rewards.policy.checkpoint import load_policy
    from robot_rewards.sim.env import TabletopEnv

    ck = load_policy(resolve(POLICY), task="place_block")
    with TabletopEnv("place_block", perception=ck.perception) as env:
        with_intent = LabelEpisodes(env, ck.policy, 8, 0.02, 1, intent="near_half", intent_weight=1.0)
        plain = LabelEpisodes(env, ck.policy, 8, 0.02, 1)
        yield {"intent": [with_intent(s)[0] for s in TRAIN_SCENES + HELDOUT_SCENES],
               "plain": [plain(s)[0] for s in PLAIN_SCENES]}


def _plain(d):
    """The decision as the plain teacher values it: the true return alone."""
    return replace(d, values=d.values - d.intent, intent=None)


@pytest.mark.slow
def test_intent_values_add_the_weight_to_the_true_return(decisions):
    by_seed = {d.episode_seed: d for d in decisions["intent"]}
    for p in decisions["plain"]:
        d = by_seed[p.episode_seed]
        assert p.intent is None and d.intent.dtype == bool and len(d.intent) == 8
        # the same candidates, the same rollouts: only the intent's weight differs
        np.testing.assert_array_equal(d.candidates.params, p.candidates.params)
        np.testing.assert_allclose(d.values, p.values + d.intent, rtol=0, atol=1e-12)
    assert any(d.intent.any() and not d.intent.all() for d in decisions["intent"])


@pytest.mark.slow
def test_intent_teacher_prefers_intent_satisfying_candidates(decisions, tmp_path):
    from robot_rewards.eval.collect import store_decisions
    from robot_rewards.preferences.store import PreferenceStore
    from robot_rewards.preferences.teachers import ScriptedTeacher, TeacherConfig

    some = decisions["intent"][:4]
    oracle = ScriptedTeacher(TeacherConfig())
    wins_intent = wins_plain = n = 0
    for d in some:
        p = _plain(d)
        sat, unsat = np.flatnonzero(d.intent), np.flatnonzero(~d.intent)
        # both candidates succeed (or both fail) and differ only in the intent: within 1 value unit
        pairs = np.array([(a, b) for a in sat for b in unsat if abs(p.values[a] - p.values[b]) < 1.0])
        if not len(pairs):
            continue
        wins_intent += int(np.sum(oracle.label(d.values, pairs) == 1.0))
        wins_plain += int(np.sum(oracle.label(p.values, pairs) == 1.0))
        n += len(pairs)
    assert n >= 5 and wins_intent == n and wins_plain < n

    with PreferenceStore(tmp_path / "prefs") as store:
        stats = store_decisions(store, "place_block", some, TeacherConfig(), 28, intent="near_half")
        assert (stats.queries, stats.labels) == (4, 4 * 28)
        for q, d in zip(store.queries(task="place_block"), some):
            assert q.meta["intent"] == "near_half"
            assert q.meta["intent_satisfied"] == d.intent.tolist()
            assert q.meta["values"] == pytest.approx(d.values.tolist())


@pytest.mark.slow
def test_intent_labels_move_the_scorers_choice_toward_the_intent(decisions, tmp_path):
    """The same training decisions labelled (all 28 pairs, oracle rules) by the intent teacher and
    by the plain one: the scorer from the intent labels picks intent-satisfying candidates more
    often on held-out scenes, and orders their intent-differing pairs right more often."""
    from robot_rewards.core.observation import Observation
    from robot_rewards.eval.collect import heldout_intent, store_decisions
    from robot_rewards.preferences.store import PreferenceStore
    from robot_rewards.preferences.teachers import TeacherConfig
    from robot_rewards.rewards.aggregate import aggregate
    from robot_rewards.rewards.preference.config import ScorerConfig, TrainScorerConfig
    from robot_rewards.rewards.preference.scorer import train_scorer

    train, held = decisions["intent"][:len(TRAIN_SCENES)], decisions["intent"][len(TRAIN_SCENES):]
    cfg = TrainScorerConfig(scorer=ScorerConfig(use_global=False, local_k=32), ensemble_size=3, steps=300,
                            val_fraction=0.0, init_from_policy=POLICY)
    with PreferenceStore(tmp_path / "intent") as si, PreferenceStore(tmp_path / "plain") as sp, \
            PreferenceStore(tmp_path / "heldout") as sh:
        store_decisions(si, "place_block", train, TeacherConfig(), 28, intent="near_half")
        store_decisions(sp, "place_block", [_plain(d) for d in train], TeacherConfig(), 28)
        store_decisions(sh, "place_block", held, TeacherConfig(), 28, intent="near_half")
        assert heldout_intent(object(), sp, "place_block") is None  # plain queries carry no intent
        scorers = {name: train_scorer(st.pairs(task="place_block"), cfg)[0] for name, st in (("intent", si), ("plain", sp))}
        top1 = {name: heldout_intent(sc, sh, "place_block") for name, sc in scorers.items()}

    def intent_pair_accuracy(scorer) -> float:
        """Held-out pairs that differ in the intent and by < 1 value unit otherwise."""
        right = []
        for d in held:
            obs = Observation(frames={}, proprio=None, goal=d.goal, points=d.points, colors=d.colors)
            u, base = aggregate(scorer.score(obs, d.candidates), "mean"), d.values - d.intent
            right += [u[a] > u[b] for a in np.flatnonzero(d.intent) for b in np.flatnonzero(~d.intent)
                      if abs(base[a] - base[b]) < 1.0]
        return float(np.mean(right))

    assert top1["intent"]["queries"] == top1["plain"]["queries"] >= 12
    assert top1["intent"]["first_rate"] == top1["plain"]["first_rate"]
    assert top1["intent"]["top1_rate"] > top1["plain"]["top1_rate"]
    assert intent_pair_accuracy(scorers["intent"]) > intent_pair_accuracy(scorers["plain"]) + 0.05


def test_intent_summary_counts_decisions_where_some_candidate_satisfies_it():
    from robot_rewards.eval.loop import EpisodeResult, EpisodeStats

    results = [EpisodeResult(1, True, 0.01, 2, intent="near_half", intent_chosen=(False, True),
                             intent_any=(True, True)),
               EpisodeResult(2, False, 0.05, 1, intent="near_half", intent_chosen=(False,), intent_any=(False,))]
    s = EpisodeStats.of(results).summary()
    assert (s["intent"], s["intent_decisions"], s["intent_possible"], s["intent_hits"]) == ("near_half", 3, 2, 1)
    assert s["intent_rate"] == 0.5 and s["intent_all_rate"] == pytest.approx(1 / 3)
    assert s["intent_chosen"] == [[False, True], [False]]
    assert "intent" not in EpisodeStats.of([replace(r, intent="") for r in results]).summary()


@pytest.mark.slow
def test_experiment_reports_the_intent_of_each_condition_without_changing_its_episodes(tmp_path):
    from robot_rewards.commands.experiment import experiment
    from robot_rewards.preferences.config import ExperimentConfig

    cfg = ExperimentConfig(tasks=["place_block"], scorer_checkpoint="checkpoints/scorer_place_block.json",
                           heldout_labels=0, curve=[], conditions=["first", "scorer"], episodes=2, workers=1,
                           output_dir=str(tmp_path / "plain"))
    with pytest.raises(UnknownIntentError, match="no intent 'red_end_first'"):
        experiment(replace(cfg, intent="red_end_first"))
    with pytest.raises(ValueError, match="intent_weight"):
        experiment(replace(cfg, intent="near_half", intent_weight=0.0))
    plain = experiment(cfg)["tasks"]["place_block"]["conditions"]
    run = experiment(replace(cfg, intent="near_half", output_dir=str(tmp_path / "intent")))
    conds = run["tasks"]["place_block"]["conditions"]
    assert run["intent"] == "near_half" and run["intent_weight"] == 1.0
    for name in ("first", "scorer"):
        assert "intent" not in plain[name]
        assert conds[name]["seeds"] == plain[name]["seeds"]
        # one step after the what-if rollouts and their restore: the same outcome up to float noise
        # (Bullet's restored block states are not bit-exact, and later steps can amplify it)
        one = [i for i, (a, b) in enumerate(zip(conds[name]["steps"], plain[name]["steps"])) if a == b == 1]
        assert one  # seed 100000 succeeds at the first step in both
        assert [conds[name]["quality"][i] for i in one] == pytest.approx([plain[name]["quality"][i] for i in one],
                                                                        rel=0, abs=1e-6)
        c = conds[name]
        assert c["intent"] == "near_half" and c["intent_decisions"] == sum(c["steps"])
        assert [len(ep) for ep in c["intent_chosen"]] == c["steps"]
        assert all(a or not ch for eps in zip(c["intent_chosen"], c["intent_any"]) for ch, a in zip(*eps))
    table = (tmp_path / "intent" / "table.md").read_text()
    assert "intent 'near_half': the policy alone (a) satisfies it in" in table
    assert "intent satisfied there" in table and "intent satisfied there" not in (tmp_path / "plain" / "table.md").read_text()


def _intent_run(path, seeds, chosen, any_, intent="near_half", curve=()):
    """A run's metrics.json with "first" and "scorer" conditions that recorded `intent`: the
    scorer's choice satisfies it wherever it can, the first sample per `chosen`."""
    import json

    from robot_rewards.eval.loop import EpisodeResult, EpisodeStats

    def summary(picks):
        return EpisodeStats.of(EpisodeResult(s, True, 0.01, len(c), intent=intent, intent_chosen=tuple(c),
                                             intent_any=tuple(a)) for s, c, a in zip(seeds, picks, any_)).summary()

    conds = {"first": summary(chosen), "scorer": summary(any_)}
    path.mkdir(parents=True)
    task = {"policy": "checkpoints/policy_place_block.json", "scorer": {"n_train": 200, "seed": 0},
            "conditions": conds, "curve": list(curve)}
    meta = {"command": "experiment", "n_candidates": 8, "labels": 200, "teacher": "mistake", "intent": intent}
    (path / "metrics.json").write_text(json.dumps({**meta, "tasks": {"place_block": task}}))
    return str(path)


def test_intent_table_and_merging_runs_split_by_seeds(tmp_path):
    from robot_rewards.commands.experiment_report import merge_runs, write_report

    a = _intent_run(tmp_path / "a", [0, 1], [[False, True], [False]], [[True, True], [True]],
                    curve=[{"labels": 50, "accuracy": 0.6, "heldout_intent": {"top1_rate": 0.75}, "intent_rate": 0.5}])
    b = _intent_run(tmp_path / "b", [2], [[True]], [[False]])
    shared, merged = merge_runs([a, b])
    assert shared["intent"] == "near_half"
    first, scorer = merged["place_block"]["conditions"]["first"], merged["place_block"]["conditions"]["scorer"]
    assert first["intent_chosen"] == [[False, True], [False], [True]]
    # seed 2's choice "satisfies" nothing where no candidate does: only decisions where one does count
    assert (first["intent_possible"], first["intent_hits"], first["intent_rate"]) == (3, 1, pytest.approx(1 / 3))
    assert scorer["intent_rate"] == 1.0 and scorer["intent_all_rate"] == 0.75
    write_report("header", merged, tmp_path)
    table = (tmp_path / "table.md").read_text()
    assert "intent 'near_half': the policy alone (a) satisfies it in 33% of the 3 decisions" in table
    assert "100% [44, 100]" in table and "+67" in table  # the scorer's rate, its CI, vs (a) in points
    assert "intent: offline, episodes" in table and "75%, 50%" in table
    with pytest.raises(ValueError, match="differ in intent"):
        merge_runs([a, _intent_run(tmp_path / "c", [3], [[True]], [[True]], intent="far_half")])
