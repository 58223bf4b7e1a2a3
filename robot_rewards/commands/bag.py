"""`robot-rewards bag export` and `robot-rewards bag replay`: rosbag2 without ROS (rosbags)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from robot_rewards.core.device import resolve_device
from robot_rewards.core.paths import resolve
from robot_rewards.core.reporting import format_table, write_metrics
from robot_rewards.rewards.registry import build_state_reward, load_action_scorer
from robot_rewards.ros import config as cfg_topics
from robot_rewards.ros.bag_config import BagExportConfig, BagReplayConfig
from robot_rewards.ros.bag_export import episode_from_file, export_episode, record_episode
from robot_rewards.ros.bag_io import bag_topics
from robot_rewards.ros.bag_replay import check_replay_topics, plot_rewards, replay, reward_summary, write_csv
from robot_rewards.viz.rerun_log import LIVE, check_target, open_decision_log


def bag_export(cfg: BagExportConfig) -> dict:
    """Write one sim episode (from an episode file, or recorded now) as a rosbag2."""
    if cfg.frame_period <= 0:
        raise ValueError(f"frame_period must be positive, got {cfg.frame_period}")
    if cfg.episodes:
        episode = episode_from_file(str(resolve(cfg.episodes)), cfg.episode, cfg.camera, cfg.frame_period)
        source = f"{cfg.episodes} episode {cfg.episode}"
    else:
        episode = record_episode(cfg)
        source = f"expert on {cfg.task}, seed {cfg.seed}"
    out = Path(cfg.out) if cfg.out else Path(cfg.output_dir) / "episode_bag"
    counts = export_episode(episode, out, cfg)
    sets = counts.get(cfg_topics.CANDIDATES_TOPIC, 0)
    print(f"\nbag {out} ({cfg.storage}) from {source}: '{episode.goal}', {len(episode.times)} frames, "
          f"{len(episode.actions)} steps, {sets} candidate sets"
          + ("" if sets else " (no policy_checkpoint: `bag replay` scorers have nothing to score)"))
    print(format_table(["topic", "messages"], sorted(counts.items())))
    metrics = {"command": "bag-export", "config": asdict(cfg), "bag": str(out), "source": source,
               "goal": episode.goal, "frames": len(episode.times), "steps": len(episode.actions), "topics": counts}
    write_metrics(cfg.output_dir, metrics)
    return metrics


def bag_replay(cfg: BagReplayConfig) -> dict:
    """Perception + reward models over a bag: rewards.csv (+ decisions.csv), rewards.png, metrics.json."""

    bag = resolve(cfg.bag)
    if not bag.exists():
        raise FileNotFoundError(f"bag not found: {cfg.bag}")
    check_replay_topics(cfg, bag_topics(bag))  # before loading any model: a wrong bag fails fast
    check_target(cfg.rerun)
    state_rewards = {name: build_state_reward(spec, cfg.device) for name, spec in cfg.state_rewards.items()}
    scorers = {}
    if cfg.scorers:  # any registered family's scorer checkpoint, by its format
        scorers = {name: load_action_scorer(resolve(path), device=resolve_device(cfg.device))
                   for name, path in cfg.scorers.items()}
    if not state_rewards and not scorers:
        print("bag replay: no reward models configured (state_rewards=..., scorers=...): "
              "only perception statistics" + (" and the Rerun recording" if cfg.rerun else "") + " are written")
    rec = open_decision_log(cfg.rerun)
    try:
        result = replay(cfg.__class__(**{**asdict(cfg), "bag": str(bag)}), state_rewards, scorers, rec)
    finally:
        if rec is not None:
            rec.close()
    out = Path(cfg.output_dir)
    columns = ["frame", "stamp_ns", "time_s", "n_points", "padded", *result.reward_columns]
    files = {"rewards_csv": str(write_csv(out / "rewards.csv", result.rows, columns))}
    if result.decisions:
        files["decisions_csv"] = str(write_csv(out / "decisions.csv", result.decisions, list(result.decisions[0])))
    if cfg.plot and result.rows:
        files["plot"] = str(plot_rewards(out / "rewards.png", result))
    summary = reward_summary(result)
    print(f"\nreplayed {bag}: {len(result.rows)} frames perceived, goal '{result.goal}'")
    if summary:
        print(format_table(["reward", "frames", "min", "mean", "max", "last"],
                           [(k, v["frames"], v.get("min"), v.get("mean"), v.get("max"), v.get("last"))
                            for k, v in summary.items()]))
    if result.dropped:
        print(format_table(["dropped / failed", "count"], sorted(result.dropped.items())))
    if rec is not None:
        files["rerun"] = cfg.rerun
        print(f"{rec.decisions} candidate sets logged to Rerun: {cfg.rerun}"
              + ("" if cfg.rerun == LIVE else f" (open it with `rerun {cfg.rerun}`)"))
    warnings = []
    if not result.rows:
        warnings.append("no frame was perceived: every frame was dropped (see 'dropped') or none was complete")
        print(f"bag replay: {warnings[-1]}")
    if scorers and not result.messages.get(cfg.candidates_topic):
        warnings.append(f"scorers {sorted(scorers)} scored nothing: the bag has no candidate sets on "
                        f"{cfg.candidates_topic} (record one from a live graph, where the policy node publishes them, "
                        f"or export with a policy_checkpoint)")
        print(f"bag replay: {warnings[-1]}")
    metrics = {"command": "bag-replay", "config": asdict(cfg), "bag": str(bag), "goal": result.goal,
               "frames": len(result.rows), "rewards": summary, "decisions": len(result.decisions),
               "rerun_decisions": None if rec is None else rec.decisions,
               "dropped": result.dropped, "messages": dict(result.messages), "files": files,
               "warnings": warnings}
    write_metrics(out, metrics)
    return metrics
