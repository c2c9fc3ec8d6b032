"""The gate in front of every page and state route: a login, and CSRF on every change.

A plain ASGI middleware, so it covers routes it does not know about (the
service's own ``/investigations`` and ``/alerts``, the OpenAPI pages) as well as
the dashboard's. Open without a login: the alert intake (``/hooks/*``, which
authenticates each sender itself), liveness and readiness, the login pages,
static files, and Slack's interaction endpoint (verified by Slack's signature).

State-changing requests (anything but GET/HEAD/OPTIONS) made with a session
cookie must carry the session's CSRF token (form field ``csrf`` or header
``X-CSRF-Token``) and, when the browser sends an ``Origin``, come from this
host. Requests with a bearer token carry no ambient credential and need no
CSRF token.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from rootloop.serve.auth.session import COOKIE, PRE_COOKIE, Sessions

OPEN_PREFIXES = ("/hooks/", "/ui/static/", "/auth/oidc/", "/slack/")
OPEN_PATHS = {"/healthz", "/readyz", "/login", "/favicon.ico"}
SAFE = {"GET", "HEAD", "OPTIONS"}
MAX_FORM = 64 * 1024


def cookies_of(scope: dict[str, Any]) -> dict[str, str]:
    raw = b"; ".join(v for k, v in scope.get("headers", []) if k == b"cookie").decode("latin-1")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:
        return {}
    return {k: m.value for k, m in jar.items()}


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k == name:
            return bytes(v).decode("latin-1")
    return None


async def _deny(send: Any, status: int, error: str, reason: str) -> None:
    body = json.dumps({"error": error, "reason": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Any, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


class Guard:
    def __init__(self, app: Any, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            if path == "/login" and method not in SAFE:
                await self._with_csrf(scope, receive, send, self._pre_token(scope))
                return
            await self.app(scope, receive, send)
            return
        principal = self.sessions.bearer(header(scope, b"authorization"))
        by_cookie = principal is None
        if principal is None:
            principal = self.sessions.principal(cookies_of(scope).get(COOKIE))
        if principal is None:
            accept = header(scope, b"accept") or ""
            if method in SAFE and "text/html" in accept:
                target = path + (
                    "?" + scope["query_string"].decode() if scope["query_string"] else ""
                )
                await _redirect(send, "/login?next=" + quote(target, safe=""))
            else:
                await _deny(send, 401, "unauthorized", "log in, or send 'Authorization: Bearer'")
            return
        scope.setdefault("state", {})["principal"] = principal
        if method in SAFE or not by_cookie:
            await self.app(scope, receive, send)
            return
        await self._with_csrf(scope, receive, send, principal.csrf)

    def _pre_token(self, scope: dict[str, Any]) -> str | None:
        return self.sessions.pre_csrf(cookies_of(scope).get(PRE_COOKIE))

    async def _with_csrf(self, scope: Any, receive: Any, send: Any, expected: str | None) -> None:
        origin = header(scope, b"origin")
        host = header(scope, b"host") or ""
        if origin and origin != "null" and urlsplit(origin).netloc != host:
            await _deny(send, 403, "forbidden", "cross-origin request refused")
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM:
                await _deny(send, 413, "too-large", f"body over {MAX_FORM} bytes")
                return
        presented = header(scope, b"x-csrf-token")
        ctype = header(scope, b"content-type") or ""
        if presented is None and ctype.startswith("application/x-www-form-urlencoded"):
            presented = next(
                iter(parse_qs(body.decode("utf-8", "replace")).get("csrf") or []), None
            )
        if not expected or not presented or not hmac.compare_digest(presented, expected):
            await _deny(send, 403, "csrf", "missing or wrong CSRF token; reload the page")
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                message: dict[str, Any] = await receive()
                return message
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
