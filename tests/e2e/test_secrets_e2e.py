"""Seeded secrets, a real run to its PR, and not one of them in anything rootloop wrote.

The environment holds a PostgreSQL DSN with a password (which the map uses), an AWS key
pair (which boto3 signs with), a classic 40-hex GitHub token (sent to the lab's CI API),
a fine-grained ``github_pat_`` token and a JWT. The lab's notification-svc echoes them
all into its logs and its 503 bodies (an env dump, a conninfo string, JSON, a Basic
header, a query string, bare, URL-encoded and base64-encoded); payments-api logs that
body when a payment's notification fails. rootloop investigates the outage, restarts the
service and opens its PR. Then every file of the state directory (the memory database
included), the CLI's output and every commit of the lab's remote are searched for each
secret and each of its parts, raw, URL-encoded and base64-encoded: zero hits.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml

from rootloop.context import ContextStore
from rootloop_lab import Lab
from rootloop_lab.symptoms import wait_for_symptoms

pytestmark = pytest.mark.e2e

SCENARIO = "downstream-http-503"  # an HTTP dependency whose error body carries the leak


def _b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def seeded(pg_port: int) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Fresh secrets for this run: the environment, and for each secret its parts."""
    password = f"pa:ss/w@rd+{secrets.token_hex(5)}!"  # every character URL-encoding changes
    dsn = f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{pg_port}/payments"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    key_id = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
    secret_key = base64.b64encode(secrets.token_bytes(30)).decode()  # 40 characters
    gh_token = secrets.token_hex(20)  # the classic, 40-hex form
    pat = f"github_pat_11{secrets.token_hex(10).upper()}_{secrets.token_urlsafe(44)}"
    pat = pat.replace("-", "x")
    jwt = ".".join(
        [
            _b64url({"alg": "HS256", "typ": "JWT"}),
            _b64url({"sub": "payments-api", "nonce": secrets.token_hex(8)}),
            base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="),
        ]
    )
    env = {
        "PG_DSN": dsn,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "GITHUB_TOKEN": gh_token,
        "GITHUB_PAT": pat,
        "PAYMENTS_API_JWT": jwt,
    }
    parts = {name: [value] for name, value in env.items()}
    parts["PG_DSN"] += [password, f"postgres:{password}"]
    return env, parts


def forms(secret: str) -> set[str]:
    """The secret as the issue asks to search for it: raw, URL-encoded and base64."""
    raw = secret.encode()
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("lab") / "lab")
    saved = dict(os.environ)
    try:
        yield lab
    finally:
        lab.down()
        os.environ.clear()
        os.environ.update(saved)


def secrets_map(lab: Lab) -> Path:
    """The lab's map with the database reached through ``${PG_DSN}``, as a team writes it."""
    data = yaml.safe_load(lab.map_file.read_text())
    for node in data["downstream"]:
        if node.get("skill") == "postgres":
            node["dsn"] = "${PG_DSN}"
    path = lab.root / "rootloop.secrets.yaml"  # beside the lab's map: same relative paths
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def artefact_texts(state: Path) -> dict[str, bytes]:
    """Every file rootloop wrote, as bytes (the SQLite database and its journal too)."""
    return {str(p): p.read_bytes() for p in state.rglob("*") if p.is_file()}


def remote_history(origin: Path) -> str:
    """Every commit of every branch on the lab's remote: messages and full diffs."""
    return subprocess.run(
        ["git", "-C", str(origin), "log", "-p", "--all", "--format=%H%n%B"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_seeded_secrets_leave_no_trace(lab: Lab, tmp_path: Path) -> None:
    lab.reset()
    env, parts = seeded(lab.state().ports.postgres)
    lab.leak_secrets(env)
    os.environ.update(lab.env())
    os.environ.update(env)
    map_path = secrets_map(lab)
    lab.inject(SCENARIO)
    wait_for_symptoms(map_path, timeout=90)

    state = tmp_path / "state"
    run_env = {**os.environ, "ROOTLOOP_STATE_DIR": str(state)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rootloop.cli.main",
            "run",
            "-t",
            str(map_path),
            "--reasoner",
            "rules",
        ],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    runs = ContextStore(state).list()
    assert runs, done.stdout[-2000:] + done.stderr[-2000:]
    ctx = runs[0]
    # the run did its work: diagnosed, fixed, and published a PR from its branch
    assert ctx.status == "healthy", ctx.status_reason + done.stderr[-2000:]
    assert ctx.pr and ctx.branch, done.stdout[-2000:] + done.stderr[-2000:]
    assert (state / "runs" / ctx.run_id / "pr.md").is_file()
    assert (state / "memory" / "index.sqlite").is_file()

    # the leak was real: the lab's own logs hold the secrets rootloop read
    lab_logs = "".join(p.read_text(errors="replace") for p in lab.layout.logs.rglob("*.log"))
    assert parts["PG_DSN"][1] in lab_logs and env["GITHUB_TOKEN"] in lab_logs
    files = artefact_texts(state)
    everything = b"\n".join(files.values()).decode("utf-8", "replace")
    # and it reached rootloop's artefacts, where it shows masked
    assert "upstream_headers" in everything and "***" in everything

    outputs = {
        "cli stdout": done.stdout,
        "cli stderr": done.stderr,
        "remote commits": remote_history(lab.layout.origin),
    }
    leaks = []
    for name, values in parts.items():
        for value in values:
            for form in forms(value):
                needle = form.encode()
                leaks += [
                    f"{name} as {form!r} in {path}"
                    for path, data in files.items()
                    if needle in data
                ]
                leaks += [
                    f"{name} as {form!r} in {where}"
                    for where, text in outputs.items()
                    if form in text
                ]
    assert not leaks, "\n".join(leaks[:40])
