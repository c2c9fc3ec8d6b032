"""Slack's Approve and Deny buttons, answered: verified, allow-listed, then decided.

Every interaction request is checked with Slack's signing secret over
``v0:<timestamp>:<body>`` (slack-sdk's ``SignatureVerifier``) and refused when
its timestamp is older than ``max_age_seconds``. Only Slack users on the
``approvers`` allow-list, for the run's environment, may decide; the decision
goes through ``rootloop.approvals.decide`` like the CLI's and the dashboard's.
Deny opens a modal asking for the reason (a denial always has one).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from slack_sdk.signature import SignatureVerifier
from starlette.concurrency import run_in_threadpool

from rootloop.approvals import NotWaiting, decide
from rootloop.errors import UserError
from rootloop.notify.settings import SlackSettings
from rootloop.notify.slack import SlackNotifier
from rootloop.serve.dashboard.board import Board

log = logging.getLogger("rootloop.serve.slack")
DENY_CALLBACK = "rootloop-deny"
MAX_BODY = 64 * 1024


def verified(settings: SlackSettings, body: bytes, headers: Any, now: float | None = None) -> bool:
    timestamp = headers.get("x-slack-request-timestamp") or ""
    signature = headers.get("x-slack-signature") or ""
    if (
        not timestamp.isdigit()
        or abs((now or time.time()) - int(timestamp)) > settings.max_age_seconds
    ):
        return False
    verifier = SignatureVerifier(settings.signing_secret.get_secret_value())
    return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)


def mount(
    app: FastAPI,
    settings: SlackSettings,
    slack: SlackNotifier,
    board: Board,
    resume: Callable[[str], None],
    decided: Callable[[], None],
) -> None:
    def tell(payload: dict[str, Any], text: str) -> None:
        channel = (payload.get("channel") or {}).get("id")
        user = (payload.get("user") or {}).get("id")
        if channel and user:
            slack.client.chat_postEphemeral(channel=channel, user=user, text=text)

    def act(payload: dict[str, Any], value: str, verdict: str, reason: str) -> str | None:
        """Decide; the reason it could not, or None."""
        user = payload.get("user") or {}
        approver = settings.approver(str(user.get("id", "")))
        try:
            target = json.loads(value)
            run_id, gate, fp = str(target["run"]), str(target["gate"]), target.get("fp") or None
        except (ValueError, KeyError, TypeError):
            return "this button does not name a run"
        item = board.item(run_id)
        if item is None:
            return f"no investigation {run_id}"
        if approver is None or not approver.may_approve(item.environment):
            log.warning(
                "slack decision refused", extra={"slack_user": user.get("id"), "run": run_id}
            )
            return f"you are not an approver for {item.environment}"
        team = (payload.get("team") or {}).get("domain") or (payload.get("team") or {}).get(
            "id", ""
        )
        who = approver.name or user.get("username") or user.get("name") or approver.user_id
        try:
            decide(
                board.contexts,
                run_id,
                gate,
                verdict,  # type: ignore[arg-type]
                who=f"{who} (slack {approver.user_id})",
                via="slack",
                origin=f"slack team {team}" if team else "slack",
                reason=reason,
                fingerprint=fp,
            )
        except NotWaiting as exc:
            return str(exc)
        except UserError as exc:
            return str(exc)
        if verdict == "approved":
            resume(run_id)
        decided()
        return None

    @app.post("/slack/interactions", include_in_schema=False)
    async def interactions(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "too-large", "reason": "body too large"}, 413)
        if not verified(settings, body, request.headers):
            return JSONResponse({"error": "unauthorized", "reason": "bad Slack signature"}, 401)
        try:
            payload = json.loads(parse_qs(body.decode())["payload"][0])
        except (KeyError, ValueError, IndexError):
            return JSONResponse({"error": "malformed", "reason": "no payload"}, 400)
        kind = payload.get("type")
        if kind == "block_actions":
            for action in payload.get("actions") or []:
                aid, value = action.get("action_id"), str(action.get("value", ""))
                if aid == "rootloop-approve":
                    problem = await run_in_threadpool(act, payload, value, "approved", "")
                    if problem:
                        await run_in_threadpool(tell, payload, f"Not recorded: {problem}")
                elif aid == "rootloop-deny" and payload.get("trigger_id"):
                    await run_in_threadpool(
                        slack.client.views_open,
                        trigger_id=payload["trigger_id"],
                        view=deny_modal(value),
                    )
            return Response(status_code=200)
        if (
            kind == "view_submission"
            and (payload.get("view") or {}).get("callback_id") == DENY_CALLBACK
        ):
            view = payload["view"]
            reason = ((view.get("state") or {}).get("values") or {}).get("reason", {}).get(
                "reason", {}
            ).get("value") or ""
            problem = await run_in_threadpool(
                act, payload, view.get("private_metadata", ""), "denied", reason
            )
            if problem:
                return JSONResponse(
                    {"response_action": "errors", "errors": {"reason": problem[:150]}}
                )
            return Response(status_code=200)
        return Response(status_code=200)


def deny_modal(value: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": DENY_CALLBACK,
        "private_metadata": value,
        "title": {"type": "plain_text", "text": "Deny this action"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why not?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "reason",
                    "multiline": True,
                    "min_length": 3,
                    "max_length": 2000,
                },
            }
        ],
    }
