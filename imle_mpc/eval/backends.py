"""Where a sweep's episodes run: in this process, a local process pool, or Ray.

``records(jobs, backend, ...)`` yields each job's record (``imle_mpc.eval.jobs.run_job``)
as it finishes, in any order:

* ``serial``: in this process.
* ``local``: N spawned worker processes on this machine.
* ``ray``: N Ray actors, on a local Ray instance whose session files go to a
  directory you choose (``ray_session``), or on an existing cluster
  (``ray_address``) whose nodes have this package installed.

Each worker keeps the planners it built (``PlannerCache``): building one
(JIT compilation, loading a generator) is the expensive part. Workers split
the CPUs between them (Numba and torch threads). Ray is imported only when
the ``ray`` backend runs; without it the error names ``pip install -e ".[dist]"``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imle_mpc.core.errors import InputError
from imle_mpc.core.validation import require_int_at_least
from imle_mpc.eval.jobs import EpisodeJob, PlannerCache, run_job

BACKENDS = ("serial", "local", "ray")
RecordStream = Generator[dict[str, Any], None, None]
"""Records of finished episodes, in the order they finish."""

RAY_TEMP_DIR_MAX = 40
"""Longest Ray temp dir used as is: Ray puts Unix sockets ~65 characters below it (limit 107)."""

RAY_INSTALL_HINT = 'the Ray backend needs Ray: pip install -e ".[dist]" (or pip install "ray>=2.9")'


@dataclass(frozen=True)
class BackendConfig:
    """Where the episodes run.

    Attributes:
        backend: ``serial``, ``local`` (process pool) or ``ray``.
        workers: worker processes (``local``) or actors (``ray``); None: the CPU
            count (``ray`` with ``ray_address``: the cluster's CPUs).
        ray_address: join this Ray cluster (e.g. ``auto`` or ``ray://host:10001``)
            instead of starting a local instance.
        ray_temp_dir: the local Ray instance's session files; None: ``.ray``
            beside the results file.
    """

    backend: str = "serial"
    workers: int | None = None
    ray_address: str | None = None
    ray_temp_dir: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(
                f"BackendConfig.backend must be one of {BACKENDS}, got {self.backend!r}."
            )
        if self.workers is not None:
            require_int_at_least("BackendConfig", "workers", self.workers, 1)
        if self.backend != "ray" and (self.ray_address or self.ray_temp_dir):
            raise ValueError(
                "BackendConfig.ray_address and ray_temp_dir need backend='ray' (CLI: --ray)."
            )


def _threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _set_threads(threads: int) -> None:
    """Numba and torch threads of a worker, so that N workers share the cores."""
    import numba

    numba.set_num_threads(min(threads, getattr(numba.config, "NUMBA_NUM_THREADS", threads)))
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(threads)


def _serial(jobs: Sequence[EpisodeJob], store_states: bool) -> RecordStream:
    cache = PlannerCache()
    for job in jobs:
        yield run_job(job, cache, store_states)


_WORKER_CACHE: PlannerCache | None = None
"""A pool worker process's planners; set only inside worker processes (``_init_worker``)."""


def _init_worker(threads: int) -> None:
    global _WORKER_CACHE
    _set_threads(threads)
    _WORKER_CACHE = PlannerCache()


def _pool_run(job: EpisodeJob, store_states: bool) -> dict[str, Any]:
    assert _WORKER_CACHE is not None, "_pool_run runs in pool workers only"
    return run_job(job, _WORKER_CACHE, store_states)


def _local(jobs: Sequence[EpisodeJob], workers: int, store_states: bool) -> RecordStream:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    threads = _threads_per_worker(workers)
    with ProcessPoolExecutor(workers, context, _init_worker, (threads,)) as pool:
        futures = [pool.submit(_pool_run, job, store_states) for job in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


class SweepActor:
    """A Ray actor's body: runs jobs with its own ``PlannerCache``."""

    def __init__(self, threads: int, store_states: bool) -> None:
        _set_threads(threads)
        self.cache = PlannerCache()
        self.store_states = store_states

    def run(self, job: EpisodeJob) -> dict[str, Any]:
        return run_job(job, self.cache, self.store_states)


def import_ray() -> Any:
    """``import ray``, or an ``InputError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError(RAY_INSTALL_HINT) from None
    return ray


@contextlib.contextmanager
def short_path(directory: Path) -> Iterator[Path]:
    """``directory``, or a short symlink to it when Ray's socket paths would be too long.

    Ray creates Unix sockets about 65 characters below its temp dir and the
    kernel allows 107; a longer ``directory`` is reached through a symlink in
    the system temp dir (the files stay in ``directory``), removed afterwards.
    """
    if len(str(directory)) <= RAY_TEMP_DIR_MAX:
        yield directory
        return
    holder = Path(tempfile.mkdtemp(prefix="imle-ray-"))
    link = holder / "r"
    if len(str(link)) > RAY_TEMP_DIR_MAX:
        holder.rmdir()
        raise InputError(
            f"the Ray temp dir {directory} is too long for Ray's socket paths, and so is the "
            f"system temp dir; pass --ray-temp-dir with a path of <= {RAY_TEMP_DIR_MAX} "
            "characters."
        )
    link.symlink_to(directory, target_is_directory=True)
    try:
        yield link
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast if a ``host:port`` (or ``ray://host:port``) Ray address does not answer.

    ``ray.init`` retries an unreachable address for many minutes; ``auto`` and
    addresses without a port are left to Ray.
    """
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise InputError(
            f"nothing answers at the Ray address {address!r} ({err}); start the cluster "
            "(ray start --head) or check the address (ray status on the head node)."
        ) from None


@contextlib.contextmanager
def ray_session(backend: BackendConfig, default_dir: Path, workers: int | None) -> Iterator[Any]:
    """Ray, connected: joins ``backend.ray_address``, or starts (and then stops) a local
    instance with ``workers`` CPUs whose files go to ``backend.ray_temp_dir``
    (default ``default_dir``). An already initialised Ray is used as it is."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if backend.ray_address:
        check_reachable(backend.ray_address)
        auth_error = getattr(ray.exceptions, "AuthenticationError", ConnectionError)
        try:
            ray.init(address=backend.ray_address)
        except (ConnectionError, auth_error) as err:
            raise InputError(
                f"could not join the Ray cluster at {backend.ray_address!r} ({err}); check the "
                "address (`ray status` on the head node) and, with token authentication, that "
                "this machine has the cluster's token."
            ) from None
        try:
            yield ray
        finally:
            ray.shutdown()
        return
    temp_dir = Path(backend.ray_temp_dir or default_dir).expanduser().resolve()
    temp_dir.mkdir(parents=True, exist_ok=True)
    with short_path(temp_dir) as ray_dir:
        ray.init(
            num_cpus=workers or os.cpu_count() or 1,
            _temp_dir=str(ray_dir),
            include_dashboard=False,
            object_store_memory=128 * 1024**2,  # records are small
        )
        try:
            yield ray
        finally:
            ray.shutdown()


def _ray(
    jobs: Sequence[EpisodeJob],
    backend: BackendConfig,
    workers: int | None,
    default_dir: Path,
    store_states: bool,
    info: dict[str, Any],
) -> RecordStream:
    """Records from ``workers`` actors (None: one per CPU of the cluster); sets info["workers"]."""
    with ray_session(backend, default_dir, workers) as ray:
        workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        info["workers"] = workers
        env = {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        actor_class = ray.remote(num_cpus=1, runtime_env={"env_vars": env})(SweepActor)
        threads = 1 if backend.ray_address else _threads_per_worker(workers)
        actors = [actor_class.remote(threads, store_states) for _ in range(workers)]
        queue = iter(jobs)
        pending: dict[Any, Any] = {}

        def submit(actor: Any) -> None:
            job = next(queue, None)
            if job is not None:
                pending[actor.run.remote(job)] = actor

        for actor in actors:
            submit(actor)
        try:
            while pending:
                [ref], _ = ray.wait(list(pending), num_returns=1)
                actor = pending.pop(ref)
                submit(actor)  # keep the actor busy while its result is stored
                yield ray.get(ref)
        finally:
            for actor in actors:
                ray.kill(actor)


def records(
    jobs: Sequence[EpisodeJob],
    backend: BackendConfig,
    workers: int | None,
    ray_dir: Path,
    store_states: bool,
    info: dict[str, Any],
) -> RecordStream:
    """The records of ``jobs`` on ``backend`` as they finish; ``info["workers"]`` is set
    to the workers used.

    Args:
        jobs: what to run.
        backend: where.
        workers: worker processes or actors (None with ``ray``: one per cluster CPU).
        ray_dir: the local Ray instance's files unless ``backend.ray_temp_dir`` is set.
        store_states: keep each episode's measured states in its record.
        info: receives ``workers``.
    """
    if backend.backend == "ray":
        yield from _ray(jobs, backend, workers, ray_dir, store_states, info)
        return
    info["workers"] = workers or 1
    if backend.backend == "local":
        yield from _local(jobs, workers or 1, store_states)
    else:
        yield from _serial(jobs, store_states)
