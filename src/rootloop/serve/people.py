"""People in the loop: the dashboard, its login, Slack's buttons, the notifications.

``attach`` is the one call ``assemble.build`` makes. With neither an ``access``
nor a ``notify`` section in the config it adds nothing, and the service is
exactly the intake it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import FastAPI

from rootloop.context import ContextStore
from rootloop.serve.config import ServeConfig
from rootloop.serve.dashboard import install
from rootloop.serve.dashboard.board import Board
from rootloop.serve.dashboard.resume import DurableResumer, ThreadResumer
from rootloop.serve.store import Store


def record_outcome(store: Store, contexts: ContextStore, run_id: str) -> None:
    """A resumed run's new outcome on its investigation row (it ended ``paused`` there)."""
    import sqlalchemy as sa

    from rootloop.serve.store import investigations

    ctx = contexts.load(run_id)
    with store.engine.begin() as conn:
        conn.execute(
            investigations.update()
            .where(
                sa.or_(investigations.c.id == run_id, investigations.c.run_id == run_id),
                investigations.c.status == "ended",
            )
            .values(outcome=ctx.status, reason=ctx.status_reason[:2000], ended_at=time.time())
        )


def attach(
    app: FastAPI,
    config: ServeConfig,
    store: Store,
    send_approval: Callable[[str, str, str, str], None] | None = None,
) -> None:
    """``send_approval`` is the durable workflow's approval channel where DBOS workers
    run in this process; without it an approved run resumes in a thread here."""
    contexts = ContextStore(config.resolved_state_dir())
    board = Board(store, contexts)
    watcher = None
    notify = config.notify
    if notify.enabled:
        from rootloop.notify.hub import Hub
        from rootloop.notify.state import NotifyState
        from rootloop.serve.notifications import Watcher

        hub = Hub(notify, NotifyState(store.engine))
        public = notify.public_url or (config.access.public_url if config.access else None)
        watcher = Watcher(board, hub, notify.poll_seconds, public)
        app.state.notify_watcher = watcher
        watcher.start()
    poke = watcher.poke if watcher is not None else (lambda: None)

    def resumed(run_id: str) -> None:
        record_outcome(store, contexts, run_id)
        poke()

    resume: Callable[[str], None] = (
        DurableResumer(contexts, send_approval)
        if send_approval is not None
        else ThreadResumer(contexts, config.reasoner, on_end=resumed)
    )
    install(
        app,
        config.access,
        store,
        contexts,
        reasoner=config.reasoner,
        resume=resume,
        on_decision=lambda _ctx, _gate: poke(),
    )
    if notify.slack is not None and watcher is not None and watcher.hub.slack is not None:
        from rootloop.serve import slack_actions

        slack_actions.mount(app, notify.slack, watcher.hub.slack, board, resume, poke)
