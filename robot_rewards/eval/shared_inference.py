"""One inference server for many simulator workers on Ray (`executor=ray shared_inference=true`).

Simulators are CPU work; the policy and the scorer are network work that a GPU does best in
batches. With shared inference, one Ray actor per experiment task holds the policy and the
scorer (on its GPU if Ray gives it one), and every simulator worker sends it its requests: a
cluster of CPU simulators feeds one GPU. Scorer requests from concurrent workers are
micro-batched by a `RewardHost` inside the actor (one encoder pass over their observations);
policy requests run one at a time (each is already one batch of N candidates).

The workers see the same `policy.sample(...)` and `scorer.score(...)` as in-process models
(`RemotePolicy`, `RemoteScorer`), so the episode code does not change.
"""

from __future__ import annotations

import threading

import torch

from robot_rewards.core.device import resolve_device
from robot_rewards.rewards.host import RewardHost


class InferenceServer:
    """The actor's body: the models on one device, a lock around the policy, a host for the scorer."""

    def __init__(self, policy, scorer=None, max_batch: int = 8, max_wait_ms: float = 2.0, torch_threads: int = 1):
        torch.set_num_threads(max(1, int(torch_threads)))
        device = torch.device(resolve_device("auto"))  # the actor's GPU when the cluster gave it one
        self.device = str(device)
        self.policy = policy.to(device).eval()
        self.host = RewardHost(scorer.to(device).eval(), max_batch, max_wait_ms) if scorer is not None else None
        self._policy_lock = threading.Lock()

    def sample(self, obs, n: int, seed: int, steps: int | None = None):
        with self._policy_lock:
            return self.policy.sample(obs, n, seed=seed, steps=steps)

    def score(self, obs, candidates):
        if self.host is None:
            raise ValueError("this inference server has no scorer")
        return self.host.score(obs, candidates)

    def stats(self) -> dict:
        return {"device": self.device, **(self.host.latency_stats() if self.host is not None else {})}


class RemotePolicy:
    """`policy.sample` answered by an `InferenceServer` actor (picklable: it travels to workers)."""

    def __init__(self, handle, primitive: str):
        self.handle, self.primitive = handle, primitive

    def sample(self, obs, n: int, seed: int = 0, steps: int | None = None):
        import ray  # only ever built by start_server, under executor=ray

        return ray.get(self.handle.sample.remote(obs, n, seed, steps))


class RemoteScorer:
    """`scorer.score` answered by an `InferenceServer` actor."""

    def __init__(self, handle):
        self.handle = handle

    def score(self, obs, candidates):
        import ray

        return ray.get(self.handle.score.remote(obs, candidates))


def start_server(policy, scorer=None, torch_threads: int = 1) -> tuple[RemotePolicy, RemoteScorer | None, object]:
    """Start an `InferenceServer` actor (one GPU if the cluster has one) on the connected Ray
    cluster; returns the proxies the workers use and the actor handle (kill it when done)."""
    import ray

    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    # no CPU reserved: the simulator actors take every CPU slot, and a server waiting for one
    # would stall them all; on a CPU-only cluster it shares their cores
    actor = ray.remote(InferenceServer).options(num_cpus=0, num_gpus=gpus, max_concurrency=64)
    handle = actor.remote(policy, scorer, torch_threads=torch_threads)
    return RemotePolicy(handle, policy.primitive), (RemoteScorer(handle) if scorer is not None else None), handle


def stop_server(handle) -> None:
    """End an actor made by `start_server`."""
    import ray

    ray.kill(handle)
