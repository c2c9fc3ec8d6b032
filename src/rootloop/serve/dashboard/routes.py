"""The dashboard's pages and its small JSON API, mounted on the service's app.

Pages live under ``/ui``; the login under ``/login``; the JSON API under
``/api``. The guard (``rootloop.serve.auth.guard``) has already authenticated
every request here and checked its CSRF token when it changes anything; these
routes check what the person may do (approve, and where).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from rootloop.approvals import NotWaiting, Verdict, decide
from rootloop.context import DebugContext
from rootloop.errors import RootloopError, UserError
from rootloop.redact import Redactor
from rootloop.serve.auth.passwords import DUMMY, verify_password
from rootloop.serve.auth.session import COOKIE, PRE_COOKIE, Principal, Sessions
from rootloop.serve.auth.throttle import Throttle
from rootloop.serve.dashboard.board import STATUS_CLASS, Board, age, plan_of
from rootloop.serve.dashboard.detail import detail_of

log = logging.getLogger("rootloop.serve.dashboard")
HERE = Path(__file__).parent
LIVE_POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0

Resumer = Callable[[str], None]
OnDecision = Callable[[DebugContext, str], None]


@dataclass
class Dashboard:
    board: Board
    sessions: Sessions
    resume: Resumer
    on_decision: OnDecision = lambda _ctx, _gate: None
    oidc: Any = None  # rootloop.serve.auth.oidc.Oidc when single sign-on is configured
    throttle: Throttle = field(default_factory=Throttle)


class DecisionIn(BaseModel):
    decision: Verdict
    reason: str = Field(default="", max_length=2000)
    fingerprint: str | None = None


def principal_of(request: Request) -> Principal:
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):  # the guard lets nobody through without one
        raise PermissionError("no principal")
    return principal


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/ui"
    parts = urlsplit(target)
    return "/ui" if parts.scheme or parts.netloc or "\\" in target else target


def origin_of(request: Request) -> str:
    client = request.client.host if request.client else "?"
    forwarded = request.headers.get("x-forwarded-for")
    return f"{client} (forwarded for {forwarded[:100]})" if forwarded else client


def mount(app: FastAPI, dash: Dashboard) -> None:
    app.state.dashboard = dash
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(STATUS_CLASS=STATUS_CLASS, age=age)
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")
    router = APIRouter(include_in_schema=False)
    board = dash.board

    def page(request: Request, name: str, code: int = 200, **data: Any) -> HTMLResponse:
        principal = request.scope.get("state", {}).get("principal")
        response = templates.TemplateResponse(
            request,
            name,
            {"me": principal, "csrf": principal.csrf if principal else "", **data},
            status_code=code,
        )
        response.headers["cache-control"] = "no-store"
        return response

    # -- login ------------------------------------------------------------------
    @router.get("/login")
    def login_page(request: Request, next: str | None = None, error: str = "") -> HTMLResponse:
        cookie, csrf = dash.sessions.issue_pre()
        response = page(
            request,
            "login.html",
            next=safe_next(next),
            login_csrf=csrf,
            error=error[:200],
            sso=dash.oidc is not None,
        )
        _set_cookie(response, request, PRE_COOKIE, cookie, 3600)
        return response

    @router.post("/login")
    async def login(
        request: Request,
        username: str = Form("", max_length=100),
        password: str = Form("", max_length=1000),
        next: str = Form("/ui", max_length=2000),
    ) -> Response:
        keys = (
            f"user:{username.lower()}",
            f"addr:{request.client.host if request.client else '?'}",
        )
        if dash.throttle.blocked(*keys):
            log.warning(
                "login throttled", extra={"user": username[:100], "from": origin_of(request)}
            )
            return RedirectResponse(
                "/login?error=too+many+failed+logins%3B+wait+and+retry&next=" + safe_next(next),
                status_code=303,
            )
        user = dash.sessions.settings.user(username)
        ok = await run_in_threadpool(
            verify_password, password, user.password_hash if user else DUMMY
        )
        if user is None or not ok:
            dash.throttle.failed(*keys)
            log.warning("failed login", extra={"user": username[:100], "from": origin_of(request)})
            return RedirectResponse(
                "/login?error=wrong+name+or+password&next=" + safe_next(next), status_code=303
            )
        cookie, _ = dash.sessions.issue(user.name, "password")
        response = RedirectResponse(safe_next(next), status_code=303)
        _set_cookie(
            response, request, COOKIE, cookie, int(dash.sessions.settings.session_hours * 3600)
        )
        response.delete_cookie(PRE_COOKIE, path="/")
        log.info("login", extra={"user": user.name, "from": origin_of(request)})
        return response

    @router.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # -- pages --------------------------------------------------------------------
    @router.get("/")
    def root() -> Response:
        return RedirectResponse("/ui", status_code=303)

    @router.get("/ui")
    async def investigations(
        request: Request,
        status: str | None = Query(None, max_length=20),
        service: str | None = Query(None, max_length=200),
        partial: bool = False,
    ) -> HTMLResponse:
        items = await run_in_threadpool(board.items, status or None, service or None)
        services = sorted({i.service for i in await run_in_threadpool(board.items)})
        return page(
            request,
            "list_rows.html" if partial else "list.html",
            items=items,
            services=services,
            status=status or "",
            service=service or "",
            statuses=list(STATUS_CLASS),
        )

    @router.get("/ui/gates")
    async def gates(request: Request, partial: bool = False) -> HTMLResponse:
        pending = await run_in_threadpool(board.pending)
        plans = []
        for item in pending:
            ctx = board.context(item.id)
            entry = ctx.current if ctx else None
            if entry and entry.action_detail:
                plans.append((item, plan_of(entry.action_detail, Redactor())))
        return page(request, "gates_rows.html" if partial else "gates.html", plans=plans)

    @router.get("/ui/investigations/{inv_id}")
    async def investigation(request: Request, inv_id: str, partial: bool = False) -> HTMLResponse:
        view = await run_in_threadpool(detail_of, board, inv_id)
        if view is None:
            return page(request, "missing.html", code=404, what=inv_id)
        me = principal_of(request)
        return page(
            request,
            "detail_live.html" if partial else "detail.html",
            v=view,
            may_approve=me.may_approve(view.item.environment),
        )

    @router.get("/ui/investigations/{inv_id}/report")
    def report(inv_id: str) -> Response:
        try:
            path = board.run_dir(inv_id) / "report.html"
        except RootloopError:
            return JSONResponse({"error": "http", "reason": "not found"}, status_code=404)
        if not path.exists():
            return JSONResponse({"error": "http", "reason": "no report yet"}, status_code=404)
        response = FileResponse(path, media_type="text/html")
        # the report is self-contained: no script runs, nothing is fetched
        response.headers["content-security-policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
        )
        return response

    @router.get("/ui/investigations/{inv_id}/pr")
    def pr_body(inv_id: str) -> Response:
        """The PR body as written (when the map has no repository, it is the record)."""
        try:
            path = board.run_dir(inv_id) / "pr.md"
        except RootloopError:
            path = None
        if path is None or not path.exists():
            return JSONResponse({"error": "http", "reason": "no PR body yet"}, status_code=404)
        text = Redactor().text(path.read_text(encoding="utf-8"))
        return PlainTextResponse(
            text,
            media_type="text/markdown; charset=utf-8",
            headers={"x-content-type-options": "nosniff"},
        )

    @router.post("/ui/investigations/{inv_id}/gates/{gate}")
    async def decide_form(
        request: Request,
        inv_id: str,
        gate: str,
        decision: str = Form(..., max_length=10),
        reason: str = Form("", max_length=2000),
        fingerprint: str = Form("", max_length=200),
    ) -> Response:
        if decision not in ("approve", "deny"):
            return JSONResponse({"error": "malformed", "reason": "approve or deny"}, 400)
        verdict: Verdict = "approved" if decision == "approve" else "denied"
        result = await _decide(
            request, inv_id, gate, verdict, reason, fingerprint or None, "dashboard"
        )
        if isinstance(result, Response):
            if "text/html" in request.headers.get("accept", ""):
                body = bytes(result.body).decode() if hasattr(result, "body") else ""
                return page(
                    request,
                    "refused.html",
                    code=result.status_code,
                    what=inv_id,
                    reason=_reason(body),
                )
            return result
        return RedirectResponse(f"/ui/investigations/{inv_id}", status_code=303)

    @router.get("/ui/history")
    async def history(request: Request, q: str = Query("", max_length=500)) -> HTMLResponse:
        hits: list[Any] = []
        error = ""
        if q.strip():
            try:
                hits = await run_in_threadpool(_search, board, q)
            except RootloopError as exc:
                error = str(exc)
        return page(request, "history.html", q=q, hits=hits, error=error)

    @router.get("/ui/events")
    async def events(request: Request) -> StreamingResponse:
        """Server-sent events: ``change`` whenever what the pages show has changed."""

        async def stream() -> AsyncIterator[str]:
            last = ""
            quiet = 0.0
            yield "retry: 3000\n\n"
            while not await request.is_disconnected():
                version = await run_in_threadpool(board.version)
                if version != last:
                    if last:
                        yield f"event: change\ndata: {version}\n\n"
                    last = version
                    quiet = 0.0
                elif quiet >= HEARTBEAT_SECONDS:
                    yield ": keep-alive\n\n"
                    quiet = 0.0
                await asyncio.sleep(LIVE_POLL_SECONDS)
                quiet += LIVE_POLL_SECONDS

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    # -- JSON API (tokens or sessions) --------------------------------------------
    @router.get("/api/investigations")
    async def api_list(
        status: str | None = Query(None, max_length=20),
        service: str | None = Query(None, max_length=200),
    ) -> list[dict[str, Any]]:
        items = await run_in_threadpool(board.items, status, service)
        return [i.__dict__ for i in items]

    @router.post("/api/investigations/{inv_id}/gates/{gate}")
    async def api_decide(request: Request, inv_id: str, gate: str, body: DecisionIn) -> Response:
        result = await _decide(
            request, inv_id, gate, body.decision, body.reason, body.fingerprint, "api"
        )
        if isinstance(result, Response):
            return result
        return JSONResponse({"run": inv_id, "gate": gate, "decision": body.decision})

    async def _decide(
        request: Request,
        inv_id: str,
        gate: str,
        verdict: Verdict,
        reason: str,
        fingerprint: str | None,
        via: str,
    ) -> DebugContext | Response:
        me = principal_of(request)
        item = await run_in_threadpool(board.item, inv_id)
        if item is None:
            return JSONResponse({"error": "http", "reason": f"no investigation {inv_id}"}, 404)
        if not me.may_approve(item.environment):
            log.warning(
                "decision refused",
                extra={"user": me.name, "run": inv_id, "environment": item.environment},
            )
            return JSONResponse(
                {
                    "error": "forbidden",
                    "reason": f"{me.name} may not decide gates in '{item.environment}'",
                },
                403,
            )
        try:
            ctx = await run_in_threadpool(
                decide,
                board.contexts,
                inv_id,
                gate,
                verdict,
                who=me.name,
                via=via,
                origin=origin_of(request),
                reason=reason,
                fingerprint=fingerprint,
            )
        except NotWaiting as exc:
            return JSONResponse({"error": "conflict", "reason": str(exc)}, 409)
        except UserError as exc:
            return JSONResponse({"error": "malformed", "reason": str(exc)}, 400)
        log.info("gate %s %s", gate, verdict, extra={"user": me.name, "run": inv_id})
        dash.on_decision(ctx, gate)
        if verdict == "approved":
            # Off the event loop: the durable resumer writes to DBOS's database, whose
            # synchronous client refuses to run inside a running loop.
            await run_in_threadpool(dash.resume, inv_id)
        return ctx

    app.include_router(router)


def _reason(body: str) -> str:
    import json

    try:
        return str(json.loads(body).get("reason", ""))
    except ValueError:
        return body[:200]


def _search(board: Board, q: str) -> list[Any]:
    from rootloop.memory import Memory

    return Memory(board.contexts.root / "memory").search(q, k=20)


def _set_cookie(response: Response, request: Request, name: str, value: str, age_s: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age_s,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def _secure(request: Request) -> bool:
    sessions: Sessions = request.app.state.dashboard.sessions
    return sessions.secure(request.url.scheme)
