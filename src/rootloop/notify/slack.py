"""Slack: one thread per investigation, a gate message with Approve/Deny, kept current.

The thread starts with the investigation; replies say it paused at a gate (with
buttons), was escalated, or ended (with the PR). When the gate is decided — in
Slack, the dashboard, the CLI, or by a timeout — the gate message is updated in
place and its buttons removed, so nobody presses a button that no longer means
anything. Text is split to Slack's limits: 3,000 characters per section block,
50 blocks per message.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from rootloop.notify.events import Event
from rootloop.notify.settings import SlackSettings
from rootloop.notify.state import NotifyState

log = logging.getLogger("rootloop.notify.slack")

SECTION_LIMIT = 3000
BLOCK_LIMIT = 50
FALLBACK_LIMIT = 3000  # the notification text; Slack truncates beyond 40,000 anyway
ICON = {
    "started": ":mag:",
    "paused": ":double_vertical_bar:",
    "gate-resolved": ":ballot_box_with_check:",
    "escalated": ":rotating_light:",
    "healthy": ":white_check_mark:",
    "recovered": ":large_yellow_circle:",
    "not-reproduced": ":grey_question:",
    "refused": ":no_entry:",
    "failed": ":x:",
}


def escape(text: str) -> str:
    """Slack's mrkdwn control characters, escaped (a service name cannot ping @channel)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Chunks of at most ``limit`` characters, cut at line ends where possible."""
    chunks: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            chunks.append(current)
            current = ""
        current += line
    if current:
        chunks.append(current)
    return chunks or [""]


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def code_sections(code: str) -> list[dict[str, Any]]:
    fence = "```"
    room = SECTION_LIMIT - 2 * len(fence) - 2
    return [section(f"{fence}\n{escape(chunk)}\n{fence}") for chunk in split_text(code, room)]


def fit(blocks: list[dict[str, Any]], url: str | None) -> list[dict[str, Any]]:
    """At most 50 blocks: the actions (buttons) kept last, a note where text was cut."""
    if len(blocks) <= BLOCK_LIMIT:
        return blocks
    actions = [b for b in blocks if b["type"] == "actions"]
    rest = [b for b in blocks if b["type"] != "actions"]
    more = "…more in the dashboard" + (f": <{url}|open>" if url else "")
    keep = rest[: BLOCK_LIMIT - len(actions) - 1]
    return [*keep, section(more), *actions]


def button_value(event: Event) -> str:
    return json.dumps({"run": event.run_id, "gate": event.gate, "fp": event.fingerprint})


def gate_blocks(event: Event, *, buttons: bool, resolution: str = "") -> list[dict[str, Any]]:
    link = f" · <{event.url}|open in the dashboard>" if event.url else ""
    blocks = [
        section(f"{ICON['paused']} *{escape(event.headline)}*{link}"),
        section(escape(event.reason)[:SECTION_LIMIT] or " "),
    ]
    if event.plan:
        blocks.append(section("*What will be done:*"))
        blocks += code_sections(event.plan)
    if resolution:
        blocks.append(section(resolution))
    if buttons:
        value = button_value(event)
        blocks.append(
            {
                "type": "actions",
                "block_id": "rootloop-gate",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "rootloop-approve",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "style": "primary",
                        "value": value,
                    },
                    {
                        "type": "button",
                        "action_id": "rootloop-deny",
                        "text": {"type": "plain_text", "text": "Deny"},
                        "style": "danger",
                        "value": value,
                    },
                ],
            }
        )
    return fit(blocks, event.url)


def plain_blocks(event: Event) -> list[dict[str, Any]]:
    icon = ICON.get(event.status if event.kind == "ended" else event.kind, ":information_source:")
    link = f" · <{event.url}|open in the dashboard>" if event.url else ""
    blocks = [section(f"{icon} *{escape(event.headline)}*{link}")]
    if event.reason:
        blocks += [section(escape(c)) for c in split_text(event.reason)]
    if event.pr:
        blocks.append(section(f"Pull request: <{event.pr}|{escape(event.pr)}>"))
    return fit(blocks, event.url)


def resolution_text(event: Event) -> str:
    d = event.decision
    if d:
        why = f": {escape(str(d.get('reason')))}" if d.get("reason") else ""
        return (
            f"*{escape(str(d.get('decision', '')).capitalize())}* by {escape(str(d.get('who')))} "
            f"via {escape(str(d.get('via')))} at {escape(str(d.get('at', '')))}{why}"
        )
    return f"*No longer waiting*: the run is {escape(event.status)} ({escape(event.reason)})"


class SlackNotifier:
    def __init__(
        self, settings: SlackSettings, state: NotifyState, client: WebClient | None = None
    ) -> None:
        self.settings = settings
        self.state = state
        self.client = client or WebClient(
            token=settings.bot_token.get_secret_value(), base_url=settings.base_url
        )

    def handle(self, event: Event, channel: str) -> None:
        try:
            self._handle(event, channel)
        except SlackApiError as exc:
            log.warning("slack %s for %s: %s", event.kind, event.run_id, exc.response.get("error"))

    def _thread(self, event: Event, channel: str) -> tuple[str, str]:
        row = self.state.get(event.run_id) or {}
        if row.get("slack_ts"):
            return row["slack_channel"], row["slack_ts"]
        start = Event(
            "started", event.run_id, event.service, event.environment, "running", url=event.url
        )
        sent = self.client.chat_postMessage(
            channel=channel, text=start.headline, blocks=plain_blocks(start), unfurl_links=False
        )
        self.state.put(event.run_id, slack_channel=sent["channel"], slack_ts=sent["ts"])
        return sent["channel"], sent["ts"]

    def _handle(self, event: Event, channel: str) -> None:
        channel, thread = self._thread(event, channel)
        if event.kind == "started":
            return
        if event.kind == "paused":
            sent = self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread,
                text=event.headline[:FALLBACK_LIMIT],
                blocks=gate_blocks(event, buttons=True),
            )
            self.state.put(
                event.run_id,
                slack_gate_ts=sent["ts"],
                slack_gate_text=json.dumps(event.to_json()),
            )
            return
        if event.kind == "gate-resolved":
            self.resolve_gate(event)
            return
        self.client.chat_postMessage(
            channel=channel,
            thread_ts=thread,
            text=event.headline[:FALLBACK_LIMIT],
            blocks=plain_blocks(event),
            reply_broadcast=event.kind in ("escalated", "ended"),
        )

    def resolve_gate(self, event: Event) -> None:
        """The gate message, updated in place: what was decided, and no buttons."""
        row = self.state.get(event.run_id) or {}
        if not row.get("slack_gate_ts"):
            return
        shown = json.loads(row.get("slack_gate_text") or "{}")
        original = Event(**{**event.to_json(), **shown, "kind": "paused"}) if shown else event
        self.client.chat_update(
            channel=row["slack_channel"],
            ts=row["slack_gate_ts"],
            text=event.headline[:FALLBACK_LIMIT],
            blocks=gate_blocks(original, buttons=False, resolution=resolution_text(event)),
        )
        self.state.put(event.run_id, slack_gate_ts=None)
