"""Shared set-up for the dashboard and notification tests: a real loop that pauses at
the schema gate (a real PostgreSQL lacking a column the service expects, a runbook
rung that adds it), the service in-process on uvicorn (port 0), password hashes,
and Chromium (Debian's, driven by Playwright): where it is, logging in, screenshots."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import uvicorn

from rootloop import runner
from rootloop.context import DebugContext
from rootloop.serve.auth.passwords import hash_password
from rootloop.serve.testing import WAIT, wait_for

__all__ = ["WAIT", "wait_for"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"

SQL = "ALTER TABLE orders ADD COLUMN discount_code text"


def schema_drift_map(root: Path, pg_dsn: str, service: str = "orders-api") -> Path:
    """A map whose database lacks a column the service expects; the runbook adds it."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, total numeric)")
    books = root / "runbooks"
    books.mkdir(parents=True, exist_ok=True)
    (books / "orders-db.yaml").write_text(
        "service: orders-db\nladders:\n  schema-drift:\n"
        "    - {kind: run-migration, target: orders-db, name: add_discount_code, "
        f"sql: '{SQL}'}}\n",
        encoding="utf-8",
    )
    path = root / f"{service}.yaml"
    path.write_text(
        f"service: {service}\nenvironment: staging\nrunbooks: runbooks\n"
        "downstream:\n"
        "  - name: orders-db\n    type: postgres\n    skill: postgres\n"
        f"    dsn: {pg_dsn}\n"
        "    expect_schema:\n      orders: [id, total, discount_code]\n",
        encoding="utf-8",
    )
    return path


def paused_run(map_path: Path, state: Path) -> DebugContext:
    """The real loop, from the first sweep to the pause at the schema gate."""
    session = runner.Session.open(map_path, state)
    ctx = session.new_context(map_path)
    ctx = asyncio.run(runner.run(session, ctx, [], session.reasoner("rules", map_path)))
    assert ctx.status == "paused" and ctx.pending_gate is not None, ctx.status_reason
    return ctx


def column_exists(pg_dsn: str) -> bool:
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'orders' AND column_name = 'discount_code'"
        ).fetchone()
    return bool(row and row[0])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app on uvicorn in a thread, on a free port; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for("uvicorn to start", lambda: server.started)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def alice(environments: list[str] | None = None) -> dict[str, Any]:
    """An approver in staging, as the access config lists her."""
    return {
        "name": "alice",
        "password_hash": hash_password("alice-pw-1"),
        "role": "approver",
        "environments": environments or ["staging"],
    }


def login(page: Any, base: str, name: str, password: str) -> None:
    """Through the login page, as a person would; every page needs a login first."""
    page.goto(base + "/ui")
    assert "/login" in page.url
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/ui")


def shot(page: Any, name: str) -> None:
    """A screenshot for the docs (docs/img/<name>)."""
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / name), full_page=True)
