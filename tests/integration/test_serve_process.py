"""``rootloop serve`` as a real server process: uvicorn on port 0, DBOS on SQLite.

The investigator is the recording fake (``rootloop.serve.testing``), so
the side effects of each investigation are lines in a file the test reads.
Timeouts are generous and every wait polls for a condition: the CI box is busy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rootloop.serve.testing import (
    ServeProcess,
    alertmanager_body,
    serve_processes,
    wait_for,
    write_map,
)


def checkout_config(root: Path, settings: str) -> None:
    """serve.yaml with one route (service=checkout) to a checkout map, plus ``settings``."""
    write_map(root / "checkout.yaml", "checkout", "staging")
    (root / "serve.yaml").write_text(
        settings + "queue: {polling_interval_seconds: 0.2}\n"
        "routes:\n  - {name: checkout, map: checkout.yaml, match: {service: checkout}}\n",
        encoding="utf-8",
    )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    checkout_config(
        tmp_path, "investigator: rootloop.serve.testing\nstorms: {flap_window_seconds: 600}\n"
    )
    env = {
        "ROOTLOOP_STATE_DIR": str(tmp_path / "state"),
        "ROOTLOOP_SERVE_FAKE_LOG": str(tmp_path / "effects.log"),
        "ROOTLOOP_SERVE_FAKE_HOLD": str(tmp_path / "hold"),
    }
    with serve_processes(tmp_path, env) as make:
        yield make


def effects(root: Path) -> list[str]:
    path = root / "effects.log"
    return path.read_text().splitlines() if path.exists() else []


def ended(server: ServeProcess, inv_id: str) -> dict | None:
    detail = server.get(f"/investigations/{inv_id}").json()
    # The store's row ends in the workflow's last step; DBOS marks the workflow a moment later.
    return detail if detail["status"] == "ended" and detail["workflow"] == "SUCCESS" else None


def test_real_server_runs_one_investigation_for_a_resent_alert(
    serve: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    server = serve()
    body = alertmanager_body("fp-1", {"alertname": "HighErrorRate", "service": "checkout"})
    verdicts = [server.post("/hooks/alertmanager", json=body).json() for _ in range(20)]
    # The fake ends fast, so later copies may come after the end: within the flap window
    # those start nothing either.
    kinds = [d["verdict"] for v in verdicts for d in v["decisions"]]
    assert kinds.count("started") == 1 and set(kinds) <= {"started", "attached", "flapping"}
    started = [d for v in verdicts for d in v["decisions"] if d["verdict"] == "started"]
    inv_id = started[0]["investigation_id"]
    detail = wait_for("the investigation to end", lambda: ended(server, inv_id))
    assert detail["outcome"] == "healthy"
    assert detail["workflow"] == "SUCCESS"
    assert [line.split()[:2] for line in effects(tmp_path)] == [
        ["start", inv_id],
        ["effect", inv_id],
    ]
    text = server.get("/metrics").text
    assert 'rootloop_serve_investigations_by_outcome{outcome="healthy"} 1.0' in text
    assert server.get("/openapi.json").json()["paths"].keys() >= {"/hooks/sns", "/hooks/generic"}


def test_worker_killed_mid_investigation_is_recovered_and_the_effect_happens_once(
    serve: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    hold = tmp_path / "hold"
    hold.touch()  # the fake investigator waits while this file exists
    first = serve()
    body = alertmanager_body("fp-9", {"alertname": "Latency", "service": "checkout"})
    (decision,) = first.post("/hooks/alertmanager", json=body).json()["decisions"]
    inv_id = decision["investigation_id"]
    wait_for("the investigation to start", lambda: any("start" in x for x in effects(tmp_path)))
    assert first.get(f"/investigations/{inv_id}").json()["status"] == "running"
    first.kill9()

    hold.unlink()
    second = serve()
    detail = wait_for("the recovered investigation to end", lambda: ended(second, inv_id))
    assert detail["outcome"] == "healthy"
    lines = effects(tmp_path)
    starts = [x for x in lines if x.startswith(f"start {inv_id}")]
    assert len(starts) == 2, lines  # the killed attempt and the recovered one
    assert len({s.split("pid=")[1] for s in starts}) == 2  # in two different processes
    assert lines.count(f"effect {inv_id}") == 1
    assert len(second.get("/investigations").json()) == 1


def test_the_real_loop_runs_behind_the_queue(tmp_path: Path) -> None:
    """The default investigator: the loop itself, on a map whose one check is down."""
    checkout_config(tmp_path, "reasoner: rules\n")
    state = tmp_path / "state"
    with serve_processes(tmp_path, {"ROOTLOOP_STATE_DIR": str(state)}) as start:
        server = start()
        body = alertmanager_body("fp-real", {"alertname": "Down", "service": "checkout"})
        (decision,) = server.post("/hooks/alertmanager", json=body).json()["decisions"]
        inv_id = decision["investigation_id"]
        detail = wait_for("the loop to end", lambda: ended(server, inv_id))
    # Nothing in that map can be fixed by a runbook: the loop hands it to a human, with its
    # reason; it neither crashes ("failed") nor claims a fix ("healthy").
    assert detail["outcome"] in {"escalated", "paused", "refused"}
    assert detail["reason"]
    assert detail["run_id"] == inv_id
    assert (state / "runs" / inv_id / "context.json").exists()


def test_approval_is_a_durable_wait_that_survives_a_restart(tmp_path: Path) -> None:
    token = "approval-token-0123456789"
    checkout_config(
        tmp_path,
        "investigator: rootloop.serve.testing\napprovals: {tokens: [env:TEST_APPROVAL_TOKEN]}\n",
    )
    env = {
        "ROOTLOOP_STATE_DIR": str(tmp_path / "state"),
        "ROOTLOOP_SERVE_FAKE_LOG": str(tmp_path / "effects.log"),
        "ROOTLOOP_SERVE_FAKE_GATE": "schema",
        "TEST_APPROVAL_TOKEN": token,
    }
    auth = {"Authorization": f"Bearer {token}"}
    with serve_processes(tmp_path, env) as start:
        first = start()
        body = alertmanager_body("fp-gate", {"alertname": "Schema", "service": "checkout"})
        (decision,) = first.post("/hooks/alertmanager", json=body).json()["decisions"]
        inv_id = decision["investigation_id"]
        url = f"/investigations/{inv_id}"
        wait_for("the gate", lambda: first.get(url).json()["status"] == "paused")
        assert first.get(url).json()["gate"] == "schema"
        # while it waits, the lease holds: the same service's alerts attach
        other = alertmanager_body("fp-other", {"alertname": "Other", "service": "checkout"})
        assert (
            first.post("/hooks/alertmanager", json=other).json()["decisions"][0]["verdict"]
            == "attached"
        )
        first.kill9()

        second = start()  # the workflow is recovered and waits again, durably
        approve = f"{url}/approve"
        ok = {"gate": "schema", "approver": "alice"}
        assert second.post(approve, json=ok).status_code == 401
        assert (
            second.post(approve, json=ok, headers={"Authorization": "Bearer nope"}).status_code
            == 401
        )
        wrong = {"gate": "production", "approver": "alice"}
        assert second.post(approve, json=wrong, headers=auth).status_code == 403
        assert (
            second.post(approve, json={"gate": "other", "approver": "a"}, headers=auth).status_code
            == 403
        )
        assert second.post(approve, content=b"{", headers=auth).status_code == 400
        wait_for("the recovered wait", lambda: second.get(url).json()["workflow"] == "PENDING")
        response = second.post(approve, json=ok, headers=auth)
        assert response.status_code == 202, response.text
        detail = wait_for("the approved run to end", lambda: ended(second, inv_id))
    assert detail["outcome"] == "healthy"
    lines = effects(tmp_path)
    assert [x.split()[0] for x in lines] == ["start", "approved", "start", "effect"], lines
    assert lines[1] == f"approved {inv_id} schema by alice"
