"""Microsoft Teams: an Adaptive Card per event, posted to an incoming webhook.

Teams' incoming webhooks cannot call back, so the card carries no Approve
button: it links to the dashboard, where the decision is made and recorded.
"""

from __future__ import annotations

from typing import Any

import httpx

from rootloop.notify.events import Event

COLOUR = {"paused": "Warning", "escalated": "Attention", "started": "Accent"}
# the report's colours in Adaptive Cards' words: amber recovered-without-a-fix, grey
# not reproduced (Default)
ENDED = {"healthy": "Good", "recovered": "Warning", "refused": "Attention", "failed": "Attention"}
TEXT_LIMIT = 20_000  # Teams refuses messages over ~28 KB; keep well under


def card(event: Event) -> dict[str, Any]:
    colour = (
        ENDED.get(event.status, "Default")
        if event.kind == "ended"
        else COLOUR.get(event.kind, "Default")
    )
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Medium",
            "weight": "Bolder",
            "wrap": True,
            "color": colour,
            "text": event.headline,
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": "Run", "value": event.run_id},
                {"title": "Service", "value": event.service},
                {"title": "Environment", "value": event.environment},
                {"title": "Status", "value": event.status},
            ],
        },
    ]
    if event.reason:
        body.append({"type": "TextBlock", "wrap": True, "text": event.reason[:TEXT_LIMIT]})
    if event.plan:
        body.append(
            {
                "type": "TextBlock",
                "wrap": True,
                "fontType": "Monospace",
                "text": event.plan[:TEXT_LIMIT],
            }
        )
    actions = []
    if event.url:
        actions.append(
            {"type": "Action.OpenUrl", "title": "Open in the dashboard", "url": event.url}
        )
    if event.pr:
        actions.append({"type": "Action.OpenUrl", "title": "Pull request", "url": event.pr})
    content = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": actions,
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": content}
        ],
    }


def post(client: httpx.Client, url: str, event: Event) -> int:
    return client.post(url, json=card(event), timeout=15).status_code
