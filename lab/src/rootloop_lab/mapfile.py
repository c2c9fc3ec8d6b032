"""The lab's map (``rootloop.yaml``) and runbooks, written with the lab's real ports.

Node names are the seed's topology exactly. Runbooks go to ``runbooks/<node>.yaml``,
one per component a diagnosis can blame; the rules reasoner looks up the
root-cause node's book first, then the service's.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from rootloop.state import atomic_write
from rootloop_lab.layout import CLUSTER, FUNCTION, GITHUB_REPO, QUEUE, REGION, LabState
from rootloop_lab.repo import TEST_COMMAND

BATCH_FILE = "app/batch.py"
# a 2-core machine running the whole lab answers slower than production would
_SLOW_OK = {"latency_warn_ms": 1500, "latency_crit_ms": 5000}


def topology(state: LabState, environment: str = "lower") -> dict[str, Any]:
    aws = {"endpoint_url": state.endpoint_url, "region": REGION}
    return {
        "service": "payments-api",
        "environment": environment,
        "self": {
            "health": {
                "skill": "http-health",
                "url": f"{state.url('payments-api')}/health",
                **_SLOW_OK,
            },
            "compute": {
                "skill": "aws-ecs",
                "cluster": CLUSTER,
                "service": "payments-api",
                "window_minutes": 10,
                **aws,
            },
            "logs": {
                "skill": "cloudwatch-logs",
                "log_group": "/ecs/payments-api",
                "window_minutes": 2,
                **aws,
            },
            "ci": {
                "skill": "github-actions",
                "repo": GITHUB_REPO,
                "api_url": f"http://127.0.0.1:{state.ports.ci}",
                "branch": "main",
            },
            "repo": {
                "path": "repo/payments-api",
                "remote": "origin",
                "forge": "local",
                "default_branch": "main",
                "test_command": lab_test_command(),
            },
        },
        "upstream": [
            {
                "name": "api-gateway",
                "type": "http",
                "skill": "http-health",
                "url": f"{state.url('api-gateway')}/health",
                **_SLOW_OK,
            },
            {
                "name": "frontend-app",
                "type": "http",
                "skill": "http-health",
                "url": f"{state.url('frontend-app')}/health",
                **_SLOW_OK,
            },
        ],
        "downstream": [
            {
                "name": "postgresql",
                "type": "db",
                "skill": "postgres",
                "dsn": state.pg_dsn("postgres", "payments"),
                "idle_in_transaction_s": 5,
                "long_query_s": 10,
            },
            {
                "name": "redis",
                "type": "cache",
                "skill": "redis",
                "url": state.redis_url,
                "ping_warn_ms": 500,
            },
            {
                "name": "sqs-payments",
                "type": "queue",
                "skill": "aws-sqs",
                "queue_name": QUEUE,
                "consumer": FUNCTION,
                "depth_warn": 50,
                "age_warn_seconds": 30,
                "age_crit_seconds": 90,
                "window_minutes": 5,
                **aws,
            },
            {
                "name": "lambda-worker",
                "type": "compute",
                "skill": "aws-lambda",
                "function_name": FUNCTION,
                "window_minutes": 5,
                **aws,
            },
            {
                "name": "notification-svc",
                "type": "http",
                "skill": "http-health",
                "url": f"{state.url('notification-svc')}/health",
                **_SLOW_OK,
                # its own ECS service: a restart acts on the node's own resource only
                # (a light check: its health endpoint already tells how it is doing; its
                # memory metrics show a leak's climb before the OOM kill)
                "compute": {
                    "skill": "aws-ecs",
                    "cluster": CLUSTER,
                    "service": "notification-svc",
                    "window_minutes": 10,
                    "max_events": 0,
                    "max_stopped_tasks": 5,
                    **aws,
                },
            },
        ],
        "policy": {
            "max_iterations": 5,
            "no_progress_limit": 2,
            "error_rate_threshold": 0.02,
            "settle_seconds": 5,
        },
        "runbooks": "runbooks/",
        "load_test": {
            "url": f"{state.url('api-gateway')}/api/payments",
            "method": "POST",
            "body": {"amount_cents": 1250, "merchant_id": 1},
            "rate": 10,
            "duration": 5,
            "min_success_ratio": 0.99,
            # The lab's latency objective. A healthy payment takes a few milliseconds;
            # the latency faults add seconds (a slow dependency ~2 s per payment). The
            # lab shares a small CI machine with its own tests, where CPU contention
            # alone has pushed a healthy p50 to ~0.5 s: an objective at 200 ms measured
            # the machine, not the service. One second (p95 2.5 s) still fails every
            # injected slowdown and passes a healthy lab on a busy machine.
            "max_p50_ms": 1000,
            "max_p95_ms": 2500,
        },
        "ui_test": {
            "url": f"{state.url('frontend-app')}/",
            "steps": [
                {"goto": "/"},
                {"fill": "#amount", "value": "1250"},
                {"click": "#submit"},
                {"expect_text": "Payment confirmed"},
            ],
            "expect_text": "Payment confirmed",
            "timeout": 30,
        },
    }


MIGRATION_SQL = "ALTER TABLE payments ADD COLUMN IF NOT EXISTS fee_cents bigint NOT NULL DEFAULT 0"

RUNBOOKS: dict[str, dict[str, list[dict[str, Any]]]] = {
    "payments-api": {
        "oom": [
            {"kind": "set-task-resources", "memory": "{memory_x2}"},
            {
                "kind": "apply-patch",
                "title": "reduce batch size 1000 -> 100",
                "edits": [
                    {
                        "path": BATCH_FILE,
                        "search": "BATCH_SIZE = 1000",
                        "replace": "BATCH_SIZE = 100",
                    }
                ],
            },
        ],
        "connection-exhaustion": [
            {
                "kind": "apply-patch",
                "title": "bound the PostgreSQL connection pool of the batch",
                "edits": [
                    {
                        "path": BATCH_FILE,
                        "search": "POOL_MAX_SIZE = None",
                        "replace": "POOL_MAX_SIZE = 5",
                    }
                ],
            },
        ],
        "bad-deploy": [{"kind": "revert-commit", "commit": "{bad_commit}"}],
        "schema-drift": [
            {
                "kind": "run-migration",
                "target": "postgresql",
                "name": "add_payments_fee_cents",
                "sql": MIGRATION_SQL,
            }
        ],
    },
    "postgresql": {
        "blocking-lock": [
            {"kind": "terminate-backend", "target": "postgresql", "pid": "{blocker_pid}"}
        ],
        "schema-drift": [
            {
                "kind": "run-migration",
                "target": "postgresql",
                "name": "add_payments_fee_cents",
                "sql": MIGRATION_SQL,
            }
        ],
    },
    "lambda-worker": {
        "connection-exhaustion": [
            {
                "kind": "set-function-env",
                "target": "lambda-worker",
                "function_name": FUNCTION,
                "name": "DB_POOL_SIZE",
                "value": "2",
            },
            {
                "kind": "terminate-backend",
                "target": "postgresql",
                "application_name": FUNCTION,
                "state": "idle",
            },
        ],
        "consumer-down": [
            {
                "kind": "set-function-env",
                "target": "lambda-worker",
                "function_name": FUNCTION,
                "name": "RECEIPT_FORMAT",
                "value": "v2",
            },
        ],
        # the team's known cause of receipts failing one by one: the currencies the
        # worker accepts (CURRENCIES). Restore them, then move the failed messages back.
        "messages-failing": [
            {
                "kind": "set-function-env",
                "target": "lambda-worker",
                "function_name": FUNCTION,
                "name": "CURRENCIES",
                "value": "usd,eur",
            },
            {"kind": "redrive-dlq", "target": "{queue}"},
        ],
    },
    "redis": {
        "cache-full": [{"kind": "set-redis-policy", "target": "redis", "policy": "allkeys-lru"}],
    },
    "notification-svc": {
        "dependency-down": [
            {
                "kind": "restart",
                "target": "notification-svc",
                "cluster": CLUSTER,
                "service": "notification-svc",
            }
        ],
        # the render cache has no bound: off until it gets one (a code fix, escalated)
        "memory-growth": [
            {
                "kind": "set-env",
                "target": "notification-svc",
                "cluster": CLUSTER,
                "service": "notification-svc",
                "name": "RENDER_CACHE",
                "value": "off",
            }
        ],
        # its rate limit is configuration: the value the team runs it with
        "rate-limited": [
            {
                "kind": "set-env",
                "target": "notification-svc",
                "cluster": CLUSTER,
                "service": "notification-svc",
                "name": "RATE_LIMIT_PER_S",
                "value": "50",
            }
        ],
        # its sender keeps state in the process (pacing, the sender lock): a new
        # deployment replaces the tasks
        "slow-dependency": [
            {
                "kind": "restart",
                "target": "notification-svc",
                "cluster": CLUSTER,
                "service": "notification-svc",
            }
        ],
    },
}


def write_all(root: Path, state: LabState, *, production_only: bool = False) -> Path:
    """Write the maps (lower and production) and the runbooks; the path of the one asked."""
    prod = root / "rootloop.production.yaml"
    atomic_write(
        prod,
        _dump(
            topology(state, "production"),
            "# The same lab, marked production: rootloop must not act.\n",
        ),
    )
    if production_only:
        return prod
    out = root / "rootloop.yaml"
    atomic_write(out, _dump(topology(state), "# Written by 'rootloop lab up'.\n"))
    for name, ladders in RUNBOOKS.items():
        atomic_write(
            root / "runbooks" / f"{name}.yaml", _dump({"service": name, "ladders": ladders})
        )
    return out


def _dump(data: dict[str, Any], header: str = "") -> str:
    return header + yaml.safe_dump(data, sort_keys=False, width=100)


def lab_test_command() -> str:
    """The repository's test command, run by the interpreter the lab itself runs on (the
    one that has the service's dependencies), as the lab's CI runner does."""
    return " ".join([shlex.quote(sys.executable), *TEST_COMMAND.split()[1:]])
