"""Workers on this machine: one process per attempt, forked from a clean fork server.

Each attempt gets its own process, so a task's crash (or a ``kill -9``) takes only that
task with it, and the driver sees it as the process ending without an outcome. The fork
server (``multiprocessing``'s, started once, with the runner already imported) makes a
worker in milliseconds; where there is none (not Linux/macOS) workers are spawned.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from typing import Any

from mgpt.agents.runner.worker import AttemptSpec, local_main


@dataclass
class Finished:
    """An attempt that ended: its outcome, or ``None`` and why when its worker died."""

    spec: AttemptSpec
    outcome: dict[str, Any] | None
    why: str = ""


@dataclass
class _Running:
    spec: AttemptSpec
    process: Any
    conn: Any


class LocalBackend:
    """Processes on this machine, ``slots`` at a time; they share the driver's disk."""

    shares_disk = True
    host = "127.0.0.1"

    def __init__(self, slots: int, preload: list[str] | None = None):
        if slots < 1:
            raise ValueError("workers must be at least 1")
        self.slots = slots
        methods = multiprocessing.get_all_start_methods()
        self._ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            self._ctx.set_forkserver_preload(["mgpt.agents.runner.worker", *(preload or [])])
        self._running: list[_Running] = []
        self._exiting: list[Any] = []

    def describe(self) -> str:
        return f"{self.slots} local process(es)"

    def start(self, spec: AttemptSpec) -> str:
        """Start the attempt; returns the worker's name (``pid N``)."""
        spec = replace(spec, env=dict(os.environ), cwd=os.getcwd())
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=local_main, args=(spec, child), name=f"mgpt-task-{spec.task.id}")
        process.start()
        child.close()
        self._running.append(_Running(spec, process, parent))
        return f"pid {process.pid}"

    def wait(self, timeout: float) -> list[Finished]:
        """The attempts that ended within ``timeout`` seconds (maybe none)."""
        if not self._running:
            return []
        ready = set(wait([r.conn for r in self._running] + [r.process.sentinel for r in self._running], timeout))
        finished = []
        for run in list(self._running):
            if run.conn not in ready and run.process.sentinel not in ready:
                continue
            outcome = None
            try:
                if run.conn.poll():
                    outcome = run.conn.recv()
            except (EOFError, OSError):
                outcome = None
            if outcome is None and run.process.is_alive():
                continue  # the pipe spoke first; the exit follows
            if outcome is None:
                run.process.join(timeout=5)
            run.conn.close()
            self._running.remove(run)
            self._exiting.append(run.process)  # reaped later: its slot is free now
            why = "" if outcome is not None else f"worker pid {run.process.pid} died (exit code {run.process.exitcode})"
            finished.append(Finished(run.spec, outcome, why))
        self._exiting = [p for p in self._exiting if p.is_alive()]  # is_alive() reaps the ones that exited
        return finished

    def close(self) -> None:
        """Stop every worker still running (an interrupted batch)."""
        for run in self._running:
            if run.process.is_alive():
                run.process.kill()
            run.process.join(timeout=5)
            run.conn.close()
        self._running.clear()
        for process in self._exiting:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
        self._exiting.clear()
