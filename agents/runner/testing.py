"""Task functions for testing batches: they spend, journal and die as asked, in no time.

``mgpt.agents.runner.testing:steps_task`` behaves like a run with ``steps`` model calls:
each call holds its worst case on the batch's budget, takes ``seconds``, is appended to
the task's journal (fsync'd, as a transcript records a call) and then charged. A resumed
attempt replays the steps its journal holds (held and charged again under the same call
names, which the shared budget must not count twice) and makes only the rest. ``die_at``
kills the worker with SIGKILL at a step, on the attempts listed, before the step is
recorded: the way a machine dies mid-task.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from mgpt.agents.durable import append_line, complete_lines, repair_tail
from mgpt.agents.runner.tasks import TaskContext


def steps_task(ctx: TaskContext) -> dict[str, Any]:
    """args: ``steps`` (calls), ``cost`` (USD each, default 0.01), ``tokens`` (each, 10),
    ``seconds`` (each, 0), ``die_at`` ({"step": k, "attempts": [1]}), ``ok`` (the result's,
    default true), ``fail`` (raise this message instead of returning)."""
    args = ctx.args
    steps, cost, tokens = int(args.get("steps", 3)), float(args.get("cost", 0.01)), int(args.get("tokens", 10))
    journal = ctx.journal or ctx.workdir / ".mgpt" / "transcript.jsonl"
    journal.parent.mkdir(parents=True, exist_ok=True)
    if ctx.resume:
        repair_tail(journal)  # a line torn by the kill is not a step done
    done = _recorded(journal) if ctx.resume else []
    die = args.get("die_at") or {}
    with journal.open("ab" if ctx.resume else "wb") as f:
        for step in range(1, steps + 1):
            hold = ctx.budget.reserve("Tester", tokens=tokens, cost=cost, why="a test step", call=f"Step#{step}")
            if step > len(done):
                if step == die.get("step") and ctx.attempt in die.get("attempts", [1]):
                    os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(float(args.get("seconds", 0)))
                append_line(f, json.dumps({"step": step, "pid": os.getpid(), "attempt": ctx.attempt}))
            ctx.budget.charge("Tester", prompt_tokens=tokens, completion_tokens=0, cost=cost, hold=hold)
    if args.get("fail"):
        raise RuntimeError(str(args["fail"]))
    records = _recorded(journal)
    return {"ok": bool(args.get("ok", True)), "steps": len(records), "replayed": len(done),
            "pids": sorted({r["pid"] for r in records}), "attempts": sorted({r["attempt"] for r in records})}


def _recorded(journal) -> list[dict[str, Any]]:
    if not journal.is_file():
        return []
    lines, _ = complete_lines(journal.read_text(encoding="utf-8"))
    return [json.loads(line) for line in lines if line.strip()]


class LocalRayCluster:
    """A small Ray cluster on this machine, for tests and benchmarks: a head and
    ``nodes - 1`` worker nodes on 127.0.0.1, ``cpus`` CPUs each, no dashboard, niced.

    Every process it started is found by its own temp folder (and their children) and
    stopped by pid: nothing else on the machine is touched, and nothing is left running::

        with LocalRayCluster(nodes=2, env={"PYTHONPATH": ...}) as cluster:
            run_tasks(tasks, RunnerOptions(out=..., ray=cluster.address))
    """

    def __init__(self, nodes: int = 2, cpus: int = 1, env: dict[str, str] | None = None,
                 object_store_mb: int = 100):
        """``env``: the environment the cluster's processes (and so the tasks) get;
        default this process's."""
        self.nodes, self.cpus, self.object_store_mb = nodes, cpus, object_store_mb
        self.env = {**(os.environ if env is None else env), "RAY_USAGE_STATS_ENABLED": "0"}
        self.temp = ""
        self.address = ""

    def __enter__(self) -> "LocalRayCluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _ray(self, *args: str) -> None:
        import shutil
        import subprocess
        import sys

        exe = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray") or "ray"
        proc = subprocess.run([exe, "start", *args, "--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus),
                               "--object-store-memory", str(self.object_store_mb << 20), "--disable-usage-stats"],
                              env=self.env, capture_output=True, text=True, timeout=180,
                              preexec_fn=lambda: os.nice(10))
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed: {(proc.stderr or proc.stdout)[-1500:]}")

    def start(self) -> None:
        import socket
        import tempfile

        self.temp = tempfile.mkdtemp(prefix="mgpt-ray-", dir="/tmp")  # short: Ray's socket paths live under it
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            self._ray("--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", self.temp)
            self.address = f"127.0.0.1:{port}"
            for _ in range(self.nodes - 1):
                self._ray("--address", self.address)
        except BaseException:
            self.stop()
            raise

    def pids(self) -> list[int]:
        """Every live process of this cluster: those naming its temp folder, and their children."""
        procs: dict[int, tuple[int, str]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            procs[int(entry)] = (ppid, cmd)
        ours = {pid for pid, (_, cmd) in procs.items() if self.temp and self.temp in cmd}
        grew = True
        while grew:
            children = {pid for pid, (ppid, _) in procs.items() if ppid in ours} - ours
            grew = bool(children)
            ours |= children
        return sorted(ours)

    def raylets(self) -> list[int]:
        """The raylet of each node, head first (kill one with SIGKILL to kill its node)."""
        found = []
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"/raylet"):
                found.append(pid)
        return found

    def stop(self) -> None:
        """Stop every process of the cluster (SIGTERM, then SIGKILL) and remove its folder."""
        import shutil

        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while pids and time.monotonic() < deadline:
                pids = [p for p in pids if _alive(p)]
                time.sleep(0.2)
            if not pids:
                break
        if self.temp:
            shutil.rmtree(self.temp, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
