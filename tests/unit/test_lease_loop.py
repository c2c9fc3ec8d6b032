"""The loop acts only while it holds its service's lease (fakes, a real SQLite lease)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from tests.fakes import FakeExecutor, Harness, ScriptedReasoner, World, make_topology

from rootloop.actions.types import SetEnvVar
from rootloop.context import ContextStore
from rootloop.lease import Lease
from rootloop.models import Status

FIX = SetEnvVar(target="db", cluster="lab", service="db", name="POOL", value="20")


def test_a_run_that_lost_its_lease_stops_before_the_side_effect_and_resumes_once(
    tmp_path: Path,
) -> None:
    world = World().set("db", Status.CRITICAL, "errors")
    state = tmp_path / "state"
    other = Lease(state, "svc", "lower", "intruder")

    def taken_over(_action) -> None:
        """The run stalled past its expiry; another run took the service over."""
        with sqlite3.connect(state / "leases.sqlite3") as db:
            db.execute("UPDATE lease SET expires_at = ?", (time.time() - 1,))
        other.acquire()

    executor = FakeExecutor({"set-env": lambda _a: world.heal("db")}, before=taken_over)
    h = Harness(
        topology=make_topology(tmp_path, world),
        store=ContextStore(state),
        reasoner=ScriptedReasoner({"db": FIX}),
        executor=executor,
    )
    ctx = h.new_context()
    lease = Lease(state, "svc", "lower", ctx.run_id)
    lease.acquire()
    loop = h.loop()
    loop.lease = lease
    ctx = asyncio.run(loop.run(ctx))

    assert executor.applied == []  # nothing ran without the lease
    assert ctx.status == "paused" and "no longer holds the lease" in ctx.status_reason
    assert ctx.current is not None and ctx.current.phase == "applying"
    assert ctx.current.outcome is None  # not recorded as a failed fix

    other.release()
    executor.before = None
    again = Lease(state, "svc", "lower", ctx.run_id)
    again.acquire()
    loop = h.loop()
    loop.lease = again
    ctx.status = "running"
    ctx = asyncio.run(loop.run(ctx))
    assert ctx.status == "healthy", ctx.status_reason
    assert len(executor.applied) == 1 and len(ctx.history) == 1
