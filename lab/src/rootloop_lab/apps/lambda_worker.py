"""lambda-worker: consumes sqs-payments the way a Lambda event-source mapping does.

Its configuration is the Lambda function's in the emulator (environment,
timeout) and its event-source mapping (enabled, batch size), re-read every
few seconds like a new version being picked up. Each batch is one invocation:
START/END/REPORT lines in the log, and Invocations, Errors, Duration,
Throttles, ConcurrentExecutions put to CloudWatch under AWS/Lambda.

Like the Lambda service it plays, it enforces the function's configuration (see
``rootloop_lab.apps.lambda_runtime``): an invocation that outlives ``Timeout`` is
ended ("Task timed out after N seconds", an error, its batch not deleted); a reserved
concurrency of 0 throttles every invocation (Throttles, nothing consumed); a
``Handler`` the code package does not define fails every invocation on import.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import traceback
import uuid
from dataclasses import dataclass, field

import boto3
import psycopg
from botocore.config import Config as BotoConfig

from rootloop_lab.apps import lambda_runtime as runtime

log = logging.getLogger("lambda-worker")
FORMATS = {"v1", "v2"}
REFRESH_SECONDS = 2.0
METRICS_SECONDS = 5.0
MAX_BACKOFF = 30.0


@dataclass
class FunctionConfig:
    env: dict[str, str]
    timeout: int
    enabled: bool
    batch_size: int
    handler: str = runtime.HANDLER
    reserved: int | None = None

    @property
    def pool_size(self) -> int:
        try:
            return max(1, int(self.env.get("DB_POOL_SIZE", "2")))
        except ValueError:
            return 2


@dataclass
class Stats:
    invocations: int = 0
    errors: int = 0
    durations: list[float] = field(default_factory=list)
    busy: bool = False
    throttles: int = 0


class Pool:
    """The worker's connections, opened eagerly up to its configured size."""

    def __init__(self) -> None:
        self.conns: list[psycopg.Connection] = []
        self.failing = ""

    def resize(self, dsn: str, size: int) -> None:
        self.conns = [c for c in self.conns if not c.closed and not c.broken]
        while len(self.conns) > size:
            self.conns.pop().close()
        while len(self.conns) < size:
            try:
                self.conns.append(
                    psycopg.connect(
                        dsn, connect_timeout=3, autocommit=True, application_name="lambda-worker"
                    )
                )
                self.failing = ""
            except psycopg.OperationalError as exc:
                text = " ".join(str(exc).split())
                if text != self.failing:
                    log.error(
                        "could not open pool connection %d/%d: %s", len(self.conns) + 1, size, text
                    )
                self.failing = text
                break

    def get(self) -> psycopg.Connection:
        for c in self.conns:
            if not c.closed and not c.broken:
                return c
        raise RuntimeError("no database connection available")


def read_config(lam, name: str) -> FunctionConfig:
    fn = lam.get_function_configuration(FunctionName=name)
    maps = lam.list_event_source_mappings(FunctionName=name).get("EventSourceMappings", [])
    enabled = any(m.get("State") in ("Enabled", "Enabling", "Updating") for m in maps)
    batch = max([int(m.get("BatchSize", 10)) for m in maps] or [10])
    return FunctionConfig(
        env=fn.get("Environment", {}).get("Variables", {}),
        timeout=int(fn.get("Timeout", 3)),
        enabled=enabled,
        batch_size=batch,
        handler=str(fn.get("Handler", runtime.HANDLER)),
        reserved=runtime.reserved_concurrency(lam, name),
    )


def handle(cfg: FunctionConfig, pool: Pool, records: list[dict], deadline: float) -> None:
    runtime.load_handler(cfg.handler)
    fmt = cfg.env.get("RECEIPT_FORMAT", "v2")
    if fmt not in FORMATS:
        raise ValueError(f"unsupported RECEIPT_FORMAT {fmt!r} (supported: v1, v2)")
    conn = pool.get()
    for rec in records:
        payment = json.loads(rec["Body"])
        body = f"{fmt}:{payment.get('receipt', payment.get('id'))}"
        conn.execute(
            "INSERT INTO receipts (payment_id, body) VALUES (%s, %s) "
            "ON CONFLICT (payment_id) DO NOTHING",
            (payment["id"], body),
        )
    runtime.render_receipts(deadline, cfg.timeout)


def put_metrics(cw, name: str, stats: Stats) -> None:
    dims = [{"Name": "FunctionName", "Value": name}]
    data = [
        {"MetricName": "Invocations", "Value": stats.invocations, "Unit": "Count"},
        {"MetricName": "Errors", "Value": stats.errors, "Unit": "Count"},
        {"MetricName": "Throttles", "Value": stats.throttles, "Unit": "Count"},
        {
            "MetricName": "ConcurrentExecutions",
            "Value": 1 if stats.invocations else 0,
            "Unit": "Count",
        },
    ]
    if stats.durations:
        data.append(
            {
                "MetricName": "Duration",
                "Unit": "Milliseconds",
                "StatisticValues": {
                    "SampleCount": len(stats.durations),
                    "Sum": sum(stats.durations),
                    "Minimum": min(stats.durations),
                    "Maximum": max(stats.durations),
                },
            }
        )
    cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[{**d, "Dimensions": dims} for d in data])


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    name = os.environ["FUNCTION_NAME"]
    queue_url = os.environ["QUEUE_URL"]
    boto = BotoConfig(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2})
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    lam = boto3.client("lambda", endpoint_url=endpoint, config=boto)
    sqs = boto3.client("sqs", endpoint_url=endpoint, config=boto)
    cw = boto3.client("cloudwatch", endpoint_url=endpoint, config=boto)
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    pool, stats = Pool(), Stats()
    cfg = read_config(lam, name)
    refreshed = metrics_at = paused_until = backoff = 0.0
    log.info("lambda-worker %s consuming %s", name, queue_url)
    while running:
        now = time.monotonic()
        if now - refreshed >= REFRESH_SECONDS:
            try:
                cfg = read_config(lam, name)
            except Exception as exc:
                log.error("cannot read function configuration: %s", exc)
            pool.resize(cfg.env.get("PG_DSN", ""), cfg.pool_size)
            refreshed = now
        if now - metrics_at >= METRICS_SECONDS:
            try:
                put_metrics(cw, name, stats)
            except Exception as exc:
                log.error("cannot put metrics: %s", exc)
            stats, metrics_at = Stats(), now
        if not cfg.enabled or time.monotonic() < paused_until:
            time.sleep(0.5)
            continue
        if runtime.throttled(cfg.reserved):
            stats.throttles += 1  # the mapping's invoke is refused: nothing is received
            time.sleep(1.0)
            continue
        try:
            got = sqs.receive_message(
                QueueUrl=queue_url,
                WaitTimeSeconds=1,
                MaxNumberOfMessages=min(10, cfg.batch_size),
                AttributeNames=["ApproximateReceiveCount"],
            )
        except Exception as exc:
            log.error("cannot poll the queue: %s", exc)
            time.sleep(1)
            continue
        records = got.get("Messages", [])
        if not records:
            continue
        rid = str(uuid.uuid4())
        log.info("START RequestId: %s Version: $LATEST", rid)
        start = time.perf_counter()
        stats.invocations += 1
        timed_out = False
        try:
            handle(cfg, pool, records, time.monotonic() + cfg.timeout)
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r["ReceiptHandle"]}
                    for i, r in enumerate(records)
                ],
            )
            backoff = 0.0
        except runtime.TimedOut as exc:
            stats.errors += 1
            timed_out = True
            log.error("%s %s", rid, exc)
            paused_until = time.monotonic() + 1.0  # the batch returns after its visibility
        except Exception as exc:
            stats.errors += 1
            log.error("[ERROR] %s: %s\n%s", runtime.error_type(exc), exc, traceback.format_exc())
            # like an event-source mapping, poll less while the function keeps failing
            backoff = min(MAX_BACKOFF, max(1.0, backoff * 2))
            log.info("function errors: the poller backs off for %.0fs", backoff)
            paused_until = time.monotonic() + backoff
        ms = (time.perf_counter() - start) * 1000
        if timed_out:  # Lambda reports a timed-out invocation's duration as the timeout
            ms = cfg.timeout * 1000.0
        stats.durations.append(ms)
        log.info("END RequestId: %s", rid)
        log.info(
            "REPORT RequestId: %s Duration: %.2f ms Billed Duration: %d ms Memory Size: 128 MB%s",
            rid,
            ms,
            int(ms) + 1,
            " Status: timeout" if timed_out else "",
        )
    for c in pool.conns:
        c.close()


if __name__ == "__main__":
    main()
