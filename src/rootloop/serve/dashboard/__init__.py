"""The web dashboard: investigations, their gates, approvals, history, live.

``install(app, config, store)`` is the one hook the service calls: it puts the
login guard in front of the whole app and mounts the pages, when the serve
config has an ``access`` section (without one, nothing is mounted).
"""

from __future__ import annotations

from fastapi import FastAPI

from rootloop.context import ContextStore
from rootloop.serve.auth.guard import Guard
from rootloop.serve.auth.session import Sessions
from rootloop.serve.auth.settings import AccessSettings
from rootloop.serve.dashboard.board import Board
from rootloop.serve.dashboard.resume import ThreadResumer
from rootloop.serve.dashboard.routes import Dashboard, OnDecision, Resumer, mount
from rootloop.serve.store import Store

__all__ = ["Dashboard", "install"]


def install(
    app: FastAPI,
    access: AccessSettings | None,
    store: Store | None,
    contexts: ContextStore,
    *,
    reasoner: str = "auto",
    resume: Resumer | None = None,
    on_decision: OnDecision | None = None,
) -> Dashboard | None:
    if access is None:
        return None
    sessions = Sessions(access)
    dash = Dashboard(Board(store, contexts), sessions, resume or ThreadResumer(contexts, reasoner))
    if on_decision is not None:
        dash.on_decision = on_decision
    if access.oidc is not None:
        from rootloop.serve.auth.oidc import Oidc

        dash.oidc = Oidc(access, sessions)
        dash.oidc.mount(app)
    mount(app, dash)
    app.add_middleware(Guard, sessions=sessions)
    return dash
