"""`console` node: the teleop/labelling console on the live graph.

Subscribes to the policy's candidate sets, hands each to the chooser (the console UI, named
by the `chooser` parameter as module:factory; by default the policy's own choice) and
publishes the chosen primitive for the executor.
"""

from __future__ import annotations

from rclpy.node import Node
from std_msgs.msg import String

from robot_rewards.ros.config import ConsoleNodeConfig
from robot_rewards.ros.console_core import ConsoleCore
from robot_rewards.ros.nodes._common import RELIABLE_QOS, run
from robot_rewards.ros.params import declare_config
from robot_rewards.ros.plugins import PluginError, build


def build_chooser(spec: str, node=None):
    """The chooser callable made by the factory `spec` ('' = the policy's choice)."""
    if not spec:
        return None
    chooser = build(spec, node=node)
    if not callable(chooser):
        raise PluginError(f"'{spec}' built a {type(chooser).__name__}, which is not callable")
    return chooser


class ConsoleNode(Node):
    """Thin rclpy shell of ConsoleCore."""

    def __init__(self, chooser=None, **node_kwargs):
        super().__init__("console", **node_kwargs)
        self.cfg = cfg = declare_config(self, ConsoleNodeConfig)
        self.core = ConsoleCore(chooser or build_chooser(cfg.chooser, self), self.get_logger())
        self.pub = self.create_publisher(String, cfg.chosen_topic, RELIABLE_QOS)
        self.create_subscription(String, cfg.candidates_topic, self._candidates, RELIABLE_QOS)

    def _candidates(self, msg) -> None:
        chosen = self.core.on_candidates(msg.data)
        if chosen is not None:
            self.pub.publish(String(data=chosen))


def main(args=None) -> int:
    return run(ConsoleNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
