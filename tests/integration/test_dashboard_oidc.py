"""Single sign-on against a small OpenID Connect issuer started in the test."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI
from joserfc.jwk import RSAKey

from rootloop.context import ContextStore
from rootloop.serve.auth.settings import AccessSettings
from rootloop.serve.dashboard import install
from tests.integration.dashboard_env import serving
from tests.integration.oidc_issuer import Issuer

CLIENT, SECRET = "rootloop", "client-secret-0123456789"


def dashboard(tmp_path: Path, issuer_url: str) -> FastAPI:
    access = AccessSettings.model_validate(
        {
            "session_secret": "s" * 48,
            "oidc": {
                "issuer": issuer_url,
                "client_id": CLIENT,
                "client_secret": SECRET,
                "groups": {
                    "sre": {"role": "approver", "environments": ["staging"]},
                    "eng": {"role": "viewer"},
                },
            },
        }
    )
    app = FastAPI()
    install(app, access, None, ContextStore(tmp_path / "state"), resume=lambda _r: None)
    return app


def sign_in(base: str, client: httpx.Client) -> httpx.Response:
    return client.get(base + "/auth/oidc/login", params={"next": "/ui/gates"})


def test_single_sign_on_gives_the_groups_grant(tmp_path: Path) -> None:
    issuer = Issuer(CLIENT, SECRET)
    with serving(issuer.app) as issuer_url:
        issuer.url = issuer_url
        with serving(dashboard(tmp_path, issuer_url)) as base:
            login_page = httpx.get(base + "/login")
            assert "Single sign-on" in login_page.text
            issuer.next_user = {"sub": "u1", "email": "sam@example.com", "groups": ["eng", "sre"]}
            with httpx.Client(follow_redirects=True) as browser:
                landed = sign_in(base, browser)
                assert landed.status_code == 200 and str(landed.url) == base + "/ui/gates"
                assert "sam@example.com" in landed.text and "approver" in landed.text
                assert browser.get(base + "/api/investigations").status_code == 200

            issuer.next_user = {"sub": "u2", "email": "nobody@example.com", "groups": ["sales"]}
            with httpx.Client(follow_redirects=True) as browser:
                refused = sign_in(base, browser)
                assert refused.status_code == 403 and "no role" in refused.text
                assert browser.get(base + "/api/investigations").status_code == 401


def test_a_forged_state_or_a_token_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    issuer = Issuer(CLIENT, SECRET)
    with serving(issuer.app) as issuer_url:
        issuer.url = issuer_url
        with serving(dashboard(tmp_path, issuer_url)) as base:
            issuer.next_user = {"sub": "u1", "email": "sam@example.com", "groups": ["sre"]}
            with httpx.Client(follow_redirects=False) as browser:
                to_issuer = sign_in(base, browser).headers["location"]
                back = browser.get(to_issuer).headers["location"]
                forged = back.replace("state=", "state=x")
                answer = browser.get(forged)
                assert answer.status_code == 403 and "did not match" in answer.text
                assert browser.get(base + "/api/investigations").status_code == 401

            issuer.signing_key = RSAKey.generate_key(2048, parameters={"kid": "test-1"})
            with httpx.Client(follow_redirects=True) as browser:
                answer = sign_in(base, browser)
                assert answer.status_code == 403 and "could not be verified" in answer.text
                assert browser.get(base + "/api/investigations").status_code == 401
