"""Run jobs concurrently along their dependencies, at most ``limit`` at a time.

A role that makes one model call per item (a file, a test module, a fix) need not make
them one after another: an item whose dependencies are done can start at once.
:func:`run_graph` does that, and stays deterministic, which replay and resume need:

* jobs are *launched* in plan order: of the jobs that are ready, the earliest in the plan
  goes first, so the first ``limit`` ready jobs are always the same ones;
* what a job may build on is what it waited for (:attr:`Launch.after`), never what
  happened to finish first;
* a dependency cycle never deadlocks: when nothing runs and nothing is ready, the earliest
  waiting job starts anyway (:attr:`Launch.broken`), waiting only for what is done, and the
  rest follow;
* a failing job cancels nothing: no new job starts, the jobs in flight finish (their work
  is kept), then the first failure in plan order is raised. Cancelling :func:`run_graph`
  itself (Ctrl-C) cancels the jobs in flight.

The caller keys each job's model call by what the job is (its place in the plan), not by
when it ran, so a replayed run gets every answer back whatever the finishing order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, Hashable, Iterable, Mapping, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True)
class Launch(Generic[K]):
    """One job as it started: which job, and what it may build on."""

    key: K
    #: Its place in the plan (0-based).
    index: int
    #: Every job it waited for, directly or through the jobs it waited for, in plan
    #: order: all of them are finished. (Its dependencies, less any a cycle cut.)
    after: tuple[K, ...]
    #: True when a dependency cycle made it start before all its dependencies finished.
    broken: bool = False


async def run_graph(
    keys: Iterable[K],
    needs: Mapping[K, Iterable[K]],
    work: Callable[[Launch[K]], Awaitable[T]],
    *,
    limit: int,
) -> dict[K, T]:
    """Run ``work`` once per key, each after the keys it ``needs`` (unknown keys and a key
    needing itself are ignored), at most ``limit`` at once. Returns the results by key, in
    plan order. See the module docstring for the order, cycles and failures."""
    plan = list(dict.fromkeys(keys))
    if limit < 1:
        raise ValueError("the concurrency limit must be at least 1")
    known = set(plan)
    wanted = {k: [d for d in dict.fromkeys(needs.get(k, ())) if d in known and d != k] for k in plan}
    index = {k: i for i, k in enumerate(plan)}
    results: dict[K, T] = {}
    failures: dict[K, BaseException] = {}
    closure: dict[K, set[K]] = {}
    running: dict[asyncio.Task, K] = {}
    pending = list(plan)

    def launch(key: K, broken: bool) -> None:
        waited = [d for d in wanted[key] if d in results]
        closure[key] = set(waited).union(*(closure[d] for d in waited))
        after = tuple(sorted(closure[key], key=index.__getitem__))
        pending.remove(key)
        running[asyncio.ensure_future(work(Launch(key, index[key], after, broken)))] = key

    try:
        while pending or running:
            if not failures:
                for key in [k for k in pending if all(d in results for d in wanted[k])]:
                    if len(running) >= limit:
                        break
                    launch(key, broken=False)
                if not running and pending:  # a cycle: nothing can start by the rules
                    launch(pending[0], broken=True)
            if not running:
                break
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(finished, key=lambda t: index[running[t]]):
                key = running.pop(task)
                if task.cancelled():
                    failures[key] = asyncio.CancelledError()
                elif task.exception() is not None:
                    failures[key] = task.exception()  # type: ignore[assignment]
                else:
                    results[key] = task.result()
    except BaseException:  # cancelled from outside (Ctrl-C): stop the jobs in flight
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise
    if failures:
        raise failures[min(failures, key=index.__getitem__)]
    return {k: results[k] for k in plan}


async def run_all(keys: Iterable[K], work: Callable[[Launch[K]], Awaitable[T]], *, limit: int) -> dict[K, T]:
    """:func:`run_graph` for jobs that need nothing of each other."""
    return await run_graph(keys, {}, work, limit=limit)
