"""Benchmark: the cloudwatch-logs digest on 100,000 seeded lines.

Starts moto's server on loopback, seeds a log group with a realistic mix
(request logs, warnings, DB timeouts, Python tracebacks shipped one line per
event), runs the skill's read path and prints the size of what comes back
(lines, characters) and where the time goes (fetching vs templating).

    .venv/bin/python bench/logs_digest.py [--lines 100000]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import UTC, datetime, timedelta

from rootloop.platforms.aws.metrics import Window
from rootloop.platforms.aws.session import AwsConfig, clients_for
from rootloop.skills.cloudwatch_logs import Settings, read_errors
from rootloop_lab.servers import emulator

GROUP = "/ecs/orders-api"
TRACE = [
    "ERROR worker - failed to process order {oid}",
    "Traceback (most recent call last):",
    '  File "/app/worker.py", line 42, in handle',
    "    total = price_of(order)",
    '  File "/app/pricing.py", line 17, in price_of',
    "    return Decimal(order['price'])",
    "decimal.InvalidOperation: [<class 'decimal.ConversionSyntax'>]",
]
PLAIN = [
    (0.55, "INFO http - GET /orders/{oid} 200 in {ms} ms user={uid}"),
    (0.15, "INFO http - POST /orders 201 in {ms} ms user={uid}"),
    (0.08, "DEBUG cache - hit key=order:{oid}"),
    (0.06, "DEBUG cache - miss key=order:{oid}"),
    (0.05, "WARN pool - connection pool at {pct}% of 20"),
    (0.04, "ERROR db - timeout after 5000 ms on query select * from orders where id={oid}"),
    (0.02, "ERROR payments - upstream 503 from https://payments.internal/charge/{oid}"),
    (0.01, "ERROR auth - token for user {uid} expired at 2026-11-27T10:{mm}:00Z"),
]


def lines(n: int, start: datetime, span: timedelta, rng: random.Random):
    """(timestamp ms, stream, message) in time order; tracebacks stay contiguous."""
    weights = [w for w, _ in PLAIN] + [0.04]
    out: list[tuple[int, str, str]] = []
    step = span / n
    t = start
    while len(out) < n:
        stream = f"orders-api/{rng.randrange(4)}"
        i = rng.choices(range(len(weights)), weights)[0]
        vals = {
            "oid": rng.randrange(10**6),
            "ms": rng.randrange(2, 900),
            "uid": rng.randrange(5000),
            "pct": rng.randrange(50, 100),
            "mm": f"{rng.randrange(60):02d}",
        }
        msgs = (
            [ln.format(**vals) for ln in TRACE] if i == len(PLAIN) else [PLAIN[i][1].format(**vals)]
        )
        for m in msgs:
            out.append((int(t.timestamp() * 1000), stream, m))
            t += step
    return out[:n]


def seed(clients, events) -> float:
    began = time.perf_counter()
    logs = clients.logs
    logs.create_log_group(logGroupName=GROUP)
    by_stream: dict[str, list[dict]] = {}
    for ts, stream, msg in events:
        by_stream.setdefault(stream, []).append({"timestamp": ts, "message": msg})
    for stream, evs in by_stream.items():
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        for i in range(0, len(evs), 5000):
            logs.put_log_events(
                logGroupName=GROUP, logStreamName=stream, logEvents=evs[i : i + 5000]
            )
    return time.perf_counter() - began


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with emulator.start() as server:
        cfg = AwsConfig(region="us-east-1", endpoint_url=server.endpoint_url, read_timeout=120)
        clients = clients_for(cfg)
        end = datetime.now(UTC)
        start = end - timedelta(minutes=14)
        events = lines(args.lines, start, timedelta(minutes=13), random.Random(args.seed))
        seeded = seed(clients, events)
        s = Settings(
            region="us-east-1", endpoint_url=server.endpoint_url, log_group=GROUP, read_timeout=120
        )
        window = Window.around(None, end + timedelta(seconds=1), 15, 0)
        began = time.perf_counter()
        d = read_errors(clients, s, window)
        total = time.perf_counter() - began
        out = d.lines(traces=s.traces, frames=s.trace_frames)
        text = "\n".join(out)
        print(f"seeded {len(events):,} lines into {GROUP} in {seeded:.1f}s")
        print(f"fetched {d.scanned:,} events (filter pattern: {s.filter_pattern!r})")
        print(
            f"error records: {d.errors:,}; templates: {d.digest.distinct if d.digest else 0}; "
            f"distinct traces: {len(d.traces)}; truncated: {d.truncated}"
        )
        print(f"digest: {len(out)} lines, {len(text):,} chars")
        print(
            f"time: {total:.2f}s total = fetch {d.fetch_seconds:.2f}s + digest "
            f"{d.digest_seconds:.2f}s"
        )
        print("---- digest ----")
        print(text)


if __name__ == "__main__":
    main()
