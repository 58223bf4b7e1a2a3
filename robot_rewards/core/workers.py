"""Episodes on every core: K processes (or Ray actors), each with its own simulator.

An episode command describes its work as a *runner factory* (a picklable callable that builds a
simulator, models and selectors once per process and returns a runner) and a list of *jobs*
(usually one per episode seed). Every job is computed from its own seed only, so the results
are the same for any number of workers and either executor; they come back in job order.

    results = run_jobs(partial(make_runner, cfg), jobs, workers="auto", desc="eval place_block")

A job that raises, or a worker process that dies, does not stop the others: once every job has
been tried, `JobsFailed` names the failed jobs and carries the finished results, so the caller
keeps them (and exits non-zero).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import socket
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Protocol, Sequence

from tqdm import tqdm

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
RAY_HINT = "pip install 'robot_rewards[ray]' (or pip install ray)"
_WARNED: set[int] = set()


class Runner(Protocol):
    """Built once per worker process by a factory; runs one job at a time."""

    def __call__(self, job: Any) -> Any: ...

    def close(self) -> None: ...


RunnerFactory = Callable[[], Runner]


class ExecutorError(RuntimeError):
    """The executor cannot run jobs: Ray missing, or its cluster unreachable."""


class JobsFailed(RuntimeError):
    """Some jobs raised or lost their worker; `results` holds every finished one (None where
    failed) and `failed` maps job index -> one-line reason."""

    def __init__(self, desc: str, jobs: Sequence, results: list, failed: dict[int, str]):
        self.jobs, self.results, self.failed = list(jobs), results, failed
        names = ", ".join(str(_job_name(jobs[i])) for i in sorted(failed)[:20])
        more = f" (+{len(failed) - 20} more)" if len(failed) > 20 else ""
        first = failed[min(failed)]
        super().__init__(f"{desc or 'jobs'}: {len(failed)} of {len(jobs)} failed ({names}{more}); "
                         f"{len(jobs) - len(failed)} finished and kept; first error: {first}")


    def report(self, finished: Callable[[Any], Any] = lambda r: r) -> dict:
        """Plain data for a partial metrics file: every finished result (through `finished`) and
        the failed jobs with their reasons."""
        return {"finished": [finished(r) for r in self.results if r is not None],
                "failed": {_job_name(self.jobs[i]): why for i, why in sorted(self.failed.items())}}


def _job_name(job) -> str:
    """Episode jobs are a seed, or a tuple that starts with one."""
    seed = job[0] if isinstance(job, tuple) and job else job
    return f"seed {seed}" if isinstance(seed, int) else str(job)


def available_cores() -> int:
    """Cores this process may run on (CPU affinity, e.g. a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_workers(workers: Any) -> int:
    """`auto` -> the available cores; a positive integer as given (more than the cores: a
    warning, it only adds overhead). Anything else is a ValueError."""
    if isinstance(workers, str) and workers.strip().lower() == "auto":
        return available_cores()
    try:
        n = int(workers)
        if isinstance(workers, bool) or float(workers) != n:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"workers must be 'auto' or a positive integer, got {workers!r}") from None
    if n < 1:
        raise ValueError(f"workers must be 'auto' or a positive integer, got {n}")
    cores = available_cores()
    if n > cores and n not in _WARNED:  # once per count: commands resolve it for every condition
        _WARNED.add(n)
        log.warning("workers=%d is more than the %d available cores: the extra processes only share them", n, cores)
    return n


def check_executor(executor: str = "local", ray_address: str = "") -> None:
    """Fail before any work: an unknown executor, Ray missing, or its address unreachable."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor '{executor}'; known: {', '.join(EXECUTORS)}")
    if executor == "ray":
        _ray_init(ray_address)


def run_jobs(factory: RunnerFactory, jobs: Sequence, workers: Any = "auto", desc: str = "",
             progress: bool = True, executor: str = "local", ray_address: str = "") -> list:
    """Results of `jobs` in order, from min(workers, len(jobs)) processes, or as many Ray actors
    with executor="ray" (`ray_address`: a cluster's address; empty starts a local one)."""
    n = min(resolve_workers(workers), max(len(jobs), 1))
    with JobPool(factory, n, executor, ray_address) as pool:
        return pool.map(jobs, desc, progress)


class JobPool:
    """Workers that outlive one batch of jobs (each builds its runner once): for callers that
    decide how much more work to ask for from what came back, like label collection."""

    def __init__(self, factory: RunnerFactory, workers: Any = "auto", executor: str = "local",
                 ray_address: str = ""):
        check_executor(executor, ray_address)
        self.factory, self.n = factory, resolve_workers(workers)
        self.executor, self.ray_address = executor, ray_address
        self._runner = self._pool = self._ray = None
        self._actors: list = []

    def __enter__(self) -> JobPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        for a in self._actors:
            try:
                self._ray.kill(a)
            except Exception:
                pass
        self._runner = self._pool = None
        self._actors = []

    def map(self, jobs: Sequence, desc: str = "", progress: bool = True) -> list:
        """Results of `jobs` in order; `JobsFailed` after all were tried if any failed."""
        results: list = [None] * len(jobs)
        failed: dict[int, str] = {}
        bar = tqdm(total=len(jobs), desc=desc, unit="ep", disable=not progress)
        if self.executor == "ray":
            self._map_ray(jobs, results, failed, bar)
        elif self.n <= 1:
            self._map_here(jobs, results, failed, bar)
        else:
            self._map_processes(jobs, results, failed, bar)
        bar.close()
        if failed:
            raise JobsFailed(desc, jobs, results, failed)
        return results

    def _map_here(self, jobs, results, failed, bar) -> None:
        if self._runner is None:
            self._runner = self.factory()
        for i, job in enumerate(jobs):
            ok, value = _call_worker_with(self._runner, job)
            (results if ok else failed)[i] = value
            bar.update()

    def _map_processes(self, jobs, results, failed, bar) -> None:
        if self._pool is None:
            # spawn: a forked PyBullet client or torch thread pool is not safe to use in the child
            self._pool = ProcessPoolExecutor(self.n, mp_context=mp.get_context("spawn"),
                                             initializer=_init_worker, initargs=(self.factory,))
        futures = {self._pool.submit(_call_worker, job): i for i, job in enumerate(jobs)}
        broken = False
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                ok, value = fut.result()
            except BrokenProcessPool:
                ok, value, broken = False, "a worker process died (killed, out of memory or crashed)", True
            except Exception as exc:
                ok, value = False, _one_line(exc)
            (results if ok else failed)[i] = value
            bar.update()
        if broken:  # a broken pool takes no more jobs: the next batch gets fresh workers
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _map_ray(self, jobs, results, failed, bar) -> None:
        self._ray = ray = _ray_init(self.ray_address)
        actor = ray.remote(num_cpus=1)(_RayWorker)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        if self.n > cpus and not self._actors:  # an actor that never gets a CPU would hold its jobs forever
            log.warning("workers=%d but the Ray cluster has %d CPUs: using %d actors", self.n, cpus, cpus)
            self.n = max(1, cpus)
        while len(self._actors) < min(self.n, max(len(jobs), 1)):
            self._actors.append(actor.remote(self.factory))
        pending: dict = {}
        queue = list(enumerate(jobs))
        idle = list(self._actors)
        while queue or pending:
            while queue and idle:
                i, job = queue.pop(0)
                a = idle.pop()
                pending[a.run.remote(job)] = (i, a)
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i, a = pending.pop(ref)
                try:
                    ok, value = ray.get(ref)
                    idle.append(a)
                except Exception as exc:
                    ok, value = False, f"Ray worker lost: {_one_line(exc)}"
                    self._actors.remove(a)
                    self._actors.append(actor.remote(self.factory))
                    idle.append(self._actors[-1])
                (results if ok else failed)[i] = value
                bar.update()


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


# -- local processes ---------------------------------------------------------------------------
_RUNNER: Runner | None = None  # the runner of this worker process


def _init_worker(factory: RunnerFactory) -> None:
    global _RUNNER
    _RUNNER = factory()


def _call_worker(job):
    return _call_worker_with(_RUNNER, job)


def _call_worker_with(runner, job):
    try:
        return True, runner(job)
    except Exception as exc:
        log.debug("job %s failed:\n%s", job, traceback.format_exc())
        return False, _one_line(exc)


# -- Ray -----------------------------------------------------------------------------------------
def _ray_init(address: str):
    try:
        import ray  # optional dependency: only for executor=ray
    except ImportError:
        raise ExecutorError(f"executor=ray needs Ray, which is not installed: {RAY_HINT}") from None
    _check_reachable(address)
    if not ray.is_initialized():
        try:
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        except Exception as exc:
            raise ExecutorError(f"cannot connect to the Ray cluster at '{address or 'local'}': "
                               f"{_one_line(exc)}") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A host:port address must accept a connection (Ray itself retries for minutes)."""
    host_port = address.split("://", 1)[-1]
    if not host_port or host_port == "auto" or ":" not in host_port:
        return  # empty: start a local cluster; auto: Ray finds the running one on this machine
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise ExecutorError(f"cannot reach the Ray cluster at '{address}': {_one_line(exc)} "
                           f"(set ray_address to a running cluster's head, or leave it empty for a local one)") from None


class _RayWorker:
    """One Ray actor: the runner built once, then jobs one at a time (like a worker process)."""

    def __init__(self, factory: RunnerFactory):
        self.runner = factory()

    def run(self, job):
        return _call_worker_with(self.runner, job)
