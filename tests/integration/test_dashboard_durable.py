"""A dashboard approval resumes the durable workflow (DBOS on the state directory's SQLite).

``rootloop serve`` runs as a real process; the real loop investigates a real
PostgreSQL that lacks a column the service expects and pauses at the schema gate,
the investigation's DBOS workflow waiting durably for an approval. Approving in the
dashboard hands that wait its answer (``DurableResumer``): the workflow itself
resumes the run — not a thread beside it — and the service's record ends healthy.

And when the worker is down: a worker killed while the run waits, an approval given
meanwhile in the dashboard of an intake-only process, then a restarted worker. The
recovered workflow finds the approval and finishes the run, once.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import yaml

from rootloop.context import ContextStore
from rootloop.serve.testing import ServeProcess, alertmanager_body, serve_processes, wait_for
from tests.integration.dashboard_env import alice, column_exists, schema_drift_map

STAGING_ALERT = alertmanager_body(
    "fp-orders-durable", {"alertname": "CheckoutErrors", "service": "orders-api"}
)


def write_config(root: Path, pg_dsn: str) -> None:
    map_path = schema_drift_map(root, pg_dsn)
    config = {
        "reasoner": "rules",
        "queue": {"polling_interval_seconds": 0.2},
        "routes": [{"name": "orders", "map": str(map_path), "match": {"service": "orders-api"}}],
        "access": {"session_secret": "d" * 48, "users": [alice()]},
    }
    (root / "serve.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


def start_investigation(server: ServeProcess) -> str:
    [decision] = server.post("/hooks/alertmanager", json=STAGING_ALERT).json()["decisions"]
    assert decision["verdict"] == "started", decision
    return str(decision["investigation_id"])


def waiting_durably(web: httpx.Client | ServeProcess, inv_id: str) -> bool:
    detail = web.get(f"/investigations/{inv_id}").json()
    return detail["status"] == "paused" and detail["workflow"] == "PENDING"


def ended(web: httpx.Client | ServeProcess, inv_id: str) -> dict | None:
    detail = web.get(f"/investigations/{inv_id}").json()
    done = detail["status"] == "ended" and detail["workflow"] == "SUCCESS"
    return detail if done else None


def log_in(server: ServeProcess) -> httpx.Client:
    """alice's session on this process (the service's own routes need a login too)."""
    web = httpx.Client(base_url=server.base, timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/login").text)
    assert csrf
    done = web.post(
        "/login", data={"username": "alice", "password": "alice-pw-1", "csrf": csrf.group(1)}
    )
    assert done.status_code == 303 and done.headers["location"] == "/ui", done.text
    return web


def approve_in_dashboard(web: httpx.Client, inv_id: str, reason: str) -> None:
    page = web.get(f"/ui/investigations/{inv_id}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    fingerprint = re.search(r'name="fingerprint" value="([^"]+)"', page)
    assert csrf and fingerprint, "no Approve form on the page"
    done = web.post(
        f"/ui/investigations/{inv_id}/gates/schema",
        data={
            "csrf": csrf.group(1),
            "decision": "approve",
            "reason": reason,
            "fingerprint": fingerprint.group(1),
        },
    )
    assert done.status_code == 303, done.text


def test_a_dashboard_approval_resumes_the_durable_workflow(tmp_path: Path, pg_dsn: str) -> None:
    write_config(tmp_path, pg_dsn)
    state = tmp_path / "state"
    contexts = ContextStore(state)
    with serve_processes(tmp_path, {"ROOTLOOP_STATE_DIR": str(state)}) as start:
        server = start()
        web = log_in(server)
        inv_id = start_investigation(server)
        wait_for("the workflow to wait at the gate", lambda: waiting_durably(web, inv_id))
        assert not column_exists(pg_dsn)

        approve_in_dashboard(web, inv_id, "nullable column; reviewed")
        detail = wait_for("the approved run to end", lambda: ended(web, inv_id))
        web.close()
    assert isinstance(detail, dict) and detail["outcome"] == "healthy", detail
    assert column_exists(pg_dsn)
    ctx = contexts.load(inv_id)
    assert ctx.status == "healthy", ctx.status_reason
    [decision] = ctx.decisions
    assert (decision.who, decision.via, decision.reason) == (
        "alice",
        "dashboard",
        "nullable column; reviewed",
    )
    # the workflow's approval step took it (a thread beside it would not write this note)
    assert any("approved gate 'schema' by alice" in n for n in ctx.notes), ctx.notes


def test_a_restarted_worker_honours_an_approval_given_while_it_was_down(
    tmp_path: Path, pg_dsn: str
) -> None:
    write_config(tmp_path, pg_dsn)
    state = tmp_path / "state"
    contexts = ContextStore(state)
    with serve_processes(tmp_path, {"ROOTLOOP_STATE_DIR": str(state)}) as start:
        worker = start()
        web = log_in(worker)
        inv_id = start_investigation(worker)
        wait_for("the workflow to wait at the gate", lambda: waiting_durably(web, inv_id))
        web.close()
        worker.kill9()

        # no worker runs; the dashboard of an intake-only process takes the approval
        intake = start("--no-worker")
        web = log_in(intake)
        approve_in_dashboard(web, inv_id, "approved while the worker was down")
        web.close()
        ctx = contexts.load(inv_id)
        assert [d.who for d in ctx.decisions] == ["alice"]
        intake.stop()
        assert ctx.status == "paused" and not column_exists(pg_dsn)  # nobody resumed it

        # a worker comes back: the recovered workflow finds the approval and goes on
        restarted = start()
        web = log_in(restarted)
        detail = wait_for("the recovered run to end", lambda: ended(web, inv_id))
        web.close()
    assert isinstance(detail, dict) and detail["outcome"] == "healthy", detail
    assert column_exists(pg_dsn)
    ctx = contexts.load(inv_id)
    assert ctx.status == "healthy", ctx.status_reason
    assert len(ctx.decisions) == 1
    assert sum("approved gate 'schema' by alice" in n for n in ctx.notes) == 1, ctx.notes


def test_an_api_approval_is_bound_to_the_action_and_recorded_once(
    tmp_path: Path, pg_dsn: str
) -> None:
    """The token endpoint: an approval naming another action is refused and records
    nothing; the right one is recorded (who, via api, from where) and resumes the
    workflow; a second approval of the same action is refused."""
    write_config(tmp_path, pg_dsn)
    config = yaml.safe_load((tmp_path / "serve.yaml").read_text(encoding="utf-8"))
    config["approvals"] = {"tokens": ["env:TEST_APPROVAL_TOKEN"]}
    del config["access"]  # the service's own API, as a machine reaches it: no login
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    token = "approval-token-0123456789"
    auth = {"Authorization": f"Bearer {token}"}
    state = tmp_path / "state"
    contexts = ContextStore(state)
    env = {"ROOTLOOP_STATE_DIR": str(state), "TEST_APPROVAL_TOKEN": token}
    with serve_processes(tmp_path, env) as start:
        server = start()
        web = server
        inv_id = start_investigation(server)
        wait_for("the workflow to wait at the gate", lambda: waiting_durably(web, inv_id))
        approve = f"/investigations/{inv_id}/approve"

        other = {"gate": "schema", "approver": "bob", "action": "0" * 16}
        refused = server.post(approve, json=other, headers=auth)
        assert refused.status_code == 403, refused.text
        assert contexts.load(inv_id).decisions == []

        ok = server.post(approve, json={"gate": "schema", "approver": "bob"}, headers=auth)
        assert ok.status_code == 202, ok.text
        again = server.post(approve, json={"gate": "schema", "approver": "bob"}, headers=auth)
        assert again.status_code == 403, again.text
        detail = wait_for("the approved run to end", lambda: ended(web, inv_id))
    assert isinstance(detail, dict) and detail["outcome"] == "healthy", detail
    ctx = contexts.load(inv_id)
    [decision] = ctx.decisions
    assert (decision.who, decision.via, decision.decision) == ("bob", "api", "approved")
    assert decision.origin == "127.0.0.1"
    assert column_exists(pg_dsn)
