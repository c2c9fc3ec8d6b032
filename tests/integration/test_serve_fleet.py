"""Two ``rootloop serve`` workers sharing one real PostgreSQL.

Each investigation runs exactly once across the fleet, and when the worker
running one is killed with SIGKILL, the surviving worker notices its silence
(heartbeats) and DBOS hands it the investigation, which then ends once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rootloop.serve.testing import (
    ServeProcess,
    alertmanager_body,
    serve_processes,
    wait_for,
    write_map,
)
from tests.integration.test_serve_process import effects, ended

SERVICES = [f"svc{i}" for i in range(6)]


@pytest.fixture
def fleet(tmp_path: Path, pg_dsn: str) -> Iterator[Callable[..., ServeProcess]]:
    routes = []
    for name in SERVICES:
        write_map(tmp_path / f"{name}.yaml", name, "staging")
        routes.append(f"  - {{name: {name}, map: {name}.yaml, match: {{service: {name}}}}}\n")
    (tmp_path / "serve.yaml").write_text(
        f"database_url: {pg_dsn}\n"
        "investigator: rootloop.serve.testing\n"
        "queue: {polling_interval_seconds: 0.2, worker_concurrency: 2}\n"
        "fleet: {heartbeat_seconds: 0.5, dead_after_seconds: 15}\n"
        "routes:\n" + "".join(routes),
        encoding="utf-8",
    )
    env = {
        "ROOTLOOP_STATE_DIR": str(tmp_path / "state"),
        "ROOTLOOP_SERVE_FAKE_LOG": str(tmp_path / "effects.log"),
        "ROOTLOOP_SERVE_FAKE_HOLD": str(tmp_path / "hold"),
        "ROOTLOOP_SERVE_FAKE_SECONDS": "0.3",
    }
    with serve_processes(tmp_path, env) as make:
        yield make


def post(server: ServeProcess, service: str) -> str:
    body = alertmanager_body(f"fp-{service}", {"alertname": "Errors", "service": service})
    (decision,) = server.post("/hooks/alertmanager", json=body).json()["decisions"]
    assert decision["verdict"] == "started"
    return decision["investigation_id"]


def test_each_investigation_runs_once_across_two_workers(
    fleet: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    a, b = fleet(), fleet()
    ids = [post(a if i % 2 else b, name) for i, name in enumerate(SERVICES)]
    for inv_id in ids:
        wait_for(f"{inv_id} to end", lambda inv_id=inv_id: ended(a, inv_id))
    lines = effects(tmp_path)
    for inv_id in ids:
        assert sum(x.startswith(f"start {inv_id} ") for x in lines) == 1
        assert lines.count(f"effect {inv_id}") == 1


def test_a_killed_worker_s_investigation_is_finished_by_the_survivor(
    fleet: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    a, b = fleet(), fleet()
    inv_id = post(a, "svc0")
    line = wait_for(
        "the investigation to start",
        lambda: next((x for x in effects(tmp_path) if x.startswith(f"start {inv_id}")), None),
    )
    pid = int(str(line).split("pid=")[1])
    victim, survivor = (a, b) if a.proc and a.proc.pid == pid else (b, a)
    assert victim.proc is not None and victim.proc.pid == pid
    victim.kill9()
    hold.unlink()
    detail = wait_for("the survivor to finish it", lambda: ended(survivor, inv_id))
    assert detail["outcome"] == "healthy"
    starts = [x for x in effects(tmp_path) if x.startswith(f"start {inv_id}")]
    assert len(starts) == 2
    assert starts[1].endswith(f"pid={survivor.proc.pid}")  # type: ignore[union-attr]
    assert effects(tmp_path).count(f"effect {inv_id}") == 1


def test_one_alert_storming_both_intakes_starts_one_investigation(
    fleet: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    hold = tmp_path / "hold"
    hold.touch()  # keep the investigation running so every copy has one to attach to
    servers = [fleet(), fleet()]
    body = alertmanager_body("fp-race", {"alertname": "Errors", "service": "svc3"})

    def send(i: int) -> list[str]:
        response = servers[i % 2].post("/hooks/alertmanager", json=body)
        return [d["verdict"] for d in response.json()["decisions"]]

    with ThreadPoolExecutor(max_workers=16) as pool:
        verdicts = [v for vs in pool.map(send, range(400)) for v in vs]
    assert verdicts.count("started") == 1
    assert verdicts.count("attached") == 399
    assert len(servers[0].get("/investigations").json()) == 1
    hold.unlink()


def test_an_intake_only_process_hands_investigations_to_the_workers(
    fleet: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    intake, worker = fleet("--no-worker"), fleet()
    inv_id = post(intake, "svc4")
    wait_for(f"{inv_id} to end", lambda: ended(intake, inv_id))
    (start,) = [x for x in effects(tmp_path) if x.startswith(f"start {inv_id}")]
    assert start.endswith(f"pid={worker.proc.pid}")  # type: ignore[union-attr]
