"""Notifications: Slack's limits, Teams' card, the signed webhook, routing per service."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from rootloop.notify import teams, webhook
from rootloop.notify.events import Event
from rootloop.notify.hub import Hub
from rootloop.notify.settings import NotifySettings
from rootloop.notify.slack import BLOCK_LIMIT, SECTION_LIMIT, gate_blocks, split_text


def gate_event(plan: str, reason: str = "changes the schema") -> Event:
    return Event(
        "paused",
        "run-1",
        "orders-api",
        "staging",
        "paused",
        reason=reason,
        gate="schema",
        plan=plan,
        fingerprint="abc",
        url="https://rootloop.example/ui/investigations/run-1",
    )


def test_long_content_is_split_to_slacks_block_limits_and_keeps_the_buttons() -> None:
    sql = "\n".join(f"ALTER TABLE t{i} ADD COLUMN c{i} int; -- {'x' * 80}" for i in range(3000))
    blocks = gate_blocks(gate_event(sql, reason="r" * 5000), buttons=True)
    assert len(blocks) <= BLOCK_LIMIT
    assert all(len(b["text"]["text"]) <= SECTION_LIMIT for b in blocks if "text" in b)
    assert blocks[-1]["type"] == "actions" and len(blocks[-1]["elements"]) == 2
    assert any("more in the dashboard" in b["text"]["text"] for b in blocks if "text" in b)
    one_line = split_text("y" * 7000)
    assert [len(c) for c in one_line] == [3000, 3000, 1000]
    assert "".join(split_text("a\nb\n" * 2000)) == "a\nb\n" * 2000


def test_slack_text_cannot_ping_or_link() -> None:
    blocks = gate_blocks(gate_event("x", reason="<!channel> <http://evil|click>"), buttons=False)
    text = json.dumps(blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text


def test_teams_gets_an_adaptive_card_and_the_webhook_a_verifiable_signature() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    settings = NotifySettings.model_validate(
        {
            "teams": {"ops": {"url": "https://example.webhook.office.com/hook/abc"}},
            "webhooks": {
                "pager": {
                    "url": "https://hooks.example/rootloop",
                    "secret": "webhook-secret-0123456789",
                }
            },
            "routes": [{"service": "orders-api", "teams": ["ops"], "webhooks": ["pager"]}],
            "default": {"webhooks": ["pager"]},
        }
    )
    hub = Hub(settings, state=None, http=httpx.Client(transport=httpx.MockTransport(answer)))  # type: ignore[arg-type]
    hub.send(gate_event("ALTER TABLE t ADD COLUMN c int"))
    card_req, hook_req = seen
    card = json.loads(card_req.content)["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    assert "ALTER TABLE t ADD COLUMN c int" in json.dumps(card["content"]["body"])
    ts = hook_req.headers["x-rootloop-timestamp"]
    want = hmac.new(
        b"webhook-secret-0123456789", f"{ts}.".encode() + hook_req.content, hashlib.sha256
    ).hexdigest()
    assert hook_req.headers["x-rootloop-signature"] == f"sha256={want}"
    assert json.loads(hook_req.content)["event"] == "paused"
    assert webhook.signature("k" * 16, 1, b"{}") != webhook.signature("k" * 16, 2, b"{}")

    seen.clear()
    hub.send(Event("ended", "run-2", "billing", "staging", "healthy", pr="https://git/pr/1"))
    [only] = seen  # billing has no route: the default (the webhook only)
    assert str(only.url) == "https://hooks.example/rootloop"
    assert teams.card(Event("ended", "r", "s", "e", "healthy"))["type"] == "message"


def test_a_failing_destination_does_not_stop_the_others() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if "down" in str(request.url):
            raise httpx.ConnectError("refused")
        return httpx.Response(200)

    settings = NotifySettings.model_validate(
        {
            "webhooks": {
                "a": {"url": "https://down.example/", "secret": "s" * 16},
                "b": {"url": "https://up.example/", "secret": "s" * 16},
            },
            "default": {"webhooks": ["a", "b"]},
        }
    )
    hub = Hub(settings, state=None, http=httpx.Client(transport=httpx.MockTransport(answer)))  # type: ignore[arg-type]
    hub.send(Event("started", "r", "svc", "staging", "running"))
    assert calls == ["https://down.example/", "https://up.example/"]
