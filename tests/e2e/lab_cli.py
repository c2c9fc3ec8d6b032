"""Helpers for end-to-end tests that drive ``rootloop`` as a user would: a process per
command, on a real lab, killed or frozen at points the process itself signals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rootloop import killpoints
from rootloop.context import ContextStore, DebugContext
from rootloop_lab import Lab
from rootloop_lab.symptoms import wait_for_symptoms

CLI = [sys.executable, "-m", "rootloop.cli.main"]


def start(lab: Lab, scenario: str) -> Path:
    """Reset the lab, inject a fault, wait until it shows (the page); the scenario's map."""
    lab.reset()
    lab.inject(scenario)
    os.environ.update(lab.env())
    map_path = lab.map_for(scenario)
    wait_for_symptoms(map_path, timeout=90)
    return map_path


def env_for(state: Path, kill_at: str | None = None, stop_at: str | None = None) -> dict:
    env = {**os.environ, "ROOTLOOP_STATE_DIR": str(state)}
    env.pop(killpoints.ENV, None)
    env.pop(killpoints.STOP_ENV, None)
    if kill_at:
        env[killpoints.ENV] = kill_at
    if stop_at:
        env[killpoints.STOP_ENV] = stop_at
    return env


def rootloop(
    *args: str, state: Path, kill_at: str | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env_for(state, kill_at),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def only_run(state: Path) -> DebugContext:
    runs = ContextStore(state).list()
    assert len(runs) == 1, [r.run_id for r in runs]
    return runs[0]


def said(proc: subprocess.CompletedProcess[str]) -> str:
    """What the command printed, unwrapped (rich wraps long lines when not on a terminal)."""
    return " ".join((proc.stdout + proc.stderr).split())
