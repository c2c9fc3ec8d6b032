"""``Lab``: start, stop, inspect and break the local lab.

    lab = Lab(root)          # default root: <state_dir>/lab
    lab.up()                 # returns once every component is healthy
    lab.inject("oom-batch")  # a real fault; returns at once
    lab.status()             # each component and whether it is up
    lab.down()               # stops everything, leaves no process behind

The work happens in a supervisor daemon (``rootloop_lab.supervisor``) that
outlives the command which started it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rootloop.errors import PlatformError, StateError
from rootloop.state import atomic_write, state_dir
from rootloop_lab import mapfile, procs
from rootloop_lab.cloud import aws_env
from rootloop_lab.layout import ECS_SERVICES, LabState, Layout

UP_TIMEOUT = 120.0


class Component(BaseModel):
    name: str
    kind: str
    ok: bool
    detail: str = ""


class LabStatus(BaseModel):
    root: str
    running: bool
    status: str
    components: list[Component] = []

    @property
    def healthy(self) -> bool:
        return self.running and all(c.ok for c in self.components)


def default_root() -> Path:
    return state_dir() / "lab"


class Lab:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).resolve() if root is not None else default_root()
        self.layout = Layout(self.root)

    # -- lifecycle --------------------------------------------------------
    def up(self, timeout: float = UP_TIMEOUT) -> LabState:
        """Start the lab (no-op if it runs); return once everything is healthy."""
        state = self.layout.read_state()
        if state is not None and state.status == "ready" and procs.alive(state.supervisor_pid):
            return state
        if state is not None and procs.alive(state.supervisor_pid):
            return self._wait_ready(state.supervisor_pid, timeout)
        self.down()
        self.root.mkdir(parents=True, exist_ok=True)
        self.layout.logs.mkdir(exist_ok=True)
        with open(self.layout.logs / "supervisor.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "rootloop_lab.supervisor", str(self.root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.root,
                env={**os.environ},
            )
        state = self._wait_ready(proc.pid, timeout, proc)
        mapfile.write_all(self.root, state)
        return state

    def _wait_ready(
        self, pid: int, timeout: float, proc: subprocess.Popen[bytes] | None = None
    ) -> LabState:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.layout.read_state()
            if state is not None and state.supervisor_pid == pid:
                if state.status == "ready":
                    return state
                if state.status == "failed":
                    self.down()
                    raise PlatformError(
                        f"the lab failed to start: {state.error}",
                        f"see {self.layout.logs / 'supervisor.log'}",
                    )
            exited = proc.poll() is not None if proc is not None else not procs.alive(pid)
            if exited:
                state = self.layout.read_state()
                why = f": {state.error}" if state is not None and state.error else ""
                raise PlatformError(
                    f"the lab supervisor exited before the lab was ready{why}",
                    f"see {self.layout.logs / 'supervisor.log'}",
                )
            time.sleep(0.2)
        self.down()
        raise PlatformError(
            f"the lab was not ready after {timeout:g}s",
            f"see {self.layout.logs / 'supervisor.log'}",
        )

    def down(self, timeout: float = 30.0) -> None:
        """Stop the supervisor (which stops its children); then any process left behind."""
        pids = self.layout.recorded_pids()
        state = self.layout.read_state()
        sup = pids.pop("supervisor", 0) or (state.supervisor_pid if state else 0)
        if sup and procs.alive(sup) and _is_supervisor(sup):
            procs.stop_group(sup, timeout=timeout)
        for name, pid in self.layout.recorded_pids().items():
            if name != "supervisor":
                procs.stop_group(pid, timeout=3)
            self.layout.forget_pid(name)
        if state is not None and state.pg_data_dir.startswith(("/tmp/rootloop-pg-",)):
            shutil.rmtree(Path(state.pg_data_dir).parent, ignore_errors=True)

    def reset(self, timeout: float = UP_TIMEOUT) -> LabState:
        """A clean lab: everything stopped and wiped, then started again."""
        self.down()
        if self.root.exists():
            shutil.rmtree(self.root)
        return self.up(timeout)

    def restore(self, timeout: float = UP_TIMEOUT) -> tuple[LabState, str]:
        """A clean lab, put back in place by the running supervisor when it can be
        (``rootloop_lab.snapshot``), else rebuilt from nothing. Returns the state and how
        it was done: ``"in place"`` or ``"rebuilt: <why>"``."""
        state = self.layout.read_state()
        if state is None or state.status != "ready" or not procs.alive(state.supervisor_pid):
            return self.reset(timeout), "rebuilt: no lab was running"
        generation = state.generation
        os.kill(state.supervisor_pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        why = f"not restored within {timeout:g}s"
        while time.monotonic() < deadline:
            now = self.layout.read_state()
            alive = procs.alive(state.supervisor_pid)
            if now is not None and now.generation > generation:
                if now.status == "ready" and alive:
                    mapfile.write_all(self.root, now)
                    return now, "in place"
                if now.status == "failed" or not alive:
                    why = now.error or "the supervisor stopped"
                    break
            elif not alive:
                why = "the supervisor stopped"
                break
            time.sleep(0.1)
        return self.reset(timeout), f"rebuilt: {why}"

    # -- queries ----------------------------------------------------------
    def state(self) -> LabState:
        state = self.layout.read_state()
        if state is None or state.status != "ready" or not procs.alive(state.supervisor_pid):
            raise StateError(
                f"the lab in {self.root} is not running; start it with 'rootloop lab up'"
            )
        return state

    @property
    def running(self) -> bool:
        state = self.layout.read_state()
        return state is not None and procs.alive(state.supervisor_pid)

    def env(self) -> dict[str, str]:
        """What a shell needs to point rootloop (and boto3) at the lab."""
        st = self.state()
        return {**aws_env(st.endpoint_url), "ROOTLOOP_LAB": str(self.root)}

    def status(self) -> LabStatus:
        state = self.layout.read_state()
        if state is None or not procs.alive(state.supervisor_pid):
            return LabStatus(
                root=str(self.root), running=False, status=state.status if state else "absent"
            )
        comps: list[Component] = []
        pids = self.layout.recorded_pids()
        comps.append(
            Component(
                name="supervisor", kind="process", ok=True, detail=f"pid {state.supervisor_pid}"
            )
        )
        comps.append(_port_component("aws-emulator", state.ports.moto))
        comps.append(
            _pid_component("postgresql", pids.get("postgres"), f"127.0.0.1:{state.ports.postgres}")
        )
        comps.append(_pid_component("redis", pids.get("redis"), f"127.0.0.1:{state.ports.redis}"))
        comps.append(_pid_component("lambda-worker", pids.get("lambda-worker"), "worker"))
        comps.append(_port_component("ci (github api)", state.ports.ci))
        for svc in ECS_SERVICES:
            comps.append(_http_component(svc, f"{state.url(svc)}/health"))
        return LabStatus(root=str(self.root), running=True, status=state.status, components=comps)

    def healthy(self) -> bool:
        return self.status().healthy

    # -- maps and scenarios -----------------------------------------------
    @property
    def map_file(self) -> Path:
        return self.layout.map_file

    def map_for(self, scenario: str) -> Path:
        """The map rootloop should use for a scenario (the production one for 'production')."""
        from rootloop_lab.scenarios import get

        return self.layout.production_map_file if get(scenario).production else self.layout.map_file

    def write_map(self, *, production: bool = False) -> Path:
        return mapfile.write_all(self.root, self.state(), production_only=production)

    def leak_secrets(self, secrets: dict[str, str]) -> Path:
        """Make the lab's careless services (notification-svc) echo ``secrets`` into their
        logs and error bodies, as a service that dumps its configuration would. For the
        test that rootloop leaks none of them; nothing else uses it."""
        from rootloop_lab.apps.common import LEAKED_SECRETS_FILE

        path = self.root / LEAKED_SECRETS_FILE
        atomic_write(path, json.dumps(secrets))
        return path

    def inject(self, name: str, *, wait: bool = True) -> dict[str, Any]:
        """Apply a scenario's real fault; facts about it (bad commit, blocker pid…)."""
        from rootloop_lab.scenarios import inject

        return inject(self, name, wait=wait)


def _is_supervisor(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"rootloop_lab.supervisor" in cmd


def _pid_component(name: str, pid: int | None, detail: str) -> Component:
    ok = pid is not None and procs.alive(pid)
    return Component(
        name=name,
        kind="process",
        ok=ok,
        detail=f"{detail}, pid {pid}" if ok else f"{detail}: not running",
    )


def _port_component(name: str, port: int) -> Component:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return Component(name=name, kind="port", ok=True, detail=f"127.0.0.1:{port}")
    except OSError as exc:
        return Component(name=name, kind="port", ok=False, detail=f"127.0.0.1:{port}: {exc}")


def _http_component(name: str, url: str) -> Component:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return Component(
                name=name,
                kind="ecs-service",
                ok=resp.status == 200,
                detail=f"{url} -> {resp.status}",
            )
    except urllib.error.HTTPError as exc:
        return Component(name=name, kind="ecs-service", ok=False, detail=f"{url} -> {exc.code}")
    except OSError as exc:
        return Component(name=name, kind="ecs-service", ok=False, detail=f"{url}: {exc}")
