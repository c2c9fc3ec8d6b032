"""Who is asking: a signed session cookie for people, a bearer token for machines.

The session is a cookie holding the user's name, how they logged in, their grant
(for single sign-on users, whose grant comes from the identity provider), an
expiry and the session's CSRF token, signed with HMAC-SHA256 under the config's
``session_secret``. Nothing secret is in it, and it is HttpOnly, SameSite=Lax
and Secure when the request came over https (or always, by config). A local
user's role is read from the config on every request, so removing a user or
lowering their role takes effect at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field

from rootloop.serve.auth.settings import AccessSettings, Grant

COOKIE = "rootloop_session"
PRE_COOKIE = "rootloop_pre"  # an anonymous session: carries the login form's CSRF token


@dataclass(frozen=True)
class Principal:
    name: str
    kind: str  # password | oidc | token
    grant: Grant
    csrf: str = ""
    expires: float = field(default=0.0)

    @property
    def role(self) -> str:
        return self.grant.role

    def may_approve(self, environment: str) -> bool:
        return self.grant.may_approve(environment)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, settings: AccessSettings) -> None:
        self.settings = settings
        self._key = hashlib.sha256(
            b"rootloop-session:" + settings.session_secret.get_secret_value().encode()
        ).digest()

    # -- signing ------------------------------------------------------------
    def _sign(self, payload: dict[str, object]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        mac = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        return f"{body}.{mac}"

    def _open(self, value: str | None) -> dict[str, object] | None:
        if not value or value.count(".") != 1 or len(value) > 4096:
            return None
        body, mac = value.split(".")
        want = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(mac, want):
            return None
        try:
            data = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(data, dict) or float(data.get("x", 0)) < time.time():
            return None
        return data

    # -- people ---------------------------------------------------------------
    def issue(self, name: str, kind: str, grant: Grant | None = None) -> tuple[str, str]:
        """A new session (a new CSRF token with it: a login never reuses one)."""
        csrf = secrets.token_urlsafe(32)
        payload: dict[str, object] = {
            "n": name,
            "k": kind,
            "c": csrf,
            "x": time.time() + self.settings.session_hours * 3600,
        }
        if grant is not None:
            payload["g"] = grant.model_dump()
        return self._sign(payload), csrf

    def principal(self, cookie: str | None) -> Principal | None:
        data = self._open(cookie)
        if data is None or "n" not in data:
            return None
        name, kind = str(data["n"]), str(data.get("k", ""))
        if kind == "password":
            user = self.settings.user(name)
            if user is None:
                return None
            grant = Grant(role=user.role, environments=user.environments)
        elif kind == "oidc" and isinstance(data.get("g"), dict) and self.settings.oidc:
            grant = Grant.model_validate(data["g"])
        else:
            return None
        return Principal(name, kind, grant, str(data.get("c", "")), float(data["x"]))  # type: ignore[arg-type]

    # -- the login form's own CSRF token ----------------------------------------
    def issue_pre(self) -> tuple[str, str]:
        csrf = secrets.token_urlsafe(32)
        return self._sign({"p": 1, "c": csrf, "x": time.time() + 3600}), csrf

    def pre_csrf(self, cookie: str | None) -> str | None:
        data = self._open(cookie)
        return str(data["c"]) if data and data.get("p") == 1 else None

    # -- short-lived signed values (the OIDC round trip's state) -------------------
    def seal(self, payload: dict[str, object], seconds: float) -> str:
        return self._sign({**payload, "x": time.time() + seconds})

    def unseal(self, value: str | None) -> dict[str, object] | None:
        return self._open(value)

    # -- machines -----------------------------------------------------------------
    def bearer(self, header: str | None) -> Principal | None:
        if not header or not header.lower().startswith("bearer "):
            return None
        token = self.settings.token(header[7:].strip())
        if token is None:
            return None
        return Principal(
            f"{token.name} (API token)",
            "token",
            Grant(role=token.role, environments=token.environments),
        )

    def secure(self, scheme: str) -> bool:
        mode = self.settings.secure_cookies
        return mode == "always" or (mode == "auto" and scheme == "https")
