"""Serve benchmark: intake latency under concurrency, storm collapse, fleet throughput.

1. Intake: ``rootloop serve`` (a real process, SQLite, the recording investigator)
   takes N Alertmanager posts, 200 in flight at once, for 20 services; prints the
   client-side p50/p99 and the verdict counts.
2. Storm: 1,000 copies of one alert, 200 in flight: exactly one investigation.
3. Fleet (``--fleet``): 100 investigations on 100 services through 1 worker and
   then 2 worker processes sharing one PostgreSQL. Each investigation is the real
   loop (rules reasoner, ``--concurrency`` at a time per worker, default 1) on a map
   of 10 loopback HTTP nodes answering in 10–200 ms. Prints each one's wall time,
   that every investigation's step ran exactly once (from the workers' own
   "investigation step started" log lines, one per execution) and left one run, and
   the 2:1 throughput ratio. With ``--fake``, each investigation sleeps ``--work``
   seconds in the recording investigator instead (the queue's machinery alone).

Machine load matters on a shared box: the load average is printed before and after.

    .venv/bin/python bench/serve.py [--posts 2000] [--fleet [--fake --work 0.5]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import yaml

from rootloop.serve.testing import alertmanager_body, serve_processes, write_map


def config(
    root: Path,
    services: list[str],
    extra: str = "investigator: rootloop.serve.testing\n",
    writer: Callable[[Path, str, str], Path] = write_map,
) -> None:
    routes = []
    for name in services:
        writer(root / f"{name}.yaml", name, "staging")
        routes.append(f"  - {{name: {name}, map: {name}.yaml, match: {{service: {name}}}}}\n")
    (root / "serve.yaml").write_text(
        extra
        + "storms: {rate_limit: {max: 100000, per_seconds: 60}}\n"
        + "routes:\n"
        + "".join(routes),
        encoding="utf-8",
    )


def env(root: Path, work: float = 0.0) -> dict[str, str]:
    return {
        "ROOTLOOP_STATE_DIR": str(root / "state"),
        "ROOTLOOP_SERVE_FAKE_LOG": str(root / "effects.log"),
        "ROOTLOOP_SERVE_FAKE_SECONDS": str(work),
    }


async def blast(
    base: str, bodies: list[dict], in_flight: int, server_times: list[float] | None = None
) -> tuple[list[float], Counter]:
    """POST every body over ``in_flight`` kept-alive connections, each one request at a time.

    A bare HTTP/1.1 client on asyncio streams: on this 2-core machine httpx's own
    per-request overhead at 200 connections dwarfs the server's, so it would measure
    the client (ab -k -c 200 agrees with this client, not with httpx)."""
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    verdicts: Counter = Counter()
    work = list(reversed([json.dumps(b).encode() for b in bodies]))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while work:
                body = work.pop()
                head = (
                    f"POST /hooks/alertmanager HTTP/1.1\r\nHost: {host}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                start = time.perf_counter()
                writer.write(head.encode() + body)
                status, headers = await _response_head(reader)
                payload = await reader.readexactly(int(headers.get("content-length", "0")))
                latencies.append(time.perf_counter() - start)
                timing = headers.get("server-timing", "")
                if server_times is not None and "dur=" in timing:
                    server_times.append(float(timing.split("dur=")[1]) / 1000)
                if status != 202:
                    verdicts[f"http-{status}"] += 1
                    continue
                for d in json.loads(payload)["decisions"]:
                    verdicts[d["verdict"]] += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(in_flight)))
    return latencies, verdicts


async def _response_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status = int((await reader.readline()).split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (``/proc/<pid>/stat``): what the intake
    costs, whatever else the shared machine is doing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def intake(posts: int, in_flight: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        services = [f"svc{i}" for i in range(20)]
        config(root, [*services, "storm"])  # the storm's service sees nothing before it
        with serve_processes(root, env(root)) as start:
            server = start()
            bodies = [
                alertmanager_body(
                    f"fp-{i % 500}", {"alertname": f"A{i % 500}", "service": services[i % 20]}
                )
                for i in range(posts)
            ]
            assert server.proc is not None
            cpu0, t0 = cpu_seconds(server.proc.pid), time.perf_counter()
            inside: list[float] = []
            lat, verdicts = asyncio.run(blast(server.base, bodies, in_flight, inside))
            wall = time.perf_counter() - t0
            cpu = cpu_seconds(server.proc.pid) - cpu0
            print(
                f"intake   {posts} posts, {in_flight} in flight: client p50 {pct(lat, 50):.0f} ms,"
                f" p99 {pct(lat, 99):.0f} ms; in the app p50 {pct(inside, 50):.0f} ms, "
                f"p99 {pct(inside, 99):.0f} ms; {posts / wall:.0f} posts/s; "
                f"server CPU {cpu * 1000 / posts:.2f} ms/post; "
                f"verdicts {dict(verdicts)}"
            )

            labels = {"alertname": "Storm", "service": "storm"}
            storm = [alertmanager_body("storm-1", labels) for _ in range(1000)]
            before = len(server.get("/investigations", params={"limit": 1000}).json())
            _, verdicts = asyncio.run(blast(server.base, storm, in_flight))
            after = server.get("/investigations", params={"limit": 1000}).json()
            new = len(after) - before
            print(
                f"storm    1000 copies of one alert: {new} new investigation(s); {dict(verdicts)}"
            )


def real_map(port: int, seed: int) -> Callable[[Path, str, str], Path]:
    """Maps of 10 ``http-health`` nodes on a loopback server answering in 10–200 ms."""
    rnd = random.Random(seed)

    def write(path: Path, service: str, environment: str) -> Path:
        nodes = [
            {
                "name": f"{service}-n{i}",
                "type": "http",
                "skill": "http-health",
                "url": f"http://127.0.0.1:{port}",
                "path": f"/delay/{rnd.randint(10, 200)}",
                "timeout": 10,
                # healthy but on a loaded machine: slow is not what this bench measures
                "latency_warn_ms": 5000,
                "latency_crit_ms": 9000,
            }
            for i in range(10)
        ]
        data = {"service": service, "environment": environment, "downstream": nodes}
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    return write


def step_runs(log: Path) -> tuple[Counter, Counter, list[float]]:
    """From every worker's JSON log: how many times each investigation's step started,
    how many steps each worker process ran, and when each started (seconds)."""
    runs: Counter = Counter()
    by_pid: Counter = Counter()
    times = []
    for line in log.read_text(encoding="utf-8").splitlines():
        if '"investigation step started"' in line:
            entry = json.loads(line)
            runs[entry["investigation"]] += 1
            by_pid[entry["pid"]] += 1
            times.append(datetime.fromisoformat(entry["ts"]).timestamp())
    return runs, by_pid, sorted(times)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f}"


def fleet(count: int, work: float, concurrency: int, real: bool) -> None:
    import psycopg

    from rootloop_lab.servers import postgres as local_pg

    services = [f"svc{i}" for i in range(count)]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        pg = local_pg.start_postgres(Path(tmp) / "pg", max_connections=200)
        stack.callback(pg.stop)
        writer, extra, what = write_map, "investigator: rootloop.serve.testing\n", f"{work}s fake"
        if real:
            from sweep import SERVER  # the sweep bench's delay server, on a port it picks

            server = subprocess.Popen(
                [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True
            )
            stack.callback(server.terminate)
            assert server.stdout is not None
            ready = server.stdout.readline().split()
            assert ready and ready[0] == "ready", ready
            port = int(ready[1])
            writer, extra, what = real_map(port, 7), "reasoner: rules\n", "the real loop"
        walls = {}
        for workers in (1, 2):
            root = Path(tmp) / f"w{workers}"
            root.mkdir()
            database = f"bench_{workers}"
            with psycopg.connect(pg.dsn_for("postgres"), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {database}")
            config(
                root,
                services,
                extra + f"database_url: {pg.dsn_for(database)}\n"
                "queue: {polling_interval_seconds: 0.2, "
                f"worker_concurrency: {concurrency}}}\n",
                writer,
            )
            with serve_processes(root, env(root, work)) as start:
                procs = [start() for _ in range(workers)]
                bodies = [
                    alertmanager_body(f"fp-{s}", {"alertname": "E", "service": s}) for s in services
                ]
                t0, t_post = time.perf_counter(), time.time()
                asyncio.run(blast(procs[0].base, bodies, 50))

                def rows(server=procs[0], active: bool = False) -> list[dict]:
                    params = {"limit": 1000, "active": active}
                    return server.get("/investigations", params=params).json()

                assert len(rows()) == count  # every post was answered: every row exists
                # Then poll only the active ones, twice a second: the measuring must not
                # cost the workers the CPU they are being measured on.
                deadline = time.monotonic() + 3600
                while rows(active=True):
                    assert time.monotonic() < deadline, "investigations still active"
                    time.sleep(0.5)
                walls[workers] = time.perf_counter() - t0
                outcomes = Counter(x["outcome"] for x in rows())
                reasons = Counter(x["reason"][:90] for x in rows() if x["outcome"] != "healthy")
            steps, by_pid, starts = step_runs(root / "serve.log")
            once = len(steps) == count and set(steps.values()) == {1}
            span = starts[-1] - starts[0] if starts else 0.0
            print(
                f"           steps per worker {sorted(by_pid.values())}; first to last start "
                f"{span:.1f} s; first start {starts[0] - t_post:.1f} s after the posts began"
            )
            if real:
                runs = len(list((root / "state" / "runs").glob("*/context.json")))
                checked = (
                    f"each step ran exactly once: {once}; {runs} run contexts; "
                    f"outcomes {dict(outcomes)}"
                )
            else:
                effects = exactly_once(root / "effects.log", count)
                checked = f"each step ran exactly once: {once}; each effect once: {effects}"
            print(
                f"fleet    {count} investigations ({what}, {concurrency}/worker), "
                f"{workers} worker(s): {walls[workers]:.1f} s; {checked}"
            )
            for reason, n in reasons.most_common(3):
                print(f"           {n} not healthy: {reason}")
        print(f"fleet    throughput ratio 2 workers : 1 = {walls[1] / walls[2]:.2f}; {load()}")


def exactly_once(log: Path, count: int) -> bool:
    lines = log.read_text().splitlines()
    starts = Counter(x.split()[1] for x in lines if x.startswith("start"))
    effects = Counter(x.split()[1] for x in lines if x.startswith("effect"))
    return len(starts) == count and set(starts.values()) == set(effects.values()) == {1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--fleet", action="store_true")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--work", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=1, help="per worker")
    parser.add_argument("--fake", action="store_true", help="fleet: the recording investigator")
    parser.add_argument("--skip-intake", action="store_true")
    args = parser.parse_args()
    print(f"start    {load()}, {os.cpu_count()} CPUs")
    if not args.skip_intake:
        intake(args.posts, args.in_flight)
    if args.fleet:
        fleet(args.count, args.work, args.concurrency, not args.fake)
    print(f"end      {load()}")


if __name__ == "__main__":
    main()
