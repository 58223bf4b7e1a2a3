"""Teleop + labelling console (`robot-rewards console`).

- `config`: `ConsoleConfig`, the command's structured config.
- `ranking_session`: `RankingSession`, the input state machine (keys -> events), no I/O.
- `overlay`: `draw_candidates`, candidates drawn and numbered on the camera image.
- the robot it drives is a `robots.base.Robot` (`sim.robot.SimRobot`, `ros.console_backend.RosRobot`).
- `queries`: `QueryPreparer`, builds each query (observe, sample, score, draw) and prefetches
  the next one in the background while the operator answers.
- `window`: the optional OpenCV window.
- `app`: `Console`, the interactive loop (the command, `commands.console`, picks the robot).

Only `config` is imported here, so `robot-rewards --help` stays fast.
"""

from robot_rewards.console.config import ConsoleConfig

__all__ = ["ConsoleConfig"]
