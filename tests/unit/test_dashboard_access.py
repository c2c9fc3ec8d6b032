"""Access to the dashboard: logins, tokens, roles and environments, CSRF, cookies, secrets."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from rootloop.actions.gates import approval_key
from rootloop.actions.types import RunMigration, SetEnvVar
from rootloop.context import ContextStore, DebugContext, HistoryEntry, PendingGate
from rootloop.serve.auth import passwords
from rootloop.serve.auth.passwords import hash_password, verify_password
from rootloop.serve.auth.settings import AccessSettings
from rootloop.serve.dashboard import install

SECRET = "session-secret-" + "x" * 40
TOKEN = "rl_" + "t" * 40


def light_hash(password: str) -> str:
    """A real scrypt hash at N=2^10 instead of the product's 2^15. verify_password reads
    the parameters from the stored hash, so every login below is checked the same way at
    1/32 of the cost (~0.12 s each otherwise); test_passwords_are_stored_only_as_hashes
    checks hash_password itself."""
    n, r, p, salt = 2**10, 8, 1, b"fixed-test-salt!"
    digest = passwords._derive(password, salt, n, r, p)
    return f"scrypt${n}${r}${p}${passwords._b64(salt)}${passwords._b64(digest)}"


HASHES = {n: light_hash(f"{n}-password") for n in ("alice", "dave", "victor", "root")}


def paused(contexts: ContextStore, run_id: str, env: str = "staging", action=None) -> DebugContext:
    """A run as the loop leaves it at the schema gate."""
    action = action or RunMigration(
        target="orders-db", name="add_col", sql="ALTER TABLE orders ADD COLUMN c int"
    )
    ctx = DebugContext(service="orders-api", run_id=run_id, environment=env, iteration=1)
    ctx.history.append(
        HistoryEntry(
            iteration=1,
            diagnosis="schema drift",
            action=f"run {action.kind}",
            phase="awaiting-approval",
            action_detail=action,
            action_fingerprint=action.fingerprint(),
        )
    )
    ctx.pending_gate = PendingGate(gate="schema", reason="changes the schema", iteration=1)
    ctx.status, ctx.status_reason = "paused", "changes the schema"
    contexts.save(ctx)
    return ctx


@pytest.fixture
def env(tmp_path: Path):
    access = AccessSettings.model_validate(
        {
            "session_secret": SECRET,
            "users": [
                {
                    "name": "alice",
                    "password_hash": HASHES["alice"],
                    "role": "approver",
                    "environments": ["staging"],
                },
                {
                    "name": "dave",
                    "password_hash": HASHES["dave"],
                    "role": "approver",
                    "environments": ["dev"],
                },
                {"name": "victor", "password_hash": HASHES["victor"], "role": "viewer"},
                {"name": "root", "password_hash": HASHES["root"], "role": "admin"},
            ],
            "tokens": [
                {
                    "name": "ci",
                    "sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
                    "role": "approver",
                    "environments": ["*"],
                }
            ],
        }
    )
    contexts = ContextStore(tmp_path / "state")
    resumed: list[str] = []
    app = FastAPI()
    install(app, access, None, contexts, resume=resumed.append)
    return app, contexts, resumed


def client(app: FastAPI, base: str = "http://testserver") -> TestClient:
    return TestClient(app, base_url=base, follow_redirects=False)


def login(c: TestClient, name: str, password: str | None = None, next: str = "/ui"):
    form = c.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return c.post(
        "/login",
        data={
            "username": name,
            "password": password or f"{name}-password",
            "csrf": csrf,
            "next": next,
        },
    )


def csrf_of(c: TestClient, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', c.get(path).text).group(1)


def test_every_page_and_api_needs_a_login(env) -> None:
    app, contexts, _ = env
    paused(contexts, "run-1")
    c = client(app)
    page = c.get("/ui/investigations/run-1", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    for path in ("/api/investigations", "/ui/events", "/ui/investigations/run-1/report"):
        assert c.get(path).status_code == 401, path
    assert (
        c.post("/api/investigations/run-1/gates/schema", json={"decision": "approved"}).status_code
        == 401
    )
    assert contexts.load("run-1").decisions == []


def test_login_sets_a_safe_cookie_and_refuses_wrong_passwords(env) -> None:
    app, _, _ = env
    c = client(app)
    bad = login(c, "alice", "wrong")
    assert bad.status_code == 303 and "error" in bad.headers["location"]
    assert "rootloop_session" not in bad.headers.get("set-cookie", "")
    assert login(c, "nobody", "x").headers["location"].startswith("/login?error")
    ok = login(c, "alice")
    cookie = ok.headers["set-cookie"]
    assert "rootloop_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    assert c.get("/ui").status_code == 200
    https = client(app, "https://testserver")
    assert "Secure" in login(https, "alice").headers["set-cookie"]


def test_login_without_its_csrf_token_and_open_redirects_are_refused(env) -> None:
    app, _, _ = env
    c = client(app)
    forged = c.post("/login", data={"username": "alice", "password": "alice-password"})
    assert forged.status_code == 403
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        assert login(client(app), "alice", next=target).headers["location"] == "/ui"


def test_an_approver_approves_in_an_allowed_environment_and_the_run_resumes(env) -> None:
    app, contexts, resumed = env
    ctx = paused(contexts, "run-1")
    c = client(app)
    login(c, "alice")
    page = c.get("/ui/investigations/run-1")
    assert "ALTER TABLE orders ADD COLUMN c int" in page.text and 'id="approve"' in page.text
    fp = ctx.current.action_detail.fingerprint()
    done = c.post(
        "/ui/investigations/run-1/gates/schema",
        data={
            "csrf": csrf_of(c, "/ui"),
            "decision": "approve",
            "reason": "safe",
            "fingerprint": fp,
        },
    )
    assert done.status_code == 303
    after = contexts.load("run-1")
    assert approval_key("schema", after.current.action_detail) in after.approvals
    [d] = after.decisions
    assert (d.who, d.via, d.decision, d.reason) == ("alice", "dashboard", "approved", "safe")
    assert d.origin == "testclient"
    assert resumed == ["run-1"]
    again = c.post(
        "/ui/investigations/run-1/gates/schema",
        data={"csrf": csrf_of(c, "/ui"), "decision": "approve"},
        headers={"accept": "application/json"},
    )
    assert again.status_code == 409  # already approved: one decision, one resume
    assert len(contexts.load("run-1").decisions) == 1 and resumed == ["run-1"]


def test_approvers_only_in_their_environments_viewers_never(env) -> None:
    app, contexts, resumed = env
    paused(contexts, "run-1", env="staging")
    for who in ("dave", "victor"):
        c = client(app)
        login(c, who)
        assert 'id="approve"' not in c.get("/ui/investigations/run-1").text
        refused = c.post(
            "/ui/investigations/run-1/gates/schema",
            data={"csrf": csrf_of(c, "/ui"), "decision": "approve"},
            headers={"accept": "application/json"},
        )
        assert refused.status_code == 403, who
    admin = client(app)
    login(admin, "root")
    assert 'id="approve"' in admin.get("/ui/investigations/run-1").text
    assert contexts.load("run-1").decisions == [] and resumed == []


def test_state_changes_need_the_sessions_csrf_token_from_this_origin(env) -> None:
    app, contexts, _ = env
    paused(contexts, "run-1")
    c = client(app)
    login(c, "alice")
    url = "/ui/investigations/run-1/gates/schema"
    assert c.post(url, data={"decision": "approve"}).status_code == 403
    assert c.post(url, data={"decision": "approve", "csrf": "x" * 43}).status_code == 403
    other = client(app)
    login(other, "root")
    stolen = csrf_of(other, "/ui")  # another session's token is not this session's
    assert c.post(url, data={"decision": "approve", "csrf": stolen}).status_code == 403
    cross = c.post(
        url,
        data={"decision": "approve", "csrf": csrf_of(c, "/ui")},
        headers={"origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert contexts.load("run-1").decisions == []
    assert c.post("/logout").status_code == 403  # logging someone out is a change too


def test_deny_needs_a_reason_and_ends_the_run_refused(env) -> None:
    app, contexts, resumed = env
    paused(contexts, "run-1")
    c = client(app)
    login(c, "alice")
    empty = c.post(
        "/ui/investigations/run-1/gates/schema",
        data={"csrf": csrf_of(c, "/ui"), "decision": "deny", "reason": "  "},
        headers={"accept": "application/json"},
    )
    assert empty.status_code == 400 and contexts.load("run-1").status == "paused"
    c.post(
        "/ui/investigations/run-1/gates/schema",
        data={"csrf": csrf_of(c, "/ui"), "decision": "deny", "reason": "not during the sale"},
    )
    ctx = contexts.load("run-1")
    assert ctx.status == "refused" and ctx.pending_gate is None and ctx.approvals == []
    assert ctx.decisions[0].decision == "denied" and "not during the sale" in ctx.status_reason
    assert resumed == []


def test_a_changed_action_is_not_approved_by_a_stale_page(env) -> None:
    app, contexts, _ = env
    paused(contexts, "run-1")
    c = client(app)
    login(c, "alice")
    stale = c.post(
        "/ui/investigations/run-1/gates/schema",
        data={"csrf": csrf_of(c, "/ui"), "decision": "approve", "fingerprint": "f" * 16},
        headers={"accept": "application/json"},
    )
    assert stale.status_code == 409 and contexts.load("run-1").approvals == []


def test_api_tokens_for_machines_need_no_csrf_and_are_checked(env) -> None:
    app, contexts, resumed = env
    paused(contexts, "run-1")
    c = client(app)
    bad = c.get("/api/investigations", headers={"authorization": "Bearer rl_wrong"})
    assert bad.status_code == 401
    auth = {"authorization": f"Bearer {TOKEN}"}
    [item] = c.get("/api/investigations", headers=auth).json()
    assert item["status"] == "paused" and item["gate"] == "schema"
    ok = c.post(
        "/api/investigations/run-1/gates/schema", json={"decision": "approved"}, headers=auth
    )
    assert ok.status_code == 200
    assert contexts.load("run-1").decisions[0].who == "ci (API token)" and resumed == ["run-1"]


def test_no_secret_in_a_page(env) -> None:
    app, contexts, _ = env
    action = SetEnvVar(
        target="api", cluster="c", service="s", name="DB_PASSWORD", value="hunter2-very-secret"
    )
    paused(contexts, "run-2", action=action)
    c = client(app)
    login(c, "alice")
    for path in ("/ui", "/ui/gates", "/ui/investigations/run-2", "/api/investigations"):
        text = c.get(path).text
        assert "hunter2-very-secret" not in text and SECRET not in text, path
        assert HASHES["alice"] not in text


def test_passwords_are_stored_only_as_hashes() -> None:
    stored = hash_password("correct horse")
    assert verify_password("correct horse", stored) and not verify_password("wrong", stored)
    assert not verify_password("x", "plaintext") and not verify_password("x", "scrypt$1$1$1$a$b")
    with pytest.raises(ValidationError, match="scrypt hash"):
        AccessSettings.model_validate(
            {"session_secret": SECRET, "users": [{"name": "a", "password_hash": "hunter2"}]}
        )
    with pytest.raises(ValidationError, match="at least 32"):
        AccessSettings.model_validate({"session_secret": "short"})


def test_pages_answer_for_an_empty_state_and_history_search(env) -> None:
    app, contexts, _ = env
    paused(contexts, "run-1")
    c = client(app)
    login(c, "victor")
    assert "Nothing waits" not in c.get("/ui/gates").text  # run-1 waits
    assert "orders-api" in c.get("/ui?status=paused&service=orders-api").text
    assert "No investigations match" in c.get("/ui?status=healthy").text
    found = c.get("/ui/history?q=schema")
    assert found.status_code == 200 and "No past investigation matches" in found.text
    assert c.get("/ui/investigations/nope").status_code == 404
    assert c.get("/ui/investigations/..%2Fetc/report").status_code == 404
    assert c.get("/ui/static/live.js").status_code == 200


def test_repeated_failed_logins_are_throttled(env) -> None:
    app, _, _ = env
    c = client(app)
    for _ in range(10):
        assert "wrong+name" in login(c, "alice", "guess").headers["location"]
    # even the right password waits now: the guesser cannot tell when they found it
    blocked = login(c, "alice")
    assert "too+many" in blocked.headers["location"]
    assert "rootloop_session" not in blocked.headers.get("set-cookie", "")
