"""The lab comes up healthy, rootloop's own skills see it healthy, and down leaves nothing."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

import rootloop
from rootloop.models import Status
from rootloop.sweep import run_sweep
from rootloop_lab import Lab, procs

pytestmark = pytest.mark.lab  # starts the whole lab: not in make test-fast


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_up_sweep_ci_api_and_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = Lab(tmp_path / "lab")
    try:
        state = lab.up()
        assert lab.healthy()
        names = {c.name for c in lab.status().components}
        assert {
            "payments-api",
            "api-gateway",
            "frontend-app",
            "notification-svc",
            "postgresql",
            "redis",
            "lambda-worker",
        } <= names

        # the payment path works end to end through the frontend's origin
        req = urllib.request.Request(
            f"{state.url('frontend-app')}/api/payments",
            method="POST",
            data=json.dumps({"amount_cents": 1250, "merchant_id": 1}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 201
            assert json.loads(resp.read())["receipt"].startswith("payment ")
        health = _get(f"{state.url('payments-api')}/health")
        main_sha = (lab.root / "repo" / "origin.git" / "refs" / "heads" / "main").read_text()
        assert health["commit"] == main_sha.strip()

        # the CI API answers in GitHub's shapes
        ci = f"http://127.0.0.1:{state.ports.ci}/repos/lab/payments-api/actions/runs?branch=main"
        runs = _get(ci)
        assert runs["total_count"] >= 1
        assert {"id", "head_sha", "status", "conclusion"} <= set(runs["workflow_runs"][0])

        # the map loads with the real skills' settings, and they find the lab healthy
        for k, v in lab.env().items():
            monkeypatch.setenv(k, v)
        topo = rootloop.load_map(lab.map_file)
        assert {
            "api-gateway",
            "frontend-app",
            "postgresql",
            "redis",
            "sqs-payments",
            "lambda-worker",
            "notification-svc",
        } <= set(topo.nodes)
        findings = {f.node: f for f in run_sweep(topo.nodes.values())}
        for node in ("postgresql", "redis", "notification-svc", "payments-api/compute"):
            assert findings[node].status in (Status.OK, Status.DEGRADED), findings[node]
        assert "1/1" in findings["payments-api/compute"].summary
        prod = rootloop.load_map(lab.write_map(production=True))
        assert prod.is_production_env
    finally:
        pids = lab.layout.recorded_pids()
        lab.down()
    assert pids, "the lab recorded no pids"
    left = [name for name, pid in pids.items() if procs.alive(pid)]
    assert left == []
    assert not lab.running
    assert os.path.exists(lab.map_file)
