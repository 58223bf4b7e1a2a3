"""The headline experiment's report (table.md, conditions.png, learning_curve.png) and
`robot-rewards experiment-merge`: one report from runs split over conditions or seed ranges.

Rope conditions take hours on one core, so the experiment is usually run as several processes
(`conditions=[...]`, `eval_seed=...`); merging joins their per-episode results by seed and
recomputes every interval, and pairs each condition with (a) on the seeds both ran.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from robot_rewards.core.reporting import format_table, mean_ci, wilson_interval, write_metrics
from robot_rewards.eval.loop import intent_summary
from robot_rewards.preferences.config import ExperimentMergeConfig

log = logging.getLogger(__name__)

LABELS = {"first": "(a) one policy sample", "random": "(b) random of N", "scorer": "(c) scorer, mean",
          "scorer_wco": "(d) scorer, WCO", "scorer_uwo": "(d) scorer, UWO",
          "keypoint": "(e) keypoint reward (sim state)",
          "learned_keypoint": "(e) learned keypoint model", "outcome": "(e) outcome model (own transitions)",
          "clip": "(e) CLIP reward of the outcome",
          "oracle": "(f) oracle best-of-N", "implicit": "(g) implicit reward (DPO)"}
# what must agree between runs merged into one table (else their conditions are not comparable)
_SAME_RUN = ("n_candidates", "labels", "teacher")
_SAME_SCORER = ("n_train", "seed", "ensemble_size", "heldout_accuracy")
# conditions whose outcome depends on the trained scorer; a run of only the others (e.g. (a) or
# the oracle) can be merged with runs of any scorer
_SCORER_CONDITIONS = ("scorer", "scorer_wco", "scorer_uwo", "implicit")


def uses_scorer(task_result: dict) -> bool:
    """Whether a run's task result depends on its scorer (a scorer condition or a learning curve)."""
    return bool(task_result.get("curve")) or any(c in task_result.get("conditions", {}) for c in _SCORER_CONDITIONS)


def episode_successes(summary: dict) -> list[bool]:
    """Per-episode success of a condition summary (older summaries only list the failed seeds)."""
    if "success" in summary:
        return [bool(s) for s in summary["success"]]
    failed = set(summary["failed_seeds"])
    return [s not in failed for s in summary["seeds"]]


def _first_tries(summary: dict) -> dict[int, bool]:
    """{seed: succeeded with its first primitive} (needs per-episode steps)."""
    outcomes = zip(summary["seeds"], episode_successes(summary), summary["steps"])
    return {seed: ok and st == 1 for seed, ok, st in outcomes}


def first_try_rate(summary: dict) -> float | None:
    """Fraction of episodes that succeeded with their first primitive (None without per-episode
    steps). Where the step budget lets the policy retry until it succeeds, this is where a better
    first choice shows."""
    if "steps" not in summary or not summary.get("seeds"):
        return None
    return float(np.mean(list(_first_tries(summary).values())))


def paired_vs(base: dict, other: dict) -> dict | None:
    """`other` minus `base` on the seeds both ran: final error (m; negative = closer to the
    goal) with its 95% interval, the fraction of episodes ending closer, success difference."""
    qa, qb = dict(zip(base["seeds"], base["quality"])), dict(zip(other["seeds"], other["quality"]))
    sa = dict(zip(base["seeds"], episode_successes(base)))
    sb = dict(zip(other["seeds"], episode_successes(other)))
    common = sorted(set(qa) & set(qb))
    if not common:
        return None
    d = np.array([qb[s] - qa[s] for s in common])
    m, lo, hi = mean_ci(d)
    out = {"episodes": len(common), "quality_diff": m, "quality_diff_ci95": [lo, hi],
           "closer_fraction": float(np.mean(d < 0)),
           "success_diff": float(np.mean([sb[s] for s in common]) - np.mean([sa[s] for s in common]))}
    if "steps" in base and "steps" in other:
        fa, fb = _first_tries(base), _first_tries(other)
        f, f_lo, f_hi = mean_ci([float(fb[s]) - float(fa[s]) for s in common])
        out.update(first_try_diff=f, first_try_diff_ci95=[f_lo, f_hi])
    return out


def _vs_first(conds: dict, summary: dict) -> dict | None:
    """`paired_vs` against (a), where (a) ran and the summary has per-episode results."""
    return paired_vs(conds["first"], summary) if "first" in conds and "seeds" in summary else None


def _diff_cell(p: dict | None) -> str:
    """A paired final-error difference as a table cell (mm, 95% interval, episodes)."""
    if p is None:
        return "-"
    lo, hi = p["quality_diff_ci95"]
    return f"{1000 * p['quality_diff']:+.1f} [{1000 * lo:+.1f}, {1000 * hi:+.1f}], {p['episodes']} ep"


def _first_try_cell(summary: dict, p: dict | None) -> str:
    """First-try success, and its paired difference to (a) in points with a 95% interval."""
    rate = first_try_rate(summary)
    if rate is None:
        return "-"
    if p is None or "first_try_diff" not in p:
        return f"{100 * rate:.0f}%"
    lo, hi = p["first_try_diff_ci95"]
    return f"{100 * rate:.0f}%, {100 * p['first_try_diff']:+.0f} [{100 * lo:+.0f}, {100 * hi:+.0f}]"


def _calibration_cell(c: dict) -> str:
    """ECE over every held-out candidate pair, its interval, and what a calibrated scorer would measure."""
    lo, hi = c["ece_ci"]
    return (f"ECE over all {c['pairs']} candidate pairs of the held-out decisions {c['ece']:.3f} [{lo:.3f}, {hi:.3f}] "
            f"(a perfectly calibrated scorer would measure {c['ece_floor']:.3f} on them), their accuracy "
            f"{100 * c['accuracy']:.0f}%")


def _pct(rate: float) -> str:
    return "-" if rate is None or not np.isfinite(rate) else f"{100 * rate:.0f}%"


def intent_report(conds: dict, scorer: dict) -> tuple[str, str] | None:
    """(a sentence, a table) of the intent figures of the conditions that recorded one (None:
    none did): per condition, of the decisions where some of the N candidates satisfies the
    intent, how many its choice satisfies (95% interval) and the difference to (a), the policy's
    base rate; over all decisions; task success and its paired difference to (a)."""
    named = {n: r for n, r in conds.items() if r.get("intent")}
    if not named:
        return None
    base = named.get("first")
    rows = []
    for name, r in named.items():
        lo, hi = r["intent_rate_ci95"]
        ci = f" [{100 * lo:.0f}, {100 * hi:.0f}]" if r["intent_possible"] else ""
        vs = ("-" if base is None or name == "first" or not (r["intent_possible"] and base["intent_possible"])
              else f"{100 * (r['intent_rate'] - base['intent_rate']):+.0f}")
        p = _vs_first(conds, r) if name != "first" else None
        rows.append([LABELS[name], f"{r['intent_possible']} of {r['intent_decisions']}",
                     f"{_pct(r['intent_rate'])}{ci}", vs, _pct(r["intent_all_rate"]), _pct(r["success_rate"]),
                     "-" if p is None else f"{100 * p['success_diff']:+.0f}"])
    table = format_table(["condition", "decisions where possible", "intent satisfied there [95% CI]",
                          "vs (a) points", "of all decisions", "success", "success vs (a) points"], rows)
    intent = next(iter(named.values()))["intent"]
    text = f"intent '{intent}'"
    if base is not None:
        text += (f": the policy alone (a) satisfies it in {_pct(base['intent_rate'])} of the "
                 f"{base['intent_possible']} decisions where one of the N candidates does (its base rate)")
    off = scorer.get("heldout_intent")
    if off:
        text += (f"; offline on {off['queries']} such held-out decisions the scorer's top choice satisfies it "
                 f"{_pct(off['top1_rate'])} (first sample {_pct(off['first_rate'])}, random {_pct(off['random_rate'])})")
    return text, table


def write_report(header: str, results: dict, out: Path) -> None:
    """table.md (printed too) and the plots for {task: {"conditions", "scorer", "curve"}}."""
    lines = [header, ""]
    for task, res in results.items():
        conds = res.get("conditions", {})
        rows = []
        for name, r in conds.items():
            lo, hi = r["success_ci95"]
            q_lo, q_hi = r["quality_ci95"]
            p = _vs_first(conds, r) if name != "first" else None
            vs = _diff_cell(p)
            rows.append([LABELS[name], r["episodes"], f"{100 * r['success_rate']:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]",
                         _first_try_cell(r, p),
                         f"{1000 * r['quality_mean']:.1f} [{1000 * q_lo:.1f}, {1000 * q_hi:.1f}]",
                         f"{r['steps_mean']:.2f}", vs,
                         "-" if p is None else f"{100 * p['closer_fraction']:.0f}%", r["stopped"]])
        table = format_table(["condition", "episodes", "success [95% CI]", "1st try, vs (a) points",
                              "quality mm [95% CI]", "steps", "vs (a) mm [95% CI]", "closer than (a)", "stopped"],
                             rows)
        sc = res.get("scorer", {})
        print(f"\n{task}\n{table}")
        acc = (f"scorer held-out accuracy {100 * sc['heldout_accuracy']:.1f}%" if "heldout_accuracy" in sc
               else "scorer held-out accuracy not measured (no held-out labels)")
        if sc.get("heldout_top1"):
            t = sc["heldout_top1"]
            acc += (f"; offline top-1 on {t['queries']} held-out decisions: true value first {t['first_value']:.2f}, "
                    f"random {t['random_value']:.2f}, scorer {t['top1_value']:.2f}, best {t['best_value']:.2f} "
                    f"(best picked {100 * t['top1_is_best']:.0f}%); every candidate pair ordered right "
                    f"{100 * t['pair_accuracy']:.0f}%, {100 * t['clear_pair_accuracy']:.0f}% of the "
                    f"{t['clear_pairs']} whose values differ by > {t['clear_margin']:g}")
        if sc.get("heldout_calibration"):
            acc += f"; {_calibration_cell(sc['heldout_calibration'])}"
        lines += [f"## {task}", "", f"{acc}; scorer {sc.get('checkpoint', '-')}", ""]
        if res.get("implicit"):
            im = res["implicit"]
            line = (f"(g) implicit reward (DPO, {im.get('n_train', '?')} training pairs, {im['train_seconds']:.0f} s): "
                    + (f"held-out accuracy {100 * im['heldout_accuracy']:.1f}%" if im.get("heldout_accuracy") is not None
                       else "no held-out labels"))
            if im.get("heldout_top1"):
                t = im["heldout_top1"]
                line += (f"; offline gain captured {100 * t['gain_captured']:.0f}%, "
                         f"{100 * t['clear_pair_accuracy']:.0f}% of the {t['clear_pairs']} clearly different pairs")
            print(line)
            lines += [line + f"; {im['checkpoint']}", ""]
        lines += ["```", table, "```", ""]
        intent = intent_report(conds, sc)
        if intent is not None:
            print(f"{intent[0]}\n{intent[1]}")
            lines += [f"{intent[0]}.", "", "```", intent[1], "```", ""]
        if res.get("curve"):
            rows = [[c["labels"], f"{100 * c['accuracy']:.1f}%",
                     f"{c['heldout_calibration']['ece']:.3f}" if c.get("heldout_calibration") else "-",
                     f"{100 * c['heldout_top1']['gain_captured']:.0f}%" if c.get("heldout_top1") else "-",
                     f"{100 * c['success_rate']:.0f}%" if "success_rate" in c else "-",
                     _first_try_cell(c, _vs_first(conds, c)) if "seeds" in c else "-",
                     f"{1000 * c['quality_mean']:.1f}" if "quality_mean" in c else "-",
                     _diff_cell(_vs_first(conds, c))]
                    for c in res["curve"]]
            headers = ["labels", "accuracy", "ECE, all pairs", "offline gain captured", "success", "1st try, vs (a) points",
                       "quality mm", "vs (a) mm [95% CI]"]
            if any("heldout_intent" in c or c.get("intent") for c in res["curve"]):
                # where some candidate satisfies the intent: the scorer's offline top-1 on held-out
                # decisions, and its choices in the curve's episodes
                headers.append("intent: offline, episodes")
                for row, c in zip(rows, res["curve"]):
                    off = (c.get("heldout_intent") or {}).get("top1_rate")
                    row.append(f"{_pct(off)}, {_pct(c.get('intent_rate'))}")
            curve = format_table(headers, rows)
            print(curve)
            lines += ["```", curve, "```", ""]
    (out / "table.md").write_text("\n".join(lines))
    plot(results, out)


def plot(results: dict, out: Path) -> None:
    """conditions.png (success and final error per condition, per task) and, with a learning
    curve, learning_curve.png."""
    matplotlib.use("Agg")

    tasks = [t for t in results if results[t].get("conditions")]
    if not tasks:
        return
    fig, axes = plt.subplots(2, len(tasks), figsize=(5.5 * len(tasks), 7), squeeze=False)
    for j, task in enumerate(tasks):
        conds = results[task]["conditions"]
        names = list(conds)
        x = np.arange(len(names))
        sr = np.array([conds[n]["success_rate"] for n in names]) * 100
        ci = np.array([conds[n]["success_ci95"] for n in names]).T * 100
        axes[0, j].bar(x, sr, yerr=_err_bars(sr, ci), capsize=3, color="tab:blue", label="success")
        ft = [first_try_rate(conds[n]) for n in names]
        if all(f is not None for f in ft):
            axes[0, j].plot(x, [100 * f for f in ft], "D", color="black", mfc="white", label="on the first try")
            # above the 100% line: a legend inside the bars hides whichever bar it lands on
            axes[0, j].set_ylim(0, 122)
            axes[0, j].set_yticks(range(0, 101, 20))
            axes[0, j].legend(fontsize=8, loc="upper center", ncol=2)
        axes[0, j].set_title(f"{task}: success (%)")
        q = np.array([conds[n]["quality_mean"] for n in names]) * 1000
        qci = np.array([conds[n]["quality_ci95"] for n in names]).T * 1000
        axes[1, j].bar(x, q, yerr=_err_bars(q, qci), capsize=3, color="tab:orange")
        axes[1, j].set_title(f"{task}: final error (mm, lower is better)")
        for ax in axes[:, j]:
            ax.set_xticks(x, [f"{n}\n({conds[n]['episodes']} ep)" for n in names], rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(out / "conditions.png", dpi=110)
    plt.close(fig)
    curves = {t: results[t]["curve"] for t in results if results[t].get("curve")}
    if curves:
        fig, ax = plt.subplots(1, 3, figsize=(14, 3.8))
        for k, (task, rows) in enumerate(curves.items()):
            colour = f"C{k}"
            n = [r["labels"] for r in rows]
            ax[0].plot(n, [100 * r["accuracy"] for r in rows], "o-", color=colour, label=task)
            ep = [r for r in rows if "success_rate" in r]
            if ep:
                sr = np.array([100 * r["success_rate"] for r in ep])
                ci = np.array([r["success_ci95"] for r in ep]).T * 100
                ax[1].errorbar([r["labels"] for r in ep], sr, yerr=_err_bars(sr, ci), fmt="o-",
                               capsize=3, color=colour, label=f"{task}, (c) best-of-N")
                ft = [first_try_rate(r) for r in ep]
                if all(f is not None for f in ft):  # where retries hide a better first choice
                    ax[1].plot([r["labels"] for r in ep], [100 * f for f in ft], "s:", color=colour, mfc="none",
                               label=f"{task}, (c) first try")
                q = np.array([1000 * r["quality_mean"] for r in ep])
                qci = np.array([r["quality_ci95"] for r in ep]).T * 1000
                ax[2].errorbar([r["labels"] for r in ep], q, yerr=_err_bars(q, qci), fmt="o-",
                               capsize=3, color=colour, label=f"{task}, (c) best-of-N")
                first = results[task].get("conditions", {}).get("first")
                if first:  # the policy alone, for reference
                    ax[1].axhline(100 * first["success_rate"], ls="--", color=colour, label=f"{task}, (a) one sample")
                    first_try = first_try_rate(first)
                    if first_try is not None:
                        ax[1].axhline(100 * first_try, ls=":", color=colour, label=f"{task}, (a) first try")
                    ax[2].axhline(1000 * first["quality_mean"], ls="--", color=colour, label=f"{task}, (a) one sample")
        ax[0].axhline(50, ls=":", color="grey", label="chance")
        ax[0].set(xlabel="labels", ylabel="held-out pair accuracy (%)", ylim=(40, 100))
        ax[1].set(xlabel="labels", ylabel="success (%): final, and on the first try")
        ax[2].set(xlabel="labels", ylabel="final error (mm, lower is better)")
        sizes = sorted({r["labels"] for rows in curves.values() for r in rows})
        for a in ax:
            a.set_xscale("log")
            a.set_xticks(sizes, [str(n) for n in sizes])
            a.minorticks_off()
            if a.lines:  # no success curve when the curve was accuracy only
                a.legend(fontsize=8)
            a.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "learning_curve.png", dpi=110)
        plt.close(fig)


# -- merging runs --------------------------------------------------------------------------

def load_run(path: str | Path) -> dict:
    """An experiment run's metrics: <dir>/metrics.json, or a stopped run's partial_<task>/ files."""
    d = Path(path)
    if (d / "metrics.json").is_file():
        return json.loads((d / "metrics.json").read_text())
    partial = sorted(d.glob("partial_*/metrics.json"))
    if not partial:
        raise FileNotFoundError(f"{d}: no metrics.json nor partial_<task>/metrics.json (not an experiment run?)")
    return {"command": "experiment", "partial": True,
            "tasks": {p.parent.name[len("partial_"):]: json.loads(p.read_text()) for p in partial}}


def merge_conditions(name: str, parts: list[tuple[str, dict]]) -> dict:
    """One condition's summary from several runs' summaries [(run, summary)], joined by seed.

    A seed run twice must have the same outcome (the runs are deterministic); otherwise the
    runs differ in something that matters and the merge is refused."""
    by_seed: dict[int, tuple] = {}
    intents: dict[int, tuple] = {}  # seed -> (per-decision chosen, any) where the run recorded an intent
    names = {s.get("intent", "") for _, s in parts}
    if len(names) > 1:
        raise ValueError(f"condition '{name}': the runs recorded different intents {sorted(names)}")
    steps_known, steps_weighted, n_total = True, 0.0, 0
    counts = {"stopped": 0, "rejected_candidates": 0, "not_executed": 0}
    for run, s in parts:
        succ = episode_successes(s)
        steps = s.get("steps", [None] * len(s["seeds"]))
        new = 0
        flags = zip(s.get("intent_chosen", [None] * len(s["seeds"])), s.get("intent_any", [None] * len(s["seeds"])))
        for seed, q, ok, st, flag in zip(s["seeds"], s["quality"], succ, steps, flags):
            if seed in by_seed:
                prev_run, pq, pok, _ = by_seed[seed]
                if not (np.isclose(pq, q, rtol=0, atol=1e-9) and pok == ok):
                    raise ValueError(f"condition '{name}': seed {seed} ended differently in {prev_run} "
                                     f"({1000 * pq:.2f} mm, success {pok}) and {run} ({1000 * q:.2f} mm, "
                                     f"success {ok}); were they run with the same policy, scorer and sim?")
                continue
            by_seed[seed] = (run, q, ok, st)
            if flag[0] is not None:
                intents[seed] = flag
            new += 1
        if new and new != len(s["seeds"]):
            raise ValueError(f"condition '{name}': {run} overlaps another run on only some of its seeds")
        if new:  # counters and step means of runs that were entirely repeats count once
            n_total += new
            steps_weighted += new * s["steps_mean"]
            steps_known &= "steps" in s
            for k in counts:
                counts[k] += int(s.get(k, 0))
    seeds = sorted(by_seed)
    quality = [by_seed[s][1] for s in seeds]
    success = [by_seed[s][2] for s in seeds]
    lo, hi = wilson_interval(int(np.sum(success)), len(success))
    q, q_lo, q_hi = mean_ci(quality)
    out = {"episodes": len(seeds), "success_rate": float(np.mean(success)), "success_ci95": [lo, hi],
           "quality_mean": q, "quality_ci95": [q_lo, q_hi], "steps_mean": steps_weighted / n_total, **counts,
           "failed_seeds": [s for s, ok in zip(seeds, success) if not ok], "seeds": seeds, "quality": quality,
           "success": success, "runs": sorted({by_seed[s][0] for s in seeds})}
    if steps_known:
        out["steps"] = [by_seed[s][3] for s in seeds]
    if names != {""} and len(intents) == len(seeds):
        out.update(intent_summary(names.pop(), [intents[s][0] for s in seeds], [intents[s][1] for s in seeds]))
    return out


def merge_runs(paths: list[str]) -> tuple[dict, dict]:
    """(settings shared by the runs, {task: merged results}) from experiment run folders."""
    if not paths:
        raise ValueError("runs=[...] is empty: name the experiment output folders to merge")
    runs = [(str(p), load_run(p)) for p in paths]
    scored = [r for _, r in runs if any(uses_scorer(t) for t in r["tasks"].values())]
    shared: dict = {}
    for key in _SAME_RUN:
        # n_candidates must always agree; labels and teacher only between runs that use a scorer
        among = [r for _, r in runs] if key == "n_candidates" else scored
        values = {r.get(key) for r in among if r.get(key) is not None}
        if len(values) > 1:
            raise ValueError(f"the runs differ in {key}: {sorted(map(str, values))}; their conditions are not comparable")
        shared[key] = values.pop() if values else None
    intents = {r.get("intent", "") for r in scored}  # a teacher's intent (absent: none), like the teacher
    if len(intents) > 1:
        raise ValueError(f"the runs differ in intent: {sorted(intents)}; their scorers learned different preferences")
    if intents - {""}:
        shared["intent"] = intents.pop()
    merged: dict = {}
    for task in dict.fromkeys(t for _, r in runs for t in r["tasks"]):
        parts = [(p, r["tasks"][task]) for p, r in runs if task in r["tasks"]]
        policies = {res.get("policy") for _, res in parts}
        if len(policies) > 1:
            raise ValueError(f"{task}: the runs used different policies {sorted(map(str, policies))}")
        scored_parts = [res for _, res in parts if uses_scorer(res)]
        for key in _SAME_SCORER:
            values = {res.get("scorer", {}).get(key) for res in scored_parts if key in res.get("scorer", {})}
            if len(values) > 1:
                raise ValueError(f"{task}: the runs trained different scorers ({key}: {sorted(values)})")
        conditions: dict = {}
        names = set(c for _, res in parts for c in res.get("conditions", {}))
        for name in sorted(names, key=list(LABELS).index):  # table order (a)..(f), whatever the run order
            conditions[name] = merge_conditions(
                name, [(p, res["conditions"][name]) for p, res in parts if name in res.get("conditions", {})])
        curve: dict[int, dict] = {}
        for p, res in parts:
            for row in res.get("curve", []):
                prev = curve.setdefault(row["labels"], row)
                if not np.isclose(prev["accuracy"], row["accuracy"]):
                    raise ValueError(f"{task}: learning-curve point {row['labels']} labels differs between runs "
                                     f"({prev['accuracy']:.3f} vs {row['accuracy']:.3f} in {p})")
        scorer = next((res["scorer"] for res in scored_parts if res.get("scorer")), {})
        paired = {n: paired_vs(conditions["first"], c) for n, c in conditions.items()
                  if "first" in conditions and n != "first"}
        merged[task] = {"policy": policies.pop(), "scorer": scorer, "conditions": conditions,
                        "curve": [curve[k] for k in sorted(curve)], "paired_vs_first": paired}
    return shared, merged


def experiment_merge(cfg: ExperimentMergeConfig) -> dict:
    """`robot-rewards experiment-merge runs=[DIR, ...]`: one table, metrics.json and plots."""
    shared, results = merge_runs(list(cfg.runs))
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    intent = f" with the intent '{shared['intent']}'" if shared.get("intent") else ""
    header = (f"N = {shared['n_candidates']} candidates per decision; scorer trained on <= {shared['labels']} labels "
              f"from the '{shared['teacher']}' teacher{intent}; merged from {len(cfg.runs)} runs: "
              f"{', '.join(map(str, cfg.runs))}.")
    write_report(header, results, out)
    metrics = {"command": "experiment-merge", "runs": [str(r) for r in cfg.runs], **shared, "tasks": results}
    print(f"\ntable: {out / 'table.md'}\nmetrics: {write_metrics(out, metrics)}")
    return metrics


def _err_bars(value: np.ndarray, ci: np.ndarray) -> np.ndarray:
    """(2, n) distances from each value down and up to its CI; a Wilson bound at 100% can land a
    rounding error below the rate (0.9999999999999999), which matplotlib refuses as negative."""
    return np.clip(np.stack([value - ci[0], ci[1] - value]), 0.0, None)
