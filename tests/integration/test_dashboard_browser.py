"""The dashboard in a real browser (Chromium through Playwright), over a real loop.

An alert reaches the service's intake; the real loop investigates a real
PostgreSQL that lacks a column the service expects and pauses at the schema
gate. An approver watches the list update live, opens the investigation, sees
the exact SQL, approves; the loop resumes, applies the migration, verifies, and
the approval — who, when, from where — is in the debug context and the PR body.
A viewer sees no button and a forged POST is refused; so is a POST without the
CSRF token. (The docs' screenshots come from the lab's run of the same story:
tests/e2e/test_dashboard_lab.py.)

The intake's durable queue is replaced by a thread that calls the same adapter
(``rootloop.serve.investigate``) the DBOS workflow calls, so no DBOS is launched.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import httpx
import pytest

from rootloop.context import ContextStore
from rootloop.serve.admission import Ticket
from rootloop.serve.assemble import build
from rootloop.serve.auth.passwords import hash_password
from rootloop.serve.config import ServeConfig
from rootloop.serve.investigate import InvestigationRequest, investigate
from rootloop.serve.store import Store
from rootloop.serve.testing import alertmanager_body
from tests.integration.dashboard_env import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SQL,
    WAIT,
    alice,
    column_exists,
    login,
    schema_drift_map,
    serving,
    wait_for,
)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


def make_app(tmp_path: Path, pg_dsn: str):  # type: ignore[no-untyped-def]
    map_path = schema_drift_map(tmp_path, pg_dsn)
    config = ServeConfig.model_validate(
        {
            "state_dir": str(tmp_path / "state"),
            "reasoner": "rules",
            "routes": [
                {"name": "orders", "map": str(map_path), "match": {"service": "orders-api"}}
            ],
            "access": {
                "session_secret": "s" * 48,
                "users": [
                    alice(),
                    {"name": "victor", "password_hash": hash_password("victor-pw-1")},
                ],
            },
        }
    )
    store = Store.open(config.store_database())

    def run_one(ticket: Ticket) -> None:
        """What the DBOS workflow's three steps do, in a thread."""
        store.mark_running(ticket.investigation_id, ticket.investigation_id)
        row = store.investigation(ticket.investigation_id)
        assert row is not None
        out = investigate(
            InvestigationRequest(
                ticket.investigation_id, row.map_path, str(config.resolved_state_dir()), "rules"
            )
        )
        store.finish(ticket.investigation_id, out.outcome, out.reason, out.run_id)

    def enqueue(ticket: Ticket) -> None:
        threading.Thread(target=run_one, args=(ticket,), daemon=True).start()

    return build(config, enqueue=enqueue), ContextStore(config.resolved_state_dir()), store


def test_approver_approves_the_schema_gate_in_the_browser(tmp_path: Path, pg_dsn: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT * 1000)  # its default is 5 s: too short for a busy box
    app, contexts, store = make_app(tmp_path, pg_dsn)
    with serving(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            approver = browser.new_context(viewport={"width": 1280, "height": 860})
            page = approver.new_page()
            page.set_default_timeout(WAIT * 1000)
            login(page, base, "alice", "alice-pw-1")
            expect(page.locator("p.empty")).to_be_visible()

            # an alert arrives; the list shows the investigation pause, without a reload
            body = alertmanager_body(
                "fp-orders-1", {"alertname": "CheckoutErrors", "service": "orders-api"}
            )
            assert httpx.post(base + "/hooks/alertmanager", json=body).status_code == 202
            row = page.locator("table.runs tbody tr").first
            expect(row.locator(".pill")).to_have_text("paused")
            expect(row).to_contain_text("waits at schema")
            expect(row).to_contain_text("CheckoutErrors")

            run_id = contexts.list()[0].run_id
            page.click(f"a[href='/ui/investigations/{run_id}']")
            gate = page.locator("#gate")
            expect(gate.locator("pre.sql")).to_have_text(SQL)
            expect(page.locator("#approve")).to_be_visible()

            # on a phone-sized screen the gate and its buttons are there too
            phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
            ppage = phone.new_page()
            ppage.set_default_timeout(WAIT * 1000)
            login(ppage, base, "alice", "alice-pw-1")
            ppage.goto(f"{base}/ui/investigations/{run_id}")
            expect(ppage.locator("#approve")).to_be_visible()
            phone.close()

            # a viewer sees the gate but no button, and a forged POST is refused
            viewer = browser.new_context()
            vpage = viewer.new_page()
            vpage.set_default_timeout(WAIT * 1000)
            login(vpage, base, "victor", "victor-pw-1")
            vpage.goto(f"{base}/ui/investigations/{run_id}")
            expect(vpage.locator("#gate")).to_be_visible()
            assert vpage.locator("#approve").count() == 0
            assert vpage.locator("#deny").count() == 0
            csrf = vpage.locator("input[name=csrf]").first.get_attribute("value")
            forged = vpage.request.post(
                f"{base}/ui/investigations/{run_id}/gates/schema",
                form={"csrf": csrf or "", "decision": "approve"},
                headers={"accept": "application/json"},
            )
            assert forged.status == 403 and forged.json()["error"] == "forbidden"
            # the approver's own session, but no CSRF token: refused
            bare = page.request.post(
                f"{base}/ui/investigations/{run_id}/gates/schema",
                form={"decision": "approve"},
                headers={"accept": "application/json"},
            )
            assert bare.status == 403 and bare.json()["error"] == "csrf"
            assert contexts.load(run_id).decisions == []
            assert not column_exists(pg_dsn)

            # the approver approves; the page follows the run to healthy, live
            page.fill("#approve-reason", "adds a nullable column; safe")
            page.click("#approve")
            expect(page.locator("#run-status")).to_have_text("healthy")
            expect(page.locator("table.decisions")).to_contain_text("alice")

        finally:
            browser.close()

    assert column_exists(pg_dsn)  # the approved migration ran
    ctx = contexts.load(run_id)
    assert ctx.status == "healthy", ctx.status_reason
    [decision] = ctx.decisions
    assert (decision.who, decision.via, decision.decision) == ("alice", "dashboard", "approved")
    assert decision.origin.startswith("127.0.0.1") and decision.reason.startswith("adds a")
    wait_for("the row's new outcome", lambda: store.investigation(run_id).outcome == "healthy")
    pr = (contexts.run_dir(run_id) / "pr.md").read_text(encoding="utf-8")
    assert "### Human decisions" in pr and "| alice |" in pr and "dashboard (127.0.0.1" in pr
    html = (contexts.run_dir(run_id) / "report.html").read_text(encoding="utf-8")
    assert "Human decisions" in html and "alice" in html
    shutil.rmtree(tmp_path / "state", ignore_errors=True)
