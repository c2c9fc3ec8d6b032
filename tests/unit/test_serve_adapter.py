"""The adapter onto the loop: approvals recorded exactly as ``rootloop approve`` records them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootloop.actions.gates import approval_key
from rootloop.actions.types import RunMigration
from rootloop.context import ContextStore, DebugContext, HistoryEntry, PendingGate
from rootloop.serve.investigate import InvestigationRequest, approve, investigate
from rootloop.serve.testing import write_map

INV = "inv-20261201-000000-abcd1234"


def paused_run(tmp_path: Path, gate: str = "schema") -> tuple[InvestigationRequest, RunMigration]:
    map_path = write_map(tmp_path / "db.yaml", "db", "staging")
    action = RunMigration(target="db-health", name="0042_add_index", sql="CREATE INDEX …")
    ctx = DebugContext(service="db", run_id=INV, topology_file=str(map_path), status="paused")
    ctx.history.append(
        HistoryEntry(
            iteration=1,
            diagnosis="missing index",
            action=action.describe(),
            action_detail=action,
            phase="awaiting-approval",
        )
    )
    ctx.pending_gate = PendingGate(gate=gate, reason="schema change", iteration=1)
    ContextStore(tmp_path / "state").save(ctx)
    return InvestigationRequest(INV, str(map_path), str(tmp_path / "state")), action


def test_approve_records_the_key_the_loop_checks_and_resumes(tmp_path: Path) -> None:
    request, action = paused_run(tmp_path)
    assert approve(request, "schema", "alice", action.fingerprint()) is True
    ctx = ContextStore(tmp_path / "state").load(INV)
    assert approval_key("schema", action) in ctx.approvals
    assert ctx.status == "running"
    assert any("alice" in note for note in ctx.notes)


@pytest.mark.parametrize("gate", ["production", "other"])
def test_approve_refuses_another_gate_and_production(tmp_path: Path, gate: str) -> None:
    request, action = paused_run(tmp_path, gate="production" if gate == "production" else "schema")
    assert approve(request, gate, "alice", action.fingerprint()) is False
    assert ContextStore(tmp_path / "state").load(INV).approvals == []


def test_an_approval_of_one_action_never_approves_another_at_the_same_gate(
    tmp_path: Path,
) -> None:
    """A message sent for one action and received when the run waits on another (a
    second POST, a retry, a later pause at the same gate) approves nothing."""
    request, action = paused_run(tmp_path)
    other = RunMigration(target="db-health", name="0043_drop", sql="ALTER TABLE t DROP c")
    assert approve(request, "schema", "alice", other.fingerprint()) is False
    assert approve(request, "schema", "alice", "") is False  # a message without its action
    ctx = ContextStore(tmp_path / "state").load(INV)
    assert ctx.approvals == [] and ctx.status == "paused"
    assert approve(request, "schema", "alice", action.fingerprint()) is True


def test_a_paused_run_reports_its_gate_and_is_not_run_again(tmp_path: Path) -> None:
    request, _ = paused_run(tmp_path)
    outcome = investigate(request)
    assert (outcome.outcome, outcome.gate, outcome.run_id) == ("paused", "schema", INV)
