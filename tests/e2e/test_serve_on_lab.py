"""``rootloop serve`` on the real lab, paged by a real Prometheus and Alertmanager.

Nobody calls rootloop: a fault is injected into the lab; Prometheus (the Debian
package) scrapes the lab services' ``/metrics`` and evaluates the lab's service-level
rules; Alertmanager (the Debian package) posts what fires to ``rootloop serve``;
serve's durable worker runs the real loop (rules reasoner) on the lab's map; the fix
lands, is verified, and the pull request is opened on the lab's local forge.

The crash case: the serve worker SIGKILLs itself right after the restart's deploy
landed (``ROOTLOOP_KILL_AT``, a point rootloop signals itself, never a sleep); a new
worker on the same state recovers the DBOS workflow, the loop resumes the run, and
the service was restarted exactly once.

Every wait polls for a condition with a generous timeout; nothing depends on speed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import rootloop
from rootloop import killpoints
from rootloop.context import ContextStore
from rootloop.models import Outcome
from rootloop.serve.testing import ServeProcess, alertmanager_body, serve_processes, wait_for
from rootloop_lab import Lab
from rootloop_lab.scenarios import probe
from rootloop_lab.servers.prometheus import start_alertmanager, start_prometheus

pytestmark = pytest.mark.e2e

SCENARIO = "downstream-http-503"  # notification-svc answers 503: its error ratio breaks the SLO
INSTRUMENTED = ("api-gateway", "frontend-app", "notification-svc")
LOOP_TIMEOUT = 1200.0  # the whole loop on a busy two-core box: sweep, restart, verify, load test


@pytest.fixture
def lab(shared_lab: Lab) -> Lab:
    shared_lab.reset()
    os.environ.update(shared_lab.env())
    for name in (killpoints.ENV, killpoints.STOP_ENV):
        os.environ.pop(name, None)
    return shared_lab


def serve_config(root: Path, lab: Lab) -> None:
    """Every alert labelled ``system: lab`` goes to the lab's map; the rules reasoner."""
    (root / "serve.yaml").write_text(
        "reasoner: rules\n"
        "queue: {polling_interval_seconds: 0.5}\n"
        "routes:\n"
        f"  - {{name: lab, map: {lab.map_file}, match: {{system: lab}}}}\n",
        encoding="utf-8",
    )


@pytest.fixture
def serve(tmp_path: Path, lab: Lab) -> Iterator[tuple[Path, object]]:
    serve_config(tmp_path, lab)
    state = tmp_path / "state"
    with serve_processes(tmp_path, {"ROOTLOOP_STATE_DIR": str(state)}) as make:
        yield state, make


def investigations(server: ServeProcess) -> list[dict]:
    return server.get("/investigations", params={"limit": 100}).json()


def ended(server: ServeProcess, inv_id: str) -> dict | None:
    detail = server.get(f"/investigations/{inv_id}").json()
    return detail if detail["status"] == "ended" and detail["workflow"] == "SUCCESS" else None


def targets_up(prometheus: str) -> bool:
    try:
        found = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    active = found["data"]["activeTargets"]
    return len(active) == len(INSTRUMENTED) and all(t["health"] == "up" for t in active)


def assert_fixed_with_one_pr(state: Path, inv_id: str, detail: dict) -> None:
    ctx = ContextStore(state).load(inv_id)
    said = [(h.diagnosis, h.action, h.result) for h in ctx.history]
    assert detail["outcome"] == "healthy", (detail["reason"], said)
    assert detail["run_id"] == inv_id
    assert [h.outcome for h in ctx.history] == [Outcome.FIXED], ctx.status_reason
    action = ctx.history[0].action_detail
    assert action is not None and action.kind == "restart"
    assert action.service == "notification-svc"
    assert ctx.pr and not ctx.publish_pending
    prs = [json.loads(p.read_text()) for p in (state / "prs").glob("*.json")]
    assert len(prs) == 1 and prs[0]["branch"] == ctx.branch


def test_an_alert_from_prometheus_gets_the_lab_fixed_and_a_pr(
    lab: Lab, serve: tuple[Path, object], tmp_path: Path
) -> None:
    state, make = serve
    server: ServeProcess = make()  # type: ignore[operator]
    ports = lab.state().ports
    with (
        start_alertmanager(
            tmp_path / "alertmanager",
            f"{server.base}/hooks/alertmanager",
            group_wait="1s",
            group_interval="2s",
            repeat_interval="1h",
        ) as alertmanager,
        start_prometheus(
            tmp_path / "prometheus",
            {svc: f"127.0.0.1:{ports.of(svc)}" for svc in INSTRUMENTED},
            alertmanager.url,
            scrape_interval="1s",
            evaluation_interval="1s",
            labels={"system": "lab"},
        ) as prometheus,
    ):
        wait_for("Prometheus to scrape every lab service", lambda: targets_up(prometheus.url))
        assert investigations(server) == []  # a healthy lab pages nobody

        lab.inject(SCENARIO)

        first = wait_for(
            "Alertmanager's webhook to start an investigation",
            lambda: investigations(server),
            timeout=600,
        )
        inv_id = first[0]["id"]  # type: ignore[index]
        detail = wait_for(
            "the investigation to end", lambda: ended(server, inv_id), timeout=LOOP_TIMEOUT
        )
        assert len(investigations(server)) == 1  # every alert of the storm joined it
        alerts = detail["alerts"]  # type: ignore[index]
        assert {a["source"] for a in alerts} == {"alertmanager"}
        fired = {a["labels"]["alertname"] for a in alerts}
        assert fired & {"HighErrorRatio", "HealthCheckFailing"}, fired
        assert any(a["labels"].get("service") == "notification-svc" for a in alerts)
        assert_fixed_with_one_pr(state, inv_id, detail)  # type: ignore[arg-type]
        assert probe(lab, SCENARIO).fixed

        # The fix ends the breach: Prometheus resolves the alert, and Alertmanager's
        # resolution is recorded on the investigation it belonged to.
        wait_for(
            "the resolution to be recorded",
            lambda: any(
                a["verdict"] == "resolved"
                for a in server.get(f"/investigations/{inv_id}").json()["alerts"]
            ),
            timeout=600,
        )


def test_worker_killed_while_the_restart_applies_is_finished_once_by_the_next(
    lab: Lab, serve: tuple[Path, object], tmp_path: Path
) -> None:
    state, make = serve
    lab.inject(SCENARIO)
    os.environ[killpoints.ENV] = "step:restart:deployed"  # the first worker dies there
    try:
        first: ServeProcess = make()  # type: ignore[operator]
    finally:
        os.environ.pop(killpoints.ENV)
    body = alertmanager_body(
        "lab-notification-5xx",
        {"alertname": "HighErrorRatio", "service": "notification-svc", "system": "lab"},
    )
    (decision,) = first.post("/hooks/alertmanager", json=body).json()["decisions"]
    assert decision["verdict"] == "started"
    inv_id = decision["investigation_id"]
    assert first.proc is not None
    code = first.proc.wait(timeout=LOOP_TIMEOUT)
    assert code == -9, (tmp_path / "serve.log").read_text()[-3000:]
    ctx = ContextStore(state).load(inv_id)
    assert ctx.current is not None and ctx.current.phase == "applying"

    second: ServeProcess = make()  # type: ignore[operator]  # same state: DBOS recovers
    detail = wait_for(
        "the recovered investigation to end", lambda: ended(second, inv_id), timeout=LOOP_TIMEOUT
    )
    assert_fixed_with_one_pr(state, inv_id, detail)  # type: ignore[arg-type]
    assert len(investigations(second)) == 1

    # exactly once in the world: one task-definition revision tagged with the action's key
    from rootloop.actions.dispatch import Dispatcher
    from rootloop.actions.ecs import KEY_TAG

    ctx = ContextStore(state).load(inv_id)
    action = ctx.history[0].action_detail
    assert action is not None
    dispatcher = Dispatcher(rootloop.load_map(lab.map_file), state)
    ecs = dispatcher.aws_clients(dispatcher.landing_node(action, ctx)).ecs
    current = ecs.describe_services(cluster=action.cluster, services=[action.service])
    family = current["services"][0]["taskDefinition"].rsplit("/", 1)[-1].rpartition(":")[0]
    tagged = [
        arn
        for arn in ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
        if {"key": KEY_TAG, "value": f"{inv_id}/1"}
        in ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"]).get("tags", [])
    ]
    assert len(tagged) == 1  # restarted once, across the killed worker and the next
    assert probe(lab, SCENARIO).fixed
