"""The HTTP face of the service: intake routes named after their source, and operations.

Intake answers as soon as the alert is recorded and, when it starts one, the
investigation is on the durable queue: the sender never waits for the work.
Every failure has a status and a one-line reason — 401 unauthenticated, 403 not
allowed, 400 malformed, 413 too large, 503 when the store cannot take it (so
the sender retries) — and no response carries a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from rootloop import __version__
from rootloop.serve import metrics
from rootloop.serve.admission import Admission, Decision
from rootloop.serve.alerts import Alert
from rootloop.serve.config import ServeConfig
from rootloop.serve.signing import BadPayload, Forbidden, Unauthorized, check_bearer
from rootloop.serve.sources import alertmanager, eventbridge, generic, pagerduty, sns
from rootloop.serve.store import Store

log = logging.getLogger("rootloop.serve")


class TooLarge(Exception):
    pass


@dataclass
class Services:
    config: ServeConfig
    store: Store
    admission: Admission
    sns: sns.SnsVerifier
    ready: Callable[[], bool] = lambda: True
    workflow_status: Callable[[str], str | None] = lambda _id: None
    send_approval: Callable[[str, str, str, str], None] | None = None


class DecisionOut(BaseModel):
    fingerprint: str
    verdict: str
    investigation_id: str | None = None


class IntakeResponse(BaseModel):
    source: str
    accepted: int
    decisions: list[DecisionOut]


class ApprovalIn(BaseModel):
    gate: str = Field(min_length=1, max_length=40)
    approver: str = Field(min_length=1, max_length=100, pattern=r"^[\w.@ -]+$")
    # The fingerprint of the action approved (as the dashboard and `rootloop status`
    # show it). Given, the approval is refused if the run now waits on another action;
    # omitted, it binds to the action the run waits on when this request is taken.
    action: str | None = Field(default=None, min_length=1, max_length=128)


class Problem(BaseModel):
    error: str
    reason: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Malformed payload; the reason says what is wrong."},
    401: {"model": Problem, "description": "Unsigned or badly signed."},
    413: {"model": Problem, "description": "Body larger than max_body_bytes."},
    503: {"model": Problem, "description": "Not recorded; retry the delivery."},
}


def _problem(status: int, error: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": error, "reason": reason}, status_code=status)


def _validation_reason(exc: ValidationError | RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "(body)"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


SOURCES = ("alertmanager", "sns", "pagerduty", "generic", "eventbridge")


class CountRequests:
    """Intake requests by source and status (plain ASGI: no per-request task overhead).

    The source label comes from a fixed list, never from the path as sent, so a scanner
    probing /hooks/<anything> cannot grow the metric's series without bound."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/hooks/"):
            await self.app(scope, receive, send)
            return
        name = path.removeprefix("/hooks/")
        source = name if name in SOURCES else "other"
        started = time.perf_counter()

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                seconds = time.perf_counter() - started
                metrics.REQUESTS.labels(source, str(message["status"])).inc()
                metrics.INTAKE_SECONDS.labels(source).observe(seconds)
                # Server-Timing (W3C): the time spent in here, for clients and benches.
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={seconds * 1000:.1f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, counting_send)


def _handler(status: int, error: str, reason: Callable[[Any], str]):  # type: ignore[no-untyped-def]
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return _problem(status, error, reason(exc))

    return handle


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="rootloop serve",
        version=__version__,
        description="Alert intake and durable investigations for rootloop.",
    )
    app.state.services = services
    limit = services.config.max_body_bytes

    fixed: list[tuple[type[Exception], int, str, Callable[[Any], str]]] = [
        (Unauthorized, 401, "unauthorized", str),
        (Forbidden, 403, "forbidden", str),
        (BadPayload, 400, "malformed", str),
        (ValidationError, 400, "malformed", _validation_reason),
        (RequestValidationError, 400, "malformed", _validation_reason),
        (TooLarge, 413, "too-large", lambda _exc: f"body over {limit} bytes"),
    ]
    for kind, status, error, reason in fixed:
        app.add_exception_handler(kind, _handler(status, error, reason))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _problem(exc.status_code, "http", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s", request.url.path, exc_info=exc)
        return _problem(503, "unavailable", "internal error; nothing was lost, retry")

    async def body_of(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise TooLarge()
        body = await request.body()
        if len(body) > limit:
            raise TooLarge()
        return body

    def parse_json(model: type[BaseModel], body: bytes) -> Any:
        if not body.strip():
            raise BadPayload("empty body")
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            kinds = {e["type"] for e in exc.errors()}
            if "json_invalid" in kinds:
                raise BadPayload("body is not valid JSON") from None
            raise

    async def admit(source: str, found: list[Alert]) -> IntakeResponse:
        decisions: list[Decision] = await asyncio.wrap_future(services.admission.submit(found))
        for d in decisions:
            metrics.INTAKE.labels(source, d.verdict.value).inc()
            log.info(
                "alert admitted",
                extra={
                    "source": source,
                    "fingerprint": d.fingerprint,
                    "verdict": d.verdict.value,
                    "investigation": d.investigation_id or "",
                },
            )
        return IntakeResponse(
            source=source,
            accepted=len(decisions),
            decisions=[DecisionOut(**d.__dict__) for d in decisions],
        )

    app.add_middleware(CountRequests)

    cfg = services.config.sources

    @app.post("/hooks/alertmanager", status_code=202, responses=ERRORS, tags=["intake"])
    async def hook_alertmanager(request: Request) -> IntakeResponse:
        """Prometheus Alertmanager webhook (payload version 4)."""
        body = await body_of(request)
        alertmanager.authenticate(request.headers.get("authorization"), cfg.alertmanager)
        payload = parse_json(alertmanager.AmWebhook, body)
        return await admit("alertmanager", alertmanager.to_alerts(payload))

    @app.post("/hooks/pagerduty", status_code=202, responses=ERRORS, tags=["intake"])
    async def hook_pagerduty(request: Request) -> IntakeResponse:
        """PagerDuty v3 webhook, HMAC-SHA256 in X-PagerDuty-Signature."""
        body = await body_of(request)
        pagerduty.authenticate(body, request.headers.get("x-pagerduty-signature"), cfg.pagerduty)
        payload = parse_json(pagerduty.PdWebhook, body)
        return await admit("pagerduty", pagerduty.to_alerts(payload))

    @app.post("/hooks/generic", status_code=202, responses=ERRORS, tags=["intake"])
    async def hook_generic(request: Request) -> IntakeResponse:
        """Any sender: JSON alerts signed with HMAC-SHA256 over '<timestamp>.<body>'."""
        body = await body_of(request)
        generic.authenticate(
            body,
            request.headers.get(generic.TIMESTAMP_HEADER),
            request.headers.get(generic.SIGNATURE_HEADER),
            cfg.generic,
        )
        payload = parse_json(generic.GenericWebhook, body)
        return await admit("generic", generic.to_alerts(payload))

    @app.post("/hooks/eventbridge", status_code=202, responses=ERRORS, tags=["intake"])
    async def hook_eventbridge(request: Request) -> IntakeResponse:
        """EventBridge API destination: one event, 'Authorization: Bearer <key>'."""
        body = await body_of(request)
        eventbridge.authenticate(request.headers.get(cfg.eventbridge.header), cfg.eventbridge)
        payload = parse_json(eventbridge.EbEvent, body)
        return await admit("eventbridge", eventbridge.to_alerts(payload))

    @app.post("/hooks/sns", responses={**ERRORS, 403: {"model": Problem}}, tags=["intake"])
    async def hook_sns(request: Request) -> JSONResponse:
        """Amazon SNS over HTTP(S): signature verified, allow-listed topics only."""
        body = await body_of(request)
        message = services.sns.parse(body)
        await run_in_threadpool(services.sns.verify, message)
        if message.Type == "SubscriptionConfirmation":
            code = await run_in_threadpool(services.sns.confirm_subscription, message)
            log.info("sns subscription", extra={"topic": message.TopicArn, "status": code})
            return JSONResponse({"subscription": "confirmed" if code == 200 else "failed"})
        if message.Type == "UnsubscribeConfirmation":
            log.info("sns unsubscribed", extra={"topic": message.TopicArn})
            return JSONResponse({"subscription": "ended"})
        result = await admit("sns", sns.to_alerts(message))
        return JSONResponse(result.model_dump(), status_code=202)

    def reader(request: Request) -> None:
        if services.config.read.tokens:
            check_bearer(request.headers.get("authorization"), services.config.read.tokens, "read")

    @app.get("/alerts", tags=["state"], dependencies=[Depends(reader)])
    def list_alerts(
        unrouted: bool = Query(False, description="Only alerts that matched no route."),
        verdict: str | None = Query(None, max_length=20),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        """Every alert intake recorded, newest first, with its verdict."""
        return services.store.alerts(verdict="unrouted" if unrouted else verdict, limit=limit)

    @app.get("/investigations", tags=["state"], dependencies=[Depends(reader)])
    def list_investigations(
        limit: int = Query(100, ge=1, le=1000), active: bool = False
    ) -> list[dict[str, Any]]:
        return [r.public() for r in services.store.investigations(limit, active_only=active)]

    @app.get("/investigations/{investigation_id}", tags=["state"], dependencies=[Depends(reader)])
    def get_investigation(investigation_id: str) -> dict[str, Any]:
        row = services.store.investigation(investigation_id)
        if row is None:
            raise StarletteHTTPException(404, f"no investigation {investigation_id}")
        return {
            **row.public(),
            "workflow": services.workflow_status(investigation_id),
            "alerts": services.store.alerts(investigation_id=investigation_id, limit=1000),
        }

    @app.post(
        "/investigations/{investigation_id}/approve",
        status_code=202,
        tags=["state"],
        responses={**ERRORS, 403: {"model": Problem}, 404: {"model": Problem}},
    )
    async def approve_investigation(investigation_id: str, request: Request) -> dict[str, str]:
        """A human approves the gate a paused investigation waits at (e.g. ``schema``).

        Needs ``Authorization: Bearer <token>`` from ``approvals.tokens``; with none
        configured, approvals go through ``rootloop approve`` only. Production is never
        approvable. The approval reaches the waiting workflow through DBOS."""
        body = await body_of(request)
        if not services.config.approvals.tokens:
            raise Forbidden("HTTP approvals are off (no approvals.tokens); use rootloop approve")
        check_bearer(
            request.headers.get("authorization"), services.config.approvals.tokens, "approvals"
        )
        approval = parse_json(ApprovalIn, body)
        if approval.gate == "production":
            raise Forbidden("production changes are made by humans; rootloop never acts there")
        row = services.store.investigation(investigation_id)
        if row is None:
            raise StarletteHTTPException(404, f"no investigation {investigation_id}")
        if row.status != "paused" or row.gate != approval.gate:
            raise Forbidden(f"investigation is {row.status}, not waiting at gate '{approval.gate}'")
        if services.send_approval is None:
            raise Forbidden("this process runs no durable engine")
        origin = request.client.host if request.client else ""
        action = await run_in_threadpool(
            _record_approval, services.config, investigation_id, approval, origin
        )
        await run_in_threadpool(
            services.send_approval, investigation_id, approval.gate, approval.approver, action
        )
        log.info(
            "approval sent",
            extra={
                "investigation": investigation_id,
                "gate": approval.gate,
                "approver": approval.approver,
            },
        )
        return {"investigation_id": investigation_id, "gate": approval.gate, "status": "sent"}

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"model": Problem}})
    def readyz() -> JSONResponse:
        """Readiness: the store answers and the durable engine is launched."""
        try:
            services.store.ping()
        except Exception as exc:
            log.warning("store not reachable: %s", type(exc).__name__)
            return _problem(503, "not-ready", "store unreachable")
        if not services.ready():
            return _problem(503, "not-ready", "durable engine not launched")
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def prometheus_metrics() -> PlainTextResponse:
        return PlainTextResponse(
            metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    metrics.attach_store(services.store.counts)
    return app


def _record_approval(
    config: ServeConfig, investigation_id: str, approval: ApprovalIn, origin: str
) -> str:
    """Record the approval in the run's debug context (who, when, from where) and return
    the fingerprint of the action it approves, which binds the message to the workflow.

    An investigator that keeps no debug context (the recording one of bench and tests)
    has nothing to record; the action named in the request, if any, is passed on.
    """
    from rootloop import approvals
    from rootloop.context import ContextStore
    from rootloop.errors import StateError, UserError

    contexts = ContextStore(config.resolved_state_dir())
    try:
        ctx = contexts.load(investigation_id)
    except StateError:
        return approval.action or ""
    entry = ctx.current
    if entry is None or entry.action_detail is None:
        raise Forbidden(f"investigation {investigation_id} waits on no action")
    fingerprint = entry.action_detail.fingerprint()
    if approval.action is not None and approval.action != fingerprint:
        raise Forbidden(f"investigation {investigation_id} now waits on another action; look again")
    try:
        approvals.decide(
            contexts,
            investigation_id,
            approval.gate,
            "approved",
            who=approval.approver,
            via="api",
            origin=origin,
            fingerprint=fingerprint,
        )
    except approvals.NotWaiting as exc:
        raise Forbidden(str(exc)) from exc
    except UserError as exc:
        raise Forbidden(str(exc)) from exc
    return fingerprint
