"""The service assembled from its config: store, router, admission, durable engine, app."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from rootloop.serve.admission import Admission, Ticket
from rootloop.serve.app import Services, create_app
from rootloop.serve.config import ServeConfig
from rootloop.serve.routing import Router
from rootloop.serve.sources.sns import CertFetcher, SnsVerifier
from rootloop.serve.store import Store


def build(
    config: ServeConfig,
    *,
    enqueue: Callable[[Ticket], None] | None = None,
    cert_fetcher: CertFetcher | None = None,
    confirm: Callable[[str], int] | None = None,
) -> FastAPI:
    """With ``enqueue`` None, DBOS is launched in this process and investigations run on it."""
    router = Router.load(config.routes)
    store = Store.open(config.store_database())
    ready: Callable[[], bool] = lambda: True  # noqa: E731
    workflow_status: Callable[[str], str | None] = lambda _id: None  # noqa: E731
    send_approval = None
    if enqueue is None:
        from rootloop.serve import durable

        durable.launch(config, store)
        enqueue = durable.enqueue
        ready = durable.launched
        workflow_status = durable.workflow_status
        send_approval = durable.send_approval
    admission = Admission(store, router, config.storms, enqueue)
    verifier = SnsVerifier(config.sources.sns, fetch=cert_fetcher, confirm=confirm)
    app = create_app(
        Services(config, store, admission, verifier, ready, workflow_status, send_approval)
    )
    from rootloop.serve.people import attach  # the dashboard, its login, notifications

    attach(app, config, store, send_approval)
    return app
