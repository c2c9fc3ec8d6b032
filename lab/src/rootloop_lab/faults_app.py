"""Application faults that build up over time.

``pg-connection-leak``: a configuration deploy turns on lambda-worker's receipts audit
(``RECEIPT_AUDIT_SECONDS=4``), whose code opens a connection per run, counts receipts
inside a transaction and forgets the connection: every 4 s one more session of
``lambda-worker`` (role ``worker``) sits idle in transaction, blocking nobody. Unlike
``pg-blocking-lock`` (one session whose locks others wait on) and
``pg-connection-hog`` (a pool too large, its sessions idle, not in a transaction),
nothing waits — the sessions just pile up. The probe asks PostgreSQL itself, as the
admin, whether the worker's sessions still live on idle in transaction.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from rootloop.errors import PlatformError
from rootloop.reasoning import categories as cat
from rootloop_lab.cloud import client
from rootloop_lab.layout import FUNCTION
from rootloop_lab.packs import PackScenario
from rootloop_lab.scenarios import Scenario, with_payments

AUDIT_EVERY_S = 4
#: a session the leak made never ends; one that lives longer than this is the leak's
LEAK_AGE_S = 15
_LEAKED = (
    "SELECT count(*), coalesce(max(extract(epoch FROM now() - state_change)), 0) "
    "FROM pg_stat_activity WHERE application_name = %s AND state = 'idle in transaction'"
)


def _leaked(state: Any) -> tuple[int, float]:
    with psycopg.connect(state.pg_dsn(), autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(_LEAKED, (FUNCTION,)).fetchone()
    return (int(row[0]), float(row[1])) if row else (0, 0.0)


def _turn_on_audit(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    lam = client("lambda", state.endpoint_url)
    env = lam.get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=FUNCTION,
        Environment={"Variables": {**env, "RECEIPT_AUDIT_SECONDS": str(AUDIT_EVERY_S)}},
    )
    if wait:  # in place once a few sessions have piled up
        deadline = time.monotonic() + 60
        while _leaked(state)[0] < 3:
            if time.monotonic() > deadline:
                raise PlatformError(
                    "the worker's audit did not leak sessions within 60s",
                    f"see {lab.layout.logs / 'lambda-worker.log'}",
                )
            time.sleep(1.0)
    return {"function_name": FUNCTION, "env": {"RECEIPT_AUDIT_SECONDS": str(AUDIT_EVERY_S)}}


def _no_session_lives_on(lab: Any, state: Any) -> tuple[bool, str]:
    """Fixed when, over two audit periods, no worker session stays idle in transaction
    longer than LEAK_AGE_S: the leaked ones are gone and new ones do not pile up."""
    time.sleep(2 * AUDIT_EVERY_S)
    count, oldest = _leaked(state)
    return oldest <= LEAK_AGE_S, (
        f"{count} {FUNCTION} session(s) idle in transaction, the oldest for {oldest:.0f}s "
        f"(the leak's sessions never end; fixed means none lives past {LEAK_AGE_S}s)"
    )


SCENARIOS = [
    PackScenario(
        Scenario(
            name="pg-connection-leak",
            root_cause="lambda-worker",
            category=cat.CONNECTION_LEAK,
            description="a config deploy turns on lambda-worker's receipts audit, which "
            "leaves one session idle in transaction every 4 s: they pile up, blocking nobody",
            fix="set idle_in_transaction_session_timeout on the worker's role, then end the "
            "sessions already leaked (the audit's code still needs its fix: escalated in the PR)",
            fix_kinds=["set-role-timeout", "terminate-backend"],
            iterations=2,
        ),
        _turn_on_audit,
        with_payments(_no_session_lives_on),
    ),
]


# -- memory growth -------------------------------------------------------------------------

LEAKY = "notification-svc"
LEAK_WAIT_S = 180.0
#: the leak is in place once the task holds this share of its limit (above the ECS
#: check's default 85 % warning), or once its first task was OOM-killed
LEAK_SHARE = 0.9


def _task_rss(lab: Any, service: str) -> tuple[int, int]:
    """(resident bytes of the service's newest live task's process tree, its pid)."""
    from rootloop_lab import procs

    pids = [
        pid
        for name, pid in lab.layout.recorded_pids().items()
        if name.startswith(f"task-{service}-") and procs.alive(pid)
    ]
    if not pids:
        return 0, 0
    pid = max(pids)
    return procs.tree_rss(pid), pid


def _task_limit(state: Any, service: str) -> int:
    from rootloop_lab.layout import CLUSTER

    ecs = client("ecs", state.endpoint_url)
    svc = ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    mib = int(td.get("memory") or td["containerDefinitions"][0].get("memory") or 0)
    return mib << 20


def _turn_on_render_cache(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    from rootloop_lab.faults_http import deploy_env

    before = _task_rss(lab, LEAKY)[1]  # the old revision's task
    revision = deploy_env(state, "RENDER_CACHE", "on", service=LEAKY)
    limit = _task_limit(state, LEAKY)
    if wait:
        deadline = time.monotonic() + LEAK_WAIT_S
        first = 0
        while True:
            rss, pid = _task_rss(lab, LEAKY)
            if pid and pid != before:
                first = first or pid  # the new revision's first task
                if rss >= LEAK_SHARE * limit or pid != first:  # near the limit, or killed
                    break
            if time.monotonic() > deadline:
                raise PlatformError(
                    f"{LEAKY}'s memory did not reach {LEAK_SHARE:.0%} of its limit within "
                    f"{LEAK_WAIT_S:g}s",
                    f"see {lab.layout.logs / 'supervisor.log'}",
                )
            time.sleep(1.0)
    return {"service": LEAKY, "revision": revision.rsplit("/", 1)[-1], "RENDER_CACHE": "on"}


def _memory_holds(lab: Any, state: Any) -> tuple[bool, str]:
    """Fixed when the running task's memory does not climb: over 10 s of traffic (20
    notifications, 10 MiB with the leak) it grows by less than 4 MiB, and the task
    holds under half its limit."""
    before, pid = _task_rss(lab, LEAKY)
    time.sleep(10)
    after, pid_after = _task_rss(lab, LEAKY)
    limit = _task_limit(state, LEAKY)
    same = pid == pid_after and pid != 0
    grew = after - before
    return same and grew < 4 << 20 and after < limit / 2, (
        f"{LEAKY} task pid {pid_after}: {before >> 20} -> {after >> 20} MiB in 10s "
        f"(limit {limit >> 20} MiB{'' if same else '; the task changed meanwhile'})"
    )


SCENARIOS.append(
    PackScenario(
        Scenario(
            name="notification-memory-leak",
            root_cause=LEAKY,
            category=cat.MEMORY_GROWTH,
            description="a config deploy turns on notification-svc's render cache, which "
            "keeps 512 KiB per notification for good: memory climbs steadily with the "
            "traffic toward the 128 MiB limit (then exit 137, again and again)",
            fix="RENDER_CACHE=off on notification-svc (the runbook's rung); the cache's "
            "missing bound is a code fix for a human",
            fix_kinds=["set-env"],
        ),
        _turn_on_render_cache,
        with_payments(_memory_holds),
    )
)
