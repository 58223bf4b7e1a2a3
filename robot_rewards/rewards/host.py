"""RewardHost: loaded reward models served to many threads, with micro-batching.

Models are loaded once (on one device) and only ever run on the host's single worker thread,
so callers need no locking and a model never runs twice at once. Requests that arrive within
`max_wait_ms` of the first waiting one (up to `max_batch`) are scored together with the
model's `score_batch` (one encoder pass over their observations, one head pass over all their
candidates), which is where concurrency pays off. A request that fails (bad input) fails
alone: the rest of its batch is re-scored without it.

The same host serves the in-process pipeline and (later) a ROS 2 node's service callbacks.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from robot_rewards.core.candidates import Candidates
from robot_rewards.core.device import resolve_device
from robot_rewards.core.observation import Observation
from robot_rewards.rewards.base import ActionScorer, ScoreSet, check_candidates, score_batch
from robot_rewards.rewards.config import HostConfig
from robot_rewards.rewards.registry import load_action_scorer

DEFAULT = "default"


class HostClosedError(RuntimeError):
    """A request to a RewardHost that has been closed."""


@dataclass(eq=False)
class _Request:
    model: str
    obs: Observation
    candidates: Candidates
    future: Future
    t0: float = field(default_factory=time.perf_counter)


class RewardHost:
    """Thread-safe, micro-batching server of named `ActionScorer`s (see the module docstring)."""

    def __init__(self, scorers: ActionScorer | Mapping[str, ActionScorer], max_batch: int = 8,
                 max_wait_ms: float = 2.0, max_latency_records: int = 100_000):
        if not isinstance(scorers, Mapping):
            scorers = {DEFAULT: scorers}
        if not scorers:
            raise ValueError("a RewardHost needs at least one scorer")
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_ms >= 0, got {max_batch}, {max_wait_ms}")
        self.scorers = dict(scorers)
        self.default = next(iter(self.scorers))
        self.max_batch, self.max_wait = int(max_batch), float(max_wait_ms) / 1000.0
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._latencies: list[float] = []
        self._batch_sizes: list[int] = []
        self._max_records = max_latency_records
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="reward-host", daemon=True)
        self._worker.start()

    @classmethod
    def from_config(cls, config: HostConfig) -> RewardHost:
        """Load every configured scorer checkpoint once, on `config.device`."""
        if not config.scorers:
            raise ValueError("HostConfig.scorers is empty: name at least one checkpoint")
        device = resolve_device(config.device)
        # any registered family's scorer (preference ensemble, implicit reward, ...), by its format
        scorers = {name: load_action_scorer(path, device=device) for name, path in config.scorers.items()}
        return cls(scorers, config.max_batch, config.max_wait_ms)

    # -- client side ---------------------------------------------------------------------------
    def submit(self, obs: Observation, candidates: Candidates, model: str | None = None) -> Future:
        """Queue a request; the Future resolves to its ScoreSet (or raises the model's error)."""
        name = model or self.default
        if name not in self.scorers:
            raise KeyError(f"unknown reward model '{name}'; served: {sorted(self.scorers)}")
        check_candidates(candidates)  # cheap checks fail on the caller's thread
        fut: Future = Future()
        with self._lock:
            if self._closed:
                raise HostClosedError("the reward host is closed")
            self._queue.put(_Request(name, obs, candidates, fut))
        return fut

    def score(self, obs: Observation, candidates: Candidates, model: str | None = None,
              timeout: float | None = None) -> ScoreSet:
        """Score and wait (blocking); safe to call from many threads at once."""
        return self.submit(obs, candidates, model).result(timeout)

    def latency_stats(self) -> dict:
        """Per-request latency (submit -> result) p50/p95/mean in ms, request count, mean batch size."""
        with self._lock:
            lat = np.array(self._latencies) * 1000.0
            sizes = np.array(self._batch_sizes)
        if lat.size == 0:
            return {"requests": 0, "p50_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan"),
                    "mean_batch": float("nan")}
        return {"requests": int(lat.size), "p50_ms": float(np.percentile(lat, 50)),
                "p95_ms": float(np.percentile(lat, 95)), "mean_ms": float(lat.mean()),
                "mean_batch": float(sizes.mean()) if sizes.size else float("nan")}

    def reset_stats(self) -> None:
        with self._lock:
            self._latencies.clear()
            self._batch_sizes.clear()

    def close(self, timeout: float | None = 10.0) -> None:
        """Finish queued requests, then stop the worker; later requests raise HostClosedError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._worker.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- worker side ---------------------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            deadline = time.perf_counter() + self.max_wait
            while len(batch) < self.max_batch:
                wait = deadline - time.perf_counter()
                try:
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            by_model: dict[str, list[_Request]] = {}
            for r in batch:
                by_model.setdefault(r.model, []).append(r)
            for name, reqs in by_model.items():
                self._serve(self.scorers[name], reqs)

    def _serve(self, scorer: ActionScorer, reqs: list[_Request]) -> None:
        try:
            results = score_batch(scorer, [(r.obs, r.candidates) for r in reqs])
            outcomes = list(zip(reqs, results, [None] * len(reqs)))
        except Exception:  # one bad request must not fail its neighbours: score them one by one
            outcomes = []
            for r in reqs:
                try:
                    outcomes.append((r, score_batch(scorer, [(r.obs, r.candidates)])[0], None))
                except Exception as exc:  # handed to that caller's Future
                    outcomes.append((r, None, exc))
        now = time.perf_counter()
        with self._lock:
            self._batch_sizes.append(len(reqs))
            for r, _, _ in outcomes:
                self._latencies.append(now - r.t0)
            if len(self._latencies) > self._max_records:
                del self._latencies[: len(self._latencies) - self._max_records]
                del self._batch_sizes[: max(0, len(self._batch_sizes) - self._max_records)]
        for r, res, exc in outcomes:
            if exc is not None:
                r.future.set_exception(exc)
            else:
                r.future.set_result(res)
