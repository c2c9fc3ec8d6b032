"""Single sign-on with OpenID Connect (authorization code flow with PKCE), via authlib.

``/auth/oidc/login`` sends the browser to the issuer with a fresh ``state``,
``nonce`` and PKCE verifier, kept in a signed, HttpOnly, ten-minute cookie;
``/auth/oidc/callback`` checks the state, exchanges the code (authlib's OAuth2
client, with the client secret), and verifies the ID token with joserfc (the JOSE
library authlib builds on) against the issuer's JWKS: signature, issuer,
audience, expiry and nonce. The person's grant comes from their groups claim
through ``oidc.groups``; someone in no mapped group gets ``oidc.default`` or, if
there is none, no session at all.

The issuer must be https, except on loopback (tests and local identity providers).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from rootloop.serve.auth.session import COOKIE, Sessions
from rootloop.serve.auth.settings import AccessSettings, Grant, OidcSettings

log = logging.getLogger("rootloop.serve.oidc")
FLOW_COOKIE = "rootloop_oidc"
FLOW_SECONDS = 600
CACHE_SECONDS = 300
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class OidcError(Exception):
    pass


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_issuer(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname or "")):
        raise OidcError(f"OIDC issuer must be https (got {parts.scheme}://{parts.hostname})")


def grant_for(settings: OidcSettings, claims: dict[str, Any]) -> Grant | None:
    """The highest grant among the person's mapped groups, else the default, else none."""
    groups = claims.get(settings.groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    granted = [settings.groups[g] for g in groups if isinstance(g, str) and g in settings.groups]
    if not granted:
        return settings.default
    rank = {"viewer": 0, "approver": 1, "admin": 2}
    best = max(granted, key=lambda g: rank[g.role])
    envs = sorted({e for g in granted if g.role == best.role for e in g.environments})
    return Grant(role=best.role, environments=envs)


class Oidc:
    def __init__(self, access: AccessSettings, sessions: Sessions) -> None:
        assert access.oidc is not None
        self.access = access
        self.settings = access.oidc
        self.sessions = sessions
        check_issuer(self.settings.issuer)
        self._meta: tuple[float, dict[str, Any]] | None = None
        self._jwks: tuple[float, dict[str, Any]] | None = None

    async def metadata(self) -> dict[str, Any]:
        if self._meta and time.monotonic() - self._meta[0] < CACHE_SECONDS:
            return self._meta[1]
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
            meta: dict[str, Any] = (await client.get(url)).raise_for_status().json()
        if meta.get("issuer") != self.settings.issuer:
            raise OidcError("the issuer's discovery document names another issuer")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            check_issuer(str(meta.get(key, "")))
        self._meta = (time.monotonic(), meta)
        return meta

    async def keys(self, meta: dict[str, Any], refresh: bool = False) -> KeySet:
        if refresh or not self._jwks or time.monotonic() - self._jwks[0] > CACHE_SECONDS:
            async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
                self._jwks = (
                    time.monotonic(),
                    (await client.get(meta["jwks_uri"])).raise_for_status().json(),
                )
        return KeySet.import_key_set(self._jwks[1])  # type: ignore[arg-type]

    def redirect_uri(self, request: Request) -> str:
        base = self.access.public_url or str(request.base_url)
        return base.rstrip("/") + "/auth/oidc/callback"

    def client(self, request: Request) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret.get_secret_value(),
            scope=self.settings.scopes,
            redirect_uri=self.redirect_uri(request),
            code_challenge_method="S256",
            timeout=10,
        )

    async def verify(self, id_token: str, nonce: str, meta: dict[str, Any]) -> dict[str, Any]:
        registry = jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.client_id},
            nonce={"essential": True, "value": nonce},
            exp={"essential": True},
            sub={"essential": True},
        )
        for refresh in (False, True):  # a key rotated since the last fetch: fetch once more
            try:
                token = jwt.decode(id_token, await self.keys(meta, refresh), algorithms=ALGORITHMS)
                registry.validate(token.claims)
                return dict(token.claims)
            except JoseError as exc:
                error = exc
        raise OidcError(f"ID token refused: {type(error).__name__}")

    def mount(self, app: FastAPI) -> None:
        @app.get("/auth/oidc/login", include_in_schema=False)
        async def start(request: Request, next: str = "/ui") -> Response:
            from rootloop.serve.dashboard.routes import safe_next

            meta = await self.metadata()
            state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            verifier = secrets.token_urlsafe(48)
            url, _ = self.client(request).create_authorization_url(
                meta["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
            )
            flow = self.sessions.seal(
                {"s": state, "n": nonce, "v": verifier, "r": safe_next(next)}, FLOW_SECONDS
            )
            response = RedirectResponse(url, status_code=303)
            response.set_cookie(
                FLOW_COOKIE,
                flow,
                max_age=FLOW_SECONDS,
                path="/auth/oidc/",
                httponly=True,
                samesite="lax",
                secure=self.sessions.secure(request.url.scheme),
            )
            return response

        @app.get("/auth/oidc/callback", include_in_schema=False)
        async def callback(request: Request) -> Response:
            flow = self.sessions.unseal(request.cookies.get(FLOW_COOKIE))
            params = request.query_params
            if flow is None or not secrets.compare_digest(
                str(params.get("state", "")), str(flow.get("s", ""))
            ):
                return refused("the sign-in round trip did not match; start again")
            if "error" in params or "code" not in params:
                return refused("the identity provider did not sign you in")
            try:
                meta = await self.metadata()
                async with self.client(request) as client:
                    token = await client.fetch_token(
                        meta["token_endpoint"],
                        code=params["code"],
                        code_verifier=str(flow["v"]),
                    )
                claims = await self.verify(str(token.get("id_token", "")), str(flow["n"]), meta)
            except (OidcError, httpx.HTTPError, ValueError, KeyError) as exc:
                log.warning("oidc sign-in refused: %s", exc)
                return refused("the sign-in could not be verified")
            except Exception as exc:  # authlib's OAuth errors (a refused code) among them
                log.warning("oidc sign-in refused: %s", type(exc).__name__)
                return refused("the sign-in could not be verified")
            grant = grant_for(self.settings, claims)
            name = str(claims.get(self.settings.name_claim) or claims["sub"])[:100]
            if grant is None:
                log.warning("oidc user in no mapped group", extra={"user": name})
                return refused(f"{name} has no role in rootloop; ask an admin")
            cookie, _ = self.sessions.issue(name, "oidc", grant)
            response = RedirectResponse(str(flow.get("r") or "/ui"), status_code=303)
            response.set_cookie(
                COOKIE,
                cookie,
                max_age=int(self.access.session_hours * 3600),
                path="/",
                httponly=True,
                samesite="lax",
                secure=self.sessions.secure(request.url.scheme),
            )
            response.delete_cookie(FLOW_COOKIE, path="/auth/oidc/")
            log.info("oidc login", extra={"user": name, "role": grant.role})
            return response


def refused(reason: str) -> HTMLResponse:
    from html import escape

    return HTMLResponse(
        f"<!doctype html><title>Not signed in</title><p>{escape(reason)}</p>"
        '<p><a href="/login">Back to the login</a></p>',
        status_code=403,
    )
