"""Structured config of `robot-rewards view`."""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_rewards.sim.config import SimConfig

_OUT = "outputs/{}/${{now:%Y-%m-%d_%H-%M-%S}}"


@dataclass
class ViewConfig:
    """`robot-rewards view task=place_block episodes=2 [rrd=decisions.rrd] [spawn=true] [figure=true]`.

    Runs the policy + scorer in the simulator and logs every decision to Rerun: the cloud, the
    candidates coloured by score, the chosen one, the rejections with reasons, the camera images.
    """

    task: str = "place_block"
    policy: str = ""  # policy checkpoint ('' = checkpoints/policy_<task>.json)
    scorer: str = ""  # scorer checkpoint ('' = checkpoints/scorer_<task>.json; 'none' = the policy's order)
    episodes: int = 1
    seed: int = 100_000
    n_candidates: int = 8
    rrd: str = ""  # recording file ('' = <output_dir>/decisions.rrd)
    spawn: bool = False  # also open a live Rerun viewer
    figure: bool = True  # also a matplotlib PNG of the first decision (<output_dir>/decision.png)
    device: str = "cpu"
    sim: SimConfig = field(default_factory=SimConfig)
    output_dir: str = _OUT.format("view")
