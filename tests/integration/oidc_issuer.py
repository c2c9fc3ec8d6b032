"""A small OpenID Connect issuer for tests: discovery, JWKS, authorize, token.

It signs ID tokens with an RSA key made for the test, checks the client's
secret, the redirect URI and the PKCE verifier (S256) as a real issuer does, and
"logs in" whichever user the test names in ``next_user`` (with their groups).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey


class Issuer:
    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-1", "use": "sig"})
        self.signing_key = self.key  # a test can swap in a key the JWKS does not publish
        self.url = ""  # set once the server listens
        self.next_user: dict[str, Any] = {"sub": "u1", "email": "sam@example.com", "groups": []}
        self.codes: dict[str, dict[str, Any]] = {}
        self.app = FastAPI()
        app = self.app

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict[str, Any]:
            return {
                "issuer": self.url,
                "authorization_endpoint": self.url + "/authorize",
                "token_endpoint": self.url + "/token",
                "jwks_uri": self.url + "/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/jwks")
        def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False)]}

        @app.get("/authorize")
        def authorize(request: Request) -> RedirectResponse:
            q = request.query_params
            assert q["client_id"] == self.client_id and q["response_type"] == "code"
            assert q["code_challenge_method"] == "S256"
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "redirect_uri": q["redirect_uri"],
                "nonce": q.get("nonce"),
                "challenge": q["code_challenge"],
                "user": dict(self.next_user),
            }
            target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
            return RedirectResponse(target, status_code=302)

        @app.post("/token")
        def token(
            request: Request,
            code: str = Form(...),
            redirect_uri: str = Form(...),
            code_verifier: str = Form(...),
        ) -> JSONResponse:
            basic = request.headers.get("authorization", "")
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if basic != f"Basic {expected}":
                return JSONResponse({"error": "invalid_client"}, 401)
            grant = self.codes.pop(code, None)
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest())
                .decode()
                .rstrip("=")
            )
            if (
                grant is None
                or grant["redirect_uri"] != redirect_uri
                or grant["challenge"] != challenge
            ):
                return JSONResponse({"error": "invalid_grant"}, 400)
            now = int(time.time())
            claims = {
                "iss": self.url,
                "aud": self.client_id,
                "iat": now,
                "exp": now + 300,
                "nonce": grant["nonce"],
                **grant["user"],
            }
            id_token = jwt.encode({"alg": "RS256", "kid": "test-1"}, claims, self.signing_key)
            return JSONResponse(
                {
                    "access_token": "at-" + code,
                    "token_type": "Bearer",
                    "id_token": id_token,
                    "expires_in": 300,
                }
            )
