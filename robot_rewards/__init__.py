"""robot_rewards: robot learning with vision-language rewards.

Subpackages follow one dependency direction (never upward)::

    core <- perception, calibration, primitives <- sim, policy, rewards
         <- preferences, selection <- console, ros, cli
"""

__version__ = "0.1.0"
