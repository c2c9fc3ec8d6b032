"""One event, to every destination its service is routed to (or the default)."""

from __future__ import annotations

import logging

import httpx

from rootloop.notify import teams, webhook
from rootloop.notify.events import Event
from rootloop.notify.settings import NotifySettings
from rootloop.notify.slack import SlackNotifier
from rootloop.notify.state import NotifyState

log = logging.getLogger("rootloop.notify")


class Hub:
    def __init__(
        self,
        settings: NotifySettings,
        state: NotifyState,
        slack: SlackNotifier | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.settings = settings
        self.state = state
        self.slack = slack or (
            SlackNotifier(settings.slack, state) if settings.slack is not None else None
        )
        self.http = http or httpx.Client(follow_redirects=False)

    def send(self, event: Event) -> None:
        """Deliver to each destination; one failing never stops the others."""
        where = self.settings.destinations(event.service)
        if self.slack is not None and where.slack_channel:
            self.slack.handle(event, where.slack_channel)
        for name in where.teams:
            target = self.settings.teams.get(name)
            if target is None:
                continue
            self._deliver(
                "teams",
                name,
                lambda t=target: teams.post(self.http, t.url.get_secret_value(), event),
            )
        for name in where.webhooks:
            hook = self.settings.webhooks.get(name)
            if hook is None:
                continue
            self._deliver(
                "webhook",
                name,
                lambda h=hook: webhook.post(self.http, h.url, h.secret.get_secret_value(), event),
            )

    @staticmethod
    def _deliver(kind: str, name: str, call) -> None:  # type: ignore[no-untyped-def]
        try:
            status = call()
            if status >= 300:
                log.warning("%s %s answered %s", kind, name, status)
        except httpx.HTTPError as exc:
            log.warning("%s %s unreachable: %s", kind, name, type(exc).__name__)
