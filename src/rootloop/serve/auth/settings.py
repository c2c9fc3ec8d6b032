"""Who may use the dashboard and its API, and how they prove it.

The ``access`` section of the serve config. With no ``access`` section the
dashboard is not mounted at all; with one, every page and every state route
needs a login (see ``guard``). Secrets are ``env:NAME`` / ``file:PATH`` like the
rest of the config, and only hashes are stored: scrypt for passwords, SHA-256
for API tokens (random 256-bit tokens need no slow hash: there is nothing to guess).
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from rootloop.notify.settings import Strict, as_secret
from rootloop.serve.auth.passwords import is_hash

Role = Literal["viewer", "approver", "admin"]
RANK = {"viewer": 0, "approver": 1, "admin": 2}


class Grant(Strict):
    """A role, and for approvers the environments they may approve in (``*`` for all)."""

    role: Role = "viewer"
    environments: list[str] = []

    def may_approve(self, environment: str) -> bool:
        if RANK[self.role] < RANK["approver"]:
            return False
        return self.role == "admin" or "*" in self.environments or environment in self.environments


class LocalUser(Grant):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@+-]+$")
    password_hash: str

    @field_validator("password_hash")
    @classmethod
    def _hashed(cls, v: str) -> str:
        if not is_hash(v):
            raise ValueError(
                "must be a scrypt hash (python -m rootloop.serve.auth.passwords), never a password"
            )
        return v


class ApiToken(Grant):
    name: str = Field(min_length=1, max_length=100)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the token")


class OidcSettings(Strict):
    issuer: str
    client_id: str
    client_secret: SecretStr
    scopes: str = "openid email profile"
    #: the claim holding the user's groups, and which group gives which grant
    groups_claim: str = "groups"
    groups: dict[str, Grant] = {}
    #: users in no mapped group: none (refused) unless set
    default: Grant | None = None
    name_claim: str = "email"

    @field_validator("client_secret", mode="before")
    @classmethod
    def _resolve(cls, v: object) -> SecretStr:
        return as_secret(v)


class AccessSettings(Strict):
    session_secret: SecretStr
    users: list[LocalUser] = []
    tokens: list[ApiToken] = []
    oidc: OidcSettings | None = None
    session_hours: float = Field(default=12, gt=0, le=24 * 30)
    #: Secure cookies: "auto" sets it when the request came over https
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    #: the public base URL (for OIDC redirects and links in chat); else the request's
    public_url: str | None = None

    @field_validator("session_secret", mode="before")
    @classmethod
    def _resolve(cls, v: object) -> SecretStr:
        secret = as_secret(v)
        if len(secret.get_secret_value()) < 32:
            raise ValueError("session_secret must be at least 32 characters")
        return secret

    @model_validator(mode="after")
    def _unique(self) -> AccessSettings:
        names = [u.name for u in self.users]
        if len(names) != len(set(names)):
            raise ValueError("user names must be unique")
        return self

    def user(self, name: str) -> LocalUser | None:
        return next((u for u in self.users if u.name == name), None)

    def token(self, presented: str) -> ApiToken | None:
        import hmac

        digest = hashlib.sha256(presented.encode()).hexdigest()
        found = None
        for t in self.tokens:  # compare against every token: no early exit to time
            if hmac.compare_digest(t.sha256, digest):
                found = t
        return found
