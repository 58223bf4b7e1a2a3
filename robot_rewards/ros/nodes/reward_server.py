"""`reward_server` node: reward models on the configured device.

Candidates are scored by the `ScoreCandidates` service (robot_rewards_interfaces). Its callback
is a coroutine: it hands the request to the RewardHost (micro-batched on a worker thread) and
awaits the answer, so the node keeps receiving clouds and other requests meanwhile. A malformed
request is answered with an error (`errors[0].model == "request"`), never with an exception.
The goal reward of the latest frame goes out as std_msgs/Float64.
"""

from __future__ import annotations

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Float64, String

from robot_rewards.core.paths import resolve
from robot_rewards.rewards.config import HostConfig
from robot_rewards.rewards.host import RewardHost
from robot_rewards.rewards.registry import build_state_reward
from robot_rewards.ros.config import RewardServerConfig
from robot_rewards.ros.convert_common import MessageConversionError
from robot_rewards.ros.convert_interfaces import score_request_from_msg, score_response_to_msg
from robot_rewards.ros.nodes._common import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, message_types, run
from robot_rewards.ros.params import declare_config
from robot_rewards.ros.payloads import ScoreResponse
from robot_rewards.ros.reward_server_core import RewardServerCore
from robot_rewards_interfaces.srv import ScoreCandidates


def parse_scorers(entries) -> dict[str, str]:
    """{'name': 'checkpoint path'} from 'name=path' strings."""
    scorers = {}
    for entry in entries:
        name, sep, path = str(entry).partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"scorer entry '{entry}' is not name=checkpoint")
        scorers[name.strip()] = str(resolve(path.strip()))
    return scorers


def build_host(cfg: RewardServerConfig):
    """A RewardHost with every configured scorer loaded on cfg.device (None without scorers)."""
    if not cfg.scorers:
        return None

    return RewardHost.from_config(HostConfig(parse_scorers(cfg.scorers), cfg.device, cfg.max_batch, cfg.max_wait_ms))


class RewardServerNode(Node):
    """Thin rclpy shell of RewardServerCore."""

    def __init__(self, **node_kwargs):
        super().__init__("reward_server", **node_kwargs)
        self.cfg = cfg = declare_config(self, RewardServerConfig)
        host = build_host(cfg)
        reward = build_state_reward(cfg.state_reward, cfg.device)
        self.core = RewardServerCore(cfg, host, reward, self.get_logger())
        self.types = message_types()
        self.reward_pub = self.create_publisher(Float64, cfg.goal_reward_topic, RELIABLE_QOS)
        # Its own reentrant group: rclpy holds a callback's group until a coroutine callback returns,
        # so in the node's default (mutually exclusive) group an awaiting request would block the
        # clouds it waits for, the expiry timer and every other request.
        self.create_service(ScoreCandidates, cfg.score_service, self._score, callback_group=ReentrantCallbackGroup())
        self.create_subscription(PointCloud2, cfg.cloud_topic, self._cloud, RELIABLE_QOS)
        self.create_subscription(String, cfg.goal_topic, lambda m: self.core.on_goal(m.data), LATCHED_QOS)
        if reward is not None and cfg.state_reward_input == "image":
            self.create_subscription(Image, cfg.color_topic, self._color, SENSOR_QOS)
        self.create_timer(0.5, self.core.expire)
        models = sorted(host.scorers) if host is not None else []
        if not models:
            self.get_logger().warning("reward_server: no scorers configured (parameter scorers): "
                                      "score requests are answered without scores")
        self.get_logger().info(f"reward_server: scorers {models} on {cfg.device}, served on {cfg.score_service}; "
                               f"goal reward {cfg.state_reward or 'off'}")

    def close(self) -> None:
        if self.core.host is not None:
            self.core.host.close()

    async def _score(self, request, response):
        """ScoreCandidates: validate, then await the reward host's answer (spin goes on meanwhile)."""
        try:
            payload = score_request_from_msg(request)
        except MessageConversionError as exc:
            self.core.report.error("request", f"score request rejected: {exc}")
            request_id = request.request_id if isinstance(request.request_id, str) else ""
            return score_response_to_msg(ScoreResponse(request_id, errors={"request": str(exc)}), self.types,
                                         into=response)
        # Completed from the reward host's worker thread; a done callback makes rclpy wake the
        # executor (Executor.create_task triggers its guard condition), so the answer goes out at once.
        answered = Future(executor=self.executor)
        answered.add_done_callback(lambda _: None)
        self.core.on_request(payload, answered.set_result)
        return score_response_to_msg(await answered, self.types, into=response)

    def _publish_reward(self, value) -> None:
        if value is not None:
            self.reward_pub.publish(Float64(data=float(value)))

    def _cloud(self, msg) -> None:
        self._publish_reward(self.core.on_cloud(msg))

    def _color(self, msg) -> None:
        self._publish_reward(self.core.on_color(msg))


def main(args=None) -> int:
    return run(RewardServerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
