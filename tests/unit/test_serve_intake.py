"""Intake over HTTP: routing, storms, malformed bodies, operations routes.

The app runs in-process with the real store (SQLite in a temporary folder) and
a recording queue in place of DBOS, so what admission decides is observable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rootloop.serve.admission import Admission, Ticket
from rootloop.serve.app import Services, create_app
from rootloop.serve.config import ServeConfig
from rootloop.serve.routing import Router
from rootloop.serve.sources import generic
from rootloop.serve.sources.sns import SnsVerifier
from rootloop.serve.store import Store
from rootloop.serve.testing import alertmanager_body, pagerduty_signature, write_map

SECRET = "s3cr3t-for-tests-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, tmp: Path, **storms: object) -> None:
        checkout = write_map(tmp / "checkout.yaml", "checkout", "staging")
        billing = write_map(tmp / "billing.yaml", "billing", "staging")
        self.config = ServeConfig.model_validate(
            {
                "state_dir": str(tmp / "state"),
                "routes": [
                    {"name": "checkout", "map": str(checkout), "match": {"service": "checkout"}},
                    {
                        "name": "billing",
                        "map": str(billing),
                        "match_re": {"service": "billing(-.*)?"},
                    },
                ],
                "storms": storms or {},
                "sources": {
                    "pagerduty": {"secrets": [SECRET]},
                    "generic": {"secrets": [SECRET]},
                    "eventbridge": {"keys": [SECRET]},
                },
            }
        )
        self.store = Store.open(self.config.store_database())
        self.tickets: list[Ticket] = []
        self.clock = Clock()
        admission = Admission(
            self.store,
            Router.load(self.config.routes),
            self.config.storms,
            self.tickets.append,
            clock=self.clock,
        )
        verifier = SnsVerifier(self.config.sources.sns, fetch=self._no_fetch)
        self.client = TestClient(
            create_app(Services(self.config, self.store, admission, verifier)),
            raise_server_exceptions=False,
        )

    @staticmethod
    def _no_fetch(url: str) -> bytes:
        raise AssertionError(f"no certificate fetch expected, got {url}")

    def am(self, fingerprint: str, labels: dict[str, str], status: str = "firing"):
        return self.client.post(
            "/hooks/alertmanager", json=alertmanager_body(fingerprint, labels, status)
        )

    def end(self, inv_id: str) -> None:
        self.store.finish(inv_id, "healthy", "done", inv_id)
        ended = self.store.investigation(inv_id)
        assert ended is not None and ended.ended_at is not None


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def verdicts(response) -> list[str]:
    assert response.status_code == 202, response.text
    return [d["verdict"] for d in response.json()["decisions"]]


def test_openapi_lists_every_route(h: Harness) -> None:
    paths = h.client.get("/openapi.json").json()["paths"]
    for route in (
        "/hooks/alertmanager",
        "/hooks/sns",
        "/hooks/pagerduty",
        "/hooks/generic",
        "/hooks/eventbridge",
        "/alerts",
        "/investigations",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert route in paths


def test_concurrent_copies_of_one_alert_start_one_investigation(h: Harness) -> None:
    """Copies posted from 16 threads at once race for one fingerprint: one starts, every
    other attaches, none is lost. (``bench/serve.py`` posts 1,000 with 200 in flight.)"""
    copies = 300
    labels = {"alertname": "HighErrorRate", "service": "checkout"}
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda _: h.am("fp-1", labels), range(copies)))
    all_verdicts = [v for r in responses for v in verdicts(r)]
    assert all_verdicts.count("started") == 1
    assert all_verdicts.count("attached") == copies - 1
    assert len(h.tickets) == 1
    (inv,) = h.store.investigations()
    assert inv.alert_count == copies
    assert len(h.store.alerts(investigation_id=inv.id, limit=copies)) == copies


def test_a_sibling_alert_of_the_same_service_attaches_and_another_service_starts(
    h: Harness,
) -> None:
    assert verdicts(h.am("fp-1", {"alertname": "A", "service": "checkout"})) == ["started"]
    assert verdicts(h.am("fp-2", {"alertname": "B", "service": "checkout"})) == ["attached"]
    assert verdicts(h.am("fp-3", {"alertname": "C", "service": "billing-eu"})) == ["started"]
    assert sorted(t.lease_key for t in h.tickets) == ["billing@staging", "checkout@staging"]


def test_routing_miss_is_recorded_and_listed(h: Harness) -> None:
    assert verdicts(h.am("fp-x", {"alertname": "Disk", "service": "nobody"})) == ["unrouted"]
    assert verdicts(h.am("fp-y", {"alertname": "Disk", "service": "billingx"})) == ["unrouted"]
    listed = h.client.get("/alerts", params={"unrouted": 1}).json()
    assert {a["fingerprint"] for a in listed} == {"alertmanager:fp-x", "alertmanager:fp-y"}
    assert listed[0]["labels"]["alertname"] == "Disk"
    assert h.tickets == []


def test_flapping_alert_within_the_window_starts_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path, flap_window_seconds=600)
    labels = {"alertname": "A", "service": "checkout"}
    assert verdicts(h.am("fp-1", labels)) == ["started"]
    h.end(h.tickets[0].investigation_id)
    h.clock.now += 60
    assert verdicts(h.am("fp-1", labels)) == ["flapping"]
    h.clock.now += 600
    assert verdicts(h.am("fp-1", labels)) == ["started"]
    assert len(h.tickets) == 2


def test_rate_limit_per_service(tmp_path: Path) -> None:
    h = Harness(tmp_path, flap_window_seconds=0, rate_limit={"max": 2, "per_seconds": 3600})
    for i in range(2):
        assert verdicts(h.am(f"fp-{i}", {"alertname": f"A{i}", "service": "checkout"})) == [
            "started"
        ]
        h.end(h.tickets[-1].investigation_id)
    assert verdicts(h.am("fp-9", {"alertname": "Z", "service": "checkout"})) == ["rate-limited"]
    # another service has its own budget
    assert verdicts(h.am("fp-b", {"alertname": "Z", "service": "billing"})) == ["started"]
    h.clock.now += 3601
    assert verdicts(h.am("fp-9", {"alertname": "Z", "service": "checkout"})) == ["started"]
    assert len(h.store.alerts(verdict="rate-limited")) == 1


def test_resolved_alert_is_recorded_on_its_investigation(h: Harness) -> None:
    labels = {"alertname": "A", "service": "checkout"}
    verdicts(h.am("fp-1", labels))
    inv_id = h.tickets[0].investigation_id
    assert verdicts(h.am("fp-1", labels, status="resolved")) == ["resolved"]
    detail = h.client.get(f"/investigations/{inv_id}").json()
    assert detail["resolved_at"] is not None
    assert [a["verdict"] for a in detail["alerts"]] == ["resolved", "started"]
    assert len(h.tickets) == 1


MALFORMED = [
    b"",
    b"not json",
    b"[]",
    b"null",
    b'"string"',
    b"{}",
    b'{"version": "4"}',
    b'{"version": "3", "groupKey": "g", "status": "firing", "alerts": []}',
    b'{"version": "4", "groupKey": "g", "status": "firing", "alerts": []}',
    b'{"version": "4", "groupKey": "g", "status": "firing", "alerts": [{"status": 1}]}',
    b'{"version": "4", "groupKey": "g", "status": "firing", "alerts": [{"status": "firing",'
    b' "labels": {"a": {"nested": 1}}}]}',
    b'{"alerts": [{"labels": {}}]}',
    b'{"event": {"event_type": "incident.triggered", "data": {}}}',
    b'{"id": "1", "detail-type": 7, "source": "x"}',
    b"\xff\xfe\x00garbage",
    b"{" * 5000,
]


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Harness:
    return Harness(tmp_path_factory.mktemp("intake"))


@pytest.fixture
def refusing(intake: Harness) -> Iterator[Harness]:
    """One app for the 80 bodies it must all refuse (building one costs ~60 ms, a request
    ~3 ms): a refused body changes nothing, and each case still checks that it started
    nothing; the tickets are cleared after each so a failure stays with its case."""
    yield intake
    intake.tickets.clear()


@pytest.mark.parametrize("body", MALFORMED)
@pytest.mark.parametrize("route", ["alertmanager", "pagerduty", "generic", "eventbridge", "sns"])
def test_malformed_bodies_are_400_never_500(refusing: Harness, route: str, body: bytes) -> None:
    h = refusing
    headers = {"content-type": "application/json"}
    now = int(time.time())
    if route == "pagerduty":
        headers["X-PagerDuty-Signature"] = pagerduty_signature([SECRET], body)
    elif route == "generic":
        headers[generic.TIMESTAMP_HEADER] = str(now)
        headers[generic.SIGNATURE_HEADER] = generic.sign(SECRET, now, body)
    elif route == "eventbridge":
        headers["Authorization"] = f"Bearer {SECRET}"
    response = h.client.post(f"/hooks/{route}", content=body, headers=headers)
    # SNS checks the signature first: an unsigned body is 401, an unreadable one 400.
    assert response.status_code in ((400, 401) if route == "sns" else (400,)), response.text
    problem = response.json()
    assert problem["reason"] and "Traceback" not in response.text
    assert h.tickets == []


def test_bad_signatures_are_401_with_a_reason(h: Harness) -> None:
    body = json.dumps({"event": {"event_type": "incident.triggered", "data": {"id": "P1"}}})
    r = h.client.post(
        "/hooks/pagerduty",
        content=body,
        headers={"X-PagerDuty-Signature": "v1=" + "ab" * 32},
    )
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    old = int(time.time()) - 10_000
    payload = b'{"alerts": [{"labels": {"service": "checkout"}}]}'
    r = h.client.post(
        "/hooks/generic",
        content=payload,
        headers={
            generic.TIMESTAMP_HEADER: str(old),
            generic.SIGNATURE_HEADER: generic.sign(SECRET, old, payload),
        },
    )
    assert r.status_code == 401 and "window" in r.json()["reason"]
    r = h.client.post("/hooks/eventbridge", content=b"{}", headers={"Authorization": "Bearer x"})
    assert r.status_code == 401
    assert h.tickets == []


def test_signed_sources_start_investigations(h: Harness) -> None:
    body = json.dumps(
        {
            "event": {
                "id": "E1",
                "event_type": "incident.triggered",
                "data": {"id": "P1", "title": "checkout down", "service": {"summary": "checkout"}},
            }
        }
    ).encode()
    r = h.client.post(
        "/hooks/pagerduty",
        content=body,
        headers={"X-PagerDuty-Signature": pagerduty_signature([SECRET], body)},
    )
    assert verdicts(r) == ["started"]
    event = {
        "id": "e-1",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "region": "eu-west-1",
        "resources": ["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:billing-5xx"],
        "detail": {"alarmName": "billing-5xx", "state": {"value": "INSUFFICIENT_DATA"}},
    }
    r = h.client.post(
        "/hooks/eventbridge", json=event, headers={"Authorization": f"Bearer {SECRET}"}
    )
    assert verdicts(r) == ["ignored"]


def test_oversized_body_is_413(h: Harness) -> None:
    big = b"x" * (h.config.max_body_bytes + 1)
    r = h.client.post("/hooks/alertmanager", content=big)
    assert r.status_code == 413


def test_metrics_and_health(h: Harness) -> None:
    h.am("fp-1", {"alertname": "A", "service": "checkout"})
    h.am("fp-1", {"alertname": "A", "service": "checkout"})
    assert h.client.get("/healthz").json() == {"status": "ok"}
    assert h.client.get("/readyz").status_code == 200
    text = h.client.get("/metrics").text
    assert 'rootloop_serve_intake_total{source="alertmanager",verdict="attached"}' in text
    assert 'rootloop_serve_investigations{status="queued"} 1.0' in text


def test_config_refuses_a_route_to_a_broken_map(tmp_path: Path) -> None:
    from rootloop.errors import UserError

    bad = tmp_path / "bad.yaml"
    bad.write_text("service: [unclosed\n", encoding="utf-8")
    config = ServeConfig.model_validate({"routes": [{"name": "x", "map": str(bad)}]})
    with pytest.raises(UserError, match="route 'x'"):
        Router.load(config.routes)


def test_reads_need_a_token_when_one_is_configured(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.config.read.tokens = h.config.sources.pagerduty.secrets
    assert h.client.get("/alerts").status_code == 401
    assert (
        h.client.get("/investigations/x", headers={"Authorization": "Bearer no"}).status_code == 401
    )
    ok = h.client.get("/investigations", headers={"Authorization": f"Bearer {SECRET}"})
    assert ok.status_code == 200
    assert h.client.get("/healthz").status_code == 200  # probes stay open


@pytest.mark.parametrize("route", ["alertmanager", "pagerduty", "generic", "eventbridge", "sns"])
def test_random_bytes_never_make_a_server_error(h: Harness, route: str) -> None:
    import random

    rnd = random.Random(route)
    headers = {"Authorization": f"Bearer {SECRET}"} if route == "eventbridge" else {}
    for _ in range(60):
        body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 300)))
        if route == "pagerduty":
            headers = {"X-PagerDuty-Signature": pagerduty_signature([SECRET], body)}
        response = h.client.post(f"/hooks/{route}", content=body, headers=headers)
        assert response.status_code in (400, 401), (body, response.text)
    assert h.tickets == []
