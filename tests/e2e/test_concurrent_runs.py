"""Two ``rootloop run`` on one lab service at once: one acts, the other exits or waits.

The first run freezes itself (SIGSTOP, via ``ROOTLOOP_STOP_AT``) right as it is about
to act, holding its lease — no race with a sleep. A second run then exits 6 naming
the first, having written nothing; a third, with ``--wait``, waits. The first is
thawed, acts once, ends healthy and gives the lease back; the waiting run then
takes it, finds nothing left to fix, and acts on nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rootloop.context import ContextStore
from rootloop.lease import Lease
from rootloop_lab import Lab
from tests.e2e.lab_cli import CLI, env_for, only_run, rootloop, said, start

pytestmark = pytest.mark.e2e


@pytest.fixture
def lab(shared_lab: Lab) -> Lab:
    return shared_lab


def stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[-1].split()[0] == "T"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_second_run_on_the_same_service_exits_or_waits(lab: Lab, tmp_path: Path) -> None:
    map_path = start(lab, "redis-noeviction")
    run = ["run", "-t", str(map_path), "--reasoner", "rules"]
    env = {**env_for(tmp_path, stop_at="phase:act:start"), "ROOTLOOP_LEASE_TTL": "3600"}
    first = subprocess.Popen(
        [*CLI, *run], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    waiting: subprocess.Popen[str] | None = None
    try:
        wait_for(lambda: first.poll() is not None or stopped(first.pid), 600, "the first run")
        assert first.poll() is None, first.stdout.read() if first.stdout else ""
        ctx = only_run(tmp_path)
        holder = Lease(tmp_path, ctx.service, ctx.environment, "probe")
        assert holder.holder() is not None and holder.holder().run_id == ctx.run_id
        assert ctx.current is not None and ctx.current.changed is None  # about to act

        second = rootloop(*run, state=tmp_path, timeout=600)
        assert second.returncode == 6, said(second)[-2000:]
        assert f"already being investigated by run {ctx.run_id}" in said(second)
        assert len(ContextStore(tmp_path).list()) == 1  # the refused run wrote nothing

        waiting = subprocess.Popen(
            [*CLI, *run, "--wait", "1800"],
            env=env_for(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        os.kill(first.pid, signal.SIGCONT)
        out, _ = first.communicate(timeout=1200)
        assert first.returncode == 0, " ".join(out.split())[-3000:]
        done = ContextStore(tmp_path).load(ctx.run_id)
        assert done.status == "healthy" and len(done.history) == 1
        assert done.history[0].changed  # the first run acted, once

        out, _ = waiting.communicate(timeout=1200)
        assert waiting.returncode != 6, " ".join(out.split())[-3000:]  # it waited, then ran
        later = [c for c in ContextStore(tmp_path).list() if c.run_id != ctx.run_id]
        assert len(later) == 1
        assert all(h.changed is None for h in later[0].history)  # nothing left to act on
        assert holder.holder() is None  # both gave it back
    finally:
        for proc in (first, waiting):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait(timeout=60)
