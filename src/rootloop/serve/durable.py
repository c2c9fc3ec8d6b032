"""Investigations as DBOS workflows on a DBOS queue.

Each investigation is one workflow (its id is the investigation id, so
enqueueing it twice is a no-op) with three steps: ``begin`` marks it running,
``investigate`` runs the loop through the adapter, ``finish`` records the
outcome and releases the service's lease. DBOS checkpoints each step in its
system database; a worker killed mid-investigation is recovered on restart
(DBOS re-runs the unfinished step, and the loop resumes its run rather than
starting over). The queue carries a per-worker and an optional global
concurrency limit, and a deduplication id: the service-and-environment lease key.

DBOS keeps one instance per process, so this module holds the process's
runtime: ``launch`` once, ``shutdown`` at exit.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID
from dbos._error import DBOSQueueDeduplicatedError

from rootloop import __version__
from rootloop.models import AlertContext
from rootloop.redact import Redactor
from rootloop.serve.admission import Ticket
from rootloop.serve.config import ServeConfig
from rootloop.serve.fleet import Heartbeat
from rootloop.serve.investigate import InvestigationOutcome, InvestigationRequest
from rootloop.serve.metrics import STEP_SECONDS
from rootloop.serve.store import Store

log = logging.getLogger("rootloop.serve.durable")

Investigate = Callable[[InvestigationRequest], InvestigationOutcome]
# (request, gate, approver, fingerprint of the action the approver was shown) -> granted
Approve = Callable[[InvestigationRequest, str, str, str], bool]
APPROVAL_TOPIC = "approval"


@dataclass
class Runtime:
    config: ServeConfig
    store: Store
    investigate: Investigate
    approve: Approve


_runtime: Runtime | None = None
_heartbeat: Heartbeat | None = None


def _rt() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the serve runtime is not launched in this process")
    return _runtime


def load_investigator(module_name: str) -> tuple[Investigate, Approve]:
    try:
        module = importlib.import_module(module_name)
        return module.investigate, module.approve
    except (ImportError, AttributeError) as exc:
        from rootloop.errors import UserError

        raise UserError(
            f"investigator '{module_name}' must be a module with investigate() and approve(): {exc}"
        ) from None


@DBOS.step(name="rootloop.serve.begin")
def begin_step(investigation_id: str) -> dict[str, str]:
    rt = _rt()
    row = rt.store.investigation(investigation_id)
    if row is None:
        raise RuntimeError(f"investigation {investigation_id} is not in the store")
    rt.store.mark_running(investigation_id, investigation_id)
    return InvestigationRequest(
        investigation_id=investigation_id,
        map_path=row.map_path,
        state_dir=str(rt.config.resolved_state_dir()),
        reasoner=rt.config.reasoner,
        alert=_alert_context(rt.store.first_alert(investigation_id)),
    ).to_dict()


def _alert_context(row: dict[str, Any] | None) -> str:
    """The starting alert as the run carries it (``AlertContext`` JSON; "" if none)."""
    if row is None:
        return ""
    starts = row.get("received_at")  # the store keeps when it came, an upper bound of startsAt
    return AlertContext(
        source=row["source"],
        labels=row["labels"],
        annotations=row["annotations"],
        starts_at=datetime.fromtimestamp(starts, UTC) if starts else None,
        generator_url=row.get("generator_url") or "",
    ).model_dump_json()


@DBOS.step(name="rootloop.serve.investigate")
def investigate_step(request: dict[str, str]) -> dict[str, Any]:
    rt = _rt()
    started = time.monotonic()
    # One line per execution of the step: a step DBOS runs again after a crash shows twice.
    log.info(
        "investigation step started",
        extra={"investigation": request["investigation_id"], "pid": os.getpid()},
    )
    try:
        outcome = rt.investigate(InvestigationRequest(**request))
    except Exception as exc:  # the loop's failure is this investigation's outcome, not a crash
        log.exception("investigation %s failed", request["investigation_id"])
        reason = Redactor()(f"{type(exc).__name__}: {exc}")
        outcome = InvestigationOutcome("failed", reason, request["investigation_id"])
    finally:
        STEP_SECONDS.labels("investigate").observe(time.monotonic() - started)
    return outcome.to_dict()


@DBOS.step(name="rootloop.serve.finish")
def finish_step(investigation_id: str, outcome: dict[str, Any]) -> None:
    _rt().store.finish(investigation_id, outcome["outcome"], outcome["reason"], outcome["run_id"])


@DBOS.step(name="rootloop.serve.paused")
def paused_step(investigation_id: str, outcome: dict[str, Any]) -> None:
    _rt().store.mark_paused(investigation_id, outcome["gate"], outcome["reason"])


@DBOS.step(name="rootloop.serve.approve")
def approve_step(request: dict[str, str], approval: dict[str, str]) -> bool:
    rt = _rt()
    # A message without the action it approves (an older shape) approves nothing.
    granted = rt.approve(
        InvestigationRequest(**request),
        approval["gate"],
        approval["approver"],
        approval.get("action", ""),
    )
    if granted:
        rt.store.mark_resumed(request["investigation_id"])
    return granted


@DBOS.workflow(name="rootloop.serve.investigation")
def investigation_workflow(investigation_id: str) -> dict[str, Any]:
    """begin → investigate → (paused at a gate → durable wait for an approval → resume)* → finish.

    The wait is ``DBOS.recv``: it survives restarts, and the service's lease stays held
    meanwhile, so alerts for the service keep attaching to this investigation.
    """
    request = begin_step(investigation_id)
    outcome = investigate_step(request)
    wait = _rt().config.approvals.wait_seconds
    while outcome["outcome"] == "paused" and outcome.get("gate"):
        paused_step(investigation_id, outcome)
        approval = DBOS.recv(APPROVAL_TOPIC, timeout_seconds=wait)
        if approval is None:
            break  # nobody approved in time: it ends paused, resumable with `rootloop approve`
        if approve_step(request, approval):
            outcome = investigate_step(request)
    finish_step(investigation_id, outcome)
    return outcome


def send_approval(investigation_id: str, gate: str, approver: str, action: str) -> None:
    """Hand a waiting workflow an approval of one action (its fingerprint).

    The message is bound to the action the approver was shown: a message that is
    received later, when the run waits at the same gate for another action (a second
    POST, a retry), approves nothing."""
    DBOS.send(
        investigation_id,
        {"gate": gate, "approver": approver, "action": action},
        topic=APPROVAL_TOPIC,
    )


def enqueue(ticket: Ticket) -> None:
    queue = _rt().config.queue.name
    try:
        with (
            SetWorkflowID(ticket.investigation_id),
            SetEnqueueOptions(deduplication_id=ticket.lease_key),
        ):
            DBOS.enqueue_workflow(queue, investigation_workflow, ticket.investigation_id)
    except DBOSQueueDeduplicatedError:
        # The store's lease already makes this impossible; DBOS refusing it too is the
        # second line. The alert is recorded either way.
        log.warning("queue refused a second investigation for %s", ticket.lease_key)


BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread() -> None:
    """Run numerical libraries (the memory's embeddings) on one thread in a worker.

    A worker runs several investigations at once and a fleet runs several workers on a
    machine's cores; BLAS's own thread pool on top of that oversubscribes them, and its
    threads then spin waiting for each other. Measured on the shared 2-core box (load
    ~25): 4.2 s of wall per investigation of the real loop with BLAS's default threads,
    1.3 s with one. An operator who sets one of ``BLAS_THREAD_VARS`` keeps their choice.
    """
    if any(os.environ.get(name) for name in BLAS_THREAD_VARS):
        return
    for name in BLAS_THREAD_VARS:
        os.environ[name] = "1"  # libraries loaded from now on (scipy's own OpenBLAS)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # those already loaded (numpy's OpenBLAS)


def launch(config: ServeConfig, store: Store) -> Runtime:
    """Start DBOS in this process (recovering its unfinished workflows) and the queue."""
    global _runtime
    if config.worker:
        one_blas_thread()
    _runtime = Runtime(config, store, *load_investigator(config.investigator))
    dbos_config: dict[str, Any] = {
        "name": "rootloop-serve",
        "system_database_url": config.database(),
        "application_version": _app_version(),
        "log_level": "WARNING",
    }
    executor_id = config.resolved_executor_id()
    dbos_config["executor_id"] = executor_id
    DBOS(config=dbos_config)  # type: ignore[arg-type]
    if config.shared and config.worker:
        global _heartbeat
        _heartbeat = Heartbeat(
            store,
            executor_id,
            _recover_executor,
            config.fleet.heartbeat_seconds,
            config.fleet.dead_after_seconds,
        )
        _heartbeat.beat()  # before the queue starts: a worker is never pending yet unseen
    if not config.worker:
        DBOS.listen_queues([])
    DBOS.launch()
    q = config.queue
    DBOS.register_queue(
        q.name,
        worker_concurrency=q.worker_concurrency,
        global_concurrency=q.global_concurrency,
        polling_interval_sec=q.polling_interval_seconds,
        on_conflict="always_update",
    )
    # Rows admitted but never enqueued (the process died between the two) are enqueued
    # now; for the others the workflow id makes this a no-op.
    for row in store.investigations(limit=10_000, active_only=True):
        enqueue(Ticket(row.id, row.lease_key, row.fingerprint))
    if _heartbeat is not None:
        _heartbeat.start()
    threading.Thread(target=_reconcile_forever, name="rootloop-reconcile", daemon=True).start()
    return _runtime


RECONCILE_SECONDS = 30.0


def reconcile(older_than: float = 10.0) -> int:
    """Queue every admitted investigation that has no workflow (its enqueue failed)."""
    rt = _rt()
    queued = 0
    for row in rt.store.investigations(limit=10_000, active_only=True):
        if row.created_at > time.time() - older_than:
            continue  # its enqueue may still be under way
        if DBOS.get_workflow_status(row.id) is None:
            enqueue(Ticket(row.id, row.lease_key, row.fingerprint))
            queued += 1
    return queued


def _reconcile_forever() -> None:
    while _runtime is not None:
        time.sleep(RECONCILE_SECONDS)
        try:
            if _runtime is not None and (count := reconcile()):
                log.warning("queued %d admitted investigation(s) that had no workflow", count)
        except Exception:
            log.exception("reconcile failed")


def _recover_executor(executor_id: str) -> int:
    """Hand a dead worker's unfinished investigations back to the queue, on DBOS's public API.

    ``DBOS.list_workflows`` finds the dead executor's PENDING workflows of this
    application version (other versions' code may differ, as DBOS's own recovery
    assumes), and ``DBOS.resume_workflows`` sets them ENQUEUED on our queue, so its
    concurrency limits hold and one live worker's atomic dequeue admits one runner.
    Unlike DBOS's internal recovery (which re-checks the executor id in its update),
    ``resume_workflows`` is unconditional: the fleet's claim on the dead executor (one
    conditional DELETE, ``fleet.Heartbeat.reap``) is what makes exactly one worker call it.
    """
    pending = DBOS.list_workflows(
        status="PENDING",
        executor_id=executor_id,
        app_version=_app_version(),
        load_input=False,
        load_output=False,
    )
    ids = [w.workflow_id for w in pending]
    if ids:
        DBOS.resume_workflows(ids, queue_name=_rt().config.queue.name)
    return len(ids)


def _app_version() -> str:
    return f"rootloop-{__version__}"


def shutdown() -> None:
    global _runtime, _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None
    DBOS.destroy(destroy_registry=False)
    _runtime = None


def launched() -> bool:
    return _runtime is not None


def workflow_status(investigation_id: str) -> str | None:
    status = DBOS.get_workflow_status(investigation_id)
    return status.status if status is not None else None
