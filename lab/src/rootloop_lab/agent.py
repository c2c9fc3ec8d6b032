"""The lab's ECS agent: runs each service's tasks as local processes.

Every half second it reconciles the emulator's services with what runs here:
desired count, task definition (a new revision or a forced deployment is a
rollout: new tasks start, then the old ones stop), and a crashed task is
restarted. Every tenth of a second it measures each task's resident memory
(the whole process tree) against the container's hard limit from the task
definition; over the limit it is SIGKILLed and stopped in the emulator the way
ECS reports it: ``stoppedReason`` "OutOfMemoryError: Container killed due to
memory usage", container ``exitCode`` 137.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootloop_lab import procs, repo
from rootloop_lab.cloud import Emulator, aws_env, client
from rootloop_lab.layout import CLUSTER, ECS_SERVICES, Layout

log = logging.getLogger("rootloop_lab.agent")

OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
EXIT_REASON = "Essential container in task exited"
RESTART_DELAY = 1.0
KEEP_STOPPED = 40
MODULES = {
    "api-gateway": "rootloop_lab.apps.gateway",
    "frontend-app": "rootloop_lab.apps.frontend",
    "notification-svc": "rootloop_lab.apps.notification",
}


@dataclass
class Task:
    service: str
    arn: str
    task_def: str
    deployment: str
    proc: subprocess.Popen[bytes]
    log_file: Path
    limit: int  # bytes
    started: float = field(default_factory=time.monotonic)
    stop_reason: str = ""
    stop_code: str = ""  # set when the task's host goes away (rootloop_lab.capacity)
    ready: bool = False  # has logged that it listens
    peak_rss: int = 0

    @property
    def task_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


class Agent:
    def __init__(self, layout: Layout, emu: Emulator) -> None:
        self.layout = layout
        self.emu = emu
        self.ecs = client("ecs", emu.endpoint)
        self.tasks: dict[str, list[Task]] = {s: [] for s in ECS_SERVICES}
        self.last_stop: dict[str, float] = {}
        self.stopped: dict[str, list[str]] = {s: [] for s in ECS_SERVICES}
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.shipper: Any = None  # set by the supervisor: LogShipper
        self.capacity: Any = None  # set by the supervisor: rootloop_lab.capacity.Capacity

    # -- the loop ---------------------------------------------------------
    def run(self) -> None:
        last = 0.0
        while not self.stop_event.wait(0.1):
            try:
                self.enforce_memory()
                if time.monotonic() - last >= 0.5:
                    self.reconcile()
                    last = time.monotonic()
            except Exception:
                log.exception("agent loop failed")

    def enforce_memory(self) -> None:
        kids = procs.children_map()
        with self.lock:
            for tasks in self.tasks.values():
                for t in tasks:
                    if t.proc.poll() is not None or t.stop_reason:
                        continue
                    rss = procs.tree_rss(t.proc.pid, kids)
                    t.peak_rss = max(t.peak_rss, rss)
                    if rss > t.limit:
                        log.warning(
                            "%s task %s uses %d MiB > limit %d MiB: OOM kill",
                            t.service,
                            t.task_id,
                            rss >> 20,
                            t.limit >> 20,
                        )
                        t.stop_reason = OOM_REASON
                        procs.kill_group(t.proc.pid, signal.SIGKILL)

    def reconcile(self) -> None:
        self._interruptions()
        for name in ECS_SERVICES:
            svc = self.emu.ecs.services.get(f"{CLUSTER}:{name}")
            if svc is None or svc.status != "ACTIVE":
                continue
            td = self.emu.ecs.describe_task_definition(svc.task_definition)
            deployment = svc.deployments[0]["id"] if svc.deployments else ""
            with self.lock:
                self._reap(name)
                tasks = self.tasks[name]
                fresh = [t for t in tasks if t.task_def == td.arn and t.deployment == deployment]
                stale = [t for t in tasks if t not in fresh]
                want = int(svc.desired_count)
                recently = time.monotonic() - self.last_stop.get(name, 0) < RESTART_DELAY
                if len(fresh) < want and not recently:
                    self._start(name, td, deployment)
                elif len(fresh) > want:
                    self._stop(fresh[-1], f"Scaling activity initiated by (service {name})")
                ready = [t for t in fresh if self._ready(t)]
                if stale and len(ready) >= want:
                    for t in stale:
                        self._stop(t, f"Scaling activity initiated by (deployment {deployment})")
                self._publish(svc, td.arn, len(self.tasks[name]), bool(stale) or len(fresh) != want)

    def _ready(self, t: Task) -> bool:
        """Up for a moment and serving: the lab's services log "listening on" once bound
        (like a container health check; a fixed delay let a slow start on a loaded machine
        leave the service with no listener between the old task's stop and the new one's
        bind)."""
        if not t.ready and time.monotonic() - t.started > 1.5:
            try:
                with open(t.log_file, "rb") as fh:  # the line comes first, once bound
                    t.ready = b" listening on " in fh.read(65536)
            except OSError:
                t.ready = False
        return t.ready

    def _interruptions(self) -> None:
        """A host going away takes every task on it (``rootloop_lab.capacity``)."""
        if self.capacity is None:
            return
        for host, code, why in self.capacity.interrupted():
            with self.lock:
                for tasks in self.tasks.values():
                    for t in list(tasks):
                        if t.arn in host.tasks:
                            t.stop_code = code
                            self._stop(t, why)
            self.capacity.retire(host)

    # -- tasks ------------------------------------------------------------
    def _start(self, name: str, td: Any, deployment: str) -> None:
        cdef = td.container_definitions[0]
        env = {e["name"]: e["value"] for e in cdef.get("environment", [])}
        limit_mib = int(cdef.get("memory") or td.memory or 512)
        if td.memory:
            limit_mib = min(limit_mib, int(td.memory))
        svc = self.emu.ecs.services.get(f"{CLUSTER}:{name}")
        host = None
        if self.capacity is not None and self.capacity.uses_hosts(svc):
            host = self.capacity.place(name, svc, limit_mib, deployment)
            if host is None:
                return  # no room on the service's capacity: it stays below desired
        res = self.ecs.run_task(
            cluster=CLUSTER,
            taskDefinition=td.arn,
            launchType="FARGATE",
            startedBy=deployment or f"ecs-svc/{name}",
            group=f"service:{name}",
            networkConfiguration=self._network(name),
        )
        arn = res["tasks"][0]["taskArn"]
        task_id = arn.rsplit("/", 1)[-1]
        if host is not None:
            self.capacity.record(arn, name, deployment, host, limit_mib)
        cwd, cmd = self._command(name, env)
        log_file = self.layout.logs / "tasks" / f"{name}-{task_id}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": os.environ.get("HOME", "/tmp"),
            **aws_env(self.emu.endpoint),
            **env,
        }
        with open(log_file, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.layout.record_pid(f"task-{name}-{task_id}", proc.pid)
        task = Task(name, arn, td.arn, deployment, proc, log_file, limit_mib << 20)
        self.tasks[name].append(task)
        self._set_container(arn, "RUNNING", None)
        if self.shipper is not None:
            self.shipper.watch(log_file, f"/ecs/{name}", f"ecs/{name}/{task_id}")
        log.info(
            "started %s task %s (%s, limit %d MiB)",
            name,
            task_id,
            td.arn.rsplit("/", 1)[-1],
            limit_mib,
        )

    def _command(self, name: str, env: dict[str, str]) -> tuple[Path, list[str]]:
        if name == "payments-api":
            sha = env.get("GIT_SHA", "main")
            return repo.export(self.layout, sha), [sys.executable, "-m", "app.server"]
        return self.layout.root, [sys.executable, "-m", MODULES[name]]

    def _network(self, name: str) -> dict[str, Any]:
        svc = self.emu.ecs.services[f"{CLUSTER}:{name}"]
        cfg = getattr(svc, "network_configuration", None)
        return cfg or {"awsvpcConfiguration": {"subnets": ["subnet-lab"], "securityGroups": []}}

    def _stop(self, t: Task, reason: str) -> None:
        t.stop_reason = t.stop_reason or reason
        procs.stop_group(t.proc.pid, timeout=3)
        with contextlib.suppress(subprocess.TimeoutExpired):
            t.proc.wait(1)
        self._reap(t.service)

    def _reap(self, name: str) -> None:
        """Record every exited task as stopped in the emulator."""
        for t in list(self.tasks[name]):
            code = t.proc.poll()
            if code is None:
                continue
            exit_code = 137 if t.stop_reason == OOM_REASON else (128 - code if code < 0 else code)
            reason = t.stop_reason or EXIT_REASON
            self._set_container(t.arn, "STOPPED", exit_code)
            with contextlib.suppress(Exception):
                self.ecs.stop_task(cluster=CLUSTER, task=t.arn, reason=reason)
            task = self.emu.ecs.tasks.get(CLUSTER, {}).get(t.arn)
            if task is not None:
                task.stop_code = t.stop_code or (
                    "ServiceSchedulerInitiated"
                    if reason.startswith("Scaling")
                    else "EssentialContainerExited"
                )
                task.stopped_at = time.time()
            if self.capacity is not None:
                self.capacity.forget(t.arn)
            self.tasks[name].remove(t)
            self.layout.forget_pid(f"task-{name}-{t.task_id}")
            if not t.stop_reason.startswith("Scaling"):
                self.last_stop[name] = time.monotonic()
            log.info(
                "%s task %s stopped: %s (exit %d, peak %d MiB)",
                name,
                t.task_id,
                reason,
                exit_code,
                t.peak_rss >> 20,
            )
            if self.shipper is not None:
                self.shipper.flush_and_forget(t.log_file)
            self._prune(name, t.arn)

    def _set_container(self, arn: str, status: str, exit_code: int | None) -> None:
        task = self.emu.ecs.tasks.get(CLUSTER, {}).get(arn)
        if task is None:
            return
        for c in task.containers:
            c.last_status = status
            if exit_code is not None:
                c.exitCode = exit_code
        if status == "RUNNING":
            task.started_at = time.time()

    def _prune(self, name: str, arn: str) -> None:
        kept = self.stopped[name]
        kept.append(arn)
        while len(kept) > KEEP_STOPPED:
            self.emu.ecs.tasks.get(CLUSTER, {}).pop(kept.pop(0), None)

    def _publish(self, svc: Any, td_arn: str, running: int, rolling: bool) -> None:
        svc.running_count = running
        svc.pending_count = max(0, int(svc.desired_count) - running)
        if svc.deployments:
            dep = svc.deployments[0]
            dep.update(
                {
                    "taskDefinition": td_arn,
                    "runningCount": running,
                    "pendingCount": svc.pending_count,
                    "desiredCount": int(svc.desired_count),
                    "rolloutState": "IN_PROGRESS" if rolling else "COMPLETED",
                }
            )

    # -- queries and shutdown ---------------------------------------------
    def running(self) -> dict[str, list[Task]]:
        with self.lock:
            return {k: [t for t in v if t.proc.poll() is None] for k, v in self.tasks.items()}

    def stop_all(self) -> None:
        self.stop_event.set()
        with self.lock:
            for tasks in self.tasks.values():
                for t in tasks:
                    procs.kill_group(t.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 3
            for tasks in self.tasks.values():
                for t in tasks:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        t.proc.wait(max(0.05, deadline - time.monotonic()))
                    procs.stop_group(t.proc.pid, timeout=1)
                    self.layout.forget_pid(f"task-{t.service}-{t.task_id}")
