"""The bounded concurrent sweep: every check at once, each with its own timeout.

A check that hangs costs its own timeout and becomes an ``unreachable`` finding;
a check that crashes becomes an ``unknown`` finding carrying the error. Nothing
a single node does can stop or stall the sweep. On cancellation every pending
check is cancelled and awaited, so no task or connection outlives the sweep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from rootloop.models import Finding, Status
from rootloop.models.nodes import Node
from rootloop.skills import registry
from rootloop.skills.base import CheckContext

Callback = Callable[[Node], None]
DoneCallback = Callable[[Node, Finding], None]

#: blocking clients (boto3) run on threads; more threads than this buys nothing on
#: a small machine and each carries its own socket timeout.
MAX_THREADS = 64


async def check_node(node: Node, ctx: CheckContext) -> Finding:
    """Run one node's skill under its timeout; never raises (except cancellation)."""
    start = time.perf_counter()
    try:
        skill = registry.get(node.skill)
        async with asyncio.timeout(node.timeout):
            finding = await skill.check(node, ctx)
    except TimeoutError:
        finding = Finding(
            node=node.name,
            skill=node.skill,
            status=Status.UNREACHABLE,
            summary=f"no answer within {node.timeout:g}s",
            error=f"timed out after {node.timeout:g}s",
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a skill bug or an unexpected platform error: keep sweeping
        text = ctx.redactor.text(f"{type(exc).__name__}: {exc}")[:500]
        finding = Finding(
            node=node.name,
            skill=node.skill,
            status=Status.UNKNOWN,
            summary=f"check failed: {text}",
            error=text,
        )
    finding.duration_ms = (time.perf_counter() - start) * 1000.0
    return _redacted(finding, ctx)


def _redacted(finding: Finding, ctx: CheckContext) -> Finding:
    data = ctx.redactor.data(finding.model_dump(mode="json"))
    return Finding.model_validate(data)


async def sweep(
    nodes: Iterable[Node],
    ctx: CheckContext | None = None,
    *,
    concurrency: int = 512,
    on_start: Callback | None = None,
    on_done: DoneCallback | None = None,
) -> list[Finding]:
    """Check every node concurrently; findings come back in the nodes' order."""
    nodes = list(nodes)
    ctx = ctx or CheckContext()
    own_executor = ctx.executor is None
    if own_executor:
        ctx.executor = ThreadPoolExecutor(
            max_workers=min(MAX_THREADS, max(4, concurrency)), thread_name_prefix="rootloop-check"
        )
    gate = asyncio.Semaphore(concurrency)

    async def one(node: Node) -> Finding:
        async with gate:
            if on_start:
                on_start(node)
            finding = await check_node(node, ctx)
            if on_done:
                on_done(node, finding)
            return finding

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(n), name=f"check:{n.name}") for n in nodes]
        return [t.result() for t in tasks]
    finally:
        await ctx.aclose()
        if own_executor and ctx.executor is not None:
            ctx.executor.shutdown(wait=False, cancel_futures=True)
            ctx.executor = None


def run_sweep(nodes: Iterable[Node], ctx: CheckContext | None = None, **kw) -> list[Finding]:
    """Synchronous entry point for code that has no event loop."""
    return asyncio.run(sweep(nodes, ctx, **kw))
