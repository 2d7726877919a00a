"""Workers on a Ray cluster (``--ray auto`` or ``--ray HOST:PORT``; ``pip install 'mgpt[cluster]'``).

Ray places each attempt on a node with a free CPU; this module is the only one that imports
``ray``. Ray's own retries are off: the driver retries a task whose worker or node died,
itself, so that the retry continues the task's journal and the budget's holds of the dead
attempt are settled first (:mod:`.hub`). Workers reach the driver's hub over TCP at the
driver's node address, so the driver runs on a cluster node (the head, or via ``ray job
submit``); a Ray Client address (``ray://``) is refused.
"""

from __future__ import annotations

import os
from typing import Any

from mgpt.agents.runner.local import Finished
from mgpt.agents.runner.tasks import BatchError
from mgpt.agents.runner.worker import AttemptSpec, run_attempt

INSTALL = "pip install 'mgpt[cluster]'"


def ray_attempt(spec: AttemptSpec) -> dict[str, Any]:
    """The remote function: one attempt, on whichever node Ray chose."""
    import ray

    node = ray.get_runtime_context().get_node_id()[:8]
    return run_attempt(spec, worker=f"node {node} pid {os.getpid()}")


class RayBackend:
    """A Ray cluster; ``slots`` attempts at once (default: the cluster's CPUs)."""

    shares_disk = False

    def __init__(self, address: str, slots: int | None = None):
        try:
            import ray
        except ImportError:
            raise BatchError(f"--ray needs Ray, which is not installed: {INSTALL}") from None
        if address.startswith("ray://"):
            raise BatchError("a Ray Client address (ray://) is not supported: run the batch on a node of the "
                             "cluster (the head, or with `ray job submit`) and pass --ray auto")
        self._ray = ray
        self._owned = not ray.is_initialized()
        if self._owned:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise BatchError(f"no Ray cluster at {address!r} ({' '.join(str(exc).split())[:200]}); start one "
                                 "with `ray start --head`, or pass --ray HOST:PORT") from None
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if slots is None and cpus < 1:
            raise BatchError(f"the Ray cluster at {address!r} has no CPUs to run tasks on")
        self.slots = slots or cpus
        self.host = ray.util.get_node_ip_address()
        # A task asks for one CPU; asked for more tasks at once than the cluster has CPUs,
        # each asks for its share, so that many run (runs mostly wait on the model).
        share = 1.0 if not cpus or self.slots <= cpus else round(cpus / self.slots, 3)
        self._remote = ray.remote(num_cpus=share, max_retries=0)(ray_attempt)
        self._running: dict[Any, AttemptSpec] = {}

    def describe(self) -> str:
        nodes = sum(1 for n in self._ray.nodes() if n.get("Alive"))
        return f"Ray: {nodes} node(s), {self.slots} task(s) at once"

    def start(self, spec: AttemptSpec) -> str:
        self._running[self._remote.remote(spec)] = spec
        return "ray"

    def wait(self, timeout: float) -> list[Finished]:
        if not self._running:
            return []
        done, rest = self._ray.wait(list(self._running), num_returns=1, timeout=timeout)
        if done and rest:
            done += self._ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        exceptions = self._ray.exceptions
        finished = []
        for ref in done:
            spec = self._running.pop(ref)
            try:
                finished.append(Finished(spec, self._ray.get(ref)))
            except exceptions.RayTaskError as exc:  # the runner itself failed on the worker
                finished.append(Finished(spec, {"status": "failed", "error": str(exc).splitlines()[-1][:1000]}))
            except exceptions.RayError as exc:  # the worker process or its node died
                finished.append(Finished(spec, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"))
        return finished

    def close(self) -> None:
        for ref in self._running:
            self._ray.cancel(ref, force=True)
        self._running.clear()
        if self._owned:
            self._ray.shutdown()
