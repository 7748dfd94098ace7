"""Where tasks run: in process (default), a process pool (spawn context), or Ray.

``run_tasks(fn, tasks, ...)`` yields ``(index, ok, value)`` as tasks finish, in completion order; ``value``
is the result, or the one-line reason when the task itself died (a crashed or killed worker). Each task is a
plain dict and ``fn`` a top-level function, so both pickle by reference.

Process pool: at most ``jobs`` tasks in flight. A worker that dies (out of memory, a segfault) breaks the
whole pool and every task in flight fails alike, so those tasks are rerun on a fresh pool one at a time, which
names the culprit, and the rest go on in parallel.
Ray: a local instance ``ray.init(num_cpus=jobs or 2, include_dashboard=False)`` unless ``address`` names a
cluster; a connection this function opened is closed afterwards (a local instance it started stops).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections import deque
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
              address: str | None = None) -> Iterator[tuple[int, bool, object]]:
    """A generator; closing it early (or an exception in the caller's loop) cancels the work not started."""
    if executor == "local" or not tasks:
        return _local(fn, tasks)
    if executor == "process":
        return _process(fn, tasks, jobs)
    if executor == "ray":
        return _ray(fn, tasks, jobs, address)
    raise ScaleprofError(f"unknown executor {executor!r}")


def _local(fn, tasks):
    for i, t in enumerate(tasks):
        try:
            yield i, True, fn(t)
        except Exception as exc:
            yield i, False, one_line(exc)


DIED = "worker process died (out of memory or a crash)"


def _process(fn, tasks, jobs):
    """At most ``workers`` tasks in flight. A worker that dies breaks the pool and fails every task in
    flight alike: when that was one task, it is the culprit; otherwise those tasks, and only those, are
    rerun one at a time on a fresh pool, which names it, and then the rest go on ``workers`` at a time."""
    ctx = mp.get_context("spawn")
    queue = deque(range(len(tasks)))
    suspects: deque = deque()            # in flight together when a pool broke
    while queue or suspects:
        workers = min(jobs, len(queue) + len(suspects))
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        running: dict = {}               # future -> task index
        try:
            solo = False                 # a suspect is running alone
            while queue or suspects or running:
                if not running:
                    solo = bool(suspects)
                    if solo:
                        i = suspects.popleft()
                        running[pool.submit(fn, tasks[i])] = i
                while not solo and queue and len(running) < workers:
                    i = queue.popleft()
                    running[pool.submit(fn, tasks[i])] = i
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = [f for f in done if _broke(f)]
                if broken:               # every other task in flight dies with the pool: collect them all
                    done = set(done) | wait(running).done
                dead = []
                for f in done:
                    i = running.pop(f)
                    if _broke(f):
                        dead.append(i)
                        continue
                    try:
                        yield i, True, f.result()
                    except Exception as exc:
                        yield i, False, one_line(exc)
                if dead:
                    if len(dead) == 1:           # alone in flight: this task killed the worker
                        yield dead[0], False, DIED
                    else:
                        suspects.extend(sorted(dead))
                    break                        # a broken pool takes no more work: a fresh one
        finally:
            # closed early or failed: never wait for work that has not started, and end the work in flight
            # (a hung forward would otherwise outlive the search, e.g. after --timeout)
            procs = list((getattr(pool, "_processes", None) or {}).values()) if running else []
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                with contextlib.suppress(Exception):
                    proc.terminate()


def _broke(f) -> bool:
    return isinstance(f.exception(), BrokenProcessPool)


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
    refs: dict = {}
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
        for ref in refs:                     # closed early or failed: stop what has not finished
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        if opened:
            ray.shutdown()
