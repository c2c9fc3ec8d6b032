"""Slack, end to end against a local server speaking the Web API's shapes.

A real loop pauses at the schema gate (real PostgreSQL). The investigation's
thread gets: started, then the gate with Approve/Deny and the exact SQL. An
approval from Slack (signed as Slack signs) resumes the run; the gate message is
updated without its buttons and the thread ends with the outcome. Forged,
replayed and unlisted-user interactions are refused. An approval made in the
dashboard updates the Slack message just the same.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rootloop.context import ContextStore, DebugContext
from rootloop.notify.slack import SlackNotifier
from rootloop.serve.config import ServeConfig
from rootloop.serve.dashboard.board import Board
from rootloop.serve.people import attach
from rootloop.serve.slack_actions import mount
from rootloop.serve.store import Store
from tests.integration.dashboard_env import (
    SQL,
    alice,
    column_exists,
    paused_run,
    schema_drift_map,
    serving,
    wait_for,
)
from tests.integration.slack_api import SlackApi
from tests.unit.test_dashboard_access import paused

BOT = "xoxb-test-token-0000"
SIGNING = "slack-signing-secret-0123456789"
APPROVER = "U0APPROVER"


def service(tmp_path: Path, slack_base: str) -> tuple[FastAPI, ContextStore]:
    config = ServeConfig.model_validate(
        {
            "state_dir": str(tmp_path / "state"),
            "reasoner": "rules",
            "access": {
                "session_secret": "s" * 48,
                "users": [alice()],
                "public_url": "https://rootloop.example",
            },
            "notify": {
                "poll_seconds": 0.3,
                "slack": {
                    "bot_token": BOT,
                    "signing_secret": SIGNING,
                    "channel": "#alerts",
                    "base_url": slack_base + "/api/",
                    "approvers": [
                        {"user_id": APPROVER, "name": "Ada", "environments": ["staging"]}
                    ],
                },
                "routes": [{"service": "orders-api", "slack_channel": "#orders"}],
            },
        }
    )
    app = FastAPI()
    attach(app, config, Store.open(config.store_database()))
    return app, ContextStore(config.resolved_state_dir())


def signed(body: bytes, secret: str = SIGNING, at: int | None = None) -> dict[str, str]:
    ts = str(at if at is not None else int(time.time()))
    mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "x-slack-request-timestamp": ts,
        "x-slack-signature": f"v0={mac}",
        "content-type": "application/x-www-form-urlencoded",
    }


def press(value: str, action: str = "rootloop-approve", user: str = APPROVER) -> bytes:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": "ada"},
        "team": {"id": "T0TEAM", "domain": "example"},
        "channel": {"id": "C0ORDERS"},
        "trigger_id": "trigger-1",
        "actions": [{"action_id": action, "value": value}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


def texts(message: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in message.get("blocks", []) if "text" in b)


def test_a_run_paused_and_approved_from_slack(tmp_path: Path, pg_dsn: str) -> None:
    slack = SlackApi(BOT)
    with serving(slack.app) as slack_base:
        app, contexts = service(tmp_path, slack_base)
        ctx = paused_run(schema_drift_map(tmp_path, pg_dsn), tmp_path / "state")
        with serving(app) as base:
            # the thread: started, then the gate with its buttons and the exact SQL
            posts = wait_for(
                "two messages",
                lambda: len(slack.of("chat.postMessage")) >= 2 and slack.of("chat.postMessage"),
            )
            top, gate = posts[0], posts[1]
            assert top["channel"] == "#orders" and "thread_ts" not in top
            assert "Investigating orders-api" in top["text"]
            assert gate["thread_ts"] == top["_ts"]
            assert SQL in texts(gate) and "schema" in gate["text"]
            assert f"https://rootloop.example/ui/investigations/{ctx.run_id}" in texts(gate)
            approve, deny = buttons(gate)
            assert (approve["action_id"], deny["action_id"]) == (
                "rootloop-approve",
                "rootloop-deny",
            )

            hook = base + "/slack/interactions"
            body = press(approve["value"])
            # a bad signature, an old timestamp, a stranger: nothing recorded
            assert (
                httpx.post(
                    hook, content=body, headers=signed(body, "wrong-secret-0000000000")
                ).status_code
                == 401
            )
            assert (
                httpx.post(
                    hook, content=body, headers=signed(body, at=int(time.time()) - 600)
                ).status_code
                == 401
            )
            assert (
                httpx.post(
                    hook,
                    content=body,
                    headers={"content-type": "application/x-www-form-urlencoded"},
                ).status_code
                == 401
            )
            stranger = press(approve["value"], user="U0STRANGER")
            assert httpx.post(hook, content=stranger, headers=signed(stranger)).status_code == 200
            [told] = slack.of("chat.postEphemeral")
            assert told["user"] == "U0STRANGER" and "not an approver" in told["text"]
            assert contexts.load(ctx.run_id).decisions == []

            # the approver presses Approve: recorded, resumed, message updated, thread ended
            assert httpx.post(hook, content=body, headers=signed(body)).status_code == 200
            [decision] = contexts.load(ctx.run_id).decisions
            assert decision.via == "slack" and decision.who == "Ada (slack U0APPROVER)"
            assert decision.origin == "slack team example"
            updated = wait_for("the gate message updated", lambda: slack.of("chat.update"))[0]
            assert updated["ts"] == gate["_ts"] and buttons(updated) == []
            assert "Approved* by Ada" in texts(updated)
            wait_for("healthy", lambda: contexts.load(ctx.run_id).status == "healthy")
            ended = wait_for(
                "the end in the thread",
                lambda: [p for p in slack.of("chat.postMessage") if "ended healthy" in p["text"]],
            )[0]
            assert ended["thread_ts"] == top["_ts"]
            assert column_exists(pg_dsn)
            # a second press after the fact records nothing more
            assert httpx.post(hook, content=body, headers=signed(body)).status_code == 200
            assert len(contexts.load(ctx.run_id).decisions) == 1


def test_an_approval_in_the_dashboard_updates_the_slack_message(
    tmp_path: Path, pg_dsn: str
) -> None:
    slack = SlackApi(BOT)
    with serving(slack.app) as slack_base:
        app, contexts = service(tmp_path, slack_base)
        ctx = paused_run(schema_drift_map(tmp_path, pg_dsn), tmp_path / "state")
        with serving(app) as base:
            gate = wait_for(
                "the gate message",
                lambda: len(slack.of("chat.postMessage")) >= 2 and slack.of("chat.postMessage")[1],
            )
            assert buttons(gate)
            with httpx.Client(base_url=base) as web:
                form = web.get("/login").text
                csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
                web.post(
                    "/login", data={"username": "alice", "password": "alice-pw-1", "csrf": csrf}
                )
                page = web.get(f"/ui/investigations/{ctx.run_id}").text
                csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
                done = web.post(
                    f"/ui/investigations/{ctx.run_id}/gates/schema",
                    data={"csrf": csrf, "decision": "approve", "reason": "reviewed"},
                )
                assert done.status_code == 303
            updated = wait_for("the gate message updated", lambda: slack.of("chat.update"))[0]
            assert updated["ts"] == gate_ts(slack) and buttons(updated) == []
            assert "Approved* by alice via dashboard" in texts(updated)
            wait_for("healthy", lambda: contexts.load(ctx.run_id).status == "healthy")


def gate_ts(slack: SlackApi) -> str:
    """The gate message is the thread's second message."""
    return str(slack.of("chat.postMessage")[1]["_ts"])


def test_deny_from_slack_asks_for_a_reason_and_refuses_the_run(tmp_path: Path) -> None:
    """Deny opens a modal; its submission records the denial with the reason."""
    slack = SlackApi(BOT)
    with serving(slack.app) as slack_base:
        config = ServeConfig.model_validate(
            {
                "notify": {
                    "slack": {
                        "bot_token": BOT,
                        "signing_secret": SIGNING,
                        "channel": "C0ALERTS",
                        "base_url": slack_base + "/api/",
                        "approvers": [{"user_id": APPROVER, "name": "Ada"}],
                    }
                }
            }
        )
        contexts = ContextStore(tmp_path / "state")
        ctx = paused(contexts, "run-9")
        resumed: list[str] = []
        app = FastAPI()
        assert config.notify.slack is not None
        notifier = SlackNotifier(config.notify.slack, state=None)  # type: ignore[arg-type]
        mount(
            app, config.notify.slack, notifier, Board(None, contexts), resumed.append, lambda: None
        )
        c = TestClient(app)
        value = json.dumps(
            {"run": "run-9", "gate": "schema", "fp": ctx.current.action_detail.fingerprint()}
        )
        body = press(value, action="rootloop-deny")
        assert c.post("/slack/interactions", content=body, headers=signed(body)).status_code == 200
        [opened] = slack.of("views.open")
        view = opened["view"]
        assert view["callback_id"] == "rootloop-deny" and view["private_metadata"] == value
        assert contexts.load("run-9").decisions == []  # nothing until the reason is given

        def submit(reason: str) -> httpx.Response:
            payload = {
                "type": "view_submission",
                "user": {"id": APPROVER},
                "team": {"id": "T0TEAM"},
                "view": {
                    "callback_id": "rootloop-deny",
                    "private_metadata": value,
                    "state": {"values": {"reason": {"reason": {"value": reason}}}},
                },
            }
            raw = urlencode({"payload": json.dumps(payload)}).encode()
            return c.post("/slack/interactions", content=raw, headers=signed(raw))

        empty = submit("  ")
        assert empty.json()["response_action"] == "errors"
        assert submit("not during the sale").status_code == 200
        after = contexts.load("run-9")
        assert after.status == "refused" and after.decisions[0].reason == "not during the sale"
        assert after.decisions[0].via == "slack" and resumed == []


def test_an_approval_from_the_command_line_updates_the_slack_message(
    tmp_path: Path, pg_dsn: str
) -> None:
    """Resolved elsewhere — here ``rootloop approve`` on the state's machine — the gate
    message loses its buttons just the same, and says who decided and how."""
    slack = SlackApi(BOT)
    with serving(slack.app) as slack_base:
        app, contexts = service(tmp_path, slack_base)
        state = tmp_path / "state"
        ctx = paused_run(schema_drift_map(tmp_path, pg_dsn), state)
        with serving(app):
            gate = wait_for(
                "the gate message",
                lambda: len(slack.of("chat.postMessage")) >= 2 and slack.of("chat.postMessage")[1],
            )
            assert buttons(gate)
            done = subprocess.run(
                [
                    *(sys.executable, "-m", "rootloop.cli.main", "approve", ctx.run_id),
                    *("--gate", "schema", "--state-dir", str(state)),
                ],
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            updated = wait_for("the gate message updated", lambda: slack.of("chat.update"))[0]
            assert updated["ts"] == gate["_ts"] and buttons(updated) == []
            assert f"Approved* by {getpass.getuser()} via cli" in texts(updated)
            [decision] = contexts.load(ctx.run_id).decisions
            assert decision.via == "cli"
            assert contexts.load(ctx.run_id).status == "healthy"


def test_an_escalation_is_a_reply_in_the_thread_broadcast_to_the_channel(
    tmp_path: Path,
) -> None:
    slack = SlackApi(BOT)
    with serving(slack.app) as slack_base:
        app, contexts = service(tmp_path, slack_base)
        with serving(app):
            ctx = DebugContext(service="orders-api", environment="staging", run_id="run-esc")
            ctx.status = "escalated"
            ctx.status_reason = "no runbook rung fits: a human must look <@U0ALL>"
            contexts.save(ctx)
            posts = wait_for(
                "the thread's two messages",
                lambda: len(slack.of("chat.postMessage")) >= 2 and slack.of("chat.postMessage"),
            )
    top, escalated = posts[0], posts[1]
    assert top["channel"] == "#orders" and "Investigating orders-api" in top["text"]
    assert escalated["thread_ts"] == top["_ts"]
    assert str(escalated.get("reply_broadcast")).lower() == "true"  # the channel sees it too
    assert "escalated" in escalated["text"]
    shown = texts(escalated)
    assert "no runbook rung fits" in shown
    assert "<@U0ALL>" not in shown  # a reason cannot ping anyone
    assert not buttons(escalated)
