"""The whole loop on the real local lab: sweep → reason → gate → act → verify → test → PR.

One lab serves the module; each test resets it, injects a real fault, waits until
the fault shows (the page to the on-call engineer), and lets rootloop work.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rootloop import runner
from rootloop.actions.gates import approval_key
from rootloop.context import ContextStore, DebugContext
from rootloop.events import Event
from rootloop.models import Outcome
from rootloop.reasoning.rules import RulesReasoner
from rootloop_lab import Lab
from rootloop_lab.scenarios import SCENARIOS
from rootloop_lab.symptoms import wait_for_symptoms

pytestmark = pytest.mark.e2e


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


@pytest.fixture(scope="module")
def memory_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


def start(lab: Lab, scenario: str) -> Path:
    lab.reset()
    lab.inject(scenario)
    os.environ.update(lab.env())
    map_path = lab.map_for(scenario)
    wait_for_symptoms(map_path, timeout=90)
    return map_path


def investigate(
    map_path: Path, state: Path, ctx: DebugContext | None = None
) -> tuple[DebugContext, list[Event]]:
    events: list[Event] = []
    session = runner.Session.open(map_path, state)
    ctx = ctx or session.new_context(map_path)
    ctx = asyncio.run(runner.run(session, ctx, [events.append], RulesReasoner()))
    return ctx, events


def origin_main(lab: Lab) -> str:
    origin = next(lab.root.glob("repo/*.git"), None) or next(lab.root.rglob("*.git"))
    return subprocess.run(
        ["git", "-C", str(origin), "rev-parse", "main"], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_oom_batch_takes_the_seeds_three_iterations(lab: Lab, memory_dir: Path) -> None:
    map_path = start(lab, "oom-batch")
    main_before = origin_main(lab)
    ctx, events = investigate(map_path, memory_dir)

    assert ctx.status == "healthy", ctx.status_reason
    kinds = [h.action_detail.kind for h in ctx.history if h.action_detail]
    assert kinds == ["set-task-resources", "apply-patch", "apply-patch"]
    first, second, third = ctx.history
    assert first.outcome is Outcome.SAME_FAULT and "OOMKilled" in first.result
    assert second.outcome is Outcome.NEW_FAULT and second.gha == "pass"
    assert second.commit and third.commit and third.outcome is Outcome.FIXED
    seed = ctx.seed_view()
    assert seed["iteration"] == 3 and [h["iteration"] for h in seed["history"]] == [1, 2, 3]
    # a PR on the run's branch, main untouched
    assert ctx.branch == f"rootloop/payments-api/{ctx.run_id}"
    assert origin_main(lab) == main_before
    body = (memory_dir / "runs" / ctx.run_id / "pr.md").read_text()
    assert "OOMKilled" in body and "```mermaid" in body
    assert (memory_dir / "runs" / ctx.run_id / "report.html").exists()
    assert any(e.kind == "test" for e in events)


def test_second_run_remembers_the_first(lab: Lab, memory_dir: Path) -> None:
    """Runs after the oom-batch test: memory holds its summary and its failed fix."""
    map_path = start(lab, "oom-batch")
    ctx, events = investigate(map_path, memory_dir)
    prior = next(e for e in events if e.kind == "prior")
    assert prior.data["last_summary"] and "OOM" in prior.data["last_summary"]
    assert any(
        fa["description"].startswith("infra fix - set ECS task memory")
        for fa in prior.data["failed_actions"]
    )
    kinds = [h.action_detail.kind for h in ctx.history if h.action_detail]
    assert kinds, f"{ctx.status}: {ctx.status_reason}"
    assert "set-task-resources" not in kinds  # the fix that failed before is not retried
    assert kinds[0] == "apply-patch"


def test_pg_connection_hog_blames_the_worker_two_hops_away(lab: Lab, tmp_path: Path) -> None:
    map_path = start(lab, "pg-connection-hog")
    ctx, _ = investigate(map_path, tmp_path)
    first = ctx.history[0]
    assert first.diagnosis_detail is not None
    assert first.diagnosis_detail.root_cause == "lambda-worker"
    assert first.diagnosis_detail.category == SCENARIOS["pg-connection-hog"].category
    assert first.action_detail is not None and first.action_detail.kind == "set-function-env"
    assert ctx.status == "healthy", ctx.status_reason


def test_schema_change_pauses_until_approved(lab: Lab, tmp_path: Path) -> None:
    map_path = start(lab, "schema-change")
    ctx, _ = investigate(map_path, tmp_path)
    assert ctx.status == "paused" and ctx.pending_gate is not None
    assert ctx.pending_gate.gate == "schema"
    entry = ctx.current
    assert entry is not None and entry.action_detail is not None
    assert entry.action_detail.kind == "run-migration" and entry.changed is None

    def has_column() -> bool:
        with psycopg.connect(lab.state().pg_dsn(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM information_schema.columns WHERE "
                "table_name = 'payments' AND column_name = 'fee_cents'"
            )
            return row.fetchone()[0] == 1  # type: ignore[index]

    assert not has_column()  # paused means nothing ran
    # a human approves from the command line; the run resumes and finishes
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rootloop.cli.main",
            "approve",
            ctx.run_id,
            "--gate",
            "schema",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )
    ctx = ContextStore(tmp_path).load(ctx.run_id)
    assert has_column()
    assert ctx.status == "healthy", done.stdout[-2000:] + done.stderr[-2000:]
    assert done.returncode == 0
    assert approval_key("schema", entry.action_detail) in ctx.approvals


def test_production_is_diagnosed_and_refused(lab: Lab, tmp_path: Path) -> None:
    map_path = start(lab, "production")
    ctx, events = investigate(map_path, tmp_path)
    assert ctx.status == "refused"
    assert ctx.history and ctx.history[0].diagnosis_detail is not None
    assert ctx.history[0].diagnosis_detail.root_cause == "lambda-worker"
    assert all(h.changed is None for h in ctx.history)
    assert [e.data["decision"] for e in events if e.kind == "gate"] == ["refuse"]
    assert not [e for e in events if e.kind == "action"]


def test_killed_between_act_and_verify_resumes_without_repeating(lab: Lab, tmp_path: Path) -> None:
    map_path = start(lab, "redis-noeviction")
    env = {**os.environ, "ROOTLOOP_STATE_DIR": str(tmp_path)}
    cli = [sys.executable, "-m", "rootloop.cli.main"]
    proc = subprocess.Popen(
        [*cli, "run", "-t", str(map_path), "--reasoner", "rules"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = ContextStore(tmp_path)
    deadline, killed_at = time.monotonic() + 180, None
    while time.monotonic() < deadline and proc.poll() is None:
        for ctx in store.list():
            if ctx.current is not None and ctx.current.phase == "applied":
                proc.send_signal(signal.SIGKILL)
                killed_at = ctx.run_id
                break
        if killed_at:
            break
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert killed_at, "the run never reached the applied phase"
    assert store.load(killed_at).status == "running"

    done = subprocess.run(
        [*cli, "resume", killed_at, "--reasoner", "rules"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    ctx = store.load(killed_at)
    assert ctx.status == "healthy", done.stdout[-2000:]
    assert len(ctx.history) == 1
    transcript = tmp_path / "memory" / "runs" / killed_at / "transcript.jsonl"
    actions = [
        json.loads(line)
        for line in transcript.read_text().splitlines()
        if json.loads(line)["kind"] == "action"
    ]
    assert len(actions) == 1  # applied once, across both processes
