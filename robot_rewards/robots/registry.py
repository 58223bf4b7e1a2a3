"""The known arms by name (`sim.arm=<name>`, the ROS nodes' `arm` parameter).

To add an arm: write its `ArmDescription` in a module of its own and list it in `ARMS`
(docs/adding-an-arm.md).
"""

from __future__ import annotations

from robot_rewards.robots.description import ArmDescription
from robot_rewards.robots.panda import PANDA  # the shipped default arm
from robot_rewards.robots.xarm6 import XARM6

ARMS: dict[str, ArmDescription] = {arm.name: arm for arm in (PANDA, XARM6)}
DEFAULT_ARM = PANDA.name


class UnknownArmError(ValueError):
    """An arm name that is not in ARMS."""


def get_arm(name: str) -> ArmDescription:
    """The description of the arm called `name`; UnknownArmError (one line, the known names) if none."""
    try:
        return ARMS[name]
    except KeyError:
        raise UnknownArmError(f"unknown arm '{name}'; known: {', '.join(sorted(ARMS))}") from None
