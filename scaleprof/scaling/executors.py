"""Where tasks run: in process (default), a process pool (spawn context), or Ray.

``run_tasks(fn, tasks, ...)`` yields ``(index, ok, value)`` as tasks finish, in completion order; ``value``
is the result, or the one-line reason when the task itself died (a crashed or killed worker). Each task is a
plain dict and ``fn`` a top-level function, so both pickle by reference.

Process pool: a worker that dies (out of memory, a segfault) breaks the whole pool, and every task in flight
then fails alike, so the survivors are rerun on a fresh pool one at a time, which names the culprit.
Ray: a local instance ``ray.init(num_cpus=jobs or 2, include_dashboard=False)`` unless ``address`` names a
cluster; a connection this function opened is closed afterwards (a local instance it started stops).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..errors import ScaleprofError, one_line

EXECUTORS = ("local", "process", "ray")


def check_executor(executor: str | None, jobs: int) -> str:
    try:
        ok = int(jobs) == jobs and jobs >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ScaleprofError(f"--jobs must be a whole number >= 1, got {jobs!r}")
    if executor is None:
        return "process" if jobs > 1 else "local"
    if executor not in EXECUTORS:
        raise ScaleprofError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    return executor


def worker_threads(jobs: int) -> int:
    """Torch threads per worker so that the workers together use the machine's cores once."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def run_tasks(fn: Callable[[dict], object], tasks: list[dict], *, executor: str = "local", jobs: int = 1,
              address: str | None = None, isolate: bool = False) -> Iterator[tuple[int, bool, object]]:
    """``isolate``: (process pool) one task at a time from the start, e.g. to rerun a dead worker's tasks."""
    if not tasks:
        return iter(())
    if executor == "local":
        return _local(fn, tasks)
    if executor == "process":
        return _process(fn, tasks, jobs, isolate)
    if executor == "ray":
        return _ray(fn, tasks, jobs, address)
    raise ScaleprofError(f"unknown executor {executor!r}")


def _local(fn, tasks):
    for i, t in enumerate(tasks):
        try:
            yield i, True, fn(t)
        except Exception as exc:
            yield i, False, one_line(exc)


def _process(fn, tasks, jobs, isolate=False):
    ctx = mp.get_context("spawn")
    pending = list(range(len(tasks)))
    # isolate: one task at a time (after a broken pool, or when asked), so a death names its task
    while pending:
        workers = 1 if isolate else min(jobs, len(pending))
        broken = False
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            queue = list(pending)
            running: dict = {}
            while queue or running:
                while queue and (not isolate or not running):
                    i = queue.pop(0)
                    running[pool.submit(fn, tasks[i])] = i
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    i = running.pop(f)
                    try:
                        value = f.result()
                    except BrokenProcessPool:
                        broken = True
                        if isolate:       # alone in its pool: this task killed the worker
                            pending.remove(i)
                            yield i, False, "worker process died (out of memory or a crash)"
                        continue
                    except Exception as exc:
                        pending.remove(i)
                        yield i, False, one_line(exc)
                        continue
                    pending.remove(i)
                    yield i, True, value
                if broken:
                    break
        if broken:
            isolate = True


def _ray(fn, tasks, jobs, address):
    try:
        import ray
    except ImportError:
        raise ScaleprofError("--executor ray needs ray: pip install 'scaleprof[ray]'") from None
    opened = False
    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=max(2, jobs), include_dashboard=False, log_to_driver=False)
        except Exception as exc:
            raise ScaleprofError(f"cannot start Ray{' at ' + address if address else ''}: {one_line(exc)}") from exc
        opened = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        refs = {remote.remote(t): i for i, t in enumerate(tasks)}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                i = refs.pop(ref)
                try:
                    yield i, True, ray.get(ref)
                except Exception as exc:
                    cause = getattr(exc, "cause", None)
                    yield i, False, one_line(cause if isinstance(cause, BaseException) else exc)
    finally:
        if opened:
            ray.shutdown()
