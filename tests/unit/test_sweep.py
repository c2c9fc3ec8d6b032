import asyncio
import time

import pytest
from tests.unit import skills_for_tests
from tests.unit.skills_for_tests import SleepSettings

from rootloop.models import Status
from rootloop.skills import registry
from rootloop.skills.base import CheckContext, Node
from rootloop.sweep import sweep

registry.register("test-sleep", "tests.unit.skills_for_tests:SleepSkill")
registry.register("test-crash", "tests.unit.skills_for_tests:CrashSkill")


def node(
    name: str,
    seconds: float = 0.01,
    timeout: float = 2.0,
    skill: str = "test-sleep",
    status: Status = Status.OK,
) -> Node:
    settings = SleepSettings(seconds=seconds, status=status) if skill == "test-sleep" else None
    kw = {"settings": settings} if settings else {}
    return Node(
        name=name,
        type="t",
        skill=skill,
        role="downstream",
        component=name,
        service="svc",
        timeout=timeout,
        **kw,
    )


async def test_findings_come_back_in_node_order_with_their_status():
    nodes = [node("a", 0.05), node("b", 0.0, status=Status.CRITICAL), node("c", 0.02)]
    findings = await sweep(nodes)
    assert [f.node for f in findings] == ["a", "b", "c"]
    assert [f.status for f in findings] == [Status.OK, Status.CRITICAL, Status.OK]
    assert all(f.duration_ms > 0 for f in findings)


async def test_a_hung_node_costs_its_timeout_not_the_sweep():
    nodes = [node("fast", 0.01), node("hangs", 3600, timeout=0.3)]
    start = time.monotonic()
    findings = await sweep(nodes)
    elapsed = time.monotonic() - start
    hung = findings[1]
    assert hung.status is Status.UNREACHABLE
    assert "0.3s" in hung.summary
    assert findings[0].status is Status.OK
    assert elapsed < 30  # sanity bound only; the timing goal lives in bench/sweep.py


async def test_checks_run_concurrently_up_to_the_limit():
    running, peak = 0, 0

    def on_start(_n):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)

    def on_done(_n, _f):
        nonlocal running
        running -= 1

    nodes = [node(f"n{i}", 0.05) for i in range(20)]
    await sweep(nodes, concurrency=5, on_start=on_start, on_done=on_done)
    assert peak == 5
    await sweep(nodes, concurrency=50, on_start=on_start, on_done=on_done)
    assert peak == 20


async def test_a_crashing_skill_becomes_an_unknown_finding_with_the_error_redacted():
    findings = await sweep([node("x", skill="test-crash"), node("y")])
    assert findings[0].status is Status.UNKNOWN
    assert "boom" in findings[0].summary
    assert "hunter22" not in findings[0].model_dump_json()
    assert findings[1].status is Status.OK


async def test_cancelling_a_sweep_leaves_no_check_running():
    nodes = [node(f"slow{i}", 10) for i in range(10)]
    task = asyncio.create_task(sweep(nodes, CheckContext()))
    await asyncio.sleep(0.1)
    assert len(skills_for_tests.OPEN) == 10
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not skills_for_tests.OPEN
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("check:")] == []


async def test_unknown_skill_is_a_finding_not_a_crash():
    n = Node(
        name="z",
        type="t",
        skill="no-such-skill",
        role="downstream",
        component="z",
        service="svc",
        timeout=1,
    )
    [f] = await sweep([n])
    assert f.status is Status.UNKNOWN
    assert "no-such-skill" in f.summary
