"""Sweep scaling benchmark: is a sweep as slow as its slowest check, and no slower?

Builds maps of 10, 100 and 500 ``http-health`` nodes against a real HTTP server
on loopback (a separate process) whose endpoints answer after a random 10–200 ms,
loads each map through the real loader, sweeps it with the default settings,
and reports wall time / slowest single check (target ≤ 1.2 at 500 nodes). A
last run adds one node that never answers: the sweep must end at its timeout.

    .venv/bin/python bench/sweep.py [--sizes 10 100 500] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

from rootloop import topology
from rootloop.models import Finding, Status
from rootloop.skills import registry
from rootloop.skills.base import BaseSkill, CheckContext, Node, SkillSettings
from rootloop.sweep import sweep

# A tiny asyncio HTTP server: /delay/<ms> answers after <ms>, /hang never answers.
SERVER = textwrap.dedent("""
    import asyncio, sys

    OK = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok"

    async def handle(reader, writer):
        try:
            line = await reader.readline()
            while (await reader.readline()) not in (b"\\r\\n", b""):
                pass
            path = line.split()[1].decode()
            if path.startswith("/hang"):
                await asyncio.sleep(3600)
            ms = int(path.rsplit("/", 1)[-1]) if path.startswith("/delay/") else 0
            await asyncio.sleep(ms / 1000)
            writer.write(OK)
            await writer.drain()
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
        print("ready", server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
""")


def write_map(folder: Path, port: int, delays: list[int], hang: bool) -> Path:
    nodes = [
        {
            "name": f"svc-{i:03d}",
            "type": "http",
            "skill": "http-health",
            "url": f"http://127.0.0.1:{port}",
            "path": f"/delay/{d}",
            "timeout": 10,
            "latency_warn_ms": 5000,
            "latency_crit_ms": 9000,
        }
        for i, d in enumerate(delays)
    ]
    if hang:
        nodes.append(
            {
                "name": "never-answers",
                "type": "http",
                "skill": "http-health",
                "url": f"http://127.0.0.1:{port}",
                "path": "/hang",
                "timeout": 1.0,
            }
        )
    path = folder / f"map-{len(nodes)}.yaml"
    path.write_text(yaml.safe_dump({"service": "bench", "downstream": nodes}))
    return path


async def run_one(path: Path) -> tuple[float, float, int, int]:
    topo = topology.load(path, env={}, skills=registry)
    start = time.perf_counter()
    findings = await sweep(topo.nodes.values(), CheckContext(), concurrency=topo.policy.concurrency)
    wall = time.perf_counter() - start
    answered = [f for f in findings if f.status is Status.OK]
    slowest = max(f.duration_ms for f in answered) / 1000 if answered else 0.0
    unreachable = sum(f.status is Status.UNREACHABLE for f in findings)
    return wall, slowest, len(findings), unreachable


class SleepSettings(SkillSettings):
    ms: int = 10


class SleepSkill(BaseSkill):
    """A check that only waits: measures the sweep machinery without any client's CPU."""

    name = "bench-sleep"
    Settings = SleepSettings
    default_timeout = 5.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        await asyncio.sleep(node.settings.ms / 1000)  # type: ignore[attr-defined]
        return self.finding(node, Status.OK, "slept")


async def run_sleep(n: int, rng: random.Random) -> tuple[float, float]:
    nodes = [
        Node(
            name=f"n{i}",
            type="t",
            skill="bench-sleep",
            role="downstream",
            component=f"n{i}",
            service="bench",
            timeout=5.0,
            settings=SleepSettings(ms=rng.randint(10, 200)),
        )
        for i in range(n)
    ]
    start = time.perf_counter()
    findings = await sweep(nodes, CheckContext(), concurrency=max(256, n))
    wall = time.perf_counter() - start
    return wall, max(f.duration_ms for f in findings) / 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500])
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        ready, port_text = server.stdout.readline().split()  # the port the server bound
        assert ready == "ready"
        port = int(port_text)
        print(f"{'nodes':>6} {'wall s':>8} {'slowest check s':>16} {'ratio':>6}  note")
        with tempfile.TemporaryDirectory() as tmp:
            for n in args.sizes:
                delays = [rng.randint(10, 200) for _ in range(n)]
                wall, slowest, count, _ = asyncio.run(
                    run_one(write_map(Path(tmp), port, delays, False))
                )
                note = "target <= 1.2" if n == max(args.sizes) else ""
                print(f"{count:>6} {wall:>8.3f} {slowest:>16.3f} {wall / slowest:>6.2f}  {note}")
            n = max(args.sizes)
            delays = [rng.randint(10, 200) for _ in range(n)]
            wall, slowest, count, unreachable = asyncio.run(
                run_one(write_map(Path(tmp), port, delays, True))
            )
            print(
                f"{count:>6} {wall:>8.3f} {slowest:>16.3f} {wall / slowest:>6.2f}  "
                f"+1 node that never answers (timeout 1.0 s): sweep ended in {wall:.2f} s, "
                f"{unreachable} unreachable"
            )
    finally:
        server.kill()
        server.wait()
    registry.register("bench-sleep", "__main__:SleepSkill")
    print("\nthe sweep machinery alone (checks that only wait 10-200 ms, no HTTP client):")
    print(f"{'nodes':>6} {'wall s':>8} {'slowest check s':>16} {'ratio':>6}")
    for n in args.sizes:
        wall, slowest = asyncio.run(run_sleep(n, rng))
        print(f"{n:>6} {wall:>8.3f} {slowest:>16.3f} {wall / slowest:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
