"""The CLI as a user runs it: a real process, real PostgreSQL and Redis, a closed port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "payments-api" / "rootloop.yaml"
CLI = [sys.executable, "-m", "rootloop.cli.main"]


def rootloop(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def example_env(pg_dsn: str, redis_url: str, closed_port: int) -> dict[str, str]:
    dead = f"http://127.0.0.1:{closed_port}"
    return {
        "PG_DSN": pg_dsn,
        "REDIS_URL": redis_url,
        "PAYMENTS_API_URL": dead,
        "API_GATEWAY_URL": dead,
        "NOTIFICATION_URL": dead,
    }


def test_sweep_prints_one_row_per_node_with_the_right_status(example_env):
    done = rootloop("sweep", "-t", str(EXAMPLE), env=example_env)
    assert done.returncode == 0, done.stderr  # unreachable is not critical
    rows = {
        line.split("│")[1].strip(): line
        for line in done.stdout.splitlines()
        if line.startswith("│") and line.split("│")[1].strip()  # not a wrapped line
    }
    assert set(rows) == {
        "payments-api/health",
        "api-gateway",
        "postgresql",
        "redis",
        "notification-svc",
    }
    assert "ok" in rows["postgresql"] and "ok" in rows["redis"]
    for dead in ("payments-api/health", "api-gateway", "notification-svc"):
        assert "unreachable" in rows[dead]
    assert "overall unreachable" in done.stdout


def test_sweep_json_is_machine_readable_and_redacted(example_env):
    done = rootloop("sweep", "-t", str(EXAMPLE), "--json", env=example_env)
    findings = {f["node"]: f for f in json.loads(done.stdout)}
    assert findings["postgresql"]["status"] == "ok"
    assert findings["notification-svc"]["status"] == "unreachable"
    password = example_env["PG_DSN"].split("://", 1)[1].split("@")[0].partition(":")[2]
    if password:
        assert password not in done.stdout


def test_critical_node_makes_sweep_exit_1(example_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "service: a\ndownstream:\n  - {name: db, type: db, skill: postgres,"
        " dsn: '${PG_DSN}', connections_critical_ratio: 0.0001,"
        " connections_warn_ratio: 0.00001}\n"
    )
    done = rootloop("sweep", "-t", str(bad), env=example_env)
    assert done.returncode == 1, done.stdout


def test_bad_map_is_one_clear_line_without_traceback(tmp_path):
    bad = tmp_path / "map.yaml"
    bad.write_text("service: a\ndownstream:\n  - {name: db, type: db, skill: postgress}\n")
    done = rootloop("validate", "-t", str(bad), env={})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "downstream[0] (db).skill" in done.stderr and "postgres" in done.stderr


def test_validate_prints_the_graph(example_env):
    done = rootloop("validate", "-t", str(EXAMPLE), env=example_env)
    assert done.returncode == 0, done.stderr
    assert "payments-api → postgresql" in done.stdout
    assert "api-gateway → payments-api" in done.stdout
